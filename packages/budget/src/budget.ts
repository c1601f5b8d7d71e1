import { isAmount, msUntil } from './bucket-math';
import { type Clock, systemClock } from './clock';
import { type Decision, DecisionRecord, DegradedRecord } from './decision';
import { BudgetError, BudgetErrorCode } from './errors';
import { formatReservationId, parseReservationId } from './reservation-id';
import type { BudgetStore, MaybePromise } from './store';
import { type InPlaceTaker, type MemoryStore, memoryStore, takeInPlace, takenTokens } from './stores/memory';
import {
  type BucketLimits,
  DEFAULT_TIERS,
  type DefaultTierName,
  type ResolvedTier,
  resolveTier,
  type TierSpec,
  type TierTable,
} from './tiers';

/** A tier name: one of the defaults or one you registered. */
export type TierName = DefaultTierName | (string & {});

/** One metering event: every charge and refund, for every tier including unlimited. */
export interface ChargeEvent {
  readonly key: string;
  readonly tier: string;
  /**
   * Tokens charged (negative for a refund). A reservation is metered at its maximum and corrected
   * when settled; on an unlimited tier nothing is held, and what was used is metered at settle.
   */
  readonly amount: number;
  readonly operation: 'consume' | 'reserve' | 'settle' | 'debit';
  /** `true` when the store failed and a policy decided. */
  readonly degraded: boolean;
}

/** Options of {@link createBudget}. */
export interface BudgetOptions {
  /**
   * Where buckets live.
   * @default memoryStore()
   */
  readonly store?: BudgetStore;
  /**
   * Extra or overriding tiers, merged over {@link DEFAULT_TIERS}.
   * @default {}
   */
  readonly tiers?: TierTable;
  /**
   * Time source for the memory store, leases and the local fallback.
   * @default systemClock (performance.now, monotonic)
   */
  readonly clock?: Clock;
  /**
   * Randomness for reservation ids.
   * @default Math.random
   */
  readonly random?: () => number;
  /**
   * Bucket used by tiers whose `onStoreError` is `local` while the store fails.
   * @default memoryStore()
   */
  readonly fallbackStore?: MemoryStore;
  /** Metering hook, called for every charge and refund (also for unlimited tiers). */
  readonly onCharge?: (event: ChargeEvent) => void;
}

/** A held amount returned by {@link Budget.reserve}. Settle it with `budget.settle(reservation.id, used)`. */
export interface Reservation {
  /** Opaque; carries key and tier so any replica sharing the store can settle it. */
  readonly id: string;
  readonly key: string;
  readonly tier: string;
  readonly amount: number;
  /** On the budget's clock. Unsettled reservations are refunded in full at this time. */
  readonly expiresAt: number;
}

/** What `reserve` returns: the decision, and the reservation when it was allowed. */
export interface ReserveResult {
  readonly decision: Decision;
  readonly reservation: Reservation | null;
}

/** What `settle` returns. Never throws for a store failure: `status` says `degraded`. */
export interface SettleOutcome {
  /** `unknown`: already settled, expired (refunded in full), or never reserved. Nothing changed. */
  readonly status: 'settled' | 'unknown' | 'degraded';
  readonly refunded: number;
  readonly extraCharged: number;
  /** Tokens after settling (`Infinity` for unlimited, `NaN` when degraded). */
  readonly remaining: number;
  readonly error?: unknown;
}

/** What `debit` returns. */
export interface DebitOutcome {
  readonly status: 'charged' | 'degraded';
  readonly charged: number;
  /** The part beyond `maxDebt`, not charged. */
  readonly unpaid: number;
  readonly remaining: number;
  readonly error?: unknown;
}

/** The seed's vocabulary (`refill -> available -> run -> consume(used)`) over one key. */
export interface BudgetAccount {
  /** Lazy refill happens on every read; returns the tokens available now. `null` for unlimited. */
  refill(): Promise<number | null>;
  /** Tokens available now; `null` for unlimited. */
  available(): Promise<number | null>;
  /** Post-paid: charge what the run used (a `debit`, bounded by the tier's `maxDebt`). */
  consume(used: number): Promise<DebitOutcome>;
}

