import { BudgetError, BudgetErrorCode } from './errors';

/** What a store should do for a tier when the store itself fails. */
export type StoreFailurePolicy = 'failOpen' | 'failClosed' | 'local';

/** A metered tier: a token bucket of `capacity` that refills at `refillPerSec`. */
export interface TierSpec {
  /** Bucket size: the burst a key may spend at once. */
  readonly capacity: number;
  /** Tokens added per second, fractionally and lazily. */
  readonly refillPerSec: number;
  /**
   * How far a post-paid `debit` may take the bucket below zero.
   * @default 0
   */
  readonly maxDebt?: number;
  /**
   * What to decide when the store fails or misses its deadline: allow (`failOpen`), deny
   * (`failClosed`), or use a bucket local to this process (`local`). The decision is `degraded`.
   * @default 'local'
   */
  readonly onStoreError?: StoreFailurePolicy;
}

/** A tier table. `null` means unlimited: never denied, still metered. */
export type TierTable = Readonly<Record<string, TierSpec | null>>;

/** The seed's four tiers. */
export const DEFAULT_TIERS = Object.freeze({
  free: Object.freeze({ capacity: 1000, refillPerSec: 10 }),
  basic: Object.freeze({ capacity: 5000, refillPerSec: 50 }),
  premium: Object.freeze({ capacity: 50000, refillPerSec: 1000 }),
  unlimited: null,
}) satisfies TierTable;

export type DefaultTierName = keyof typeof DEFAULT_TIERS;

/** The numbers a store needs for one bucket. Interned per tier: the same object every call. */
export interface BucketLimits {
  readonly capacity: number;
  /** Tokens per millisecond. */
  readonly refillPerMs: number;
  readonly maxDebt: number;
}

/** A tier resolved against a budget's table. */
export interface ResolvedTier {
  readonly name: string;
  /** `null` for unlimited. */
  readonly limits: BucketLimits | null;
  readonly policy: StoreFailurePolicy;
  /** The window (seconds) advertised in `RateLimit-Policy`: time to refill from empty. */
  readonly windowSec: number;
}

const isPositiveFinite = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && value > 0;

/** Validates one tier and interns its limits. @throws BudgetError `BUDGET_INVALID_TIER` */
export function resolveTier(name: string, spec: TierSpec | null): ResolvedTier {
  if (spec === null) return Object.freeze({ name, limits: null, policy: 'failOpen', windowSec: 0 });
  if (typeof spec !== 'object') {
    throw new BudgetError(BudgetErrorCode.InvalidTier, `tier "${name}" must be an object or null`);
  }
  const { capacity, refillPerSec, maxDebt = 0, onStoreError = 'local' } = spec;
  if (!isPositiveFinite(capacity)) {
    throw new BudgetError(
      BudgetErrorCode.InvalidTier,
      `tier "${name}": capacity must be a finite number > 0, got ${String(capacity)}`,
    );
  }
  if (!isPositiveFinite(refillPerSec)) {
    throw new BudgetError(
      BudgetErrorCode.InvalidTier,
      `tier "${name}": refillPerSec must be a finite number > 0, got ${String(refillPerSec)}`,
    );
  }
  if (typeof maxDebt !== 'number' || !Number.isFinite(maxDebt) || maxDebt < 0) {
    throw new BudgetError(
      BudgetErrorCode.InvalidTier,
      `tier "${name}": maxDebt must be a finite number >= 0, got ${String(maxDebt)}`,
    );
  }
  if (onStoreError !== 'failOpen' && onStoreError !== 'failClosed' && onStoreError !== 'local') {
    throw new BudgetError(
      BudgetErrorCode.InvalidTier,
      `tier "${name}": onStoreError must be failOpen, failClosed or local, got ${String(onStoreError)}`,
    );
  }
  const limits = Object.freeze({ capacity, refillPerMs: refillPerSec / 1000, maxDebt });
  return Object.freeze({ name, limits, policy: onStoreError, windowSec: Math.ceil(capacity / refillPerSec) });
}
