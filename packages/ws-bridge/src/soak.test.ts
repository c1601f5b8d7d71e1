import { describe, expect, it } from 'vitest';
import { createBridge } from './bridge';
import { startBridgeServer } from './test-support/bridge-server';
import { staticToken } from './token';

const CYCLES = 10_000;
const gc = (globalThis as { gc?: () => void }).gc;

const heapMb = () => {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 1_048_576;
};
const processListeners = () =>
  ['uncaughtException', 'unhandledRejection', 'warning', 'exit'].map((event) => process.listenerCount(event));

describe('soak', () => {
  it(`${CYCLES} forced reconnects: flat heap, flat handles and listeners, no unhandled error`, async () => {
    const server = await startBridgeServer({
      record: false,
      onConnection: (accepted) => accepted.socket.terminate(),
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (error: unknown) => unhandled.push(error);
    process.on('uncaughtException', onUnhandled);
    process.on('unhandledRejection', onUnhandled);
    try {
      const bridge = createBridge({
        url: server.url,
        tokenProvider: staticToken('soak'),
        retry: { minBackoffMs: 0, maxBackoffMs: 0, jitter: 0 },
        heartbeat: { intervalMs: 30_000, timeoutMs: 10_000 },
      });
      const errors: unknown[] = [];
      bridge.on('error', ({ error }) => errors.push(error));
      const samples: { heap: number; handles: number; listeners: number[] }[] = [];
      let connects = 0;
      const done = new Promise<void>((resolve) => {
        bridge.on('connect', () => {
          connects++;
          if (connects === 1_000 || connects === CYCLES / 2 || connects === CYCLES) {
            // Sampled between connections, from a timer so the stack is clear.
            setImmediate(() => {
              samples.push({
                heap: heapMb(),
                handles: process.getActiveResourcesInfo().length,
                listeners: processListeners(),
              });
              if (connects >= CYCLES) resolve();
            });
          }
        });
      });
      const running = bridge.run();
      await done;
      await bridge.close();
      await running;
      expect(bridge.stats().connects).toBeGreaterThanOrEqual(CYCLES);
      expect(bridge.stats().disconnects).toBeGreaterThanOrEqual(CYCLES - 1);
      expect(errors).toEqual([]);
      expect(unhandled).toEqual([]);
      const [first, , last] = samples as [(typeof samples)[0], unknown, (typeof samples)[0]];
      expect(last.heap - first.heap).toBeLessThan(8); // MB over 9,000 cycles: flat, not ~KB per cycle
      expect(Math.abs(last.handles - first.handles)).toBeLessThanOrEqual(3);
      expect(last.listeners).toEqual(first.listeners);
    } finally {
      process.off('uncaughtException', onUnhandled);
      process.off('unhandledRejection', onUnhandled);
      await server.close();
    }
  }, 60_000);
});
