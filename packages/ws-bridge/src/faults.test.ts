// Fault injection, end to end: the bridge (default `ws` dialer, system clock) connects to a real `ws`
// server *through* the fault-injecting TCP proxy. One table row per fault: where it is injected (on an
// open connection, or before the bridge connects), the expected failure class and error code, whether
// the bridge reconnects or stops (`run()` rejects with `PermanentError`), and the metrics counts.
// Every wait is a promise resolved by a bridge event (bounded by a timeout), never a fixed sleep.
import { afterEach, describe, expect, it } from 'vitest';
import { createBridge } from './bridge';
import { BridgeError, PermanentError } from './errors';
import { CountingMetrics, nextEvent, trackingClock, within } from './test-support/bridge-harness';
import { type FaultProxy, startFaultProxy } from './test-support/fault-proxy';
import { startWsServer, type TestWsServer } from './test-support/ws-server';
import type { Bridge, BridgeEvents, FailureClass, TokenProvider } from './types';

/** Tokens `t1`, `t2`, … that never expire; each call (forced or not) returns a new one. */
function countingTokens(): TokenProvider & { calls: boolean[] } {
  const calls: boolean[] = [];
  return {
    name: 'counting',
    calls,
    async getToken(options) {
      calls.push(options?.forceRefresh === true);
      return { accessToken: `t${calls.length}`, expiresAt: Number.POSITIVE_INFINITY };
    },
  };
}

const MIN_BACKOFF_MS = 20;
const CONNECT_TIMEOUT_MS = 400;
const HEARTBEAT = { intervalMs: 80, timeoutMs: 80 };

interface Context {
  readonly server: TestWsServer;
  readonly proxy: FaultProxy;
  readonly bridge: Bridge;
}

interface Expected {
  readonly class: FailureClass;
  readonly outcome: 'reconnect' | 'stop';
  /** The `BridgeError` code of the failure (disconnect, retry or rejection). */
  readonly code: string;
  readonly metrics: {
    readonly connections: number;
    readonly disconnects: Readonly<Record<FailureClass, number>>;
    readonly tokenRefreshes: number;
    readonly reconnectAttempts: number;
  };
  /** Bearer tokens of the upgrades the server saw, in order (when it matters). */
  readonly tokens?: readonly (string | undefined)[];
}

interface Row {
  readonly name: string;
  /** `open`: injected once the first connection is open; `connect`: before the bridge dials. */
  readonly when: 'open' | 'connect';
  readonly inject: (context: Context) => void;
  /** Called (synchronously) on the first failure event: puts things back so the retry succeeds. */
  readonly heal?: (context: Context) => void;
  /** Extra checks on the first `retry` event (reconnect rows). */
  readonly checkRetry?: (retry: BridgeEvents['retry']) => void;
  readonly expected: Expected;
}

const transientOnOpen = (connections = 2) => ({
  connections,
  disconnects: { transient: 1, permanent: 0 },
  tokenRefreshes: 0,
  reconnectAttempts: 1,
});
const transientAtConnect = {
  connections: 1,
  disconnects: { transient: 0, permanent: 0 },
  tokenRefreshes: 0,
  reconnectAttempts: 1,
};

const closeRow = (code: number, expected: Pick<Expected, 'class' | 'outcome' | 'code'>): Row => ({
  name: `server close ${code}`,
  when: 'open',
  inject: ({ server }) => server.closeAll(code, `bye ${code}`),
  expected: {
    ...expected,
    metrics:
      expected.outcome === 'reconnect'
        ? transientOnOpen()
        : {
            connections: 1,
            disconnects: { transient: 0, permanent: 1 },
            tokenRefreshes: 0,
            reconnectAttempts: 0,
          },
  },
});

