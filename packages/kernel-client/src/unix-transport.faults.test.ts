// Fault injection against a real scripted Unix-socket server, in both modes: every fault ends the
// send with the documented kind (or, for non-object JSON, with the body as it came: rejecting
// non-objects is the client's job), and the next send on the same transport works.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lengthPrefixedJson } from './codec-length';
import { KernelTransportError } from './errors';
import {
  type FaultBehaviour,
  type FaultServer,
  faultBytes,
  startFaultServer,
} from './test-support/fault-server';
import { rejection } from './test-support/wait';
import type { KernelTransport, SendOptions } from './types';
import { type UnixTransportMode, unixTransport } from './unix-transport';

const request = { method: 'PING', params: { n: 1 }, timestamp: 0 };
const options = (signal: AbortSignal = new AbortController().signal): SendOptions => ({
  signal,
  maxResponseBytes: 65_536,
});

describe.each(['oneshot', 'persistent'] as const)('unixTransport faults (%s)', (mode: UnixTransportMode) => {
  let server: FaultServer;
  let transport: KernelTransport;
  beforeEach(async () => {
    server = await startFaultServer();
    transport = unixTransport({ path: server.path, mode });
  });
  afterEach(async () => {
    await transport.close();
    await server.stop();
  });

  /** Sends with `behaviour` and returns the failure; then checks the next send works. */
  async function failWith(behaviour: FaultBehaviour, signal?: AbortSignal): Promise<KernelTransportError> {
    server.behaviour = behaviour;
    const error = await rejection<KernelTransportError>(transport.send(request, options(signal)));
    expect(KernelTransportError.isInstance(error)).toBe(true);
    await expectRecovery();
    return error;
  }

  async function expectRecovery(): Promise<void> {
    server.behaviour = { kind: 'serve' };
    const reply = await transport.send({ method: 'AFTER', params: {}, timestamp: 0 }, options());
    expect(reply.body).toEqual({ ok: true, method: 'AFTER', params: {} });
  }

  it('serves a normal call through the fault server', async () => {
    const reply = await transport.send(request, options());
    expect(reply.body).toEqual({ ok: true, method: 'PING', params: { n: 1 } });
  });

  it('gives lost when the daemon dies in the middle of a call', async () => {
    const error = await failWith({ kind: 'close' });
    expect(error.kind).toBe('lost');
    expect(error.wireBytes).toBe(0);
  });

  it('ends a call the daemon never answers when the signal fires (aborted)', async () => {
    server.behaviour = { kind: 'silent' };
    const controller = new AbortController();
    const pending = transport.send(request, options(controller.signal));
    await server.requestsSeen(1);
    controller.abort(new Error('deadline'));
    const error = await rejection<KernelTransportError>(pending);
    expect(error.kind).toBe('aborted');
    expect(error.cause).toEqual(new Error('deadline'));
    await expectRecovery();
  });

  it('ends a trickling reply (one byte per second) when the signal fires', async () => {
    const started = performance.now();
    const error = await failWith(
      { kind: 'trickle', bytes: faultBytes.json('{"ok":true,"slow":"yes"}'), intervalMs: 1_000 },
      AbortSignal.timeout(150),
    );
    expect(error.kind).toBe('aborted');
    expect(performance.now() - started).toBeLessThan(1_500);
  });

  it('refuses a 4 GiB length prefix as too_large without growing the heap', async () => {
    globalThis.gc?.();
    const before = process.memoryUsage().arrayBuffers;
    const error = await failWith({ kind: 'reply', bytes: faultBytes.hugePrefix() });
    expect(error.kind).toBe('too_large');
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * 1024 * 1024);
  });

  it('gives bad_reply for garbage, with the bytes received', async () => {
    const error = await failWith({ kind: 'reply', bytes: faultBytes.garbage() });
    expect(error.kind).toBe('bad_reply');
    expect(error.wireBytes).toBe(faultBytes.garbage().length);
  });

  it('gives bad_reply for a truncated frame (EOF in the middle of it)', async () => {
    const bytes = faultBytes.truncated();
    const error = await failWith({ kind: 'reply', bytes, thenClose: true });
    expect(error.kind).toBe('bad_reply');
    expect(error.message).toContain('truncated');
    expect(error.wireBytes).toBe(bytes.length);
  });

  it('gives bad_reply for a zero-length frame', async () => {
    const error = await failWith({ kind: 'reply', bytes: Uint8Array.of(0, 0, 0, 0) });
    expect(error.kind).toBe('bad_reply');
  });

  it('gives too_large for a reply over maxResponseBytes', async () => {
    server.behaviour = {
      kind: 'reply',
      bytes: faultBytes.json(JSON.stringify({ blob: 'x'.repeat(70_000) })),
    };
    const error = await rejection<KernelTransportError>(transport.send(request, options()));
    expect(error.kind).toBe('too_large');
    await expectRecovery();
  });

  it.each([
    ['an array', '[1,2]', [1, 2]],
    ['a string', '"x"', 'x'],
    ['a number', '42', 42],
    ['null', 'null', null],
  ])('returns a non-object reply (%s) as it came', async (_what, json, body) => {
    if (mode === 'persistent') {
      // A persistent connection matching by id needs an id in the reply, which a non-object cannot carry.
      server.behaviour = { kind: 'reply', bytes: faultBytes.json(json) };
      const error = await rejection<KernelTransportError>(transport.send(request, options()));
      expect(error.kind).toBe('bad_reply');
      await expectRecovery();
      return;
    }
    server.behaviour = { kind: 'reply', bytes: faultBytes.json(json) };
    const reply = await transport.send(request, options());
    expect(reply.body).toEqual(body);
    expect(reply.wireBytes).toBe(4 + json.length);
    await expectRecovery();
  });
});

describe('unixTransport: a oneshot reply with a numeric id of its own', () => {
  it("keeps the id in the body (no id was sent, so it is the daemon's field)", async () => {
    const server = await startFaultServer({
      kind: 'reply',
      bytes: faultBytes.json('{"id":42,"name":"kernel"}'),
    });
    const transport = unixTransport({ path: server.path });
    try {
      expect((await transport.send(request, options())).body).toEqual({ id: 42, name: 'kernel' });
    } finally {
      await transport.close();
      await server.stop();
    }
  });
});

describe('unixTransport faults: non-object replies on a persistent connection matching by order', () => {
  it('returns them as they came', async () => {
    const server = await startFaultServer({ kind: 'reply', bytes: faultBytes.json('[1,2]') });
    const transport = unixTransport({
      path: server.path,
      mode: 'persistent',
      codec: lengthPrefixedJson({ matching: 'order' }),
    });
    try {
      expect((await transport.send(request, options())).body).toEqual([1, 2]);
    } finally {
      await transport.close();
      await server.stop();
    }
  });
});
