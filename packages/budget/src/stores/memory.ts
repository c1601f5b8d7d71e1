import { covers, msUntil, refilled } from '../bucket-math';
import { BudgetError, BudgetErrorCode } from '../errors';
import type { BudgetStore, DebitResult, SettleResult, TakeResult } from '../store';
import type { BucketLimits } from '../tiers';
import { type HeldReservation, ReservationHeap } from './reservation-heap';

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Hard cap on stored keys. When full, the least recently used key is dropped (it reads as a full
   * bucket afterwards) and `onEvict` is told.
   * @default 1_000_000
   */
  readonly maxKeys?: number;
  /**
   * Slots examined per operation by the incremental sweep that drops buckets which have refilled.
   * @default 2
   */
  readonly sweepPerOperation?: number;
  /** Called when the LRU cap drops a bucket that was not yet full. */
  readonly onEvict?: (key: string) => void;
}

/** The in-process store: synchronous, bounded, no timers. */
export interface MemoryStore extends BudgetStore {
  readonly synchronous: true;
  /** Keys currently stored (full buckets are not stored). */
  readonly size: number;
  /** Outstanding reservations. */
  readonly reservations: number;
  take(key: string, limits: BucketLimits, cost: number, now: number): TakeResult;
  reserve(
    key: string,
    limits: BucketLimits,
    amount: number,
    id: string,
    leaseMs: number,
    now: number,
  ): TakeResult;
  settle(key: string, limits: BucketLimits, id: string, used: number, now: number): SettleResult;
  debit(key: string, limits: BucketLimits, amount: number, now: number): DebitResult;
  rescale(key: string, limits: BucketLimits, now: number): number;
  peek(key: string, limits: BucketLimits, now: number): number;
  delete(key: string): void;
  /**
   * Drops up to `max` buckets that are full at `now` (all of them by default), expires due
   * reservations, and shrinks storage when it is mostly empty. Returns how many buckets were dropped.
   */
  sweep(now: number, max?: number): number;
  dispose(): void;
}

const NONE = -1;
const INITIAL_SLOTS = 1024;

/**
 * Creates the default in-memory store. Buckets live in typed-array columns (about 40 bytes a key
 * plus the key string and its map entry), a full bucket is not stored at all, and an incremental
 * clock-hand sweep returns refilled buckets to nothing without a timer per key.
 *
 * @example
 * ```ts
 * import { createBudget, memoryStore } from '@trestle/budget';
 * const budget = createBudget({ store: memoryStore({ maxKeys: 100_000 }) });
 * ```
 * @throws BudgetError `BUDGET_INVALID_ARGUMENT` for a non-positive `maxKeys`.
 */
export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  return new MemoryBudgetStore(options);
}

class MemoryBudgetStore implements MemoryStore {
  readonly name = 'memory';
  readonly contractVersion = 1 as const;
  readonly synchronous = true as const;

  private readonly maxKeys: number;
  private readonly sweepPerOperation: number;
  private readonly onEvict: ((key: string) => void) | undefined;
  private readonly index = new Map<string, number>();
  private readonly held = new ReservationHeap();
  private slots = 0;
  private tokens = new Float64Array(0);
  private stamps = new Float64Array(0);
  private fullAt = new Float64Array(0);
  private births = new Float64Array(0);
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  private keys: (string | undefined)[] = [];
  private limitsOf: (BucketLimits | undefined)[] = [];
  private free: number[] = [];
  private head = NONE;
  private tail = NONE;
  private hand = 0;

  constructor({ maxKeys = 1_000_000, sweepPerOperation = 2, onEvict }: MemoryStoreOptions) {
    if (!Number.isInteger(maxKeys) || maxKeys < 1) {
      throw new BudgetError(
        BudgetErrorCode.InvalidArgument,
        `maxKeys must be an integer >= 1, got ${maxKeys}`,
      );
    }
    this.maxKeys = maxKeys;
    this.sweepPerOperation = Math.max(0, Math.floor(sweepPerOperation));
    this.onEvict = onEvict;
    this.resize(Math.min(INITIAL_SLOTS, maxKeys));
  }

  get size(): number {
    return this.index.size;
  }

  get reservations(): number {
    return this.held.size;
  }

  take(key: string, limits: BucketLimits, cost: number, now: number): TakeResult {
    this.housekeep(now);
    const slot = this.load(key, now);
    const tokens = slot === undefined ? limits.capacity : this.current(slot, limits, now);
    if (!covers(tokens, cost)) {
      // A denied key is an active key: keep it away from the LRU end.
      if (slot !== undefined) this.touch(slot);
      return { ok: false, tokens };
    }
    const left = tokens > cost ? tokens - cost : 0;
    if (cost > 0) this.write(slot, key, left, limits, now);
    return { ok: true, tokens: left };
  }