const rows: Row[] = [
  {
    name: 'black hole on an open connection (frozen peer)',
    when: 'open',
    inject: ({ proxy }) => proxy.setMode('blackhole'),
    heal: ({ proxy }) => proxy.setMode('pass'),
    expected: {
      class: 'transient',
      outcome: 'reconnect',
      code: 'WS_HEARTBEAT_TIMEOUT',
      metrics: transientOnOpen(),
    },
  },
  {
    name: 'reset of an open connection',
    when: 'open',
    inject: ({ proxy }) => proxy.setMode('reset'),
    heal: ({ proxy }) => proxy.setMode('pass'),
    expected: {
      class: 'transient',
      outcome: 'reconnect',
      code: 'WS_CONNECTION_LOST',
      metrics: transientOnOpen(),
    },
  },
  {
    name: 'reset at connect',
    when: 'connect',
    inject: ({ proxy }) => proxy.setMode('reset'),
    heal: ({ proxy }) => proxy.setMode('pass'),
    expected: {
      class: 'transient',
      outcome: 'reconnect',
      code: 'WS_CONNECTION_LOST',
      metrics: transientAtConnect,
    },
  },
  {
    name: 'refuse at connect',
    when: 'connect',
    inject: ({ proxy }) => proxy.setMode('refuse'),
    heal: ({ proxy }) => proxy.setMode('pass'),
    expected: {
      class: 'transient',
      outcome: 'reconnect',
      code: 'WS_CONNECTION_LOST',
      metrics: transientAtConnect,
    },
  },
  {
    name: 'never-completing handshake',
    when: 'connect',
    inject: ({ proxy }) => proxy.setMode('stall-handshake'),
    heal: ({ proxy }) => proxy.setMode('pass'),
    expected: {
      class: 'transient',
      outcome: 'reconnect',
      code: 'WS_CONNECT_TIMEOUT',
      metrics: transientAtConnect,
    },
  },
  {
    name: '401 at the upgrade, once',
    when: 'connect',
    inject: ({ server }) => server.setUpgradeResponse(401, {}, { times: 1 }),
    checkRetry: (retry) => expect(retry.delayMs).toBe(0), // an immediate retry with a forced refresh
    expected: {
      class: 'transient',
      outcome: 'reconnect',
      code: 'WS_UNAUTHORIZED',
      metrics: { ...transientAtConnect, tokenRefreshes: 1 },
      tokens: ['t1', 't2'],
    },
  },
  {
    name: '401 at the upgrade, persistent',
    when: 'connect',
    inject: ({ server }) => server.setUpgradeResponse(401),
    expected: {
      class: 'permanent',
      outcome: 'stop',
      code: 'WS_UNAUTHORIZED',
      // One forced refresh and one immediate retry, then it stops.
      metrics: {
        connections: 0,
        disconnects: { transient: 0, permanent: 0 },
        tokenRefreshes: 1,
        reconnectAttempts: 1,
      },
      tokens: ['t1', 't2'],
    },
  },
  {
    name: '403 at the upgrade',
    when: 'connect',
    inject: ({ server }) => server.setUpgradeResponse(403),
    expected: {
      class: 'permanent',
      outcome: 'stop',
      code: 'WS_FORBIDDEN',
      metrics: {
        connections: 0,
        disconnects: { transient: 0, permanent: 0 },
        tokenRefreshes: 0,
        reconnectAttempts: 0,
      },
      tokens: ['t1'],
    },
  },
  {
    name: '429 with Retry-After: 1',
    when: 'connect',
    inject: ({ server }) => server.setUpgradeResponse(429, { 'Retry-After': '1' }, { times: 1 }),
    // The next attempt is not scheduled before 1 s (the backoff alone would be 20 ms).
    checkRetry: (retry) => expect(retry.delayMs).toBeGreaterThanOrEqual(1_000),
    expected: {
      class: 'transient',
      outcome: 'reconnect',
      code: 'WS_HANDSHAKE_REFUSED',
      metrics: transientAtConnect,
    },
  },
  {
    name: '503 at the upgrade',
    when: 'connect',
    inject: ({ server }) => server.setUpgradeResponse(503, {}, { times: 1 }),
    checkRetry: (retry) => expect(retry.delayMs).toBeLessThan(1_000),
    expected: {
      class: 'transient',
      outcome: 'reconnect',
      code: 'WS_HANDSHAKE_REFUSED',
      metrics: transientAtConnect,
    },
  },
  closeRow(1000, { class: 'transient', outcome: 'reconnect', code: 'WS_CONNECTION_LOST' }),
  closeRow(1001, { class: 'transient', outcome: 'reconnect', code: 'WS_CONNECTION_LOST' }),
  closeRow(1008, { class: 'permanent', outcome: 'stop', code: 'WS_CLOSE_PERMANENT' }),
  closeRow(1011, { class: 'transient', outcome: 'reconnect', code: 'WS_CONNECTION_LOST' }),
  closeRow(1012, { class: 'transient', outcome: 'reconnect', code: 'WS_CONNECTION_LOST' }),
  // 4xxx outside 4400–4499: transient; 4403 mirrors HTTP 403.
  closeRow(4000, { class: 'transient', outcome: 'reconnect', code: 'WS_CONNECTION_LOST' }),
  closeRow(4403, { class: 'permanent', outcome: 'stop', code: 'WS_FORBIDDEN' }),
];

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const task of cleanup.splice(0).reverse()) await task();
});

