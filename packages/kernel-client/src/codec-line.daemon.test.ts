// The line codec against line daemons: a real heidi-kernel-like Python daemon (a `python3` child on
// a Unix socket), and createKernelServer speaking lines.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lineCodec } from './codec-line';
import type { KernelTransportError } from './errors';
import { createKernelServer, KernelMethodError } from './server';
import { type HeidiDaemon, startHeidiDaemon } from './test-support/heidi-daemon';
import { rawClient } from './test-support/raw-client';
import { tempSocketPath } from './test-support/socket-path';
import { rejection } from './test-support/wait';
import type { KernelTransport } from './types';
import { unixTransport } from './unix-transport';

const send = (transport: KernelTransport, method: string, params: Record<string, unknown> = {}) =>
  transport.send(
    { method, params, timestamp: Date.now() / 1000 },
    { signal: new AbortController().signal, maxResponseBytes: 65_536 },
  );

describe('lineCodec against a heidi-kernel-like Python daemon', () => {
  let daemon: HeidiDaemon;
  beforeAll(async () => {
    daemon = await startHeidiDaemon();
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('answers ping, version, status and an unknown command, several in flight on one connection', async () => {
    const transport = unixTransport({ path: daemon.path, codec: lineCodec(), mode: 'persistent' });
    try {
      const replies = await Promise.all([
        send(transport, 'PING'),
        send(transport, 'VERSION'),
        send(transport, 'STATUS'),
        send(transport, 'FROBNICATE', { level: 3 }),
        send(transport, 'PING'),
      ]);
      expect(replies.map((reply) => reply.body)).toEqual([
        { text: 'PONG' },
        { text: 'PROTOCOL 1 DAEMON 0.3.1' },
        { state: 'running', queue: 0, pid: daemon.pid },
        { error: true, code: 'UNKNOWN_COMMAND', message: 'UNKNOWN_COMMAND frobnicate' },
        { text: 'PONG' },
      ]);
      expect(replies[0]?.wireBytes).toBe('PONG\n'.length);
      // Many more, still in order.
      const many = await Promise.all(
        Array.from({ length: 50 }, (_, n) => send(transport, n % 2 ? 'PING' : 'VERSION')),
      );
      expect(many.map((reply) => (reply.body as { text: string }).text)).toEqual(
        Array.from({ length: 50 }, (_, n) => (n % 2 ? 'PONG' : 'PROTOCOL 1 DAEMON 0.3.1')),
      );
    } finally {
      await transport.close();
    }
  });

  it('answers in oneshot mode too, and is available', async () => {
    const transport = unixTransport({ path: daemon.path, codec: lineCodec() });
    try {
      expect(await transport.isAvailable({ signal: new AbortController().signal })).toBe(true);
      expect((await send(transport, 'PING')).body).toEqual({ text: 'PONG' });
      expect((await send(transport, 'STATUS')).body).toMatchObject({ state: 'running' });
    } finally {
      await transport.close();
    }
  });

  it('gives connect once the daemon is stopped by its PID', async () => {
    const own = await startHeidiDaemon();
    const transport = unixTransport({ path: own.path, codec: lineCodec(), mode: 'persistent' });
    try {
      expect((await send(transport, 'PING')).body).toEqual({ text: 'PONG' });
      await own.stop();
      expect(await transport.isAvailable({ signal: new AbortController().signal })).toBe(false);
      // The old connection may still be seen closing first (lost); then the socket file is gone.
      const first = await rejection<KernelTransportError>(send(transport, 'PING'));
      expect(['lost', 'connect']).toContain(first.kind);
      expect((await rejection<KernelTransportError>(send(transport, 'PING'))).kind).toBe('connect');
    } finally {
      await transport.close();
      await own.stop();
    }
  });
});

describe('lineCodec with createKernelServer as the line daemon', () => {
  it('speaks the same lines as heidi-kernel, to the transport and to a raw client', async () => {
    const path = tempSocketPath('y');
    const server = createKernelServer({
      codec: lineCodec(),
      methods: {
        PING: () => ({ text: 'PONG' }),
        VERSION: () => ({ text: 'PROTOCOL 1 DAEMON 9.9.9' }),
        STATUS: () => ({ state: 'running', queue: 2 }),
        APPLY_POLICY: (params) => {
          if (params.mode !== 'strict') throw new KernelMethodError('BAD_POLICY', 'mode must be strict');
          return { applied: true };
        },
      },
    });
    await server.listen({ path });
    const transport = unixTransport({ path, codec: lineCodec(), mode: 'persistent' });
    try {
      const replies = await Promise.all([
        send(transport, 'PING'),
        send(transport, 'VERSION'),
        send(transport, 'STATUS'),
        send(transport, 'APPLY_POLICY', { mode: 'strict' }),
        send(transport, 'APPLY_POLICY', { mode: 'lax' }),
        send(transport, 'FROBNICATE'),
      ]);
      expect(replies.map((reply) => reply.body)).toEqual([
        { text: 'PONG' },
        { text: 'PROTOCOL 1 DAEMON 9.9.9' },
        { state: 'running', queue: 2 },
        { applied: true },
        { error: true, code: 'BAD_POLICY', message: 'BAD_POLICY mode must be strict' },
        expect.objectContaining({ error: true, code: 'UNKNOWN_METHOD' }),
      ]);
      const raw = await rawClient(path, lineCodec());
      raw.write('ping\r\nversion\n\nstatus\nfrob\n');
      const frames = await raw.framesCount(4);
      expect(frames.map((frame) => frame.body)).toEqual([
        { text: 'PONG' },
        { text: 'PROTOCOL 1 DAEMON 9.9.9' },
        { state: 'running', queue: 2 },
        expect.objectContaining({ error: true, code: 'UNKNOWN_METHOD' }),
      ]);
      raw.destroy();
    } finally {
      await transport.close();
      await server.close();
    }
  });
});
