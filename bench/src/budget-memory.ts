/**
 * Benchmarks 1 and 2: the memory store on one hot key and over 100,000 keys, against
 * rate-limiter-flexible's RateLimiterMemory and a hand-written Map token bucket (the floor).
 * Every contender cycles through the same precomputed `keys` array with the same loop shape.
 */
import { createBudget, memoryStore } from '@trestle/budget';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { type BenchTier, RLF_DURATION_SEC, RLF_POINTS, TIERS } from './config';
import { MapTokenBucket } from './floor';
import type { Contender } from './harness';

export const MEMORY_IDS = {
  trestleSync: 'trestle-consumeSync',
  trestleAsync: 'trestle-await-consume',
  rlf: 'rlf-await-consume',
  floorSync: 'floor-sync',
  floorAsync: 'floor-await',
} as const;

/** Factories (a fresh store each call), in table order. */
export function memoryContenders(keys: readonly string[], tier: BenchTier): (() => Contender)[] {
  const length = keys.length;
  const spec = TIERS[tier];

  const trestleSync = (): Contender => {
    const store = memoryStore();
    const budget = createBudget({ store, tiers: TIERS });
    let next = 0;
    return {
      id: MEMORY_IDS.trestleSync,
      label: 'trestle consumeSync',
      mode: 'sync',
      run(n) {
        let allowed = 0;
        let j = next;
        for (let i = 0; i < n; i++) {
          if (budget.consumeSync(keys[j]!, tier, 1).allowed) allowed++;
          j = j + 1 === length ? 0 : j + 1;
        }
        next = j;
        return allowed;
      },
      dispose: () => budget.dispose(),
    };
  };

  const trestleAsync = (): Contender => {
    const budget = createBudget({ store: memoryStore(), tiers: TIERS });
    let next = 0;
    return {
      id: MEMORY_IDS.trestleAsync,
      label: 'trestle await consume',
      mode: 'async',
      async run(n) {
        let allowed = 0;
        let j = next;
        for (let i = 0; i < n; i++) {
          if ((await budget.consume(keys[j]!, tier, 1)).allowed) allowed++;
          j = j + 1 === length ? 0 : j + 1;
        }
        next = j;
        return allowed;
      },
      dispose: () => budget.dispose(),
    };
  };

  const rlf = (): Contender => {
    const limiter = new RateLimiterMemory({ points: RLF_POINTS, duration: RLF_DURATION_SEC });
    let next = 0;
    return {
      id: MEMORY_IDS.rlf,
      label: 'rate-limiter-flexible await consume',
      mode: 'async',
      async run(n) {
        let allowed = 0;
        let j = next;
        for (let i = 0; i < n; i++) {
          try {
            await limiter.consume(keys[j]!, 1);
            allowed++;
          } catch {
            // rejected: over the points of the window (never with RLF_POINTS)
          }
          j = j + 1 === length ? 0 : j + 1;
        }
        next = j;
        return allowed;
      },
      // Clears the records and their expiry timers (RateLimiterMemory has no dispose).
      async dispose() {
        for (const key of keys) await limiter.delete(key);
      },
    };
  };

  const floorSync = (): Contender => {
    const floor = new MapTokenBucket(spec.capacity, spec.refillPerSec);
    let next = 0;
    return {
      id: MEMORY_IDS.floorSync,
      label: 'floor Map bucket (sync)',
      mode: 'sync',
      run(n) {
        let allowed = 0;
        let j = next;
        for (let i = 0; i < n; i++) {
          if (floor.take(keys[j]!, 1)) allowed++;
          j = j + 1 === length ? 0 : j + 1;
        }
        next = j;
        return allowed;
      },
    };
  };

  const floorAsync = (): Contender => {
    const floor = new MapTokenBucket(spec.capacity, spec.refillPerSec);
    let next = 0;
    return {
      id: MEMORY_IDS.floorAsync,
      label: 'floor Map bucket (await)',
      mode: 'async',
      async run(n) {
        let allowed = 0;
        let j = next;
        for (let i = 0; i < n; i++) {
          if (await floor.takeAsync(keys[j]!, 1)) allowed++;
          j = j + 1 === length ? 0 : j + 1;
        }
        next = j;
        return allowed;
      },
    };
  };

  return [trestleSync, trestleAsync, rlf, floorSync, floorAsync];
}
