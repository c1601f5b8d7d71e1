import { afterEach, describe, expect, it } from 'vitest';
import { createBridge } from './bridge';
import { BridgeError, PermanentError } from './errors';
import { type ManualClock, manualClock, seededRandom } from './manual-clock';
import { nextEvent, startBridgeServer, until } from './test-support/bridge-server';
import { staticToken } from './token';
import type { Bridge, BridgeOptions, Token, TokenProvider } from './types';

type Server = Awaited<ReturnType<typeof startBridgeServer>>;
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const task of cleanup.splice(0).reverse()) await task();
});

async function serve(options: Parameters<typeof startBridgeServer>[0] = {}): Promise<Server> {
  const server = await startBridgeServer(options);
  cleanup.push(() => server.close());
  return server;
}

function counting(prefix = 't'): TokenProvider & { calls: { forceRefresh: boolean }[] } {
  const calls: { forceRefresh: boolean }[] = [];
  return {
    name: 'counting',
    calls,
    async getToken(options) {
      calls.push({ forceRefresh: options?.forceRefresh === true });
      return { accessToken: `${prefix}${calls.length}`, expiresAt: Number.POSITIVE_INFINITY };
    },
  };
}

function make(
  server: Server,
  overrides: Partial<BridgeOptions> = {},
): { bridge: Bridge; clock: ManualClock } {
  const clock = (overrides.clock as ManualClock | undefined) ?? manualClock(1_000_000);
  const bridge = createBridge({
    url: server.url,
    tokenProvider: staticToken('secret'),
    clock,
    random: seededRandom(1),
    retry: { minBackoffMs: 1_000, jitter: 0 },
    ...overrides,
  });
  cleanup.push(() => bridge.close());
  return { bridge, clock };
}