/** Token-bucket budgets over a store. Create with {@link createBudget}. */
export interface Budget {
  readonly store: BudgetStore;
  /** The resolved tier table. */
  readonly tiers: ReadonlyMap<string, ResolvedTier>;
  /**
   * Charge `cost` if the key's bucket holds it. A denial charges nothing and is a decision.
   * @default cost 1
   * @throws BudgetError `BUDGET_INVALID_ARGUMENT`, `BUDGET_UNKNOWN_TIER`, `BUDGET_COST_EXCEEDS_CAPACITY` (as rejections)
   */
  consume(key: string, tier: TierName, cost?: number): Promise<Decision>;
  /**
   * The synchronous fast path for synchronous stores (the memory store).
   * @throws BudgetError `BUDGET_NOT_SYNCHRONOUS` on an asynchronous store, and the errors of `consume`.
   */
  consumeSync(key: string, tier: TierName, cost?: number): Decision;
  /**
   * Debit `max` up front and hold it for `leaseMs`; settle with what was really used.
   * @default leaseMs 60_000
   */
  reserve(key: string, tier: TierName, max: number, leaseMs?: number): Promise<ReserveResult>;
  /** Refund `max - used` (capped at capacity), or charge `used - max` as a debit. Idempotent. */
  settle(reservationId: string, used: number): Promise<SettleOutcome>;
  /** Post-paid charge that may take the bucket to `-maxDebt`; the rest is reported `unpaid`. */
  debit(key: string, tier: TierName, used: number): Promise<DebitOutcome>;
  /** Move a key to another tier, keeping its fill fraction. Returns tokens after (`null`: unlimited). */
  setTier(key: string, tier: TierName): Promise<number | null>;
  /** Tokens available now without charging (`null` for unlimited). */
  peek(key: string, tier: TierName): Promise<number | null>;
  /** Forget a key: it is a full bucket again. */
  reset(key: string): Promise<void>;
  /** Register or replace a tier at run time. @throws BudgetError `BUDGET_INVALID_TIER` */
  defineTier(name: string, spec: TierSpec | null): void;
  /** The seed's vocabulary over one key. */
  account(key: string, tier: TierName): BudgetAccount;
  /** Disposes the store and the fallback. */
  dispose(): Promise<void>;
}

const isPromise = <T>(value: MaybePromise<T>): value is Promise<T> =>
  typeof (value as { then?: unknown } | null)?.then === 'function';

/**
 * Creates a budget: token buckets per key, with tiers as data.
 *
 * @example
 * ```ts
 * import { createBudget } from '@trestle/budget';
 * const budget = createBudget();
 * const decision = await budget.consume('user-123', 'free', 5);
 * if (!decision.allowed) console.log(`retry in ${decision.retryAfterMs} ms`);
 * ```
 * @throws BudgetError `BUDGET_INVALID_TIER` when a tier in `tiers` is malformed.
 */
export function createBudget(options: BudgetOptions = {}): Budget {
  return new TokenBudget(options);
}

class TokenBudget implements Budget {
  readonly store: BudgetStore;
  readonly tiers = new Map<string, ResolvedTier>();
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly onCharge: ((event: ChargeEvent) => void) | undefined;
  private fallback: MemoryStore | undefined;
  private counter = 0;
  private readonly inPlace: InPlaceTaker | undefined;
  /** The last tier looked up: most callers use one tier per hot loop. */
  private lastTierName: string | undefined;
  private lastTier: ResolvedTier | undefined;

  constructor(options: BudgetOptions) {
    this.store = options.store ?? memoryStore();
    this.inPlace = takeInPlace in this.store ? (this.store as unknown as InPlaceTaker) : undefined;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.onCharge = options.onCharge;
    this.fallback = options.fallbackStore;
    for (const [name, spec] of Object.entries({ ...DEFAULT_TIERS, ...options.tiers })) {
      this.defineTier(name, spec);
    }
  }

