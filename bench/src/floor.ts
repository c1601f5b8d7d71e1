/**
 * Floors: the least code that still is a correct token bucket. They return a boolean and keep no
 * bounds, no LRU, no metadata: a target of "0.5x the floor" means trestle may spend as much again on
 * everything it does on top (decisions with remaining/retry/headers, validation, LRU, bounded memory).
 */

interface Bucket {
  tokens: number;
  ts: number;
}

/** Synchronous Map token bucket: lazy refill on `performance.now()`, one object per key. */
export class MapTokenBucket {
  private readonly buckets = new Map<string, Bucket>();
  private readonly capacity: number;
  private readonly refillPerMs: number;

  constructor(capacity: number, refillPerSec: number) {
    this.capacity = capacity;
    this.refillPerMs = refillPerSec / 1000;
  }

  get size(): number {
    return this.buckets.size;
  }

  take(key: string, cost: number): boolean {
    const now = performance.now();
    const bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (cost > this.capacity) return false;
      this.buckets.set(key, { tokens: this.capacity - cost, ts: now });
      return true;
    }
    let tokens = bucket.tokens + (now - bucket.ts) * this.refillPerMs;
    if (tokens > this.capacity) tokens = this.capacity;
    bucket.ts = now;
    if (tokens < cost) {
      bucket.tokens = tokens;
      return false;
    }
    bucket.tokens = tokens - cost;
    return true;
  }

  /** The same bucket behind a promise, for like-for-like comparison with awaited APIs. */
  async takeAsync(key: string, cost: number): Promise<boolean> {
    return this.take(key, cost);
  }
}

/**
 * Minimal Redis token bucket: HMGET tokens,ts; refill with the caller's `now` (ARGV); HSET; PEXPIRE
 * to the time to full. KEYS[1] bucket; ARGV capacity, refillPerMs, now (ms), cost. Returns {ok, tokens}.
 */
export const FLOOR_SCRIPT = `
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local f = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(f[1])
local ts = tonumber(f[2])
if tokens == nil then
  tokens = cap
  ts = now
end
if now > ts then
  tokens = math.min(cap, tokens + (now - ts) * rate)
  ts = now
end
local ok = 0
if tokens >= cost then
  tokens = tokens - cost
  ok = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((cap - tokens) / rate)))
return { ok, tostring(tokens) }
`;
