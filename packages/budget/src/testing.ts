import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BudgetStore, MaybePromise } from './store';
import { memoryStore } from './stores/memory';

export { type ManualClock, manualClock } from './manual-clock';

import type { BucketLimits } from './tiers';

/** Options of {@link testBudgetStore}. */
export interface BudgetStoreSuiteOptions {
  /**
   * Operations per random sequence compared against the reference (memory) store.
   * @default 300
   */
  readonly sequenceLength?: number;
  /**
   * Seeds of the random sequences.
   * @default [1, 2, 3]
   */
  readonly seeds?: readonly number[];
}

const FREE: BucketLimits = Object.freeze({ capacity: 1000, refillPerMs: 0.01, maxDebt: 0 });
const SMALL: BucketLimits = Object.freeze({ capacity: 10, refillPerMs: 0.001, maxDebt: 5 });
const BIG: BucketLimits = Object.freeze({ capacity: 40, refillPerMs: 0.004, maxDebt: 5 });

/** A small seeded PRNG (mulberry32), so a failing sequence can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One operation of a random sequence, applied identically to two stores. */
export type StoreOperation =
  | { readonly op: 'take'; readonly key: string; readonly limits: BucketLimits; readonly amount: number }
  | {
      readonly op: 'reserve';
      readonly key: string;
      readonly limits: BucketLimits;
      readonly amount: number;
      readonly id: string;
      readonly leaseMs: number;
    }
  | {
      readonly op: 'settle';
      readonly key: string;
      readonly limits: BucketLimits;
      readonly id: string;
      readonly amount: number;
    }
  | { readonly op: 'debit'; readonly key: string; readonly limits: BucketLimits; readonly amount: number }
  | { readonly op: 'rescale'; readonly key: string; readonly limits: BucketLimits }
  | { readonly op: 'peek'; readonly key: string; readonly limits: BucketLimits }
  | { readonly op: 'advance'; readonly ms: number };

/** A random operation sequence over two keys and two tiers, with time advancing. */
export function randomSequence(seed: number, length: number): StoreOperation[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const ids: string[] = [];
  const operations: StoreOperation[] = [];
  for (let i = 0; i < length; i++) {
    const key = pick(['a', 'b']);
    const limits = random() < 0.85 ? SMALL : BIG;
    const amount = Math.floor(random() * 8) + pick([0, 0.25, 0.5]);
    const roll = random();
    if (roll < 0.3) operations.push({ op: 'take', key, limits, amount });
    else if (roll < 0.45) {
      const id = `r${seed}-${i}`;
      ids.push(id);
      operations.push({ op: 'reserve', key, limits, amount, id, leaseMs: pick([50, 500, 5000]) });
    } else if (roll < 0.6 && ids.length > 0) {
      operations.push({ op: 'settle', key, limits, id: pick(ids), amount: Math.floor(random() * 10) });
    } else if (roll < 0.7) operations.push({ op: 'debit', key, limits, amount });
    else if (roll < 0.75) operations.push({ op: 'rescale', key, limits });
    else if (roll < 0.8) operations.push({ op: 'peek', key, limits });
    else operations.push({ op: 'advance', ms: pick([1, 10, 100, 700, 3000]) });
  }
  return operations;
}

/** Applies one operation; returns the numbers a caller can observe. */
export async function applyOperation(
  store: BudgetStore,
  operation: StoreOperation,
  prefix: string,
  now: number,
): Promise<readonly (number | string | boolean)[]> {
  switch (operation.op) {
    case 'take': {
      const r = await store.take(prefix + operation.key, operation.limits, operation.amount, now);
      return [r.ok, r.tokens];
    }
    case 'reserve': {
      const { key, limits, amount, id, leaseMs } = operation;
      const r = await store.reserve(prefix + key, limits, amount, prefix + id, leaseMs, now);
      return [r.ok, r.tokens];
    }
    case 'settle': {
      const { key, limits, id, amount } = operation;
      const r = await store.settle(prefix + key, limits, prefix + id, amount, now);
      return [r.status, r.tokens, r.refunded, r.extraCharged];
    }
    case 'debit': {
      const r = await store.debit(prefix + operation.key, operation.limits, operation.amount, now);
      return [r.tokens, r.charged, r.unpaid];
    }
    case 'rescale':
      return [await store.rescale(prefix + operation.key, operation.limits, now)];
    case 'peek':
      return [await store.peek(prefix + operation.key, operation.limits, now)];
    case 'advance':
      return [];
  }
}

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

/** Compares observations with a relative tolerance of 1e-9 for numbers. */
export function sameObservation(
  a: readonly (number | string | boolean)[],
  b: readonly (number | string | boolean)[],
): boolean {
  return (
    a.length === b.length &&
    a.every((value, i) => {
      const other = b[i];
      return typeof value === 'number' && typeof other === 'number' ? close(value, other) : value === other;
    })
  );
}

/**
 * The conformance suite every `BudgetStore` must pass (the built-in memory and Redis stores do).
 * The factory must return a store that uses the `now` it is given (for Redis:
 * `redisStore({ ..., timeSource: 'caller' })`). Keys are namespaced per run.
 *
 * @example
 * ```ts
 * import { testBudgetStore } from '@trestle/budget/testing';
 * import { myStore } from './my-store';
 * testBudgetStore('my-store', () => myStore());
 * ```
 */