describe('fault table: bridge → fault proxy → real ws server', () => {
  it.each(rows.map((row) => [row.name, row] as const))('%s', async (_name, row) => {
    const server = await startWsServer();
    cleanup.push(() => server.close());
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: server.port } });
    cleanup.push(() => proxy.close());
    const metrics = new CountingMetrics();
    const clock = trackingClock();
    const tokens = countingTokens();
    const bridge = createBridge({
      url: proxy.url(),
      tokenProvider: tokens,
      metrics,
      clock,
      retry: { minBackoffMs: MIN_BACKOFF_MS, maxBackoffMs: 100, jitter: 0, stableAfterMs: 60_000 },
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      closeTimeoutMs: 200,
      heartbeat: HEARTBEAT,
    });
    cleanup.push(() => bridge.close());
    const context: Context = { server, proxy, bridge };
    const { expected } = row;

    const disconnects: BridgeEvents['disconnect'][] = [];
    const retries: BridgeEvents['retry'][] = [];
    bridge.on('disconnect', (event) => disconnects.push(event));
    bridge.on('retry', (event) => {
      retries.push(event);
      if (retries.length === 1) row.heal?.(context);
    });
    // On an open connection the failure shows first as a disconnect: heal there, before the retry.
    if (row.when === 'open' && row.heal) {
      const heal = row.heal;
      bridge.on('disconnect', () => heal(context));
    }

    if (row.when === 'connect') row.inject(context);
    const firstConnect = nextEvent(bridge, 'connect');
    const outcome = bridge.run().then(
      () => ({ ok: true as const }),
      (error: unknown) => ({ ok: false as const, error }),
    );

    let failureError: Error;
    if (row.when === 'open') {
      await firstConnect;
      const lost = nextEvent(bridge, 'disconnect');
      row.inject(context);
      const disconnect = await lost;
      expect(disconnect.class).toBe(expected.class);
      failureError = disconnect.error;
    } else if (expected.outcome === 'reconnect') {
      const retry = await nextEvent(bridge, 'retry');
      expect(retry.class).toBe(expected.class);
      failureError = retry.error;
    } else {
      firstConnect.catch(() => {}); // it never comes
      const result = await within(outcome, 3_000, 'run()');
      expect(result.ok).toBe(false);
      failureError = (result as { error: Error }).error;
    }
    expect(BridgeError.isInstance(failureError)).toBe(true);
    expect((failureError as BridgeError).code).toBe(expected.code);

    if (expected.outcome === 'reconnect') {
      expect(PermanentError.isInstance(failureError)).toBe(false);
      if (row.when === 'open') await nextEvent(bridge, 'connect');
      else await firstConnect;
      expect(bridge.state).toBe('open');
      expect(retries).toHaveLength(1);
      expect(retries[0]?.class).toBe('transient');
      row.checkRetry?.(retries[0] as BridgeEvents['retry']);
      // The new connection works end to end (echo).
      const echo = nextEvent(bridge, 'message');
      expect(bridge.send('ping?')).toEqual({ status: 'sent' });
      expect((await echo).data).toBe('ping?');
      expect(metrics.status).toBe(1);
      await bridge.close();
      expect(await within(outcome, 2_000, 'run()')).toEqual({ ok: true });
    } else {
      const result = await within(outcome, 3_000, 'run()');
      expect(result.ok).toBe(false);
      const error = (result as { error: unknown }).error;
      expect(PermanentError.isInstance(error)).toBe(true);
      expect((error as PermanentError).code).toBe(expected.code);
      expect(bridge.state).toBe('failed');
      expect(metrics.status).toBe(0);
      // Stopped for good: nothing scheduled on the clock (no retry, no heartbeat, no refresh), and
      // no new upgrade attempt after the rejection.
      const attempted = server.stats().attempted;
      const dialed = proxy.connections();
      expect(clock.pending).toBe(0);
      expect(bridge.send('after')).toEqual({ status: 'rejected', reason: 'permanent_failure' });
      expect(server.stats().attempted).toBe(attempted);
      expect(proxy.connections()).toBe(dialed);
      expect(retries.every((retry) => retry.class === 'transient')).toBe(true);
    }

    expect(metrics.snapshot()).toEqual(expected.metrics);
    expect(disconnects.filter((d) => d.class === 'permanent')).toHaveLength(
      expected.metrics.disconnects.permanent,
    );
    if (expected.tokens) expect(server.upgrades.map((u) => u.token)).toEqual(expected.tokens);
  });
});

