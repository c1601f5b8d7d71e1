import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay, defaultRetryPolicy } from './backoff';
import { seededRandom } from './manual-clock';
import type { RetryPolicy } from './types';

const policy = (overrides: Partial<RetryPolicy> = {}): RetryPolicy => ({
  ...defaultRetryPolicy,
  ...overrides,
});

describe('backoffDelay', () => {
  it('grows by the multiplier up to the max, without jitter', () => {
    const p = policy({ minBackoffMs: 100, maxBackoffMs: 1_000, multiplier: 2, jitter: 0 });
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, p, () => 0.5))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
  });

  it('takes off up to jitter of the delay', () => {
    const p = policy({ minBackoffMs: 1_000, jitter: 0.5 });
    expect(backoffDelay(0, p, () => 0)).toBe(1_000);
    expect(backoffDelay(0, p, () => 0.999_999)).toBe(500);
    expect(backoffDelay(1, p, () => 0.5)).toBe(1_500);
  });

  it('gives an exact sequence for a seeded random source', () => {
    const p = policy({ minBackoffMs: 1_000, maxBackoffMs: 8_000, jitter: 0.5 });
    const random = seededRandom(42);
    const again = seededRandom(42);
    const first = Array.from({ length: 6 }, (_, n) => backoffDelay(n, p, random));
    const second = Array.from({ length: 6 }, (_, n) => backoffDelay(n, p, again));
    expect(first).toEqual(second);
    expect(first).toMatchInlineSnapshot(`
      [
        699,
        1552,
        2295,
        5321,
        7301,
        5894,
      ]
    `);
  });

  it('stays within [base * (1 - jitter), base] (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.double({ min: 1, max: 4, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 40 }),
        fc.double({ min: 0, max: 0.999_999, noNaN: true }),
        (min, extra, multiplier, jitter, attempt, r) => {
          const p = policy({ minBackoffMs: min, maxBackoffMs: min + extra, multiplier, jitter });
          const base = Math.min(p.maxBackoffMs, p.minBackoffMs * multiplier ** attempt);
          const delay = backoffDelay(attempt, p, () => r);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(base * (1 - jitter)));
          expect(delay).toBeLessThanOrEqual(Math.ceil(base));
        },
      ),
    );
  });
});

describe('Backoff', () => {
  it('counts retries and gives up at maxRetries', () => {
    const backoff = new Backoff(policy({ minBackoffMs: 10, jitter: 0, maxRetries: 3 }), () => 0);
    expect(backoff.next(0)).toEqual({ retry: true, delayMs: 10, attempt: 1 });
    expect(backoff.next(10)).toEqual({ retry: true, delayMs: 20, attempt: 2 });
    expect(backoff.next(30)).toEqual({ retry: true, delayMs: 40, attempt: 3 });
    expect(backoff.next(70)).toEqual({ retry: false, reason: 'max-retries' });
  });

  it('gives up when the next attempt would start after maxElapsedMs', () => {
    const backoff = new Backoff(policy({ minBackoffMs: 100, jitter: 0, maxElapsedMs: 500 }), () => 0);
    expect(backoff.next(1_000)).toMatchObject({ retry: true, delayMs: 100 });
    expect(backoff.next(1_100)).toMatchObject({ retry: true, delayMs: 200 });
    expect(backoff.next(1_300)).toEqual({ retry: false, reason: 'max-elapsed' }); // 1300 + 400 > 1500
  });

  it('raises the delay to a minimum (Retry-After) and starts over after reset', () => {
    const backoff = new Backoff(policy({ minBackoffMs: 100, jitter: 0 }), () => 0);
    expect(backoff.next(0, 7_000)).toMatchObject({ delayMs: 7_000, attempt: 1 });
    expect(backoff.next(0, 10)).toMatchObject({ delayMs: 200, attempt: 2 });
    backoff.reset();
    expect(backoff.attempt).toBe(0);
    expect(backoff.next(0)).toMatchObject({ delayMs: 100, attempt: 1 });
  });
});
