import type { RefGoneReason } from './errors';
import type { Ref } from './ref';

/** Per-session limits a store enforces. `Infinity` switches one off. */
export interface SessionLimits {
  /** Refs a session may hold; past it, the session's least recently used ref is evicted (`lru`). */
  readonly maxRefs: number;
  /** A ref not accessed for this long expires (`ttl`). */
  readonly ttlMs: number;
}

/** The defaults of the seed: 10,000 refs, one hour. */
export const DEFAULT_SESSION_LIMITS: SessionLimits = Object.freeze({ maxRefs: 10_000, ttlMs: 3_600_000 });

/** One ref a store dropped on its own, and why. Every eviction is reported, none is silent. */
export interface RefEviction {
  readonly ref: Ref;
  readonly reason: RefGoneReason;
}

/** Counters a store keeps. */
export interface RefStoreStats {
  readonly sessions: number;
  readonly refs: number;
  readonly evictions: { readonly ttl: number; readonly lru: number; readonly sessions: number };
}

/**
 * The plugin contract for where refs are tracked on the host. Synchronous: it holds metadata in
 * this process (the objects themselves live in the worker). Every method that drops refs on its own
 * returns (and reports through the store's `onEvict` option) what it dropped.
 *
 * Rules every store follows (checked by `testRefStore` from `@trestle/ref-registry/testing`):
 * - refs are kept per session; dropping a session is O(its refs), not O(all refs);
 * - a session over `maxRefs` evicts its own least recently used ref (`lru`), never another session's;
 * - a ref not accessed for `ttlMs` is gone (`ttl`), found lazily on access or by `sweep`;
 * - at the global cap the store evicts whole idle sessions (least recently used first); when none
 *   is idle it refuses the new ref (`REF_STORE_FULL`) rather than drop another session's live ref;
 * - `get` of a ref that is gone throws `RefNotFoundError` with the reason while the store remembers it;
 * - `now` never goes backwards (a store may drop refs late, never early, if it does);
 * - opening a session, `put` and a successful `get` count as access (for LRU, TTL and idleness);
 *   `has` and `list` do not; `list` of an unknown session is empty;
 * - a session evicted whole at the global cap stays open, empty.
 */
export interface RefStore {
  /** Stable name used in errors and logs, e.g. `"memory"`. */
  readonly name: string;
  readonly contractVersion: 1;
  /** Refs held, all sessions. */
  readonly size: number;
  /**
   * Creates the session, or updates its limits (lowering `maxRefs` evicts at once, through `onEvict`).
   * @throws RefRegistryError `REF_INVALID_ARGUMENT` for an empty id or limits that are not > 0.
   */
  openSession(sessionId: string, limits: SessionLimits, now: number): void;
  hasSession(sessionId: string): boolean;
  /**
   * Adds a ref to its (open) session and returns what that evicted. The same id again in the same
   * session replaces the stored ref and marks it used.
   * @throws RefRegistryError `REF_SESSION_NOT_FOUND`, `REF_STORE_FULL`; SessionMismatchError when
   *   another session holds the id.
   */
  put(ref: Ref, now: number): readonly RefEviction[];
  /**
   * Returns the ref and marks it used (LRU, TTL).
   * @throws RefNotFoundError (with `reason` when known), SessionMismatchError when the ref id is held
   *   by another session.
   */
  get(sessionId: string, refId: string, now: number): Ref;
  /** Whether the session holds the ref now (no touch). */
  has(sessionId: string, refId: string, now: number): boolean;
  /** The session's live refs, least recently used first. */
  list(sessionId: string, now: number): readonly Ref[];
  /** Drops one ref (`released`). Returns whether it was there. */
  release(sessionId: string, refId: string): boolean;
  /** Drops a session and its refs; idempotent. Returns the refs it held. */
  releaseSession(sessionId: string, reason: RefGoneReason): readonly Ref[];
  /** Drops refs past their TTL; returns them. */
  sweep(now: number): readonly RefEviction[];
  /** Open session ids. */
  sessionIds(): readonly string[];
  stats(): RefStoreStats;
  /** Drops everything; idempotent. */
  dispose?(): void;
}

/** A store factory, as users write them. */
export type RefStoreFactory<TOptions = void> = (options: TOptions) => RefStore;