  reserve(
    key: string,
    limits: BucketLimits,
    amount: number,
    id: string,
    leaseMs: number,
    now: number,
  ): TakeResult {
    const result = this.take(key, limits, amount, now);
    if (result.ok) this.held.add({ id, key, amount, expiresAt: now + leaseMs, createdAt: now });
    return result;
  }

  settle(key: string, limits: BucketLimits, id: string, used: number, now: number): SettleResult {
    this.housekeep(now);
    const reservation = this.held.get(id);
    if (reservation === undefined || reservation.key !== key) {
      return { status: 'unknown', refunded: 0, extraCharged: 0, tokens: this.peek(key, limits, now) };
    }
    this.held.delete(id);
    if (reservation.expiresAt <= now) {
      return { status: 'unknown', refunded: 0, extraCharged: 0, tokens: this.peek(key, limits, now) };
    }
    if (used <= reservation.amount) {
      const { refunded, tokens } = this.refund(key, limits, reservation.amount - used, now);
      return { status: 'settled', refunded, extraCharged: 0, tokens };
    }
    const { charged, tokens } = this.debit(key, limits, used - reservation.amount, now);
    return { status: 'settled', refunded: 0, extraCharged: charged, tokens };
  }

  debit(key: string, limits: BucketLimits, amount: number, now: number): DebitResult {
    this.housekeep(now);
    const slot = this.load(key, now);
    const tokens = slot === undefined ? limits.capacity : this.current(slot, limits, now);
    const floor = 0 - limits.maxDebt;
    const wanted = tokens - amount;
    const left = wanted < floor ? (tokens < floor ? tokens : floor) : wanted;
    const charged = tokens - left;
    if (charged > 0) this.write(slot, key, left, limits, now);
    return { charged, unpaid: amount - charged, tokens: left };
  }

  rescale(key: string, limits: BucketLimits, now: number): number {
    this.housekeep(now);
    const slot = this.load(key, now);
    if (slot === undefined) return limits.capacity;
    const old = this.limitsOf[slot]!;
    const tokens = refilled(this.tokens[slot]!, this.stamps[slot]!, now, old);
    const scaled = (tokens * limits.capacity) / old.capacity;
    this.write(slot, key, scaled, limits, now);
    return scaled;
  }

  peek(key: string, limits: BucketLimits, now: number): number {
    this.housekeep(now);
    const slot = this.load(key, now);
    return slot === undefined ? limits.capacity : this.current(slot, limits, now);
  }

  delete(key: string): void {
    const slot = this.index.get(key);
    if (slot !== undefined) this.release(slot);
  }

  sweep(now: number, max = Number.POSITIVE_INFINITY): number {
    this.held.popExpired(now, (reservation) => this.expire(reservation, now));
    let dropped = 0;
    for (let slot = 0; slot < this.slots && dropped < max; slot++) {
      if (this.keys[slot] !== undefined && this.fullAt[slot]! <= now) {
        this.release(slot);
        dropped++;
      }
    }
    if (this.slots > INITIAL_SLOTS && this.index.size * 4 < this.slots) {
      this.resize(Math.max(INITIAL_SLOTS, this.index.size * 2));
    }
    return dropped;
  }

  dispose(): void {
    this.index.clear();
    this.resize(Math.min(INITIAL_SLOTS, this.maxKeys));
  }

  /** Tokens of a stored bucket at `now` under the caller's limits (refilled under its stored limits). */
  private current(slot: number, limits: BucketLimits, now: number): number {
    const tokens = refilled(this.tokens[slot]!, this.stamps[slot]!, now, this.limitsOf[slot]!);
    return tokens > limits.capacity ? limits.capacity : tokens;
  }

  /** The key's slot, or `undefined` when absent or refilled to full (a full bucket is dropped). */
  private load(key: string, now: number): number | undefined {
    const slot = this.index.get(key);
    if (slot === undefined) return undefined;
    const stored = this.limitsOf[slot]!;
    if (refilled(this.tokens[slot]!, this.stamps[slot]!, now, stored) >= stored.capacity) {
      this.release(slot);
      return undefined;
    }
    return slot;
  }

  private refund(key: string, limits: BucketLimits, amount: number, now: number) {
    const slot = this.load(key, now);
    if (slot === undefined) return { refunded: 0, tokens: limits.capacity };
    const tokens = this.current(slot, limits, now);
    const after = Math.min(limits.capacity, tokens + amount);
    this.write(slot, key, after, limits, now);
    return { refunded: after - tokens, tokens: after };
  }