  defineTier(name: string, spec: TierSpec | null): void {
    if (typeof name !== 'string' || name.length === 0) {
      throw new BudgetError(
        BudgetErrorCode.InvalidTier,
        `tier name must be a non-empty string, got ${String(name)}`,
      );
    }
    this.tiers.set(name, resolveTier(name, spec));
    this.lastTierName = undefined;
  }

  async consume(key: string, tier: TierName, cost = 1): Promise<Decision> {
    const resolved = this.check(key, tier, cost, true);
    if (!resolved.limits) return this.unlimited(key, resolved, cost, 'consume');
    const limits = resolved.limits;
    let taken: { ok: boolean; tokens: number };
    try {
      const result = this.store.take(key, limits, cost, this.clock.now());
      taken = isPromise(result) ? await result : result;
    } catch (error) {
      return this.degrade(key, resolved, limits, cost, error, 'consume');
    }
    // Outside the try: a throwing `onCharge` hook is the caller's error, not a store failure.
    return this.decide(key, resolved, limits, cost, taken.ok, taken.tokens, 'consume', false);
  }

  consumeSync(key: string, tier: TierName, cost = 1): Decision {
    const inPlace = this.inPlace;
    if (inPlace) {
      // The built-in memory store: same semantics, no intermediate result object.
      const resolved = this.check(key, tier, cost, true);
      const limits = resolved.limits;
      if (!limits) return this.unlimited(key, resolved, cost, 'consume');
      const ok = inPlace[takeInPlace](key, limits, cost, this.clock.now());
      return this.decide(key, resolved, limits, cost, ok, inPlace[takenTokens], 'consume', false);
    }
    if (!this.store.synchronous) {
      throw new BudgetError(
        BudgetErrorCode.NotSynchronous,
        `consumeSync needs a synchronous store; store "${this.store.name}" is asynchronous: use consume()`,
      );
    }
    const resolved = this.check(key, tier, cost, true);
    if (!resolved.limits) return this.unlimited(key, resolved, cost, 'consume');
    const { ok, tokens } = this.store.take(key, resolved.limits, cost, this.clock.now()) as {
      ok: boolean;
      tokens: number;
    };
    return this.decide(key, resolved, resolved.limits, cost, ok, tokens, 'consume', false);
  }

  async reserve(key: string, tier: TierName, max: number, leaseMs = 60_000): Promise<ReserveResult> {
    const resolved = this.check(key, tier, max, true);
    if (!(typeof leaseMs === 'number' && Number.isFinite(leaseMs) && leaseMs > 0)) {
      throw new BudgetError(
        BudgetErrorCode.InvalidArgument,
        `leaseMs must be a finite number > 0, got ${leaseMs}`,
      );
    }
    const now = this.clock.now();
    const nonce = this.nonce();
    const reservationOf = (origin: 'store' | 'local'): Reservation => ({
      id: formatReservationId(origin, nonce, resolved.name, key),
      key,
      tier: resolved.name,
      amount: max,
      expiresAt: now + leaseMs,
    });
    if (!resolved.limits) {
      // Unlimited: nothing is held; what was used is metered when the reservation is settled.
      const decision = new DecisionRecord(true, key, resolved, max, Number.POSITIVE_INFINITY, 0);
      return { decision: decision as Decision, reservation: reservationOf('store') };
    }
    const limits = resolved.limits;
    const id = formatReservationId('store', nonce, resolved.name, key);
    let taken: { ok: boolean; tokens: number };
    try {
      const result = this.store.reserve(key, limits, max, id, leaseMs, now);
      taken = isPromise(result) ? await result : result;
    } catch (error) {
      if (resolved.policy === 'local') {
        const localId = formatReservationId('local', nonce, resolved.name, key);
        const { ok, tokens } = this.local().reserve(key, limits, max, localId, leaseMs, now);
        const base = this.record(key, resolved, limits, max, ok, tokens);
        if (ok) this.meter(key, resolved, max, 'reserve', true);
        const decision = new DegradedRecord(base, ok, key, resolved, max, 'local', error) as Decision;
        return { decision, reservation: ok ? reservationOf('local') : null };
      }
      const decision = this.degrade(key, resolved, limits, max, error, 'reserve');
      return { decision, reservation: decision.allowed ? reservationOf('store') : null };
    }
    const decision = this.decide(key, resolved, limits, max, taken.ok, taken.tokens, 'reserve', false);
    return { decision, reservation: taken.ok ? reservationOf('store') : null };
  }

