import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatLineReply,
  formatLineRequest,
  lineCodec,
  parseLineReply,
  parseLineRequest,
} from './codec-line';
import { KernelFrameError } from './errors';
import { testKernelCodec } from './testing';
import type { KernelRequestFrame } from './types';
import { framesBefore } from './wire-json';

testKernelCodec('lines', () => lineCodec());

const LIMIT = { maxFrameBytes: 65_536 };
const text = (value: string) => new TextEncoder().encode(value);
const decoded = (value: Uint8Array) => new TextDecoder().decode(value);

function frameError(fn: () => unknown): KernelFrameError {
  try {
    fn();
  } catch (error) {
    expect(KernelFrameError.isInstance(error)).toBe(true);
    return error as KernelFrameError;
  }
  throw new Error('expected a KernelFrameError');
}

describe('lineCodec: the client side, as heidi-kernel expects it', () => {
  it('writes the method lowercased, and the params as JSON only when there are some', () => {
    const codec = lineCodec();
    expect(codec.name).toBe('lines');
    expect(codec.matching).toBe('order');
    expect(decoded(codec.encodeRequest({ method: 'PING', params: {}, timestamp: 1 }))).toBe('ping\n');
    expect(
      decoded(
        codec.encodeRequest({ method: 'APPLY_POLICY', params: { mode: 'strict' }, timestamp: 1, id: 4 }),
      ),
    ).toBe('apply_policy {"mode":"strict"}\n');
    expect(formatLineRequest({ method: 'Status', params: {}, timestamp: 0 })).toBe('status');
  });

  it.each([
    ['PONG', { text: 'PONG' }],
    ['PROTOCOL 1 DAEMON 0.3.1', { text: 'PROTOCOL 1 DAEMON 0.3.1' }],
    ['{"state":"running","queue":0,"pid":12}', { state: 'running', queue: 0, pid: 12 }],
    [
      'ERR UNKNOWN_COMMAND frobnicate',
      { error: true, code: 'UNKNOWN_COMMAND', message: 'UNKNOWN_COMMAND frobnicate' },
    ],
    ['ERR BUSY', { error: true, code: 'BUSY', message: 'BUSY' }],
    ['ERR', { error: true, message: 'ERR' }],
    ['[1,2]', { text: '[1,2]' }],
    ['ERROR is a word', { text: 'ERROR is a word' }],
  ])('reads %j as %j', (line, body) => {
    expect(parseLineReply(line)).toEqual(body);
    const [frame] = lineCodec()
      .replyDecoder(LIMIT)
      .push(text(`${line}\n`));
    expect(frame).toEqual({ body, wireBytes: Buffer.byteLength(line) + 1 });
  });

  it('refuses a line starting with { that is not a JSON object', () => {
    const decoder = () => lineCodec().replyDecoder(LIMIT);
    expect(frameError(() => decoder().push(text('{"state":\n'))).reason).toBe('malformed');
    expect(frameError(() => parseLineReply('{oops')).reason).toBe('malformed');
  });

  it('strips a trailing CR, skips empty lines, and reads several lines from one chunk', () => {
    const frames = lineCodec().replyDecoder(LIMIT).push(text('PONG\r\n\n\r\nERR X y\r\n{"a":1}\n'));
    expect(frames).toEqual([
      { body: { text: 'PONG' }, wireBytes: 6 },
      { body: { error: true, code: 'X', message: 'X y' }, wireBytes: 9 },
      { body: { a: 1 }, wireBytes: 8 },
    ]);
  });

  it('refuses a line over the limit before holding more than the limit', () => {
    const decoder = lineCodec().replyDecoder({ maxFrameBytes: 16 });
    expect(decoder.push(text('0123456789'))).toEqual([]);
    expect(decoder.pending).toBe(10);
    expect(frameError(() => decoder.push(text('abcdef'))).reason).toBe('too_large');
    expect(decoder.pending).toBeLessThanOrEqual(16);
    // 15 bytes and the newline: exactly the limit.
    expect(
      lineCodec()
        .replyDecoder({ maxFrameBytes: 16 })
        .push(text(`${'p'.repeat(15)}\n`)),
    ).toHaveLength(1);
    const over = lineCodec().replyDecoder({ maxFrameBytes: 16 });
    expect(frameError(() => over.push(text(`${'p'.repeat(16)}\n`))).reason).toBe('too_large');
  });

  it('keeps the lines read before a bad one, for the caller to answer them first', () => {
    const error = frameError(() => lineCodec().requestDecoder(LIMIT).push(text('ping\nset [1]\nstatus\n')));
    expect(error.reason).toBe('malformed');
    expect(framesBefore<KernelRequestFrame>(error).map((frame) => frame.request.method)).toEqual(['PING']);
  });

  it('refuses bad UTF-8 as malformed', () => {
    const decoder = lineCodec().replyDecoder(LIMIT);
    expect(frameError(() => decoder.push(Uint8Array.of(0x50, 0xff, 0x0a))).reason).toBe('malformed');
  });

  it('refuses to write a request or reply line that would break the framing', () => {
    const codec = lineCodec({ formatRequest: (request) => `${request.method}\nextra` });
    expect(frameError(() => codec.encodeRequest({ method: 'PING', params: {}, timestamp: 0 })).reason).toBe(
      'malformed',
    );
    expect(frameError(() => lineCodec({ formatReply: () => 'a\rb' }).encodeReply({ body: {} })).reason).toBe(
      'malformed',
    );
  });
});

