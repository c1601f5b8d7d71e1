import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { frameJson, lengthPrefixedJson } from './codec-length';
import { lineCodec } from './codec-line';
import { KernelConfigError, KernelError, KernelErrorCode } from './errors';
import {
  createKernelServer,
  KernelMethodError,
  type KernelMethods,
  type KernelServer,
  type KernelServerErrorContext,
  type KernelServerOptions,
} from './server';
import { rawClient } from './test-support/raw-client';
import { tempSocketPath } from './test-support/socket-path';
import { rejection, until } from './test-support/wait';
import type { KernelCodec, KernelParams, KernelTransport } from './types';
import { type UnixTransportMode, unixTransport } from './unix-transport';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(
  methods: KernelMethods,
  options: Omit<KernelServerOptions, 'methods'> = {},
  mode: UnixTransportMode = 'persistent',
  clientCodec?: KernelCodec,
): Promise<{ server: KernelServer; transport: KernelTransport; path: string }> {
  const path = tempSocketPath('v');
  const server = createKernelServer({ methods, ...options });
  await server.listen({ path });
  const transport = unixTransport({ path, mode, codec: clientCodec ?? options.codec });
  cleanups.push(
    () => server.close(),
    () => transport.close(),
  );
  return { server, transport, path };
}

const send = (transport: KernelTransport, method: string, params: KernelParams = {}, signal?: AbortSignal) =>
  transport.send(
    { method, params, timestamp: 0 },
    { signal: signal ?? new AbortController().signal, maxResponseBytes: 1_048_576 },
  );
const body = async (transport: KernelTransport, method: string, params: KernelParams = {}) =>
  (await send(transport, method, params)).body;

