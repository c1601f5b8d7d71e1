import type { RetryPolicy } from './types';

/** The defaults of {@link RetryPolicy}. */
export const defaultRetryPolicy: RetryPolicy = Object.freeze({
  minBackoffMs: 1_000,
  maxBackoffMs: 60_000,
  multiplier: 2,
  jitter: 0.5,
  maxRetries: Number.POSITIVE_INFINITY,
  maxElapsedMs: Number.POSITIVE_INFINITY,
  stableAfterMs: 30_000,
});

/**
 * The delay before retry number `attempt` (0-based): `min(max, min * multiplier^attempt)`, minus up to
 * `jitter` of it. Pure: the same `random()` value gives the same delay.
 * Bounds: `[base * (1 - jitter), base]`, where `base = min(max, min * multiplier^attempt)`.
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number): number {
  const base = Math.min(policy.maxBackoffMs, policy.minBackoffMs * policy.multiplier ** Math.max(0, attempt));
  return Math.round(base * (1 - policy.jitter * random()));
}

/** The decision after a failure: retry after `delayMs`, or give up. */
export type BackoffDecision =
  | { readonly retry: true; readonly delayMs: number; readonly attempt: number }
  | { readonly retry: false; readonly reason: 'max-retries' | 'max-elapsed' };

/**
 * Backoff state: the retry count and when failing started. `reset()` is called by the bridge only
 * after a connection stayed up `stableAfterMs`, so a server that accepts and drops at once still backs off.
 */
export class Backoff {
  #attempt = 0;
  #failingSince: number | undefined;
  constructor(
    private readonly policy: RetryPolicy,
    private readonly random: () => number,
  ) {}

  /** Retries scheduled since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** Decides the next retry after a failure at `now`; `minDelayMs` (e.g. `Retry-After`) raises the delay. */
  next(now: number, minDelayMs = 0): BackoffDecision {
    this.#failingSince ??= now;
    if (this.#attempt >= this.policy.maxRetries) return { retry: false, reason: 'max-retries' };
    const delayMs = Math.max(minDelayMs, backoffDelay(this.#attempt, this.policy, this.random));
    if (now + delayMs - this.#failingSince > this.policy.maxElapsedMs)
      return { retry: false, reason: 'max-elapsed' };
    this.#attempt++;
    return { retry: true, delayMs, attempt: this.#attempt };
  }

  reset(): void {
    this.#attempt = 0;
    this.#failingSince = undefined;
  }
}