  /**
   * An unsettled reservation is refunded into the bucket it was taken from. If that bucket has since
   * refilled to full (and was dropped), there is nothing to give back: the refund lapses.
   */
  private expire(reservation: HeldReservation, now: number): void {
    const slot = this.load(reservation.key, now);
    if (slot === undefined || this.births[slot]! > reservation.createdAt) return;
    this.refund(reservation.key, this.limitsOf[slot]!, reservation.amount, now);
  }

  private housekeep(now: number): void {
    this.held.popExpired(now, (reservation) => this.expire(reservation, now));
    for (let i = 0; i < this.sweepPerOperation && this.slots > 0; i++) {
      const slot = this.hand;
      this.hand = slot + 1 >= this.slots ? 0 : slot + 1;
      if (this.keys[slot] !== undefined && this.fullAt[slot]! <= now) this.release(slot);
    }
  }

  private write(slot: number | undefined, key: string, tokens: number, limits: BucketLimits, now: number) {
    if (tokens >= limits.capacity) {
      if (slot !== undefined) this.release(slot);
      return;
    }
    if (slot === undefined) {
      slot = this.allocate(key);
    } else {
      this.touch(slot);
    }
    const stamp = this.stamps[slot]!;
    const ts = now > stamp ? now : stamp;
    if (Number.isNaN(this.births[slot]!)) this.births[slot] = ts;
    this.tokens[slot] = tokens;
    this.stamps[slot] = ts;
    this.fullAt[slot] = ts + msUntil(tokens, limits.capacity, limits);
    this.limitsOf[slot] = limits;
  }

  private allocate(key: string): number {
    if (this.index.size >= this.maxKeys) {
      const victim = this.head;
      const victimKey = this.keys[victim]!;
      this.release(victim);
      this.onEvict?.(victimKey);
    }
    if (this.free.length === 0) this.resize(Math.min(this.maxKeys, Math.max(this.slots * 2, INITIAL_SLOTS)));
    const slot = this.free.pop()!;
    this.keys[slot] = key;
    this.stamps[slot] = Number.NEGATIVE_INFINITY;
    this.births[slot] = Number.NaN;
    this.index.set(key, slot);
    this.append(slot);
    return slot;
  }

  private release(slot: number): void {
    this.index.delete(this.keys[slot]!);
    this.unlink(slot);
    this.keys[slot] = undefined;
    this.limitsOf[slot] = undefined;
    this.free.push(slot);
  }

  private touch(slot: number): void {
    if (slot === this.tail) return;
    this.unlink(slot);
    this.append(slot);
  }

  private append(slot: number): void {
    this.prev[slot] = this.tail;
    this.next[slot] = NONE;
    if (this.tail !== NONE) this.next[this.tail] = slot;
    else this.head = slot;
    this.tail = slot;
  }

  private unlink(slot: number): void {
    const before = this.prev[slot]!;
    const after = this.next[slot]!;
    if (before !== NONE) this.next[before] = after;
    else this.head = after;
    if (after !== NONE) this.prev[after] = before;
    else this.tail = before;
  }

  /** Re-lays the columns with `size` slots, keeping live buckets in LRU order. */
  private resize(size: number): void {
    const order: number[] = [];
    for (let slot = this.head; slot !== NONE; slot = this.next[slot]!) order.push(slot);
    const { tokens, stamps, fullAt, births, keys, limitsOf } = this;
    this.tokens = new Float64Array(size);
    this.stamps = new Float64Array(size);
    this.fullAt = new Float64Array(size);
    this.births = new Float64Array(size);
    this.prev = new Int32Array(size);
    this.next = new Int32Array(size);
    this.keys = new Array<string | undefined>(size).fill(undefined);
    this.limitsOf = new Array<BucketLimits | undefined>(size).fill(undefined);
    this.head = NONE;
    this.tail = NONE;
    this.index.clear();
    let slot = 0;
    for (const old of order) {
      this.tokens[slot] = tokens[old]!;
      this.stamps[slot] = stamps[old]!;
      this.fullAt[slot] = fullAt[old]!;
      this.births[slot] = births[old]!;
      this.keys[slot] = keys[old];
      this.limitsOf[slot] = limitsOf[old];
      this.index.set(keys[old]!, slot);
      this.append(slot);
      slot++;
    }
    this.free = [];
    for (let free = size - 1; free >= slot; free--) this.free.push(free);
    this.slots = size;
    this.hand = 0;
  }
}
