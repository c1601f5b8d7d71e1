import { describe, expect, it } from 'vitest';
import { createBridge } from './bridge';
import { manualClock, seededRandom } from './manual-clock';
import { FakeDialer } from './test-support/fake-dialer';
import { staticToken } from './token';
import type { BridgeOptions } from './types';

const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

function make(overrides: Partial<BridgeOptions> = {}) {
  const dialer = new FakeDialer();
  const clock = manualClock(0);
  const bridge = createBridge({
    url: 'ws://fake/ws',
    tokenProvider: staticToken('s'),
    dialer,
    clock,
    random: seededRandom(9),
    retry: { minBackoffMs: 100, jitter: 0 },
    ...overrides,
  });
  return { bridge, dialer, clock };
}

describe('createBridge (fake dialer)', () => {
  it('queues above the high-water mark and emits drain once the socket catches up', async () => {
    const { bridge, dialer } = make({ highWaterMark: 10 });
    dialer.trackBuffered = true;
    const [a, b, c, d, e] = ['aaaaaa', 'bbbbbb', 'cccccc', 'dddddd', 'eeeeee'] as const;
    const drains: number[] = [];
    bridge.on('drain', ({ bufferedAmount }) => drains.push(bufferedAmount));
    void bridge.run();
    await flush();
    dialer.last?.accept();
    expect(bridge.send(a)).toEqual({ status: 'sent' }); // 6
    expect(bridge.send(b)).toEqual({ status: 'sent' }); // 12: crosses the mark, with a written callback
    expect(bridge.send(c)).toEqual({ status: 'queued', queued: 1 });
    expect(bridge.send(d)).toEqual({ status: 'queued', queued: 2 });
    expect(bridge.bufferedAmount).toBe(12 + 12);
    dialer.last?.drain();
    expect(dialer.log).toEqual([a, b, c, d]);
    expect(drains).toEqual([]); // 12 again: still above
    dialer.last?.drain();
    expect(drains).toEqual([0]);
    expect(bridge.send(e)).toEqual({ status: 'sent' });
    await bridge.close();
  });

  it('drop-oldest evicts and reports each dropped message', async () => {
    const { bridge } = make({ sendBuffer: { maxMessages: 2, overflow: 'drop-oldest' } });
    const dropped: string[] = [];
    bridge.on('drop', ({ data }) => dropped.push(String(data)));
    bridge.send('1');
    bridge.send('2');
    expect(bridge.send('3')).toEqual({ status: 'queued', queued: 2 });
    expect(dropped).toEqual(['1']);
    expect(bridge.stats()).toMatchObject({ dropped: 1, buffered: 2 });
    await bridge.close();
  });

  it('browser token transports: query parameter and subprotocol', async () => {
    const query = make({ tokenTransport: { query: 'access_token' }, protocols: ['v1'] });
    void query.bridge.run();
    await flush();
    expect(query.dialer.last?.request).toEqual({
      url: 'ws://fake/ws?access_token=s',
      protocols: ['v1'],
      headers: {},
    });
    await query.bridge.close();
    const sub = make({ tokenTransport: { subprotocol: 'bearer.' }, protocols: ['v1'] });
    void sub.bridge.run();
    await flush();
    expect(sub.dialer.last?.request.protocols).toEqual(['bearer.s', 'v1']);
    await sub.bridge.close();
  });

  it('a classify hook overrides the default', async () => {
    const { bridge, dialer } = make({
      classify: (failure, defaults) => (failure.code === 4000 ? { class: 'permanent' } : defaults),
    });
    const running = bridge.run();
    await flush();
    dialer.last?.accept();
    dialer.last?.serverClose(4000, 'custom');
    await expect(running).rejects.toMatchObject({ code: 'WS_CLOSE_PERMANENT' });
  });

  it('metrics: connections, disconnects by class, status', async () => {
    const calls: string[] = [];
    const { bridge, dialer, clock } = make({
      metrics: {
        incConnections: () => calls.push('conn'),
        incDisconnects: (failureClass) => calls.push(`disc:${failureClass}`),
        incTokenRefreshes: () => calls.push('refresh'),
        setConnectionStatus: (status) => calls.push(`status:${status}`),
        incReconnectAttempts: () => calls.push('reconnect'),
      },
    });
    const running = bridge.run();
    await flush();
    dialer.last?.accept();
    dialer.last?.serverClose(1012);
    clock.advance(100);
    await flush();
    dialer.last?.accept();
    dialer.last?.serverClose(1008);
    await expect(running).rejects.toMatchObject({ code: 'WS_CLOSE_PERMANENT' });
    expect(calls).toEqual([
      'conn',
      'status:1',
      'disc:transient',
      'status:0',
      'reconnect',
      'conn',
      'status:1',
      'disc:permanent',
      'status:0',
    ]);
  });
});
