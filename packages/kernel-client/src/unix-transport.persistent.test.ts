// Persistent mode: many calls on one connection, matched by id (any order) or by order (FIFO).
import { afterEach, describe, expect, it } from 'vitest';
import { lengthPrefixedJson } from './codec-length';
import type { KernelTransportError } from './errors';
import { createKernelServer, type KernelServer } from './server';
import { type FaultConnection, faultBytes, startFaultServer } from './test-support/fault-server';
import { tempSocketPath } from './test-support/socket-path';
import { rejection, until } from './test-support/wait';
import type { KernelRequest, KernelTransport, SendOptions } from './types';
import { unixTransport } from './unix-transport';

const options = (signal: AbortSignal = new AbortController().signal): SendOptions => ({
  signal,
  maxResponseBytes: 65_536,
});
const call = (method: string, params: Record<string, unknown> = {}): KernelRequest => ({
  method,
  params,
  timestamp: 0,
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function faultServer(onRequest: (request: KernelRequest, connection: FaultConnection) => void) {
  const server = await startFaultServer({ kind: 'script', onRequest });
  const transport = unixTransport({ path: server.path, mode: 'persistent' });
  cleanups.push(
    () => server.stop(),
    () => transport.close(),
  );
  return { server, transport };
}

describe('persistent mode, matching by id', () => {
  it('carries 64 calls in flight at once on one connection, each matched to its reply', async () => {
    const path = tempSocketPath('p');
    let running = 0;
    let maxRunning = 0;
    let releaseAll: () => void = () => {};
    const allStarted = new Promise<void>((resolve) => {
      releaseAll = resolve;
    });
    const server: KernelServer = createKernelServer({
      methods: {
        WORK: async (params) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          if (running === 64) releaseAll();
          await allStarted;
          running--;
          return { n: params.n };
        },
      },
    });
    await server.listen({ path });
    const transport = unixTransport({ path, mode: 'persistent' });
    cleanups.push(
      () => server.close(),
      () => transport.close(),
    );
    const replies = await Promise.all(
      Array.from({ length: 64 }, (_, n) => transport.send(call('WORK', { n }), options())),
    );
    expect(replies.map((reply) => reply.body)).toEqual(Array.from({ length: 64 }, (_, n) => ({ n })));
    expect(maxRunning).toBe(64);
    expect(server.served).toBe(64);
  });

  it('matches replies that come in any order', async () => {
    const held: KernelRequest[] = [];
    const { server, transport } = await faultServer((request, connection) => {
      held.push(request);
      if (held.length < 8) return;
      // All 8 arrived: answer in a scrambled order.
      for (const index of [7, 2, 5, 0, 6, 1, 4, 3]) {
        const { id, params } = held[index]!;
        connection.reply({ echoed: params.n }, id);
      }
    });
    const replies = await Promise.all(
      Array.from({ length: 8 }, (_, n) => transport.send(call('ECHO', { n }), options())),
    );
    expect(replies.map((reply) => reply.body)).toEqual(Array.from({ length: 8 }, (_, n) => ({ echoed: n })));
    expect(new Set(held.map((request) => request.id)).size).toBe(8);
    expect(server.accepted).toBe(1);
  });

  it('drops a late reply for an aborted call, and keeps the connection for the others', async () => {
    const byMethod = new Map<string, KernelRequest>();
    let connection: FaultConnection | undefined;
    const { server, transport } = await faultServer((request, conn) => {
      connection = conn;
      byMethod.set(request.method, request);
      if (request.method === 'THIRD') {
        // The reply to the aborted call comes late, then the others.
        conn.reply({ late: true }, byMethod.get('SLOW')!.id);
        conn.reply({ second: true }, byMethod.get('SECOND')!.id);
        conn.reply({ third: true }, request.id);
      }
    });
    const controller = new AbortController();
    const slow = transport.send(call('SLOW'), options(controller.signal));
    const second = transport.send(call('SECOND'), options());
    await server.requestCount(2);
    controller.abort(new Error('deadline'));
    expect((await rejection<KernelTransportError>(slow)).kind).toBe('aborted');
    const third = transport.send(call('THIRD'), options());
    expect((await second).body).toEqual({ second: true });
    expect((await third).body).toEqual({ third: true });
    expect(connection?.id).toBe(1);
    expect(server.accepted).toBe(1);
  });

  it('opens a new connection when the last waiting call is aborted with its reply owed', async () => {
    const { server, transport } = await faultServer((request, connection) => {
      if (request.method !== 'NEVER') connection.reply({ ok: request.method }, request.id);
    });
    const controller = new AbortController();
    const never = transport.send(call('NEVER'), options(controller.signal));
    await server.requestCount(1);
    controller.abort();
    expect((await rejection<KernelTransportError>(never)).kind).toBe('aborted');
    expect((await transport.send(call('NEXT'), options())).body).toEqual({ ok: 'NEXT' });
    expect(server.accepted).toBe(2);
  });

  it('never sends a call aborted before it was written', async () => {
    const { server, transport } = await faultServer((request, connection) =>
      connection.reply({ ok: request.method }, request.id),
    );
    const controller = new AbortController();
    // The first send of a tick is written at once; the ones after it wait for the end of the tick.
    const first = transport.send(call('FIRST'), options());
    const dropped = transport.send(call('DROPPED'), options(controller.signal));
    const kept = transport.send(call('KEPT'), options());
    controller.abort();
    expect((await rejection<KernelTransportError>(dropped)).kind).toBe('aborted');
    expect((await first).body).toEqual({ ok: 'FIRST' });
    expect((await kept).body).toEqual({ ok: 'KEPT' });
    expect(server.requests.map((request) => request.method)).toEqual(['FIRST', 'KEPT']);
  });

  it('fails every call on the connection with bad_reply after a bad frame, then reconnects', async () => {
    let seen = 0;
    const { server, transport } = await faultServer((_request, connection) => {
      if (++seen === 3) connection.write(faultBytes.garbage());
    });
    const kinds = await Promise.all(
      [1, 2, 3].map(
        async (n) =>
          (await rejection<KernelTransportError>(transport.send(call('X', { n }), options()))).kind,
      ),
    );
    expect(kinds).toEqual(['bad_reply', 'bad_reply', 'bad_reply']);
    server.behaviour = { kind: 'serve' };
    expect((await transport.send(call('AGAIN'), options())).body).toMatchObject({
      ok: true,
      method: 'AGAIN',
    });
    expect(server.accepted).toBe(2);
  });

  it('delivers a reply that came before a bad frame, and fails the others', async () => {
    const held: KernelRequest[] = [];
    const { transport } = await faultServer((request, connection) => {
      held.push(request);
      if (held.length < 3) return;
      connection.write(
        Buffer.concat([
          lengthPrefixedJson().encodeReply({ id: held[1]!.id, body: { good: true } }),
          faultBytes.garbage(),
        ]),
      );
    });
    const results = await Promise.allSettled(
      [1, 2, 3].map((n) => transport.send(call('X', { n }), options())),
    );
    expect(
      results.map((result) =>
        result.status === 'fulfilled' ? result.value.body : (result.reason as KernelTransportError).kind,
      ),
    ).toEqual(['bad_reply', { good: true }, 'bad_reply']);
  });

  it('fails the calls with lost when the daemon closes the connection, then reconnects', async () => {
    let seen = 0;
    const { server, transport } = await faultServer((_request, connection) => {
      if (++seen === 2) connection.end();
    });
    const kinds = await Promise.all(
      [1, 2].map(
        async (n) =>
          (await rejection<KernelTransportError>(transport.send(call('X', { n }), options()))).kind,
      ),
    );
    expect(kinds).toEqual(['lost', 'lost']);
    server.behaviour = { kind: 'serve' };
    expect((await transport.send(call('AGAIN'), options())).body).toMatchObject({ ok: true });
  });

  it('refuses a reply over its own maxResponseBytes even when the connection allows more', async () => {
    const { transport } = await faultServer((request, connection) =>
      connection.reply({ blob: 'x'.repeat(Number(request.params.size)) }, request.id),
    );
    const big = transport.send(call('BIG', { size: 2_000 }), { ...options(), maxResponseBytes: 65_536 });
    const small = transport.send(call('SMALL', { size: 2_000 }), { ...options(), maxResponseBytes: 1_000 });
    expect(((await big).body as { blob: string }).blob).toHaveLength(2_000);
    const error = await rejection<KernelTransportError>(small);
    expect(error.kind).toBe('too_large');
    expect(error.wireBytes).toBeGreaterThan(1_000);
  });

  it('does not keep the process alive while idle', async () => {
    const { server, transport } = await faultServer((request, connection) =>
      connection.reply({}, request.id),
    );
    const pipes = () => process.getActiveResourcesInfo().filter((type) => type === 'PipeWrap').length;
    await transport.send(call('PING'), options());
    const idle = pipes();
    expect(server.open).toBe(1);
    await transport.close();
    await until(() => server.open === 0, 'the server side to close');
    // Only the server's side of the connection was counted: the idle client socket is unref'd.
    expect(idle - pipes()).toBe(1);
  });
});

describe('persistent mode, matching by order', () => {
  async function orderedServer(methods: Parameters<typeof createKernelServer>[0]['methods']) {
    const path = tempSocketPath('o');
    const codec = lengthPrefixedJson({ matching: 'order' });
    const server = createKernelServer({ methods, codec });
    await server.listen({ path });
    const transport: KernelTransport = unixTransport({ path, mode: 'persistent', codec });
    cleanups.push(
      () => server.close(),
      () => transport.close(),
    );
    return { server, transport };
  }

  it('matches replies first in, first out', async () => {
    const { transport } = await orderedServer({ ECHO: async (params) => params });
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, n) => transport.send(call('ECHO', { n }), options())),
    );
    expect(replies.map((reply) => reply.body)).toEqual(Array.from({ length: 20 }, (_, n) => ({ n })));
  });

  it('destroys the connection when a call is aborted with its reply outstanding (order is lost)', async () => {
    let holding: (() => void) | undefined;
    const held = new Promise<void>((resolve) => {
      holding = resolve;
    });
    let aborted = false;
    const { server, transport } = await orderedServer({
      HOLD: (_params, context) =>
        new Promise((resolve) => {
          holding?.();
          context.signal.addEventListener('abort', () => {
            aborted = true;
            resolve({});
          });
        }),
      ECHO: (params) => params,
    });
    const controller = new AbortController();
    const hold = transport.send(call('HOLD'), options(controller.signal));
    const behind = transport.send(call('ECHO', { n: 1 }), options());
    await held;
    controller.abort();
    expect((await rejection<KernelTransportError>(hold)).kind).toBe('aborted');
    const error = await rejection<KernelTransportError>(behind);
    expect(error.kind).toBe('lost');
    expect(error.message).toContain('order');
    // The next call goes on a new connection; the daemon saw the old one go (the handler's signal).
    expect((await transport.send(call('ECHO', { n: 2 }), options())).body).toEqual({ n: 2 });
    expect(aborted).toBe(true);
    expect(server.rejected).toBe(0);
  });

  it('keeps the connection when the aborted call was never written', async () => {
    const { server, transport } = await orderedServer({ ECHO: (params) => params });
    const controller = new AbortController();
    const first = transport.send(call('ECHO', { n: 0 }), options());
    const dropped = transport.send(call('ECHO', { n: 1 }), options(controller.signal));
    const kept = transport.send(call('ECHO', { n: 2 }), options());
    controller.abort();
    expect((await rejection<KernelTransportError>(dropped)).kind).toBe('aborted');
    expect((await first).body).toEqual({ n: 0 });
    expect((await kept).body).toEqual({ n: 2 });
    expect(server.served).toBe(2);
  });
});