describe('slow handshake (completes late, under the connect timeout)', () => {
  it.each([
    ['upgrade response held back 150 ms', 'stall' as const],
    ['link throttled to 4 kB/s', 'slow' as const],
  ])('%s: still connects, first try', async (_name, kind) => {
    const server = await startWsServer();
    cleanup.push(() => server.close());
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: server.port } });
    cleanup.push(() => proxy.close());
    const metrics = new CountingMetrics();
    const bridge = createBridge({
      url: proxy.url(),
      tokenProvider: countingTokens(),
      metrics,
      retry: { minBackoffMs: MIN_BACKOFF_MS, jitter: 0 },
      connectTimeoutMs: 1_000,
      heartbeat: false,
    });
    cleanup.push(() => bridge.close());
    let release: ReturnType<typeof setTimeout> | undefined;
    if (kind === 'stall') {
      proxy.setMode('stall-handshake');
      release = setTimeout(() => proxy.setMode('pass'), 150);
    } else proxy.setMode({ kind: 'slow', bytesPerSecond: 4_000 });
    cleanup.push(async () => clearTimeout(release));

    const retries: BridgeEvents['retry'][] = [];
    bridge.on('retry', (retry) => retries.push(retry));
    const started = Date.now();
    const connected = nextEvent(bridge, 'connect', 3_000);
    const running = bridge.run();
    await connected;
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(kind === 'stall' ? 140 : 50); // it was late…
    expect(elapsed).toBeLessThan(1_000); // …but under the connect timeout
    expect(retries).toEqual([]);
    expect(metrics.snapshot()).toEqual({
      connections: 1,
      disconnects: { transient: 0, permanent: 0 },
      tokenRefreshes: 0,
      reconnectAttempts: 0,
    });
    await bridge.close();
    await expect(within(running, 2_000, 'run()')).resolves.toBeUndefined();
  });
});
