import { afterEach, describe, expect, it } from 'vitest';
import { createBridge } from './bridge';
import { manualClock, seededRandom } from './manual-clock';
import { nextEvent, startBridgeServer, until } from './test-support/bridge-server';
import type { Bridge, TokenProvider } from './types';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const task of cleanup.splice(0).reverse()) await task();
});

const tick = () => new Promise((resolve) => setImmediate(resolve));

function expiring(clock: { now(): number }, lifetimeMs: number): TokenProvider & { issued: number } {
  const provider = {
    name: 'expiring',
    issued: 0,
    async getToken() {
      provider.issued++;
      return { accessToken: `t${provider.issued}`, expiresAt: clock.now() + lifetimeMs };
    },
  };
  return provider;
}

describe('proactive token refresh', () => {
  it('make-before-break: the new connection opens before the old closes; a numbered stream arrives once, in order', async () => {
    const log: string[] = [];
    const server = await startBridgeServer({
      onConnection: (accepted, index) => {
        log.push(`open#${index}`);
        void accepted.closed.then(({ code }) => log.push(`close#${index}:${code}`));
      },
    });
    cleanup.push(() => server.close());
    const clock = manualClock(0);
    const provider = expiring(clock, 600_000);
    const refreshes: string[] = [];
    const bridge: Bridge = createBridge({
      url: server.url,
      tokenProvider: provider,
      clock,
      random: seededRandom(3),
      refreshBufferMs: 60_000,
      refreshJitter: 0,
      heartbeat: false, // the clock jumps over many ping intervals here
      sendBuffer: { maxMessages: 10_000 },
    });
    cleanup.push(() => bridge.close());
    bridge.on('token-refresh', ({ mode, expiresAt }) => refreshes.push(`${mode}@${expiresAt}`));
    void bridge.run();
    await nextEvent(bridge, 'connect');
    const total = 600;
    const results: string[] = [];
    for (let i = 0; i < total; i++) {
      if (i === 100) clock.set(540_000); // the refresh is due: expiresAt (600 s) - buffer (60 s)
      results.push(bridge.send(String(i)).status);
      if (i % 3 === 0) await tick();
    }
    await until(() => server.accepted.reduce((sum, a) => sum + a.messages.length, 0) >= total);
    await until(() => log.includes('close#0:1000'));
    expect(server.accepted).toHaveLength(2);
    expect(log.indexOf('open#1')).toBeLessThan(log.indexOf('close#0:1000'));
    expect(server.accepted.map((a) => a.authorization)).toEqual(['Bearer t1', 'Bearer t2']);
    const first = server.accepted[0]?.messages ?? [];
    const second = server.accepted[1]?.messages ?? [];
    expect([...first, ...second]).toEqual(Array.from({ length: total }, (_, i) => String(i)));
    expect(first.length).toBeGreaterThanOrEqual(100);
    expect(second.length).toBeGreaterThan(0);
    expect(results.filter((status) => status === 'queued').length).toBeGreaterThan(0); // some waited for the switch
    expect(results.every((status) => status === 'sent' || status === 'queued')).toBe(true);
    expect(refreshes).toEqual(['reconnect@1140000']);
    expect(bridge.stats()).toMatchObject({ connects: 2, disconnects: 0, tokenRefreshes: 1 });
    await bridge.close();
    expect(clock.pending).toBe(0);
  });

  it('reauthenticate in-band: no new connection, the next refresh is scheduled from the new token', async () => {
    const server = await startBridgeServer();
    cleanup.push(() => server.close());
    const clock = manualClock(0);
    const provider = expiring(clock, 600_000);
    const bridge = createBridge({
      url: server.url,
      tokenProvider: provider,
      clock,
      random: seededRandom(3),
      refreshBufferMs: 60_000,
      refreshJitter: 0,
      heartbeat: false, // the clock jumps over many ping intervals here
      handler: {
        reauthenticate: async (token, send) => send(`auth:${token.accessToken}`).status === 'sent',
      },
    });
    cleanup.push(() => bridge.close());
    void bridge.run();
    await nextEvent(bridge, 'connect');
    const refreshed = nextEvent(bridge, 'token-refresh');
    clock.set(539_999);
    expect(provider.issued).toBe(1);
    clock.set(540_000);
    expect(await refreshed).toEqual({ mode: 'reauthenticate', expiresAt: 1_140_000 });
    await until(() => server.accepted[0]?.messages.length === 1);
    expect(server.accepted[0]?.messages).toEqual(['auth:t2']);
    expect(clock.nextAt).toBe(1_080_000); // the next refresh, from the new token
    const again = nextEvent(bridge, 'token-refresh');
    clock.set(1_080_000);
    expect(await again).toMatchObject({ mode: 'reauthenticate' });
    expect(server.accepted).toHaveLength(1);
  });

  it('a refused make-before-break keeps the old connection and retries the switch later', async () => {
    const server = await startBridgeServer({
      respond: (_r, index) => (index === 1 ? { status: 503 } : undefined),
    });
    cleanup.push(() => server.close());
    const clock = manualClock(0);
    const provider = expiring(clock, 600_000);
    const bridge = createBridge({
      url: server.url,
      tokenProvider: provider,
      clock,
      random: seededRandom(3),
      refreshBufferMs: 60_000,
      refreshJitter: 0,
      heartbeat: false, // the clock jumps over many ping intervals here
      retry: { minBackoffMs: 1_000, jitter: 0 },
    });
    cleanup.push(() => bridge.close());
    void bridge.run();
    await nextEvent(bridge, 'connect');
    const failed = nextEvent(bridge, 'error');
    clock.set(540_000);
    expect((await failed).error).toMatchObject({ code: 'WS_HANDSHAKE_REFUSED' });
    expect(bridge.state).toBe('open');
    expect(bridge.send('still-here')).toEqual({ status: 'sent' });
    const connected = nextEvent(bridge, 'connect');
    clock.advance(1_000);
    await connected;
    await until(() => server.accepted.length === 2);
    expect(server.accepted[0]?.messages).toEqual(['still-here']);
  });
});
