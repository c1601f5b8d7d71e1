import type { BucketLimits } from './tiers';

/**
 * The token-bucket arithmetic, shared by the memory store and mirrored operation for operation by
 * the Redis Lua script, so both stores give bit-identical results for the same sequence.
 */

/** Tokens after lazily refilling from `ts` to `now`. Time never goes backwards (`now <= ts` adds 0). */
export function refilled(tokens: number, ts: number, now: number, limits: BucketLimits): number {
  if (now > ts) {
    tokens = tokens + (now - ts) * limits.refillPerMs;
  }
  return tokens > limits.capacity ? limits.capacity : tokens;
}

/**
 * Comparisons of tokens against a cost forgive this much, so that float residue (1000 - 958.2 is
 * 41.79999999999995) does not turn an exact 820 ms retry into 821 ms. The Lua script uses the same.
 */
export const EPSILON = 1e-9;

/** Whether a bucket holding `tokens` can pay `cost`. */
export const covers = (tokens: number, cost: number): boolean => tokens + EPSILON >= cost;

/** Milliseconds until `tokens` reaches `target`, rounded up so that waiting that long is enough. */
export function msUntil(tokens: number, target: number, limits: BucketLimits): number {
  if (tokens + EPSILON >= target) return 0;
  let ms = Math.ceil((target - EPSILON - tokens) / limits.refillPerMs);
  // Guard against float rounding: waiting `ms` must really be enough.
  while (tokens + ms * limits.refillPerMs + EPSILON < target) ms += 1;
  return ms;
}

/** A finite amount >= 0 (costs, refunds, debits). */
export const isAmount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0;
