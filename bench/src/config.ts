/** Shared tier definitions and sizes, so every contender sees the same limits. */

/**
 * `steady`: huge and slow. A bucket drains by 1 per call and never refills to full during the run,
 * so every call is allowed and every call updates a *stored* bucket (the common hot path).
 */
export const STEADY = { capacity: 1e12, refillPerSec: 1 } as const;

/**
 * `refilling`: huge and fast (1e9 tokens/s, about 1e6 per ms). Every call is allowed and the bucket
 * is full again before the next call, which exercises the memory store's "a full bucket is not
 * stored" rule (drop the slot, then re-create it) on every call.
 */
export const REFILLING = { capacity: 1e12, refillPerSec: 1e9 } as const;

export const TIERS = { steady: STEADY, refilling: REFILLING } as const;
export type BenchTier = keyof typeof TIERS;

/** rate-limiter-flexible has no refill: a fixed window of `points` per `duration` seconds. */
export const RLF_POINTS = 1e12;
export const RLF_DURATION_SEC = 1;

export const MANY_KEYS = 100_000;

/** `count` distinct key strings in a fixed pseudo-random order (seeded: the same order every run). */
export function shuffledKeys(count: number, prefix = 'user-'): string[] {
  const keys = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
  let seed = 0x2545f491;
  const random = () => {
    // xorshift32
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  for (let i = keys.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const swap = keys[i]!;
    keys[i] = keys[j]!;
    keys[j] = swap;
  }
  return keys;
}
