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

/** Milliseconds until `tokens` reaches `target`, rounded up so that waiting that long is enough. */
export function msUntil(tokens: number, target: number, limits: BucketLimits): number {
  if (tokens >= target) return 0;
  let ms = Math.ceil((target - tokens) / limits.refillPerMs);
  // Guard against float rounding: waiting `ms` must really be enough.
  while (tokens + ms * limits.refillPerMs < target) ms += 1;
  return ms;
}

/** A finite amount >= 0 (costs, refunds, debits). */
export const isAmount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0;
