import { seededRandom } from '@trestle/ws-bridge/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { retryDelay } from './backoff';
import { KernelError } from './errors';

describe('retryDelay', () => {
  it('doubles per attempt (the seed slept a constant delay)', () => {
    const top = (attempt: number) => retryDelay(attempt, { baseMs: 100, random: () => 1 });
    expect([0, 1, 2, 3, 4].map(top)).toEqual([100, 200, 400, 800, 1_600]);
  });

  it('applies equal jitter: d/2 + random() * d/2', () => {
    expect(retryDelay(0, { baseMs: 100, random: () => 0 })).toBe(50);
    expect(retryDelay(0, { baseMs: 100, random: () => 0.5 })).toBe(75);
    expect(retryDelay(2, { baseMs: 100, random: () => 0.25 })).toBe(250);
  });

  it('caps at maxMs, 30 × base by default', () => {
    expect(retryDelay(10, { baseMs: 100, random: () => 1 })).toBe(3_000);
    expect(retryDelay(10, { baseMs: 100, maxMs: 500, random: () => 0 })).toBe(250);
  });

  it('gives an exact sequence for a seeded random source', () => {
    const random = seededRandom(7);
    const again = seededRandom(7);
    const delays = [0, 1, 2, 3].map((n) => retryDelay(n, { baseMs: 100, random }));
    const expected = [0, 1, 2, 3].map((n) => {
      const d = Math.min(100 * 2 ** n, 3_000);
      return d / 2 + (again() * d) / 2;
    });
    expect(delays).toEqual(expected);
  });

  it('stays within [d/2, d] (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 10, max: 1_000 }),
        fc.integer({ min: 0, max: 40 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (baseMs, attempt, r) => {
          const d = Math.min(baseMs * 2 ** attempt, 30 * baseMs);
          const delay = retryDelay(attempt, { baseMs, random: () => r });
          expect(delay).toBeGreaterThanOrEqual(d / 2);
          expect(delay).toBeLessThanOrEqual(d);
        },
      ),
    );
  });

  it('refuses a bad attempt or base', () => {
    expect(() => retryDelay(-1, { baseMs: 100 })).toThrow(KernelError);
    expect(() => retryDelay(1.5, { baseMs: 100 })).toThrow(/attempt/);
    expect(() => retryDelay(0, { baseMs: Number.NaN })).toThrow(/baseMs/);
  });
});