describe('createKernelServer: replies', () => {
  it('sends a plain object as is, and any other value as { result }', async () => {
    const { transport } = await start({
      OBJECT: () => ({ state: 'running', queue: 0 }),
      NUMBER: () => 42,
      STRING: async () => 'pong',
      NOTHING: () => undefined,
      ARRAY: () => [1, 2],
      DATE: () => new Date(0),
      NULL_PROTO: () => Object.assign(Object.create(null) as object, { bare: true }),
    });
    expect(await body(transport, 'OBJECT')).toEqual({ state: 'running', queue: 0 });
    expect(await body(transport, 'NUMBER')).toEqual({ result: 42 });
    expect(await body(transport, 'STRING')).toEqual({ result: 'pong' });
    expect(await body(transport, 'NOTHING')).toEqual({ result: null });
    expect(await body(transport, 'ARRAY')).toEqual({ result: [1, 2] });
    expect(await body(transport, 'DATE')).toEqual({ result: '1970-01-01T00:00:00.000Z' });
    expect(await body(transport, 'NULL_PROTO')).toEqual({ bare: true });
  });

  it('sends a KernelMethodError as an error reply with its code, and anything else as INTERNAL without stack', async () => {
    const errors: [unknown, KernelServerErrorContext][] = [];
    const { transport, server } = await start(
      {
        REFUSED: () => {
          throw new KernelMethodError('BAD_POLICY', 'mode must be a string');
        },
        ASYNC_REFUSED: async () => {
          throw new KernelMethodError('LATER', 'not now');
        },
        CRASH: () => {
          throw new TypeError('cannot read x of undefined');
        },
        REJECT: () => Promise.reject('plain string'),
      },
      { onError: (error, context) => errors.push([error, context]) },
    );
    expect(await body(transport, 'REFUSED')).toEqual({
      error: true,
      code: 'BAD_POLICY',
      message: 'mode must be a string',
    });
    expect(await body(transport, 'ASYNC_REFUSED')).toEqual({
      error: true,
      code: 'LATER',
      message: 'not now',
    });
    const crash = (await body(transport, 'CRASH')) as Record<string, unknown>;
    expect(crash).toEqual({ error: true, code: 'INTERNAL', message: 'cannot read x of undefined' });
    expect(JSON.stringify(crash)).not.toContain('at ');
    expect(await body(transport, 'REJECT')).toEqual({
      error: true,
      code: 'INTERNAL',
      message: 'plain string',
    });
    expect(errors.map(([, context]) => context)).toEqual([
      { phase: 'handler', method: 'CRASH' },
      { phase: 'handler', method: 'REJECT' },
    ]);
    expect(server.served).toBe(4);
  });

  it.each(['NOPE', 'toString', '__proto__', 'constructor', 'hasOwnProperty'])(
    'answers an unknown method (%s) with UNKNOWN_METHOD',
    async (method) => {
      const { transport } = await start({ PING: () => ({}) });
      const reply = (await body(transport, method)) as Record<string, unknown>;
      expect(reply).toMatchObject({ error: true, code: 'UNKNOWN_METHOD' });
      expect(reply.message).toContain(method);
    },
  );

  it('answers INTERNAL when a reply cannot be encoded, and reports it', async () => {
    const errors: KernelServerErrorContext[] = [];
    const { transport } = await start(
      { BIGINT: () => ({ big: 10n }) },
      { onError: (_error, context) => errors.push(context) },
    );
    expect(await body(transport, 'BIGINT')).toMatchObject({ error: true, code: 'INTERNAL' });
    expect(errors).toEqual([{ phase: 'reply', method: 'BIGINT' }]);
  });

  it('keeps serving when onError itself throws', async () => {
    const { transport } = await start(
      {
        CRASH: () => {
          throw new Error('x');
        },
        PING: () => ({ ok: true }),
      },
      {
        onError: () => {
          throw new Error('hook failed');
        },
      },
    );
    expect(await body(transport, 'CRASH')).toMatchObject({ code: 'INTERNAL' });
    expect(await body(transport, 'PING')).toEqual({ ok: true });
  });

  it('times a handler out after handlerTimeoutMs, aborting its signal and ignoring its late result', async () => {
    let signal: AbortSignal | undefined;
    let finish: (() => void) | undefined;
    const { transport, server } = await start(
      {
        SLOW: (_params, context) => {
          signal = context.signal;
          return new Promise((resolve) => {
            finish = () => resolve({ late: true });
          });
        },
        PING: () => ({ ok: true }),
      },
      { handlerTimeoutMs: 50 },
    );
    const reply = (await body(transport, 'SLOW')) as Record<string, unknown>;
    expect(reply).toMatchObject({ error: true, code: 'HANDLER_TIMEOUT' });
    expect(reply.message).toContain('50 ms');
    expect(signal?.aborted).toBe(true);
    finish?.();
    expect(await body(transport, 'PING')).toEqual({ ok: true });
    expect(server.served).toBe(2);
    expect(server.inflight).toBe(0);
  });
});

