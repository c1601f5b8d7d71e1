import { describe, expect, it } from 'vitest';
import { maxSocketPathBytes, parseEndpoint, redactEndpoint } from './endpoint';
import { KernelConfigError, KernelErrorCode } from './errors';

const refusal = (endpoint: string, variable?: string): KernelConfigError => {
  try {
    parseEndpoint(endpoint, variable);
  } catch (error) {
    expect(error).toBeInstanceOf(KernelConfigError);
    return error as KernelConfigError;
  }
  throw new Error(`${endpoint} was accepted`);
};

describe('parseEndpoint: unix', () => {
  it('accepts an absolute path', () => {
    expect(parseEndpoint('unix:///tmp/heidi-kernel.sock')).toEqual({
      kind: 'unix',
      path: '/tmp/heidi-kernel.sock',
    });
  });

  it.each(['unix://relative.sock', 'unix:relative', 'unix:/abs/but/one/slash', 'unix://', 'unix://./x.sock'])(
    'refuses %s (not unix:///absolute)',
    (endpoint) => {
      const error = refusal(endpoint, 'KERNEL_ENDPOINT');
      expect(error.code).toBe(KernelErrorCode.EndpointInvalid);
      expect(error.variable).toBe('KERNEL_ENDPOINT');
      expect(error.message).toContain('KERNEL_ENDPOINT');
      expect(error.message).toContain(JSON.stringify(endpoint));
    },
  );

  it('checks the path fits sun_path, in bytes', () => {
    const max = maxSocketPathBytes();
    const fits = `/${'a'.repeat(max - 1)}`;
    expect(parseEndpoint(`unix://${fits}`)).toEqual({ kind: 'unix', path: fits });
    expect(refusal(`unix://${fits}b`).message).toMatch(/sun_path/);
    // Multi-byte characters count as bytes: 'é' is 2 bytes.
    expect(refusal(`unix:///${'é'.repeat(Math.ceil(max / 2))}`).message).toMatch(/sun_path/);
  });

  it('knows the sun_path sizes', () => {
    expect(maxSocketPathBytes('linux')).toBe(107);
    expect(maxSocketPathBytes('darwin')).toBe(103);
    expect(maxSocketPathBytes('freebsd')).toBe(103);
  });

  it('refuses a NUL in the path', () => {
    expect(refusal('unix:///tmp/a\0b').message).toMatch(/NUL/);
  });
});

describe('parseEndpoint: http', () => {
  it.each([
    ['http://127.0.0.1:8080', '127.0.0.1'],
    ['http://localhost:8080', 'localhost'],
    ['http://[::1]:8080', '[::1]'],
    ['https://localhost', 'localhost'],
    ['HTTP://LOCALHOST:9/kernel', 'localhost'],
  ])('accepts %s', (endpoint, hostname) => {
    const parsed = parseEndpoint(endpoint);
    expect(parsed.kind).toBe('http');
    expect(parsed.kind === 'http' && parsed.url.hostname).toBe(hostname);
  });

  it.each([
    'http://localhost.evil.example',
    'http://localhost@evil.example',
    'http://localhost:80@evil.example',
    'http://127.0.0.1.nip.io',
    'http://0.0.0.0',
    'http://[::ffff:127.0.0.1]',
    'http://127.0.0.2',
    'http://example.com',
    'http://localhost.',
    'http://user:secret@localhost',
    'http://localhost?x=1',
    'http://localhost/#frag',
    'ftp://localhost',
    'tcp://127.0.0.1:1',
    'not a url',
    '',
  ])('refuses %s', (endpoint) => {
    const error = refusal(endpoint);
    expect(error.code).toBe(KernelErrorCode.EndpointInvalid);
    expect(error.variable).toBe('endpoint');
  });

  it('does not repeat credentials in the error', () => {
    const error = refusal('http://user:secret@localhost');
    expect(error.message).not.toContain('secret');
    expect(error.message).toContain('***@localhost');
  });
});

describe('redactEndpoint', () => {
  it('shows the home directory as ~', () => {
    expect(redactEndpoint('unix:///home/ada/.local/kernel.sock', '/home/ada')).toBe(
      'unix://~/.local/kernel.sock',
    );
    expect(redactEndpoint('unix:///home/adams/k.sock', '/home/ada')).toBe('unix:///home/adams/k.sock');
    expect(redactEndpoint('unix:///tmp/k.sock', '/home/ada/')).toBe('unix:///tmp/k.sock');
  });

  it('drops userinfo, query and fragment', () => {
    expect(redactEndpoint('http://user:secret@127.0.0.1:8080/k?token=x#y')).toBe('http://127.0.0.1:8080/k');
    expect(redactEndpoint('http://[::1]:8080/')).toBe('http://[::1]:8080');
    expect(redactEndpoint('weird://user:pw@x?token=1', '/nowhere')).not.toMatch(/pw|token/);
    expect(redactEndpoint('no url at all?token=1', '/nowhere')).toBe('no url at all');
  });
});
