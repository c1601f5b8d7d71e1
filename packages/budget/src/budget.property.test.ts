import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { redisStore } from './redis';
import type { BudgetStore } from './store';
import { memoryStore } from './stores/memory';
import { deleteByPrefix, hasRedis, REDIS_URL, testPrefix } from './test-support/redis';
import { applyOperation, type StoreOperation, sameObservation } from './testing';
import type { BucketLimits } from './tiers';

const TIERS: BucketLimits[] = [
  { capacity: 10, refillPerMs: 0.001, maxDebt: 5 },
  { capacity: 40, refillPerMs: 0.004, maxDebt: 0 },
  { capacity: 3.5, refillPerMs: 0.0005, maxDebt: 1.5 },
];

const amount = fc.oneof(fc.integer({ min: 0, max: 12 }), fc.double({ min: 0, max: 12, noNaN: true }));
const key = fc.constantFrom('a', 'b');
const limits = fc.constantFrom(...TIERS);

/** Operation sequences over two keys, three tiers, reservations (by index) and time. */
const operations = fc.array(
  fc.oneof(
    fc.record({ op: fc.constant('take' as const), key, limits, amount }),
    fc.record({
      op: fc.constant('reserve' as const),
      key,
      limits,
      amount,
      leaseMs: fc.constantFrom(20, 400, 5000),
    }),
    fc.record({ op: fc.constant('settle' as const), key, limits, pick: fc.nat(), amount }),
    fc.record({ op: fc.constant('debit' as const), key, limits, amount }),
    fc.record({ op: fc.constant('rescale' as const), key, limits }),
    fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 4000 }) }),
  ),
  { minLength: 1, maxLength: 60 },
);

type Generated = typeof operations extends fc.Arbitrary<(infer T)[]> ? T : never;

/** Turns generated steps into store operations, giving reservations ids and settles a target. */
function concrete(steps: Generated[]): StoreOperation[] {
  const ids: string[] = [];
  return steps.map((step, index): StoreOperation => {
    if (step.op === 'reserve') {
      const id = `r${index}`;
      ids.push(id);
      return { ...step, id };
    }
    if (step.op === 'settle') {
      const id = ids.length > 0 ? ids[step.pick % ids.length]! : 'never';
      return { op: 'settle', key: step.key, limits: step.limits, id, amount: step.amount };
    }
    return step;
  });
}

describe('bucket math invariants (memory store)', () => {
  it('never exceeds capacity, never goes below -maxDebt, refunds at most what was reserved, denials charge nothing', () => {
    fc.assert(
      fc.property(operations, (steps) => {
        const store = memoryStore();
        const reserved = new Map<string, number>();
        // One tier per key here: debt taken under one tier is bounded by that tier's maxDebt.
        const tierOf: Record<string, BucketLimits> = { a: TIERS[0]!, b: TIERS[2]! };
        let now = 0;
        for (const step of concrete(steps)) {
          const operation = step.op === 'advance' ? step : { ...step, limits: tierOf[step.key]! };
          if (operation.op === 'advance') {
            now += operation.ms;
            continue;
          }
          const before = store.peek(operation.key, operation.limits, now);
          if (operation.op === 'take' || operation.op === 'reserve') {
            const result =
              operation.op === 'take'
                ? store.take(operation.key, operation.limits, operation.amount, now)
                : store.reserve(
                    operation.key,
                    operation.limits,
                    operation.amount,
                    operation.id,
                    operation.leaseMs,
                    now,
                  );
            if (!result.ok) expect(result.tokens).toBe(before);
            if (result.ok && operation.op === 'reserve') reserved.set(operation.id, operation.amount);
          } else if (operation.op === 'settle') {
            const result = store.settle(operation.key, operation.limits, operation.id, operation.amount, now);
            if (result.status === 'settled') {
              expect(result.refunded).toBeLessThanOrEqual(reserved.get(operation.id)! + 1e-9);
              expect(result.refunded).toBeGreaterThanOrEqual(0);
            } else {
              expect(result.refunded).toBe(0);
            }
          } else if (operation.op === 'debit') {
            const result = store.debit(operation.key, operation.limits, operation.amount, now);
            expect(result.charged + result.unpaid).toBeCloseTo(operation.amount, 9);
          } else {
            store.rescale(operation.key, operation.limits, now);
          }
          for (const k of ['a', 'b']) {
            const tokens = store.peek(k, tierOf[k]!, now);
            expect(tokens).toBeLessThanOrEqual(tierOf[k]!.capacity);
            expect(tokens).toBeGreaterThanOrEqual(-tierOf[k]!.maxDebt);
          }
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe.skipIf(!hasRedis)('memory and Redis stores agree (real Redis)', () => {
  const prefix = testPrefix('property');
  let redis: BudgetStore | undefined;
  afterAll(async () => {
    await redis?.dispose?.();
    await deleteByPrefix(prefix);
  });

  it('gives the same result for the same operation sequence', async () => {
    redis = redisStore({ url: REDIS_URL, prefix, timeSource: 'caller', timeoutMs: 2_000 });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(operations, async (steps) => {
        const memory = memoryStore();
        const namespace = `run${++run}:`;
        let now = 1_000;
        for (const operation of concrete(steps)) {
          if (operation.op === 'advance') {
            now += operation.ms;
            continue;
          }
          const expected = await applyOperation(memory, operation, namespace, now);
          const actual = await applyOperation(redis!, operation, namespace, now);
          if (!sameObservation(expected, actual)) {
            expect({ operation, actual }).toEqual({ operation, actual: expected });
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});