describe('createKernelServer: concurrency and order', () => {
  it('runs at most maxInflightPerConnection handlers of one connection at once', async () => {
    let running = 0;
    let maxRunning = 0;
    const gates: (() => void)[] = [];
    const { transport, server } = await start(
      {
        WORK: (params) =>
          new Promise((resolve) => {
            running++;
            maxRunning = Math.max(maxRunning, running);
            gates.push(() => {
              running--;
              resolve({ n: params.n });
            });
          }),
      },
      { maxInflightPerConnection: 4 },
    );
    const replies = Promise.all(Array.from({ length: 40 }, (_, n) => send(transport, 'WORK', { n })));
    await until(() => gates.length === 4, '4 handlers to start');
    expect(server.inflight).toBe(4);
    let finished = false;
    void replies.then(() => {
      finished = true;
    });
    // Release one at a time: each release lets exactly one more in.
    while (!finished) {
      await until(() => gates.length > 0 || finished, 'a handler to run');
      gates.shift()?.();
      await nextTurn();
    }
    expect((await replies).map((reply) => reply.body)).toEqual(Array.from({ length: 40 }, (_, n) => ({ n })));
    expect(maxRunning).toBe(4);
    expect(server.served).toBe(40);
  });

  it('answers 20,000 pipelined requests read at once, without deep recursion', async () => {
    const { path, server } = await start({ ECHO: (params) => params });
    const client = await rawClient(path);
    const codec = lengthPrefixedJson();
    const frames = Array.from({ length: 20_000 }, (_, n) =>
      codec.encodeRequest({ method: 'ECHO', params: { n }, timestamp: 0, id: n % 3 === 0 ? undefined : n }),
    );
    client.write(Buffer.concat(frames));
    const replies = await client.framesCount(20_000);
    expect(replies).toHaveLength(20_000);
    expect(new Set(replies.map((frame) => (frame.body as { n: number }).n)).size).toBe(20_000);
    // Requests without id are answered in their order.
    const ordered = replies
      .filter((frame) => frame.id === undefined)
      .map((frame) => (frame.body as { n: number }).n);
    expect(ordered).toEqual([...ordered].sort((a, b) => a - b));
    expect(server.served).toBe(20_000);
    client.destroy();
  });

  it('runs requests without id one at a time and answers them in order', async () => {
    let running = 0;
    let maxRunning = 0;
    const codec = lengthPrefixedJson({ matching: 'order' });
    const { transport } = await start(
      {
        WORK: async (params) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          // Later requests would finish first if they ran concurrently.
          for (let turn = 0; turn < 10 - Number(params.n); turn++) await nextTurn();
          running--;
          return { n: params.n };
        },
      },
      { codec },
    );
    const replies = await Promise.all(Array.from({ length: 10 }, (_, n) => send(transport, 'WORK', { n })));
    expect(replies.map((reply) => reply.body)).toEqual(Array.from({ length: 10 }, (_, n) => ({ n })));
    expect(maxRunning).toBe(1);
  });

  it('serves one-shot connections concurrently with each other', async () => {
    let running = 0;
    let maxRunning = 0;
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { transport } = await start(
      {
        WORK: async () => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          if (running === 5) release();
          await released;
          running--;
          return {};
        },
      },
      {},
      'oneshot',
    );
    await Promise.all(Array.from({ length: 5 }, () => send(transport, 'WORK')));
    expect(maxRunning).toBe(5);
  });

  it('aborts a handler signal when its client goes away', async () => {
    let aborted: () => void = () => {};
    const sawAbort = new Promise<void>((resolve) => {
      aborted = resolve;
    });
    let started: () => void = () => {};
    const sawStart = new Promise<void>((resolve) => {
      started = resolve;
    });
    const { transport } = await start(
      {
        HOLD: (_params, context) =>
          new Promise((resolve) => {
            context.signal.addEventListener('abort', () => {
              aborted();
              resolve({});
            });
            started();
          }),
      },
      {},
      'oneshot',
    );
    const controller = new AbortController();
    const pending = send(transport, 'HOLD', {}, controller.signal);
    await sawStart;
    controller.abort();
    expect(await rejection(pending)).toMatchObject({ kind: 'aborted' });
    await sawAbort;
  });
});