export function testBudgetStore(
  name: string,
  factory: () => MaybePromise<BudgetStore>,
  options: BudgetStoreSuiteOptions = {},
): void {
  const { sequenceLength = 300, seeds = [1, 2, 3] } = options;
  describe(`BudgetStore conformance: ${name}`, () => {
    let store: BudgetStore;
    let run = 0;
    const prefix = `conformance:${Date.now().toString(36)}:${Math.random().toString(36).slice(2)}:`;
    const key = () => `${prefix}${++run}`;

    beforeAll(async () => {
      store = await factory();
    });
    afterAll(async () => {
      await store?.dispose?.();
    });

    it('has a name and contract version 1', () => {
      expect(typeof store.name).toBe('string');
      expect(store.name.length).toBeGreaterThan(0);
      expect(store.contractVersion).toBe(1);
    });

    it('treats an absent key as a full bucket', async () => {
      expect(await store.peek(key(), FREE, 0)).toBe(1000);
    });

    it('grants while tokens last and denies without charging', async () => {
      const k = key();
      expect(await store.take(k, SMALL, 6, 0)).toEqual({ ok: true, tokens: 4 });
      expect(await store.take(k, SMALL, 5, 0)).toEqual({ ok: false, tokens: 4 });
      expect(await store.take(k, SMALL, 4, 0)).toEqual({ ok: true, tokens: 0 });
      expect(await store.peek(k, SMALL, 0)).toBe(0);
    });

    it('refills fractionally and lazily, never above capacity', async () => {
      const k = key();
      await store.take(k, FREE, 1000, 1000);
      expect(await store.peek(k, FREE, 1150)).toBeCloseTo(1.5, 9);
      expect((await store.take(k, FREE, 1.5, 1150)).ok).toBe(true);
      expect(await store.peek(k, FREE, 1150)).toBeCloseTo(0, 9);
      expect(await store.peek(k, FREE, 10_000_000)).toBe(1000);
    });

    it('never lets time run backwards', async () => {
      const k = key();
      await store.take(k, FREE, 500, 5000);
      expect(await store.peek(k, FREE, 4000)).toBe(500);
      expect((await store.take(k, FREE, 10, 4000)).tokens).toBe(490);
      expect(await store.peek(k, FREE, 5100)).toBeCloseTo(491, 9);
    });

    it('settles reservations: refund max - used, idempotently, capped at capacity', async () => {
      const k = key();
      expect(await store.reserve(k, SMALL, 8, `${k}:r1`, 10_000, 0)).toEqual({ ok: true, tokens: 2 });
      const first = await store.settle(k, SMALL, `${k}:r1`, 3, 0);
      expect(first).toMatchObject({ status: 'settled', refunded: 5, extraCharged: 0, tokens: 7 });
      const second = await store.settle(k, SMALL, `${k}:r1`, 0, 0);
      expect(second).toMatchObject({ status: 'unknown', refunded: 0, tokens: 7 });
      await store.reserve(k, SMALL, 5, `${k}:r2`, 10_000_000, 0);
      const capped = await store.settle(k, SMALL, `${k}:r2`, 0, 2_000_000);
      expect(capped.status).toBe('settled');
      expect(capped.tokens).toBeLessThanOrEqual(10);
    });

    it('charges use beyond the reservation as a debit bounded by maxDebt', async () => {
      const k = key();
      await store.reserve(k, SMALL, 10, `${k}:r`, 10_000, 0);
      const result = await store.settle(k, SMALL, `${k}:r`, 30, 0);
      expect(result).toMatchObject({ status: 'settled', refunded: 0, extraCharged: 5, tokens: -5 });
    });

    it('refunds an unsettled reservation when its lease ends', async () => {
      const k = key();
      await store.reserve(k, FREE, 600, `${k}:r`, 1000, 0);
      expect(await store.peek(k, FREE, 999)).toBeCloseTo(400 + 9.99, 9);
      expect(await store.peek(k, FREE, 1000)).toBeCloseTo(1000, 9);
      expect((await store.settle(k, FREE, `${k}:r`, 0, 1001)).status).toBe('unknown');
    });

    it('debits post-paid down to -maxDebt and reports the rest unpaid', async () => {
      const k = key();
      expect(await store.debit(k, SMALL, 12, 0)).toEqual({ charged: 12, unpaid: 0, tokens: -2 });
      expect(await store.debit(k, SMALL, 10, 0)).toEqual({ charged: 3, unpaid: 7, tokens: -5 });
      expect((await store.take(k, SMALL, 1, 0)).ok).toBe(false);
      expect(await store.peek(k, SMALL, 6000)).toBeCloseTo(1, 9);
    });

    it('rescales to a new tier keeping the fill fraction', async () => {
      const k = key();
      await store.take(k, SMALL, 5, 0);
      expect(await store.rescale(k, BIG, 0)).toBe(20);
      expect(await store.peek(k, BIG, 0)).toBe(20);
      expect(await store.rescale(key(), BIG, 0)).toBe(40);
    });

    it('clamps to a smaller capacity', async () => {
      const k = key();
      await store.take(k, BIG, 5, 0);
      expect(await store.peek(k, SMALL, 0)).toBe(10);
    });

    it('forgets a deleted key (full again) and keeps keys apart', async () => {
      const a = key();
      const b = key();
      await store.take(a, SMALL, 10, 0);
      expect(await store.peek(b, SMALL, 0)).toBe(10);
      await store.delete(a);
      expect(await store.peek(a, SMALL, 0)).toBe(10);
    });

    for (const seed of seeds) {
      it(`agrees with the reference store on random sequence ${seed}`, async () => {
        const reference = memoryStore();
        const sequencePrefix = key();
        let now = 1_000;
        for (const [index, operation] of randomSequence(seed, sequenceLength).entries()) {
          if (operation.op === 'advance') {
            now += operation.ms;
            continue;
          }
          const expected = await applyOperation(reference, operation, sequencePrefix, now);
          const actual = await applyOperation(store, operation, sequencePrefix, now);
          if (!sameObservation(expected, actual)) {
            expect({ index, operation, actual }).toEqual({ index, operation, actual: expected });
          }
        }
      });
    }
  });
}
