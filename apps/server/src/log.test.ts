import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './log';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      callback();
    },
  });
  return { lines, stream };
}

describe('createLogger', () => {
  it('writes one JSON object per line with an ISO time and the level as a label', () => {
    const { lines, stream } = capture();
    const logger = createLogger('info', stream);
    logger.info({ connectionId: 'c1' }, 'connection opened');
    logger.debug('hidden at info');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({
      level: 'info',
      msg: 'connection opened',
      connectionId: 'c1',
      pid: process.pid,
    });
    expect(entry.time).toMatch(/^\d{4}-\d{2}-\d{2}T/);
  });

  it('redacts tokens and secrets, and serializes errors with their stack', () => {
    const { lines, stream } = capture();
    const logger = createLogger('trace', stream);
    logger.warn(
      { token: 'eyJ.secret.sig', auth: { secret: 's3cret' }, headers: { authorization: 'Bearer x' } },
      'redacted',
    );
    logger.error({ err: new Error('boom') }, 'failed');
    const [redacted, failed] = lines.map((line) => JSON.parse(line));
    expect(redacted).toMatchObject({
      token: '[redacted]',
      auth: { secret: '[redacted]' },
      headers: { authorization: '[redacted]' },
    });
    expect(lines[0]).not.toContain('s3cret');
    expect(failed.err).toMatchObject({
      type: 'Error',
      message: 'boom',
      stack: expect.stringContaining('Error: boom'),
    });
  });

  it('is silent at level silent', () => {
    const { lines, stream } = capture();
    createLogger('silent', stream).fatal('nothing');
    expect(lines).toEqual([]);
  });
});