describe('createKernelServer: bad clients', () => {
  it('answers a malformed frame with BAD_REQUEST, closes the connection, and keeps serving', async () => {
    const { server, transport, path } = await start({ PING: () => ({ ok: true }) });
    const client = await rawClient(path);
    client.write(frameJson('{"method":'));
    const [frame] = await client.framesCount(1);
    expect(frame?.body).toMatchObject({ error: true, code: 'BAD_REQUEST' });
    await client.ended;
    expect(server.rejected).toBe(1);
    expect(await body(transport, 'PING')).toEqual({ ok: true });
  });

  it('answers the requests read before a bad frame, then BAD_REQUEST', async () => {
    const { path } = await start({ ECHO: async (params) => params });
    const client = await rawClient(path);
    const codec = lengthPrefixedJson();
    client.write(
      Buffer.concat([
        codec.encodeRequest({ method: 'ECHO', params: { n: 1 }, timestamp: 0, id: 1 }),
        codec.encodeRequest({ method: 'ECHO', params: { n: 2 }, timestamp: 0 }),
      ]),
    );
    await client.framesCount(2);
    client.write(frameJson('[1,2]'));
    const frames = await client.framesCount(3);
    expect(frames.map((frame) => [frame.id, frame.body])).toEqual([
      [1, { n: 1 }],
      [undefined, { n: 2 }],
      [undefined, expect.objectContaining({ error: true, code: 'BAD_REQUEST' })],
    ]);
    await client.ended;
  });

  it('answers an oversized frame with REQUEST_TOO_LARGE as soon as its header arrives', async () => {
    const { server, transport, path } = await start(
      { PING: () => ({ ok: true }) },
      { maxRequestBytes: 1_024 },
    );
    const client = await rawClient(path);
    client.write(Uint8Array.of(0x00, 0x10, 0x00, 0x00)); // 1 MiB announced, never sent
    const [frame] = await client.framesCount(1);
    expect(frame?.body).toMatchObject({ error: true, code: 'REQUEST_TOO_LARGE' });
    await client.ended;
    expect(server.rejected).toBe(1);
    expect(await body(transport, 'PING')).toEqual({ ok: true });
  });

  it('answers a bad line with an ERR line and closes, with the line codec', async () => {
    const codec = lineCodec();
    const { server, transport, path } = await start({ PING: () => ({ text: 'PONG' }) }, { codec });
    const client = await rawClient(path, codec);
    client.write('ping\nset [1,2]\nping\n');
    const frames = await client.framesCount(2);
    expect(frames.map((frame) => frame.body)).toEqual([
      { text: 'PONG' },
      expect.objectContaining({ error: true, code: 'BAD_REQUEST' }),
    ]);
    await client.ended;
    expect(server.rejected).toBe(1);
    expect(await body(transport, 'PING')).toEqual({ text: 'PONG' });
  });

  it('still answers a client that half-closes after writing its request', async () => {
    const { path } = await start({ ECHO: async (params) => params });
    const client = await rawClient(path);
    client.socket.end(lengthPrefixedJson().encodeRequest({ method: 'ECHO', params: { n: 9 }, timestamp: 0 }));
    const [frame] = await client.framesCount(1);
    expect(frame?.body).toEqual({ n: 9 });
    await client.ended;
  });

  it('closes connections over maxConnections, and accepts again once one closed', async () => {
    const { server, path } = await start({ PING: () => ({ ok: true }) }, { maxConnections: 2 });
    const first = await rawClient(path);
    const second = await rawClient(path);
    await until(() => server.connections === 2, 'two connections');
    const third = await rawClient(path);
    await third.ended;
    expect(third.received).toBe(0);
    expect(server.rejected).toBe(1);
    first.destroy();
    await until(() => server.connections === 1, 'the first connection to close');
    const fourth = await rawClient(path);
    fourth.write(lengthPrefixedJson().encodeRequest({ method: 'PING', params: {}, timestamp: 0, id: 3 }));
    expect((await fourth.framesCount(1))[0]).toMatchObject({ id: 3, body: { ok: true } });
    second.destroy();
    fourth.destroy();
  });
});

