import { describe, expect, it } from 'vitest';
import { createBudget } from '../budget';
import { manualClock } from '../manual-clock';
import type { BucketLimits } from '../tiers';
import { memoryStore } from './memory';

const FREE: BucketLimits = { capacity: 1000, refillPerMs: 0.01, maxDebt: 0 };

describe('memoryStore: bounded memory', () => {
  it('does not store full buckets at all', () => {
    const store = memoryStore();
    expect(store.peek('a', FREE, 0)).toBe(1000);
    expect(store.take('a', FREE, 0, 0).ok).toBe(true);
    expect(store.size).toBe(0);
    store.take('a', FREE, 1, 0);
    expect(store.size).toBe(1);
    expect(store.peek('a', FREE, 100)).toBe(1000);
    expect(store.size).toBe(0);
  });

  it('sweeps 100,000 keys back to (near) empty once they have refilled', () => {
    const store = memoryStore();
    for (let i = 0; i < 100_000; i++) store.take(`user-${i}`, FREE, 5, i * 0.001);
    expect(store.size).toBe(100_000);
    // 5 tokens at 10/s refill in 500 ms: after that every bucket is full again.
    const dropped = store.sweep(1_000);
    expect(dropped).toBe(100_000);
    expect(store.size).toBe(0);
    // Still fully usable after the shrink.
    expect(store.take('user-1', FREE, 10, 1_000)).toEqual({ ok: true, tokens: 990 });
  });

  it('also sweeps incrementally, a few slots per operation, with no timers', () => {
    const store = memoryStore({ sweepPerOperation: 4 });
    for (let i = 0; i < 10_000; i++) store.take(`k${i}`, FREE, 1, 0);
    let now = 1_000;
    for (let i = 0; i < 20_000 && store.size > 1; i++) {
      now += 0.001;
      store.take('hot', FREE, 1, now);
    }
    expect(store.size).toBeLessThanOrEqual(1);
  });

  it('evicts the least recently used key at the hard cap and says so', () => {
    const evicted: string[] = [];
    const store = memoryStore({ maxKeys: 3, onEvict: (key) => evicted.push(key) });
    store.take('a', FREE, 1, 0);
    store.take('b', FREE, 1, 0);
    store.take('c', FREE, 1, 0);
    store.take('a', FREE, 1, 0); // a is now the most recent
    store.take('d', FREE, 1, 0);
    expect(evicted).toEqual(['b']);
    expect(store.size).toBe(3);
    expect(store.peek('a', FREE, 0)).toBe(998);
  });

  it('keeps a denied (empty) key away from eviction', () => {
    const evicted: string[] = [];
    const store = memoryStore({ maxKeys: 2, onEvict: (key) => evicted.push(key) });
    store.take('empty', FREE, 1000, 0);
    store.take('other', FREE, 1, 0);
    expect(store.take('empty', FREE, 1, 0).ok).toBe(false);
    store.take('new', FREE, 1, 0);
    expect(evicted).toEqual(['other']);
  });

  it('expires leases of many reservations without timers', () => {
    const clock = manualClock();
    const store = memoryStore();
    const budget = createBudget({ store, clock });
    return (async () => {
      for (let i = 0; i < 1000; i++) await budget.reserve(`r${i % 10}`, 'free', 1, 1_000 + i);
      expect(store.reservations).toBe(1000);
      clock.advance(3_000);
      await budget.consume('other', 'free', 1);
      expect(store.reservations).toBe(0);
      expect(clock.pending).toBe(0);
    })();
  });

  it('rejects a nonsensical cap', () => {
    expect(() => memoryStore({ maxKeys: 0 })).toThrow(
      expect.objectContaining({ code: 'BUDGET_INVALID_ARGUMENT' }),
    );
  });
});
