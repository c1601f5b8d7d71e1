import { getEventListeners } from 'node:events';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createBridge } from './bridge';
import { manualClock, seededRandom } from './manual-clock';
import { FakeDialer } from './test-support/fake-dialer';
import type { TokenProvider } from './types';

const settle = async () => {
  for (let i = 0; i < 8; i++) await Promise.resolve();
};

type Action =
  | { kind: 'send' }
  | { kind: 'accept' }
  | { kind: 'reject'; status: number }
  | { kind: 'serverClose'; code: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'nextTimer' }
  | { kind: 'tokenFails' }
  | { kind: 'pong' }
  | { kind: 'message' }
  | { kind: 'close' }
  | { kind: 'abort' };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 5, arbitrary: fc.constant<Action>({ kind: 'send' }) },
  { weight: 5, arbitrary: fc.constant<Action>({ kind: 'accept' }) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(401, 403, 429, 429, 500, 503, 503)
      .map((status): Action => ({ kind: 'reject', status })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(1000, 1001, 1006, 1006, 1008, 1011, 1012, 1012, 4000, 4401, 4403)
      .map((code): Action => ({ kind: 'serverClose', code })),
  },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom(0, 1, 99, 100, 1_000, 10_000, 30_000)
      .map((ms): Action => ({ kind: 'advance', ms })),
  },
  { weight: 2, arbitrary: fc.constant<Action>({ kind: 'nextTimer' }) },
  { weight: 1, arbitrary: fc.constant<Action>({ kind: 'tokenFails' }) },
  { weight: 2, arbitrary: fc.constant<Action>({ kind: 'pong' }) },
  { weight: 1, arbitrary: fc.constant<Action>({ kind: 'message' }) },
);
/** Mostly no stop in the middle, so sequences get far; `close`/`abort` also come at the end. */
const actions = fc
  .tuple(
    fc.array(action, { minLength: 10, maxLength: 120, size: 'max' }),
    fc.array(fc.constantFrom<Action>({ kind: 'close' }, { kind: 'abort' }), { maxLength: 1 }),
    fc.nat(),
  )
  .map(([steps, stop, at]) => {
    const copy = [...steps];
    if (stop[0]) copy.splice(at % (copy.length + 1), 0, stop[0]);
    return copy;
  });

const MIN = 100;
const MAX = 2_000;
const JITTER = 0.5;
const MAX_MESSAGES = 5;

describe('bridge model (fast-check)', () => {
  it('keeps its invariants under random interleavings', async () => {
    await fc.assert(
      fc.asyncProperty(actions, fc.integer(), async (actions, seed) => {
        const clock = manualClock(0);
        const dialer = new FakeDialer();
        let failNext = false;
        let issued = 0;
        const provider: TokenProvider = {
          name: 'model',
          async getToken() {
            if (failNext) {
              failNext = false;
              throw new Error('provider down');
            }
            issued++;
            return { accessToken: `t${issued}`, expiresAt: clock.now() + 120_000 };
          },
        };
        const controller = new AbortController();
        const bridge = createBridge({
          url: 'ws://model/ws',
          tokenProvider: provider,
          dialer,
          clock,
          random: seededRandom(seed),
          retry: { minBackoffMs: MIN, maxBackoffMs: MAX, jitter: JITTER, stableAfterMs: 5_000 },
          refreshBufferMs: 30_000,
          heartbeat: { intervalMs: 10_000, timeoutMs: 3_000 },
          connectTimeoutMs: 5_000,
          sendBuffer: { maxMessages: MAX_MESSAGES },
        });
        const delays: number[] = [];
        bridge.on('retry', ({ delayMs }) => delays.push(delayMs));
        let outcome: 'running' | 'resolved' | 'rejected' = 'running';
        bridge.run(controller.signal).then(
          () => {
            outcome = 'resolved';
          },
          (error: unknown) => {
            expect(error).toMatchObject({ name: 'PermanentError' });
            outcome = 'rejected';
          },
        );
        let counter = 0;
        let closing: Promise<void> | undefined;
        let logAtFailure: number | undefined;
        let socketsAtFailure: number | undefined;
        for (const step of actions) {
          const connecting = dialer.sockets.filter((s) => s.phase === 'connecting');
          const open = dialer.sockets.filter((s) => s.phase === 'open');
          switch (step.kind) {
            case 'send': {
              const result = bridge.send(String(counter++));
              if (bridge.state === 'failed')
                expect(result).toEqual({ status: 'rejected', reason: 'permanent_failure' });
              break;
            }
            case 'accept':
              connecting.at(-1)?.accept();
              break;
            case 'reject':
              connecting.at(-1)?.reject(step.status, step.status === 429 ? { 'retry-after': '3' } : {});
              break;
            case 'serverClose':
              (open.at(-1) ?? connecting.at(-1))?.serverClose(step.code);
              break;
            case 'advance':
              clock.advance(step.ms);
              break;
            case 'nextTimer':
              if (clock.nextAt !== undefined) clock.set(clock.nextAt); // e.g. the token refresh, a ping deadline
              break;
            case 'tokenFails':
              failNext = true;
              break;
            case 'pong':
              for (const socket of open) socket.pong();
              break;
            case 'message':
              open.at(-1)?.receive('from-server');
              break;
            case 'close':
              closing ??= bridge.close();
              break;
            case 'abort':
              controller.abort();
              break;
          }
          await settle();
          // Invariants after every step.
          expect(dialer.sockets.filter((s) => s.phase === 'connecting').length).toBeLessThanOrEqual(1);
          expect(dialer.sockets.filter((s) => s.phase === 'open').length).toBeLessThanOrEqual(1);
          expect(bridge.stats().buffered).toBeLessThanOrEqual(MAX_MESSAGES);
          for (const delay of delays)
            expect(
              delay === 0 || (delay >= Math.floor(MIN * (1 - JITTER)) && delay <= Math.max(MAX, 3_000)),
            ).toBe(true);
          if (bridge.state === 'failed') {
            logAtFailure ??= dialer.log.length;
            socketsAtFailure ??= dialer.sockets.length;
            expect(dialer.log.length).toBe(logAtFailure); // nothing written after a permanent failure
            expect(dialer.sockets.length).toBe(socketsAtFailure); // nothing dialed either
          }
          // Messages go out at most once each, in order.
          const numbers = dialer.log.filter((m) => m !== 'from-server').map(Number);
          for (let i = 1; i < numbers.length; i++)
            expect(numbers[i]).toBeGreaterThan(numbers[i - 1] as number);
        }
        if (process.env.MODEL_DEBUG)
          console.log(
            JSON.stringify({ ...bridge.stats(), sockets: dialer.sockets.length, delays: delays.length }),
          );
        await (closing ?? bridge.close());
        await settle();
        expect(['closed', 'failed']).toContain(bridge.state);
        expect(outcome).not.toBe('running');
        expect(clock.pending).toBe(0);
        expect(dialer.live).toHaveLength(0);
        expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      }),
      { numRuns: 300, seed: 20_260_401 },
    );
  });
});