  async settle(reservationId: string, used: number): Promise<SettleOutcome> {
    const { origin, tier, key } = parseReservationId(reservationId);
    if (!isAmount(used)) {
      throw new BudgetError(
        BudgetErrorCode.InvalidArgument,
        `used must be a finite number >= 0, got ${used}`,
      );
    }
    const resolved = this.tierOf(tier);
    if (!resolved.limits) {
      this.meter(key, resolved, used, 'settle', false);
      return { status: 'settled', refunded: 0, extraCharged: 0, remaining: Number.POSITIVE_INFINITY };
    }
    const store = origin === 'local' ? this.local() : this.store;
    try {
      const pending = store.settle(key, resolved.limits, reservationId, used, this.clock.now());
      const result = isPromise(pending) ? await pending : pending;
      if (result.status === 'settled') {
        this.meter(key, resolved, result.extraCharged - result.refunded, 'settle', origin === 'local');
      }
      return { ...result, remaining: result.tokens };
    } catch (error) {
      return { status: 'degraded', refunded: 0, extraCharged: 0, remaining: Number.NaN, error };
    }
  }

  async debit(key: string, tier: TierName, used: number): Promise<DebitOutcome> {
    const resolved = this.check(key, tier, used, false);
    if (!resolved.limits) {
      this.meter(key, resolved, used, 'debit', false);
      return { status: 'charged', charged: used, unpaid: 0, remaining: Number.POSITIVE_INFINITY };
    }
    const limits = resolved.limits;
    const now = this.clock.now();
    try {
      const pending = this.store.debit(key, limits, used, now);
      const result = isPromise(pending) ? await pending : pending;
      this.meter(key, resolved, result.charged, 'debit', false);
      return { status: 'charged', charged: result.charged, unpaid: result.unpaid, remaining: result.tokens };
    } catch (error) {
      const local = resolved.policy === 'local' ? this.local().debit(key, limits, used, now) : undefined;
      if (local) this.meter(key, resolved, local.charged, 'debit', true);
      return {
        status: 'degraded',
        charged: local ? local.charged : 0,
        unpaid: local ? local.unpaid : used,
        remaining: local ? local.tokens : Number.NaN,
        error,
      };
    }
  }

  async setTier(key: string, tier: TierName): Promise<number | null> {
    const resolved = this.check(key, tier, 0, false);
    if (!resolved.limits) {
      await this.store.delete(key);
      return null;
    }
    const result = this.store.rescale(key, resolved.limits, this.clock.now());
    return isPromise(result) ? await result : result;
  }

  async peek(key: string, tier: TierName): Promise<number | null> {
    const resolved = this.check(key, tier, 0, false);
    if (!resolved.limits) return null;
    const result = this.store.peek(key, resolved.limits, this.clock.now());
    return isPromise(result) ? await result : result;
  }

  async reset(key: string): Promise<void> {
    this.checkKey(key);
    await this.store.delete(key);
    this.fallback?.delete(key);
  }

  account(key: string, tier: TierName): BudgetAccount {
    this.check(key, tier, 0, false);
    return {
      refill: () => this.peek(key, tier),
      available: () => this.peek(key, tier),
      consume: (used) => this.debit(key, tier, used),
    };
  }

  async dispose(): Promise<void> {
    await this.store.dispose?.();
    this.fallback?.dispose();
  }

