import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, type HarnessSummary, runHarness } from './test-support/distributed-harness';
import { deleteByPrefix, hasRedis, REDIS_URL, testPrefix } from './test-support/redis';

/**
 * Distributed correctness of the Redis store: 3 Node processes, 256 concurrent callers in all, one
 * free-tier key (capacity 1000, 10 tokens/s), 2.5 s. The processes run the built package
 * (`dist/`, see `test-support/budget-worker.mjs`).
 *
 * The bounds. The script refills lazily from the Redis server clock, so with T_first and T_last the
 * server times of the first and of the last script call on the key (the bucket is absent, hence full,
 * before the first one, and never full again after it), tokens are conserved exactly:
 *
 *     granted = 1000 + 10 * (T_last - T_first) - R          (R: tokens left after the last call)
 *
 * Upper bound: R >= 0 and granted is an integer, so granted <= floor(1000 + 10 * (T_last - T_first)).
 * Every call executes between min(firstBefore) and max(lastAfter) (server `TIME` read by each process
 * before its first call was sent and after its last call returned), so with that outer elapsed time
 * granted <= 1000 + 10 * outer (+1 of slack, as specified).
 *
 * Lower bound: the callers drain the 1000 tokens within a fraction of a second and keep calling until
 * the end, so the bucket is never idle: every call sees less than 1 + (refill since the previous
 * call, i.e. far below 1 token) and leaves less than 1 token, so R < 1 and granted > 1000 + 10 * (T_last
 * - T_first) - 1, i.e. granted >= floor(1000 + 10 * (T_last - T_first)). A lower bound on T_last -
 * T_first that we can measure: each process reads `TIME` right after its first call returned
 * (firstAfter >= T_first) and, at its deadline, reads `TIME` and only then makes every caller stop
 * after ONE more call, so some call executes after lastBefore (T_last >= lastBefore). Hence
 *
 *     granted >= floor(1000 + 10 * inner),  inner = max(lastBefore) - min(firstAfter).
 *
 * (Refilled tokens are only granted if somebody asks for them: without the final call after
 * lastBefore, the tokens refilled between the last call and lastBefore would not be granted and the
 * bound would be off by up to 10/s times that gap.) Float rounding of the fractional tokens is far
 * below 1e-6 tokens; the bound subtracts 1e-6 before the floor. We also check the looser
 * granted >= 0.99 * (1000 + 10 * outer).
 */

const CAPACITY = 1000;
const PER_SEC = 10;
const DURATION_MS = 2_500;
const LOOPS = [86, 85, 85];

const prefix = testPrefix('distributed');

interface Bounds {
  readonly upper: number;
  readonly lower: number;
  readonly loose: number;
}

function boundsOf(summary: HarnessSummary): Bounds {
  return {
    upper: CAPACITY + PER_SEC * summary.outerElapsedSec + 1,
    lower: Math.floor(CAPACITY + PER_SEC * summary.innerElapsedSec - 1e-6),
    loose: 0.99 * (CAPACITY + PER_SEC * summary.outerElapsedSec),
  };
}

function report(label: string, summary: HarnessSummary, bounds: Bounds): void {
  const perProcess = summary.workers
    .map((w) => `pid ${w.pid} skew ${w.skewMs} loops ${w.loops}: ${w.allowed}/${w.denied}/${w.degraded}`)
    .join('; ');
  console.log(
    `[distributed] ${label}: granted ${summary.allowed}, denied ${summary.denied}, degraded ${summary.degraded}, ` +
      `errors ${summary.errors}, calls ${summary.calls}; elapsed outer ${summary.outerElapsedSec.toFixed(4)} s, ` +
      `inner ${summary.innerElapsedSec.toFixed(4)} s; bounds [${bounds.lower}, ${bounds.upper.toFixed(3)}], ` +
      `0.99-bound ${bounds.loose.toFixed(2)} (allowed/denied/degraded: ${perProcess})`,
  );
}

function expectCorrect(summary: HarnessSummary): void {
  const bounds = boundsOf(summary);
  expect(summary.workers).toHaveLength(LOOPS.length);
  expect(summary.workers.map((w) => w.loops).reduce((a, b) => a + b, 0)).toBe(256);
  expect(summary.errors, summary.workers.find((w) => w.lastError)?.lastError).toBe(0);
  expect(summary.degraded).toBe(0);
  expect(summary.hitMax).toBe(0);
  expect(summary.innerElapsedSec).toBeGreaterThanOrEqual(2);
  // The lower bound assumes the bucket was drained: the callers were denied, many times.
  expect(summary.denied).toBeGreaterThan(summary.allowed);
  expect(summary.allowed).toBeLessThanOrEqual(bounds.upper);
  expect(summary.allowed).toBeGreaterThanOrEqual(bounds.lower);
  expect(summary.allowed).toBeGreaterThanOrEqual(bounds.loose);
}

describe.skipIf(!hasRedis)(
  'redis store across processes (3 processes, 256 callers, one free-tier key)',
  () => {
    beforeAll(() => {
      assertBuilt();
    });
    afterAll(() => deleteByPrefix(prefix));

    const run = (mode: 'budget' | 'naive', key: string, skewsMs: readonly number[]) =>
      runHarness({ mode, url: REDIS_URL, prefix, key, loops: LOOPS, skewsMs, durationMs: DURATION_MS });

    it('grants at most capacity + refill over the server-clock elapsed time, and not less', async () => {
      const summary = await run('budget', 'shared-no-skew', [0, 0, 0]);
      report('server clock, no skew', summary, boundsOf(summary));
      expectCorrect(summary);
    }, 20_000);

    it('is not affected by skewed process clocks (+2000 ms, -2000 ms, 0): the server clock decides', async () => {
      const summary = await run('budget', 'shared-skewed', [2_000, -2_000, 0]);
      report('server clock, skews +2000/-2000/0', summary, boundsOf(summary));
      expectCorrect(summary);
    }, 20_000);

    it('negative control: a naive GET/compute/SET limiter on skewed caller clocks over-grants in the same harness', async () => {
      const summary = await run('naive', 'naive-skewed', [2_000, -2_000, 0]);
      const bounds = boundsOf(summary);
      report('NAIVE (non-atomic, caller clocks +2000/-2000/0)', summary, bounds);
      console.log(
        `[distributed] naive over-grant: ${summary.allowed - Math.floor(bounds.upper)} tokens above the bound ` +
          `(${(summary.allowed / bounds.upper).toFixed(2)}x)`,
      );
      expect(summary.errors, summary.workers.find((w) => w.lastError)?.lastError).toBe(0);
      expect(summary.innerElapsedSec).toBeGreaterThanOrEqual(2);
      expect(summary.allowed).toBeGreaterThan(bounds.upper);
    }, 20_000);
  },
);