describe('createBridge against a real ws server', () => {
  it('connects with a bearer token, runs the handler, and closes cleanly', async () => {
    const server = await serve({ onConnection: (accepted) => accepted.socket.send('welcome') });
    const events: string[] = [];
    const received: string[] = [];
    const { bridge, clock } = make(server, {
      handler: {
        onConnect: (send) => {
          events.push('connect');
          expect(send('hello')).toEqual({ status: 'sent' });
        },
        onMessage: (data, isBinary) => received.push(`${String(data)}:${isBinary}`),
        onDisconnect: (error) => events.push(`disconnect:${(error as BridgeError).code}`),
      },
    });
    const running = bridge.run();
    await nextEvent(bridge, 'message');
    expect(bridge.state).toBe('open');
    expect(server.accepted[0]?.authorization).toBe('Bearer secret');
    expect(received).toEqual(['welcome:false']);
    await until(() => server.accepted[0]?.messages.length === 1);
    expect(server.accepted[0]?.messages).toEqual(['hello']);
    await bridge.close();
    await expect(running).resolves.toBeUndefined();
    expect(bridge.state).toBe('closed');
    expect(events).toEqual(['connect', 'disconnect:WS_CLOSED']);
    expect(await server.accepted[0]?.closed).toEqual({ code: 1000, reason: 'closed' });
    expect(clock.pending).toBe(0);
    expect(bridge.send('late')).toEqual({ status: 'rejected', reason: 'closed' });
  });

  it('queues before connecting (bounded), flushes after onConnect in order, then sends directly', async () => {
    const server = await serve();
    const { bridge } = make(server, {
      sendBuffer: { maxMessages: 2 },
      handler: { onConnect: async (send) => void send('first') },
    });
    expect(bridge.send('a')).toEqual({ status: 'queued', queued: 1 });
    expect(bridge.send('b')).toEqual({ status: 'queued', queued: 2 });
    expect(bridge.send('c')).toEqual({ status: 'rejected', reason: 'buffer_full' });
    const drained = nextEvent(bridge, 'drain');
    void bridge.run();
    await drained;
    expect(bridge.send('d')).toEqual({ status: 'sent' });
    await until(() => server.accepted[0]?.messages.length === 4);
    expect(server.accepted[0]?.messages).toEqual(['first', 'a', 'b', 'd']);
    expect(bridge.stats()).toMatchObject({ connects: 1, sent: 4, queued: 2, rejected: 1, buffered: 0 });
  });

  it('resolves run() when the signal aborts', async () => {
    const server = await serve();
    const { bridge, clock } = make(server);
    const controller = new AbortController();
    const running = bridge.run(controller.signal);
    await nextEvent(bridge, 'connect');
    controller.abort();
    await expect(running).resolves.toBeUndefined();
    expect(clock.pending).toBe(0);
    await expect(bridge.run()).resolves.toBeUndefined(); // the same promise
  });

  it('401 at the upgrade: one forced token refresh, then PermanentError WS_UNAUTHORIZED', async () => {
    const server = await serve({ respond: () => ({ status: 401 }) });
    const provider = counting();
    const { bridge, clock } = make(server, { tokenProvider: provider });
    const running = bridge.run();
    const retry = await nextEvent(bridge, 'retry');
    expect(retry).toMatchObject({ delayMs: 0, class: 'transient' });
    clock.advance(0);
    const error = await running.catch((e: unknown) => e);
    expect(PermanentError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'WS_UNAUTHORIZED', failure: { status: 401 } });
    expect(provider.calls).toEqual([{ forceRefresh: false }, { forceRefresh: true }]);
    expect(server.upgrades).toBe(2);
    expect(bridge.state).toBe('failed');
    expect(bridge.send('x')).toEqual({ status: 'rejected', reason: 'permanent_failure' });
    expect(clock.pending).toBe(0);
  });

  it('401 then success with the refreshed token connects', async () => {
    const server = await serve({
      respond: (request) => (request.headers.authorization === 'Bearer t1' ? { status: 401 } : undefined),
    });
    const provider = counting();
    const { bridge, clock } = make(server, { tokenProvider: provider });
    void bridge.run();
    await nextEvent(bridge, 'retry');
    clock.advance(0);
    await nextEvent(bridge, 'connect');
    expect(server.accepted[0]?.authorization).toBe('Bearer t2');
  });

  it('403 at the upgrade is permanent at once', async () => {
    const server = await serve({ respond: () => ({ status: 403 }) });
    const { bridge } = make(server);
    await expect(bridge.run()).rejects.toMatchObject({ code: 'WS_FORBIDDEN', name: 'PermanentError' });
    expect(server.upgrades).toBe(1);
  });

  it('404 at the upgrade is permanent (WS_HANDSHAKE_REFUSED)', async () => {
    const server = await serve({ respond: () => ({ status: 404 }) });
    const { bridge } = make(server);
    await expect(bridge.run()).rejects.toMatchObject({ code: 'WS_HANDSHAKE_REFUSED' });
  });

  it('429 with Retry-After (seconds) waits exactly that long', async () => {
    const server = await serve({
      respond: (_r, index) => (index === 0 ? { status: 429, headers: { 'Retry-After': '7' } } : undefined),
    });
    const { bridge, clock } = make(server);
    void bridge.run();
    expect(await nextEvent(bridge, 'retry')).toMatchObject({ delayMs: 7_000, class: 'transient' });
    expect(bridge.state).toBe('backoff');
    clock.advance(6_999);
    expect(bridge.state).toBe('backoff');
    clock.advance(1);
    expect(bridge.state).toBe('connecting');
    await nextEvent(bridge, 'connect');
    expect(server.upgrades).toBe(2);
  });

  it('503 with an HTTP-date Retry-After; 503 without one uses the backoff', async () => {
    const clock = manualClock(Date.parse('2030-01-01T00:00:00Z'));
    const server = await serve({
      respond: (_r, index) =>
        index === 0
          ? { status: 503, headers: { 'Retry-After': 'Tue, 01 Jan 2030 00:00:30 GMT' } }
          : index === 1
            ? { status: 503 }
            : undefined,
    });
    const { bridge } = make(server, { clock });
    void bridge.run();
    expect(await nextEvent(bridge, 'retry')).toMatchObject({ delayMs: 30_000 });
    const second = nextEvent(bridge, 'retry');
    clock.advance(30_000);
    expect(await second).toMatchObject({ delayMs: 2_000 }); // second retry: 1 s * 2
    clock.advance(2_000);
    await nextEvent(bridge, 'connect');
  });

  it.each([
    [1000, 'transient'],
    [1001, 'transient'],
    [1011, 'transient'],
    [1012, 'transient'],
    [4000, 'transient'],
    [1008, 'permanent'],
    [4403, 'permanent'],
  ] as const)('server close %i is %s', async (code, expected) => {
    const server = await serve({
      onConnection: (accepted, index) => index === 0 && accepted.socket.close(code, 'bye'),
    });
    const { bridge, clock } = make(server);
    const disconnects: string[] = [];
    bridge.on('disconnect', ({ class: failureClass, error }) =>
      disconnects.push(`${failureClass}:${(error as BridgeError).code}`),
    );
    const running = bridge.run();
    if (expected === 'permanent') {
      await expect(running).rejects.toMatchObject({
        name: 'PermanentError',
        failure: { source: 'close', code },
      });
      expect(disconnects).toEqual([`permanent:${code === 4403 ? 'WS_FORBIDDEN' : 'WS_CLOSE_PERMANENT'}`]);
      expect(server.upgrades).toBe(1);
    } else {
      expect(await nextEvent(bridge, 'retry')).toMatchObject({ delayMs: 1_000, class: 'transient' });
      expect(disconnects).toEqual(['transient:WS_CONNECTION_LOST']);
      clock.advance(1_000);
      await nextEvent(bridge, 'connect');
      expect(server.upgrades).toBe(2);
    }
  });

  it('a token provider that fails the first time stops the bridge (seed: initial token failure)', async () => {
    const server = await serve();
    let calls = 0;
    const { bridge } = make(server, {
      tokenProvider: {
        name: 'flaky',
        getToken: async () => {
          calls++;
          if (calls === 1) throw new Error('token endpoint down');
          return { accessToken: 'ok', expiresAt: Number.POSITIVE_INFINITY };
        },
      },
    });
    await expect(bridge.run()).rejects.toMatchObject({ code: 'WS_TOKEN_FAILED', name: 'PermanentError' });
    expect(calls).toBe(1);
    expect(server.upgrades).toBe(0);
  });

  it('a connect that never completes times out at connectTimeoutMs (transient)', async () => {
    const server = await serve({ respond: (_r, index) => (index === 0 ? 'hang' : undefined) });
    const { bridge, clock } = make(server, { connectTimeoutMs: 5_000 });
    void bridge.run();
    await until(() => server.upgrades === 1);
    clock.advance(4_999);
    expect(bridge.state).toBe('connecting');
    const retry = nextEvent(bridge, 'retry');
    clock.advance(1);
    expect(await retry).toMatchObject({ delayMs: 1_000, error: { code: 'WS_CONNECT_TIMEOUT' } });
    clock.advance(1_000);
    await nextEvent(bridge, 'connect');
  });

  it('heartbeat: a peer that stops answering pings is terminated exactly at the deadline', async () => {
    const server = await serve({ autoPong: false });
    const { bridge, clock } = make(server, { heartbeat: { intervalMs: 30_000, timeoutMs: 10_000 } });
    void bridge.run();
    await nextEvent(bridge, 'connect');
    const pinged = new Promise<void>((resolve) => server.accepted[0]?.socket.once('ping', () => resolve()));
    clock.advance(30_000);
    await pinged;
    clock.advance(9_999);
    expect(bridge.state).toBe('open');
    const disconnect = nextEvent(bridge, 'disconnect');
    clock.advance(1);
    expect(bridge.state).toBe('backoff');
    expect(await disconnect).toMatchObject({ class: 'transient', error: { code: 'WS_HEARTBEAT_TIMEOUT' } });
    expect((await server.accepted[0]?.closed)?.code).toBe(1006);
  });

  it('heartbeat: a peer that answers stays up', async () => {
    const server = await serve({
      onConnection: (accepted) => accepted.socket.on('ping', () => accepted.socket.send('after-ping')),
    });
    const { bridge, clock } = make(server, { heartbeat: { intervalMs: 30_000, timeoutMs: 10_000 } });
    void bridge.run();
    await nextEvent(bridge, 'connect');
    const start = clock.now();
    for (let round = 0; round < 3; round++) {
      const answered = nextEvent(bridge, 'message');
      clock.set(start + 30_000 * (round + 1)); // the ping is due
      await answered;
      clock.advance(9_999); // just before its deadline
    }
    clock.set(start + 120_000);
    expect(bridge.state).toBe('open');
    expect(bridge.stats().disconnects).toBe(0);
  });

  it('backoff grows while connections drop at once and resets only after stableAfterMs', async () => {
    let dropping = true;
    const server = await serve({
      onConnection: (accepted) => dropping && accepted.socket.close(1011, 'oops'),
    });
    const { bridge, clock } = make(server, { retry: { minBackoffMs: 100, jitter: 0, stableAfterMs: 5_000 } });
    void bridge.run();
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      const { delayMs } = await nextEvent(bridge, 'retry');
      delays.push(delayMs);
      if (i === 3) dropping = false;
      clock.advance(delayMs);
    }
    await nextEvent(bridge, 'connect');
    expect(delays).toEqual([100, 200, 400, 800]);
    clock.advance(4_999);
    server.accepted.at(-1)?.socket.close(1011, 'before stable');
    expect((await nextEvent(bridge, 'retry')).delayMs).toBe(1_600);
    clock.advance(1_600);
    await nextEvent(bridge, 'connect');
    clock.advance(5_000);
    server.accepted.at(-1)?.socket.close(1011, 'after stable');
    expect((await nextEvent(bridge, 'retry')).delayMs).toBe(100);
  });

  it('maxRetries gives up with PermanentError WS_RETRIES_EXHAUSTED', async () => {
    const server = await serve({ respond: () => ({ status: 503 }) });
    const { bridge, clock } = make(server, { retry: { minBackoffMs: 100, jitter: 0, maxRetries: 2 } });
    const running = bridge.run();
    const outcome = running.catch((e: unknown) => e);
    clock.advance((await nextEvent(bridge, 'retry')).delayMs);
    clock.advance((await nextEvent(bridge, 'retry')).delayMs);
    const error = await outcome;
    expect(error).toMatchObject({ name: 'PermanentError', code: 'WS_RETRIES_EXHAUSTED' });
    expect((error as Error).cause).toMatchObject({ code: 'WS_HANDSHAKE_REFUSED' });
    expect(server.upgrades).toBe(3);
  });

  it('maxElapsedMs gives up when the next attempt would start too late', async () => {
    const server = await serve({ respond: () => ({ status: 503 }) });
    const { bridge, clock } = make(server, {
      retry: { minBackoffMs: 1_000, jitter: 0, maxElapsedMs: 2_500 },
    });
    const outcome = bridge.run().catch((e: unknown) => e);
    clock.advance((await nextEvent(bridge, 'retry')).delayMs); // 1 s
    const error = await outcome; // next would be at 1 s + 2 s > 2.5 s
    expect(error).toMatchObject({ code: 'WS_RETRIES_EXHAUSTED' });
    expect(server.upgrades).toBe(2);
  });

  it('validates options with typed errors that name the value', () => {
    const bad = (options: Partial<BridgeOptions>) => () =>
      createBridge({ url: 'ws://127.0.0.1:1', tokenProvider: staticToken('x'), ...options } as BridgeOptions);
    expect(bad({ url: 'http://x' })).toThrowError(/ws: or wss:/);
    expect(bad({ retry: { jitter: 2 } })).toThrowError(/retry.jitter/);
    expect(bad({ connectTimeoutMs: 0 })).toThrowError(/connectTimeoutMs/);
    expect(bad({ sendBuffer: { overflow: 'drop-newest' as never } })).toThrowError(/overflow/);
    try {
      bad({ retry: { minBackoffMs: -1 } })();
    } catch (error) {
      expect(BridgeError.isInstance(error)).toBe(true);
      expect(error).toMatchObject({ code: 'WS_INVALID_ARGUMENT' });
    }
  });

  it('a fresh token on every connect', async () => {
    const server = await serve({
      onConnection: (accepted, index) => index < 2 && accepted.socket.close(1012, 'restart'),
    });
    const provider = counting();
    const { bridge, clock } = make(server, { tokenProvider: provider });
    void bridge.run();
    for (let i = 0; i < 2; i++) clock.advance((await nextEvent(bridge, 'retry')).delayMs);
    await nextEvent(bridge, 'connect');
    expect(server.accepted.map((a) => a.authorization)).toEqual(['Bearer t1', 'Bearer t2', 'Bearer t3']);
    const token: Token = { accessToken: 'x', expiresAt: 0 };
    expect(token).toBeDefined();
  });
});