describe('createKernelServer: listen and close', () => {
  const files: string[] = [];
  afterEach(async () => {
    for (const file of files.splice(0)) await rm(file, { force: true });
  });

  it('reports its address, refuses a second listen, and removes its socket file on close', async () => {
    const path = tempSocketPath('d');
    const server = createKernelServer({ methods: {} });
    expect(server.address).toBeUndefined();
    expect(await server.listen({ path })).toEqual({ kind: 'unix', path });
    expect(server.address).toEqual({ kind: 'unix', path });
    const error = await rejection<KernelError>(server.listen({ path: tempSocketPath('d') }));
    expect(KernelError.isInstance(error)).toBe(true);
    expect(error.code).toBe(KernelErrorCode.InvalidArgument);
    expect(existsSync(path)).toBe(true);
    await server.close();
    await server.close();
    expect(existsSync(path)).toBe(false);
    expect(server.address).toBeUndefined();
  });

  it('replaces a stale socket file nobody answers on', async () => {
    const path = tempSocketPath('t');
    files.push(path);
    execFileSync('python3', [
      '-c',
      'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])',
      path,
    ]);
    expect(existsSync(path)).toBe(true);
    const { transport, server } = await (async () => {
      const server = createKernelServer({ methods: { PING: () => ({ ok: true }) } });
      await server.listen({ path });
      const transport = unixTransport({ path });
      cleanups.push(
        () => server.close(),
        () => transport.close(),
      );
      return { transport, server };
    })();
    expect(await body(transport, 'PING')).toEqual({ ok: true });
    expect(server.served).toBe(1);
  });

  it('refuses to take over a socket a live daemon answers on', async () => {
    const { path, transport } = await start({ PING: () => ({ first: true }) });
    const second = createKernelServer({ methods: { PING: () => ({ second: true }) } });
    const error = await rejection<NodeJS.ErrnoException>(second.listen({ path }));
    expect(error.code).toBe('EADDRINUSE');
    expect(await body(transport, 'PING')).toEqual({ first: true });
    await second.close();
    expect(existsSync(path)).toBe(true);
  });

  it('refuses a path that exists and is not a socket, and leaves the file alone', async () => {
    const path = tempSocketPath('n');
    files.push(path);
    writeFileSync(path, 'precious');
    const server = createKernelServer({ methods: {} });
    const error = await rejection<NodeJS.ErrnoException>(server.listen({ path }));
    expect(error.code).toBe('EADDRINUSE');
    expect(readFileSync(path, 'utf8')).toBe('precious');
    await server.close();
  });

  it('waits for running handlers on close, and their replies still go out', async () => {
    let release: () => void = () => {};
    let started: () => void = () => {};
    const sawStart = new Promise<void>((resolve) => {
      started = resolve;
    });
    const { server, transport } = await start({
      HOLD: () =>
        new Promise((resolve) => {
          release = () => resolve({ finished: true });
          started();
        }),
    });
    const pending = send(transport, 'HOLD');
    await sawStart;
    let closed = false;
    const closing = server.close().then(() => {
      closed = true;
    });
    for (let turn = 0; turn < 20; turn++) await nextTurn();
    expect(closed).toBe(false);
    expect(server.inflight).toBe(1);
    release();
    expect((await pending).body).toEqual({ finished: true });
    await closing;
    expect(server.connections).toBe(0);
  });

  it('aborts handlers still running after closeGraceMs and closes anyway', async () => {
    let signal: AbortSignal | undefined;
    let started: () => void = () => {};
    const sawStart = new Promise<void>((resolve) => {
      started = resolve;
    });
    const { server, transport } = await start(
      {
        STUCK: (_params, context) => {
          signal = context.signal;
          started();
          return new Promise(() => {});
        },
      },
      { closeGraceMs: 100 },
    );
    const pending = send(transport, 'STUCK');
    await sawStart;
    const began = performance.now();
    await server.close();
    expect(performance.now() - began).toBeGreaterThanOrEqual(90);
    expect(signal?.aborted).toBe(true);
    expect(await rejection(pending)).toMatchObject({ kind: 'lost' });
  });

  it('refuses bad options with KernelConfigError', () => {
    const bad: [Partial<KernelServerOptions>, string][] = [
      [{ maxConnections: 0 }, 'maxConnections'],
      [{ maxRequestBytes: 1.5 }, 'maxRequestBytes'],
      [{ handlerTimeoutMs: -1 }, 'handlerTimeoutMs'],
      [{ maxInflightPerConnection: Number.NaN }, 'maxInflightPerConnection'],
      [{ methods: { X: 'nope' as never } }, 'methods.X'],
    ];
    for (const [options, variable] of bad) {
      try {
        createKernelServer({ methods: {}, ...options });
        expect.unreachable();
      } catch (error) {
        expect(KernelConfigError.isInstance(error)).toBe(true);
        expect((error as KernelConfigError).variable).toBe(variable);
      }
    }
    expect(() => createKernelServer(undefined as never)).toThrow(/methods/);
  });
});