  private decide(
    key: string,
    tier: ResolvedTier,
    limits: BucketLimits,
    cost: number,
    ok: boolean,
    tokens: number,
    operation: ChargeEvent['operation'],
    degraded: boolean,
  ): Decision {
    if (ok && this.onCharge) this.meter(key, tier, cost, operation, degraded);
    return this.record(key, tier, limits, cost, ok, tokens) as Decision;
  }

  private record(
    key: string,
    tier: ResolvedTier,
    limits: BucketLimits,
    cost: number,
    ok: boolean,
    tokens: number,
  ): DecisionRecord {
    return ok
      ? new DecisionRecord(true, key, tier, cost, tokens, 0)
      : new DecisionRecord(false, key, tier, cost, tokens, msUntil(tokens, cost, limits));
  }

  private degrade(
    key: string,
    tier: ResolvedTier,
    limits: BucketLimits,
    cost: number,
    error: unknown,
    operation: ChargeEvent['operation'],
  ): Decision {
    if (tier.policy === 'local') {
      const { ok, tokens } = this.local().take(key, limits, cost, this.clock.now());
      if (ok) this.meter(key, tier, cost, operation, true);
      const base = this.record(key, tier, limits, cost, ok, tokens);
      return new DegradedRecord(base, ok, key, tier, cost, 'local', error) as Decision;
    }
    const allowed = tier.policy === 'failOpen';
    if (allowed) this.meter(key, tier, cost, operation, true);
    return new DegradedRecord(undefined, allowed, key, tier, cost, tier.policy, error) as Decision;
  }

  private unlimited(
    key: string,
    tier: ResolvedTier,
    cost: number,
    operation: ChargeEvent['operation'],
  ): Decision {
    this.meter(key, tier, cost, operation, false);
    const infinite = Number.POSITIVE_INFINITY;
    return new DecisionRecord(true, key, tier, cost, infinite, 0) as Decision;
  }

  private meter(
    key: string,
    tier: ResolvedTier,
    amount: number,
    operation: ChargeEvent['operation'],
    degraded: boolean,
  ) {
    this.onCharge?.({ key, tier: tier.name, amount, operation, degraded });
  }

  private local(): MemoryStore {
    this.fallback ??= memoryStore();
    return this.fallback;
  }

  private nonce(): string {
    this.counter = (this.counter + 1) % Number.MAX_SAFE_INTEGER;
    return `${this.counter.toString(36)}${Math.floor(this.random() * 2 ** 40).toString(36)}`;
  }

  private checkKey(key: string): void {
    if (typeof key !== 'string' || key.length === 0) {
      throw new BudgetError(
        BudgetErrorCode.InvalidArgument,
        `key must be a non-empty string, got ${String(key)}`,
      );
    }
  }

  private tierOf(tier: string): ResolvedTier {
    if (tier === this.lastTierName) return this.lastTier!;
    const resolved = this.tiers.get(tier);
    if (!resolved) {
      const known = [...this.tiers.keys()].join(', ');
      throw new BudgetError(BudgetErrorCode.UnknownTier, `unknown tier "${tier}" (known: ${known})`);
    }
    this.lastTierName = tier;
    this.lastTier = resolved;
    return resolved;
  }

  private check(key: string, tier: string, amount: number, boundedByCapacity: boolean): ResolvedTier {
    this.checkKey(key);
    const resolved = this.tierOf(tier);
    if (!isAmount(amount)) {
      throw new BudgetError(
        BudgetErrorCode.InvalidArgument,
        `cost must be a finite number >= 0, got ${String(amount)} (key "${key}")`,
      );
    }
    if (boundedByCapacity && resolved.limits && amount > resolved.limits.capacity) {
      throw new BudgetError(
        BudgetErrorCode.CostExceedsCapacity,
        `cost ${amount} exceeds the capacity ${resolved.limits.capacity} of tier "${resolved.name}": it can never be granted`,
      );
    }
    return resolved;
  }
}
