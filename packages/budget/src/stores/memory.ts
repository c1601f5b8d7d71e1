import { covers, refilled } from '../bucket-math';
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
   * @default 1
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

/** @internal The budget's allocation-free path into the built-in memory store. */
export const takeInPlace = Symbol('trestle.budget.takeInPlace');
/** @internal Tokens left by the last `takeInPlace`. */
export const takenTokens = Symbol('trestle.budget.takenTokens');

/** @internal */
export interface InPlaceTaker {
  [takeInPlace](key: string, limits: BucketLimits, cost: number, now: number): boolean;
  readonly [takenTokens]: number;
}
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

class MemoryBudgetStore implements MemoryStore, InPlaceTaker {
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
  /** Out-parameters of `load` and `takeInPlace` (no allocation on the hot path). */
  private loaded = 0;
  private loadedRaw = 0;
  private head = NONE;
  private tail = NONE;
  private hand = 0;

  constructor({ maxKeys = 1_000_000, sweepPerOperation = 1, onEvict }: MemoryStoreOptions) {
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
    const ok = this[takeInPlace](key, limits, cost, now);
    return { ok, tokens: this.loaded };
  }

  /** `take` without allocating: the tokens after the call are left in `loaded` (see `takeTokens`). */
  [takeInPlace](key: string, limits: BucketLimits, cost: number, now: number): boolean {
    this.housekeep(now);
    const slot = this.load(key, limits, now, true);
    const tokens = this.loaded;
    if (!covers(tokens, cost)) {
      // A denied key is an active key: keep it away from the LRU end.
      if (slot !== undefined) this.touch(slot);
      return false;
    }
    const left = tokens > cost ? tokens - cost : 0;
    if (cost > 0) this.write(slot, key, left, limits, now);
    this.loaded = left;
    return true;
  }

  get [takenTokens](): number {
    return this.loaded;
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
    const slot = this.load(key, limits, now, true);
    const tokens = this.loaded;
    const floor = 0 - limits.maxDebt;
    const wanted = tokens - amount;
    const left = wanted < floor ? (tokens < floor ? tokens : floor) : wanted;
    const charged = tokens - left;
    if (charged > 0) this.write(slot, key, left, limits, now);
    return { charged, unpaid: amount - charged, tokens: left };
  }

  rescale(key: string, limits: BucketLimits, now: number): number {
    this.housekeep(now);
    const slot = this.load(key, limits, now, false);
    if (slot === undefined) return limits.capacity;
    const scaled = (this.loadedRaw * limits.capacity) / this.limitsOf[slot]!.capacity;
    this.write(slot, key, scaled, limits, now);
    return scaled;
  }

  peek(key: string, limits: BucketLimits, now: number): number {
    this.housekeep(now);
    this.load(key, limits, now, false);
    return this.loaded;
  }

  delete(key: string): void {
    const slot = this.index.get(key);
    if (slot !== undefined) this.release(slot);
  }

  sweep(now: number, max = Number.POSITIVE_INFINITY): number {
    for (let due = this.held.popDue(now); due !== undefined; due = this.held.popDue(now))
      this.expire(due, now);
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

  /**
   * Finds the key's bucket and sets `loaded` (tokens at `now` under the caller's limits) and
   * `loadedRaw` (under its stored limits). A bucket that refilled to full is logically absent: it is
   * dropped, or with `reuse` kept as a new, full bucket in the same slot (saves a map delete + insert
   * on keys that are busy but refill between calls). Returns the slot, `undefined` when absent.
   */
  private load(key: string, limits: BucketLimits, now: number, reuse: boolean): number | undefined {
    const slot = this.index.get(key);
    if (slot !== undefined) {
      const stored = this.limitsOf[slot]!;
      const tokens = refilled(this.tokens[slot]!, this.stamps[slot]!, now, stored);
      if (tokens < stored.capacity) {
        this.loadedRaw = tokens;
        this.loaded = tokens > limits.capacity ? limits.capacity : tokens;
        return slot;
      }
      if (reuse) {
        this.renew(slot, now);
        this.loaded = limits.capacity;
        return slot;
      }
      this.release(slot);
    }
    this.loaded = limits.capacity;
    return undefined;
  }

  /** Turns a slot into a new full bucket (as if dropped and re-added): new birth, nothing to sweep. */
  private renew(slot: number, now: number): void {
    this.stamps[slot] = Number.NEGATIVE_INFINITY;
    this.births[slot] = now;
    this.fullAt[slot] = Number.NEGATIVE_INFINITY;
  }

  private refund(key: string, limits: BucketLimits, amount: number, now: number) {
    const slot = this.load(key, limits, now, false);
    if (slot === undefined) return { refunded: 0, tokens: limits.capacity };
    const tokens = this.loaded;
    const after = Math.min(limits.capacity, tokens + amount);
    this.write(slot, key, after, limits, now);
    return { refunded: after - tokens, tokens: after };
  }

  /**
   * An unsettled reservation is refunded into the bucket it was taken from. If that bucket has since
   * refilled to full (and was dropped), there is nothing to give back: the refund lapses.
   */
  private expire(reservation: HeldReservation, now: number): void {
    const slot = this.index.get(reservation.key);
    if (slot === undefined || this.births[slot]! > reservation.createdAt) return;
    this.refund(reservation.key, this.limitsOf[slot]!, reservation.amount, now);
  }

  private housekeep(now: number): void {
    if (this.held.nextExpiry <= now) {
      for (let due = this.held.popDue(now); due !== undefined; due = this.held.popDue(now))
        this.expire(due, now);
    }
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
      slot = this.allocate(key, now);
    } else {
      this.touch(slot);
    }
    const stamp = this.stamps[slot]!;
    const ts = now > stamp ? now : stamp;
    this.tokens[slot] = tokens;
    this.stamps[slot] = ts;
    // When the sweep may drop it; `load` decides exactly, so float residue here is harmless.
    this.fullAt[slot] = ts + (limits.capacity - tokens) / limits.refillPerMs;
    if (this.limitsOf[slot] !== limits) this.limitsOf[slot] = limits;
  }

  private allocate(key: string, now: number): number {
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
    this.births[slot] = now;
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