describe('lineCodec: the server side', () => {
  it('reads `cmd [json]` as the uppercased method and its params', () => {
    expect(parseLineRequest('status')).toEqual({ method: 'STATUS', params: {} });
    expect(parseLineRequest('  apply_policy   {"mode":"strict"}  ')).toEqual({
      method: 'APPLY_POLICY',
      params: { mode: 'strict' },
    });
    const [frame] = lineCodec().requestDecoder(LIMIT).push(text('ping\r\n'));
    expect(frame?.request.method).toBe('PING');
    expect(frame?.request.params).toEqual({});
    expect(frame?.wireBytes).toBe(6);
  });

  it('refuses params that are not a JSON object', () => {
    expect(frameError(() => parseLineRequest('set [1,2]')).reason).toBe('malformed');
    expect(frameError(() => parseLineRequest('set nope')).reason).toBe('malformed');
    const decoder = lineCodec().requestDecoder(LIMIT);
    expect(frameError(() => decoder.push(text('set {"a":\n'))).reason).toBe('malformed');
  });

  it('writes error bodies as ERR lines, lone text as is, anything else as JSON', () => {
    expect(formatLineReply({ error: true, code: 'UNKNOWN_COMMAND', message: 'frob' })).toBe(
      'ERR UNKNOWN_COMMAND frob',
    );
    expect(formatLineReply({ error: true, message: 'no code' })).toBe('ERR ERROR no code');
    expect(formatLineReply({ error: 1, code: 'X' })).toBe('ERR X');
    expect(formatLineReply({ error: true, code: 'X', message: 'two\nlines' })).toBe('ERR X two lines');
    expect(formatLineReply({ text: 'PONG' })).toBe('PONG');
    expect(formatLineReply({ text: 'a\r\nb' })).toBe('a b');
    expect(formatLineReply({ text: 'PONG', extra: 1 })).toBe('{"text":"PONG","extra":1}');
    expect(formatLineReply({ state: 'running' })).toBe('{"state":"running"}');
    expect(formatLineReply({ result: 42 })).toBe('{"result":42}');
    // Text that would read back as something else travels as JSON.
    for (const tricky of ['{x', 'ERR X', 'ERR', ''])
      expect(parseLineReply(formatLineReply({ text: tricky }))).toEqual({ text: tricky });
  });
});

describe('lineCodec: overrides', () => {
  it('uses the given request and reply formats, and turns a parser failure into malformed', () => {
    const codec = lineCodec({
      formatRequest: (request) => request.method.toUpperCase(),
      parseReply: (line) => {
        if (!line.startsWith('OK ')) throw new Error(`unexpected ${line}`);
        return { value: line.slice(3) };
      },
      formatReply: (body) => `OK ${String((body as { value?: unknown }).value)}`,
      parseRequest: (line) => ({ method: line, params: { raw: true } }),
    });
    expect(decoded(codec.encodeRequest({ method: 'ping', params: { ignored: 1 }, timestamp: 0 }))).toBe(
      'PING\n',
    );
    expect(codec.replyDecoder(LIMIT).push(text('OK 7\n'))).toEqual([{ body: { value: '7' }, wireBytes: 5 }]);
    expect(decoded(codec.encodeReply({ body: { value: 8 } }))).toBe('OK 8\n');
    expect(codec.requestDecoder(LIMIT).push(text('GO\n'))[0]?.request).toMatchObject({
      method: 'GO',
      params: { raw: true },
    });
    const error = frameError(() => codec.replyDecoder(LIMIT).push(text('NO\n')));
    expect(error.reason).toBe('malformed');
    expect(error.message).toContain('unexpected NO');
  });
});

describe('lineCodec: properties', () => {
  const line = fc
    .string({ unit: 'grapheme', maxLength: 40 })
    .map((value) => value.replace(/[\r\n]/g, ' ').trim())
    .filter((value) => value !== '' && !value.startsWith('{') && !value.startsWith('ERR'));

  it('decodes any split of a stream of reply lines into the same frames', () => {
    fc.assert(
      fc.property(
        fc.array(line, { minLength: 1, maxLength: 10 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (lines, cuts) => {
          const stream = Buffer.from(lines.map((value) => `${value}\r\n`).join(''));
          const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b);
          const decoder = lineCodec().replyDecoder(LIMIT);
          const bodies: unknown[] = [];
          let start = 0;
          for (const point of [...points, stream.length]) {
            bodies.push(...decoder.push(stream.subarray(start, point)).map((frame) => frame.body));
            start = point;
          }
          expect(bodies).toEqual(lines.map((value) => ({ text: value })));
          expect(decoder.pending).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('round-trips any lone text through the server format and the client parser', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (value) => {
        const clean = value.replace(/[\r\n]+/g, ' ');
        const [frame] = lineCodec()
          .replyDecoder(LIMIT)
          .push(lineCodec().encodeReply({ body: { text: clean } }));
        expect(frame?.body).toEqual({ text: clean });
      }),
      { numRuns: 300 },
    );
  });
});
