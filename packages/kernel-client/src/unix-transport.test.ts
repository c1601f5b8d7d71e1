import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { homedir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { lengthPrefixedJson } from './codec-length';
import { lineCodec } from './codec-line';
import { KernelConfigError, KernelErrorCode, type KernelTransportError } from './errors';
import { createKernelServer } from './server';
import { tempSocketPath } from './test-support/socket-path';
import { rejection } from './test-support/wait';
import { testKernelTransport } from './testing';
import type { KernelCodec } from './types';
import { checkSocketPath, type UnixTransportMode, unixTransport } from './unix-transport';

function suite(name: string, mode: UnixTransportMode, codec: () => KernelCodec): void {
  testKernelTransport(name, {
    async start(methods) {
      const path = tempSocketPath('c');
      const server = createKernelServer({ methods, codec: codec() });
      await server.listen({ path });
      return { transport: unixTransport({ path, mode, codec: codec() }), stop: () => server.close() };
    },
  });
}

suite('unix oneshot, length-prefixed', 'oneshot', () => lengthPrefixedJson());
suite('unix persistent, length-prefixed by id', 'persistent', () => lengthPrefixedJson());
suite('unix persistent, length-prefixed by order', 'persistent', () =>
  lengthPrefixedJson({ matching: 'order' }),
);
suite('unix persistent, lines', 'persistent', () => lineCodec());
suite('unix oneshot, lines', 'oneshot', () => lineCodec());

const request = { method: 'PING', params: {}, timestamp: 0 };
const sendOptions = () => ({ signal: new AbortController().signal, maxResponseBytes: 65_536 });

function configError(fn: () => unknown): KernelConfigError {
  try {
    fn();
  } catch (error) {
    expect(KernelConfigError.isInstance(error)).toBe(true);
    return error as KernelConfigError;
  }
  throw new Error('expected a KernelConfigError');
}

describe('unixTransport: options', () => {
  it('is named unix and shows its endpoint with the home directory as ~', () => {
    const transport = unixTransport({ path: `${homedir()}/.local/heidi-engine/run/kernel.sock` });
    expect(transport.name).toBe('unix');
    expect(transport.endpoint).toBe('unix://~/.local/heidi-engine/run/kernel.sock');
    expect(unixTransport({ path: '/tmp/heidi-kernel.sock' }).endpoint).toBe('unix:///tmp/heidi-kernel.sock');
  });

  it.each([
    ['a relative path', 'run/kernel.sock'],
    ['an empty path', ''],
    ['a path with NUL', '/tmp/a\0b.sock'],
    ['a path longer than sun_path', `/tmp/${'x'.repeat(200)}.sock`],
  ])('refuses %s with KERNEL_ENDPOINT_INVALID naming path', (_what, path) => {
    const error = configError(() => unixTransport({ path }));
    expect(error.code).toBe(KernelErrorCode.EndpointInvalid);
    expect(error.variable).toBe('path');
  });

  it('accepts a path of exactly the sun_path limit and refuses one byte more', () => {
    const max = process.platform === 'linux' ? 107 : 103;
    const exact = `/tmp/${'p'.repeat(max - 5)}`;
    expect(Buffer.byteLength(exact)).toBe(max);
    expect(checkSocketPath(exact)).toBe(exact);
    expect(configError(() => checkSocketPath(`${exact}q`)).code).toBe(KernelErrorCode.EndpointInvalid);
    // Bytes, not characters: a 2-byte character counts twice.
    expect(configError(() => checkSocketPath(`/tmp/${'é'.repeat(max / 2)}`)).code).toBe(
      KernelErrorCode.EndpointInvalid,
    );
  });

  it('refuses a bad mode, codec or connect timeout with KERNEL_CONFIG_INVALID', () => {
    const path = '/tmp/k.sock';
    const cases = [
      () => unixTransport({ path, mode: 'pooled' as UnixTransportMode }),
      () => unixTransport({ path, codec: {} as KernelCodec }),
      () => unixTransport({ path, connectTimeoutMs: -1 }),
      () => unixTransport({ path, connectTimeoutMs: Number.NaN }),
    ];
    const variables = cases.map((fn) => {
      const error = configError(fn);
      expect(error.code).toBe(KernelErrorCode.ConfigInvalid);
      return error.variable;
    });
    expect(variables).toEqual(['mode', 'codec', 'connectTimeoutMs', 'connectTimeoutMs']);
  });
});

describe('unixTransport: a daemon that cannot be reached', () => {
  const cleanup: string[] = [];
  afterEach(async () => {
    for (const path of cleanup.splice(0)) await rm(path, { force: true });
  });

  it.each(['oneshot', 'persistent'] as const)(
    'gives kind connect for a missing socket (%s), and can retry',
    async (mode) => {
      const path = tempSocketPath('m');
      const transport = unixTransport({ path, mode });
      const error = await rejection<KernelTransportError>(transport.send(request, sendOptions()));
      expect(error.kind).toBe('connect');
      expect(error.message).toContain('ENOENT');
      expect(await transport.isAvailable({ signal: new AbortController().signal })).toBe(false);
      // The daemon comes up: the same transport reaches it.
      const server = createKernelServer({ methods: { PING: () => ({ pong: true }) } });
      await server.listen({ path });
      try {
        expect((await transport.send(request, sendOptions())).body).toEqual({ pong: true });
        expect(await transport.isAvailable({ signal: new AbortController().signal })).toBe(true);
      } finally {
        await transport.close();
        await server.close();
      }
    },
  );

  it('gives kind connect for a stale socket file nobody listens on (ECONNREFUSED)', async () => {
    const path = tempSocketPath('s');
    cleanup.push(path);
    // Python's bind() leaves a socket file behind with no listener.
    execFileSync('python3', [
      '-c',
      'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])',
      path,
    ]);
    const transport = unixTransport({ path });
    const error = await rejection<KernelTransportError>(transport.send(request, sendOptions()));
    expect(error.kind).toBe('connect');
    expect(error.message).toContain('ECONNREFUSED');
    await transport.close();
  });

  it('gives kind connect when the daemon accepts nothing more (full accept queue)', async () => {
    const path = tempSocketPath('q');
    cleanup.push(path);
    // A listener with a backlog of 0 that never accepts: the first connect queues, the next ones fail.
    const child = spawn(
      'python3',
      [
        '-c',
        'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(0); print("READY", flush=True); sys.stdin.read()',
        path,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      const queued = createConnection({ path });
      await new Promise((resolve) => queued.once('connect', resolve));
      const transport = unixTransport({ path });
      const error = await rejection<KernelTransportError>(transport.send(request, sendOptions()));
      expect(error.kind).toBe('connect');
      queued.destroy();
      await transport.close();
    } finally {
      process.kill(child.pid!, 'SIGTERM');
      await exited;
    }
  });

  it('gives kind connect for a path that is not a socket', async () => {
    const path = tempSocketPath('r');
    cleanup.push(path);
    writeFileSync(path, 'not a socket');
    const transport = unixTransport({ path, mode: 'persistent' });
    expect((await rejection<KernelTransportError>(transport.send(request, sendOptions()))).kind).toBe(
      'connect',
    );
    await transport.close();
  });

  it('never rejects isAvailable, even with an aborted signal or after close', async () => {
    const transport = unixTransport({ path: tempSocketPath('a') });
    expect(await transport.isAvailable({ signal: AbortSignal.abort() })).toBe(false);
    await transport.close();
    await transport.close();
    expect(await transport.isAvailable({ signal: new AbortController().signal })).toBe(false);
  });
});

describe('unixTransport: codec failures', () => {
  it('rejects a request the codec cannot encode without opening a connection', async () => {
    const path = tempSocketPath('e');
    const server = createKernelServer({ methods: {}, codec: lineCodec() });
    await server.listen({ path });
    const transport = unixTransport({ path, codec: lineCodec({ formatRequest: () => 'two\nlines' }) });
    try {
      const error = await rejection(transport.send(request, sendOptions()));
      expect((error as { reason?: unknown }).reason).toBe('malformed');
      expect(server.connections).toBe(0);
    } finally {
      await transport.close();
      await server.close();
    }
  });
});
