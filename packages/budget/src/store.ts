import type { BucketLimits } from './tiers';

/** A value or a promise of it: synchronous stores return values, remote stores promises. */
export type MaybePromise<T> = T | Promise<T>;

/** Result of `take` and `reserve`: whether the amount was granted and the tokens left after. */
export interface TakeResult {
  readonly ok: boolean;
  /** Tokens in the bucket after the operation (fractional; negative while in debt). */
  readonly tokens: number;
}

/** Result of `settle`. `unknown`: never reserved, already settled, or the lease expired (nothing done). */
export interface SettleResult {
  readonly status: 'settled' | 'unknown';
  /** Tokens given back (`reserved - used`, capped at capacity). */
  readonly refunded: number;
  /** Tokens charged beyond the reservation when `used > reserved` (bounded by `maxDebt`). */
  readonly extraCharged: number;
  readonly tokens: number;
}

/** Result of `debit`: what was charged and what could not be (beyond `maxDebt`). */
export interface DebitResult {
  readonly charged: number;
  readonly unpaid: number;
  readonly tokens: number;
}

/**
 * The plugin contract for bucket storage. A store owns the bucket arithmetic for its backend (so that
 * remote stores can run each operation atomically); `@trestle/budget/testing` checks that a store
 * agrees with the reference semantics. `now` is the budget's clock in milliseconds; a store may use
 * its own time base instead (the Redis store uses the Redis server clock) as long as it is one
 * monotonic base for all callers.
 *
 * Absent keys are full buckets. Every operation first refills lazily, releases expired reservations,
 * and clamps tokens to the capacity in `limits` (the caller's current tier).
 */
export interface BudgetStore {
  /** Stable name used in errors and decisions, e.g. `"memory"`, `"redis"`. */
  readonly name: string;
  readonly contractVersion: 1;
  /** `true` when every method returns a plain value (never a promise): enables `consumeSync`. */
  readonly synchronous: boolean;
  /** Debit `cost` if the bucket holds at least `cost`; otherwise change nothing. */
  take(key: string, limits: BucketLimits, cost: number, now: number): MaybePromise<TakeResult>;
  /** Like `take`, and remember the hold under `id` until `now + leaseMs`; on expiry it is refunded. */
  reserve(
    key: string,
    limits: BucketLimits,
    amount: number,
    id: string,
    leaseMs: number,
    now: number,
  ): MaybePromise<TakeResult>;
  /** Refund `reserved - used` (capped at capacity) or charge the excess; idempotent per `id`. */
  settle(
    key: string,
    limits: BucketLimits,
    id: string,
    used: number,
    now: number,
  ): MaybePromise<SettleResult>;
  /** Post-paid charge: may go below zero down to `-limits.maxDebt`; the rest is reported unpaid. */
  debit(key: string, limits: BucketLimits, amount: number, now: number): MaybePromise<DebitResult>;
  /** Move the key to new limits, keeping its fill fraction (`tokens * new / old capacity`). */
  rescale(key: string, limits: BucketLimits, now: number): MaybePromise<number>;
  /** Current tokens, without changing anything. */
  peek(key: string, limits: BucketLimits, now: number): MaybePromise<number>;
  /** Forget the key (it becomes a full bucket). */
  delete(key: string): MaybePromise<void>;
  /** Release connections and timers; idempotent. */
  dispose?(): MaybePromise<void>;
}

/** A store factory, as users write them: `myStore(options) -> BudgetStore`. */
export type BudgetStoreFactory<TOptions = void> = (options: TOptions) => BudgetStore;
