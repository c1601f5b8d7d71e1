import {
  type RefGoneReason,
  RefNotFoundError,
  RefRegistryError,
  RefRegistryErrorCode,
  SessionMismatchError,
} from '../errors';
import { describe, type Ref } from '../ref';
import type { RefEviction, RefStore, RefStoreStats, SessionLimits } from '../store';

/** Options of {@link memoryRefStore}. */
export interface MemoryRefStoreOptions {
  /**
   * Refs held across all sessions. A `put` past it first drops refs whose TTL has run out, then
   * evicts whole idle sessions (least recently used first, never the session written to), and
   * throws `REF_STORE_FULL` when that cannot make room. `Infinity` switches the cap off.
   * @default 1_000_000
   */
  readonly maxRefs?: number;
  /**
   * A session not accessed for this long is idle, and the global cap may evict its refs. Opening a
   * session, a `put` into it and a successful `get` from it are accesses; `has` and `list` are not.
   * Must be > 0; `Infinity` means sessions are never idle.
   * @default 60_000
   */
  readonly idleMs?: number;
  /**
   * Gone refs remembered so that `get` can say why (`RefNotFoundError.reason`); past it the oldest
   * are forgotten first. Released sessions are remembered as a whole (not ref by ref), up to the
   * same number of sessions. `0` remembers nothing.
   * @default 10_000
   */
  readonly maxTombstones?: number;
  /**
   * Called once for every ref the store drops on its own (`ttl`, `lru`, including the refs of idle
   * sessions evicted by the global cap), after the store's state is updated. Explicit `release` and
   * `releaseSession` are not evictions and are not reported here. If it throws, the remaining
   * evictions of the same call are still delivered and the first error is rethrown.
   */
  readonly onEvict?: (eviction: RefEviction) => void;
}

/** Counters of the memory store. */
export interface MemoryRefStoreStats extends RefStoreStats {
  /**
   * `ttl` and `lru` count refs evicted for that reason (`lru` includes the refs of idle sessions
   * evicted by the global cap); `sessions` counts those idle sessions.
   */
  readonly evictions: { readonly ttl: number; readonly lru: number; readonly sessions: number };
  /** Gone refs currently remembered (at most `maxTombstones`). */
  readonly tombstones: number;
}

/** The built-in, in-process `RefStore`: synchronous, bounded, no timers. */
export interface MemoryRefStore extends RefStore {
  readonly name: 'memory';
  stats(): MemoryRefStoreStats;
  /** Drops every session, ref and tombstone, and resets the counters; the store stays usable. */
  dispose(): void;
}

/**
 * Creates the in-memory ref store.
 *
 * - Each session keeps its refs in least-recently-used order (an intrusive linked list), so LRU and
 *   TTL eviction look at the head only, and dropping a session costs O(its refs).
 * - One map from ref id to entry serves every session: a `get` is one lookup, and a ref id held by
 *   another session is found (`SessionMismatchError`) without searching.
 * - Putting a ref id its session already holds replaces the stored ref (its metadata) and marks it
 *   used; the same id held live by another session throws `SessionMismatchError`.
 * - An idle session evicted by the global cap stays open (its owner may still use it), empty.
 * - `get` and `put` keep no order between sessions: a session's last access is that of its most
 *   recently used ref. Idle sessions are looked for only at the global cap (one scan, sorted, reused
 *   until a session can have become idle), and tombstones and expired refs cost no timers.
 * - `now` is the caller's clock (e.g. `performance.now()`) and should not go backwards. If it does,
 *   refs may be dropped late by TTL, never early.
 *
 * @example
 * ```ts
 * import { createRef, memoryRefStore } from '@trestle/ref-registry';
 * const store = memoryRefStore({ maxRefs: 100_000, onEvict: ({ ref, reason }) => log(ref.id, reason) });
 * store.openSession('s1', { maxRefs: 1_000, ttlMs: 60_000 }, performance.now());
 * store.put(createRef({ id: 'r1', sessionId: 's1', typeName: 'Pattern', module: 're' }), performance.now());
 * const ref = store.get('s1', 'r1', performance.now());
 * ```
 * @throws RefRegistryError `REF_INVALID_ARGUMENT` for a `maxRefs` that is not an integer >= 1 (or
 *   `Infinity`), an `idleMs` that is not > 0, or a `maxTombstones` that is not an integer >= 0.
 */
export function memoryRefStore(options: MemoryRefStoreOptions = {}): MemoryRefStore {
  return new MemoryStore(options);
}

const NAME = 'memory';
const EMPTY: readonly never[] = Object.freeze([]);
const GONE_REASONS: ReadonlySet<string> = new Set<RefGoneReason>([
  'released',
  'ttl',
  'lru',
  'session_released',
  'worker_restarted',
]);

/** A ref held by a session, or (with `reason` set) a tombstone remembering why it went. */
class Entry {
  /** `ref.id`, kept here so that aging a tombstone out does not load the ref. */
  id: string;
  ref: Ref;
  session: Session;
  lastAccess: number;
  /** Towards the least recently used end. Not kept up to date on the head (never read there). */
  prev: Entry | null = null;
  next: Entry | null = null;
  /** Set when the ref is gone; the entry then stays in the index as a tombstone. */
  reason: RefGoneReason | undefined = undefined;
  /** A gone entry no longer in the index: aged out, or replaced by a newer entry for the same id. */
  detached = false;

  constructor(ref: Ref, session: Session, now: number) {
    this.id = ref.id;
    this.ref = ref;
    this.session = session;
    this.lastAccess = now;
  }
}

class Session {
  readonly id: string;
  maxRefs: number;
  ttlMs: number;
  /**
   * When it was opened or last opened again, or (folded in when it leaves) the last access of a ref
   * that was the most recently used one. See {@link lastAccessOf}: get and put never write here.
   */
  touchedAt: number;
  size = 0;
  /** Least recently used ref. */
  head: Entry | null = null;
  /** Most recently used ref: its `lastAccess` is the session's last access by get or put. */
  tail: Entry | null = null;
  open = true;

  constructor(id: string, limits: SessionLimits, now: number) {
    this.id = id;
    this.maxRefs = limits.maxRefs;
    this.ttlMs = limits.ttlMs;
    this.touchedAt = now;
  }
}

/** A session's last access: opening it, a put into it or a successful get from it. */
function lastAccessOf(session: Session): number {
  const tail = session.tail;
  return tail !== null && tail.lastAccess > session.touchedAt ? tail.lastAccess : session.touchedAt;
}

class MemoryStore implements MemoryRefStore {
  readonly name = NAME;
  readonly contractVersion = 1 as const;

  readonly #maxRefs: number;
  readonly #idleMs: number;
  readonly #maxTombstones: number;
  readonly #onEvict: ((eviction: RefEviction) => void) | undefined;

  readonly #sessions = new Map<string, Session>();
  /** Ref id -> live entry or tombstone, for every session. */
  readonly #index = new Map<string, Entry>();
  #size = 0;
  /**
   * No ref held at the last full sweep expires before `#nextExpiry`, and no ref put since expires
   * before `#sweptAt + #minTtlMs`: until then a sweep has nothing to do (and `put` does no work to
   * keep these up to date).
   */
  #nextExpiry = Number.POSITIVE_INFINITY;
  #sweptAt = Number.NEGATIVE_INFINITY;
  #minTtlMs = Number.POSITIVE_INFINITY;
  /**
   * Idle sessions found by the last scan, least recently used first, with their last access then
   * (a session accessed since is skipped). Rescanned only when empty and `now >= #rescanAt`, the
   * first time a session that was not idle at the last scan can be idle.
   */
  #idleQueue: Session[] = [];
  #idleStamps: number[] = [];
  #idleNext = 0;
  #rescanAt = Number.NEGATIVE_INFINITY;

  /** Tombstones in the order they were written; the oldest is forgotten first. */
  #ring: Entry[] = [];
  #cursor = 0;
  #tombstones = 0;
  /** The last entry that left the ring, reused by the next `put` (no allocation in steady state). */
  #spare: Entry | null = null;
  /**
   * Released sessions remembered (as one tombstone each): id -> reason and the ring slot that owns
   * the entry. The ring forgets the oldest in O(1); `Map#keys().next()` after many deletions from the
   * front walks V8's deleted-entry holes and cost microseconds per release.
   */
  readonly #releasedSessions = new Map<string, { reason: RefGoneReason; slot: number }>();
  #releasedRing: (string | undefined)[] = [];
  #releasedNext = 0;

  #evictedTtl = 0;
  #evictedLru = 0;
  #evictedSessions = 0;

  constructor({
    maxRefs = 1_000_000,
    idleMs = 60_000,
    maxTombstones = 10_000,
    onEvict,
  }: MemoryRefStoreOptions) {
    if (!isCount(maxRefs)) invalid(`maxRefs must be an integer >= 1 or Infinity, got ${describe(maxRefs)}`);
    if (typeof idleMs !== 'number' || !(idleMs > 0)) {
      invalid(`idleMs must be a number > 0 or Infinity, got ${describe(idleMs)}`);
    }
    if (!Number.isInteger(maxTombstones) || maxTombstones < 0) {
      invalid(`maxTombstones must be an integer >= 0, got ${describe(maxTombstones)}`);
    }
    if (onEvict !== undefined && typeof onEvict !== 'function') {
      invalid(`onEvict must be a function, got ${describe(onEvict)}`);
    }
    this.#maxRefs = maxRefs;
    this.#idleMs = idleMs;
    this.#maxTombstones = maxTombstones;
    this.#onEvict = onEvict;
  }

  get size(): number {
    return this.#size;
  }

  openSession(sessionId: string, limits: SessionLimits, now: number): void {
    checkId('sessionId', sessionId);
    checkLimits(sessionId, limits);
    checkNow(now);
    let session = this.#sessions.get(sessionId);
    if (session === undefined) {
      session = new Session(sessionId, limits, now);
      this.#sessions.set(sessionId, session);
      if (limits.ttlMs < this.#minTtlMs) this.#minTtlMs = limits.ttlMs;
      this.#releasedSessions.delete(sessionId);
      return;
    }
    session.maxRefs = limits.maxRefs;
    session.ttlMs = limits.ttlMs;
    if (now > session.touchedAt) session.touchedAt = now;
    if (limits.ttlMs < this.#minTtlMs) this.#minTtlMs = limits.ttlMs;
    if (session.head !== null && session.head.lastAccess + limits.ttlMs < this.#nextExpiry) {
      this.#nextExpiry = session.head.lastAccess + limits.ttlMs;
    }
    if (session.size <= session.maxRefs) return;
    // A lowered cap is enforced now; openSession returns nothing, so onEvict is the only report.
    const evictions: RefEviction[] = [];
    while (session.size > session.maxRefs) evictions.push(this.#evict(session.head!, 'lru'));
    this.#deliver(evictions);
  }

  hasSession(sessionId: string): boolean {
    return this.#sessions.has(sessionId);
  }

  put(ref: Ref, now: number): readonly RefEviction[] {
    if (typeof ref !== 'object' || ref === null || !Number.isFinite(now)) this.#checkPut(ref, now);
    const id = ref.id;
    const session = this.#sessions.get(ref.sessionId);
    if (session === undefined || typeof id !== 'string' || id.length === 0) this.#checkPut(ref, now);
    let evictions: RefEviction[] | undefined;
    const existing = this.#index.get(id);
    if (existing !== undefined && existing.reason === undefined) {
      if (now - existing.lastAccess < existing.session.ttlMs) {
        if (existing.session !== session) {
          throw new SessionMismatchError(id, existing.session.id, ref.sessionId);
        }
        existing.ref = ref;
        this.#touch(session, existing, now);
        return EMPTY;
      }
      evictions = [this.#evict(existing, 'ttl')];
    }
    const head = session.head;
    if (head !== null && now - head.lastAccess >= session.ttlMs) {
      evictions = this.#expire(session, now, evictions ?? []);
    }
    if (session.size === session.maxRefs) {
      // At its own cap: dropping its least recently used ref keeps the total unchanged.
      const evicted = this.#evict(session.head!, 'lru');
      if (evictions === undefined) evictions = [evicted];
      else evictions.push(evicted);
    } else if (session.size > session.maxRefs || this.#size >= this.#maxRefs) {
      evictions = this.#makeRoom(session, ref, now, evictions ?? []);
    }
    if (existing !== undefined && !existing.detached) {
      // The tombstone stays in the ring until it ages out, but no longer counts (or owns the id).
      existing.detached = true;
      this.#tombstones--;
    }
    let entry = this.#spare;
    if (entry === null) entry = new Entry(ref, session, now);
    else {
      this.#spare = null;
      entry.id = id;
      entry.ref = ref;
      entry.session = session;
      entry.lastAccess = now;
      entry.reason = undefined;
      entry.detached = false;
    }
    const tail = session.tail;
    if (tail === null) session.head = entry;
    else {
      tail.next = entry;
      entry.prev = tail;
    }
    session.tail = entry;
    session.size++;
    this.#size++;
    this.#index.set(id, entry);
    if (evictions === undefined) return EMPTY;
    this.#deliver(evictions);
    return evictions;
  }

  get(sessionId: string, refId: string, now: number): Ref {
    const entry = this.#index.get(refId);
    if (entry !== undefined) {
      const session = entry.session;
      if (session.id === sessionId && entry.reason === undefined && now - entry.lastAccess < session.ttlMs) {
        entry.lastAccess = now;
        if (session.tail !== entry) this.#moveToTail(session, entry);
        return entry.ref;
      }
    }
    return this.#getMissed(sessionId, refId, entry, now);
  }

  has(sessionId: string, refId: string, now: number): boolean {
    const entry = this.#index.get(refId);
    if (entry !== undefined && entry.reason === undefined && entry.session.id === sessionId) {
      if (now - entry.lastAccess < entry.session.ttlMs) return true;
      checkNow(now);
      this.#deliver([this.#evict(entry, 'ttl')]);
      return false;
    }
    checkId('sessionId', sessionId);
    checkId('refId', refId);
    return false;
  }

  list(sessionId: string, now: number): readonly Ref[] {
    checkId('sessionId', sessionId);
    checkNow(now);
    const session = this.#sessions.get(sessionId);
    if (session === undefined || session.head === null) return EMPTY;
    const refs: Ref[] = [];
    const expired: Entry[] = [];
    for (let entry: Entry | null = session.head; entry !== null; entry = entry.next) {
      if (now - entry.lastAccess >= session.ttlMs) expired.push(entry);
      else refs.push(entry.ref);
    }
    if (expired.length > 0) this.#deliver(expired.map((entry) => this.#evict(entry, 'ttl')));
    return refs;
  }

  release(sessionId: string, refId: string): boolean {
    checkId('sessionId', sessionId);
    checkId('refId', refId);
    const entry = this.#index.get(refId);
    if (entry === undefined || entry.reason !== undefined || entry.session.id !== sessionId) return false;
    this.#drop(entry, 'released');
    return true;
  }

  releaseSession(sessionId: string, reason: RefGoneReason): readonly Ref[] {
    checkId('sessionId', sessionId);
    if (!GONE_REASONS.has(reason)) {
      invalid(`reason must be one of ${[...GONE_REASONS].join(', ')}, got ${describe(reason)}`);
    }
    const session = this.#sessions.get(sessionId);
    if (session === undefined) return EMPTY;
    this.#sessions.delete(sessionId);
    session.open = false;
    // One tombstone for the whole session instead of one per ref: O(1) to remember.
    this.#rememberSession(sessionId, reason);
    const refs: Ref[] = new Array(session.size);
    let i = 0;
    for (let entry: Entry | null = session.head; entry !== null; ) {
      const next: Entry | null = entry.next;
      refs[i++] = entry.ref;
      this.#index.delete(entry.id);
      entry.prev = null;
      entry.next = null;
      entry = next;
    }
    this.#size -= session.size;
    session.size = 0;
    session.head = null;
    session.tail = null;
    return refs;
  }

  sweep(now: number): readonly RefEviction[] {
    checkNow(now);
    if (this.#nothingExpired(now)) return EMPTY;
    const evictions: RefEviction[] = [];
    this.#sweepInto(now, evictions);
    if (evictions.length === 0) return EMPTY;
    this.#deliver(evictions);
    return evictions;
  }

  sessionIds(): readonly string[] {
    return [...this.#sessions.keys()];
  }

  stats(): MemoryRefStoreStats {
    return {
      sessions: this.#sessions.size,
      refs: this.#size,
      evictions: { ttl: this.#evictedTtl, lru: this.#evictedLru, sessions: this.#evictedSessions },
      tombstones: this.#tombstones,
    };
  }

  dispose(): void {
    // Mark before clearing: handles a caller still holds must see their session closed.
    for (const session of this.#sessions.values()) session.open = false;
    this.#sessions.clear();
    this.#index.clear();
    this.#releasedSessions.clear();
    this.#releasedRing = [];
    this.#releasedNext = 0;
    this.#idleQueue = [];
    this.#idleStamps = [];
    this.#idleNext = 0;
    this.#rescanAt = Number.NEGATIVE_INFINITY;
    this.#size = 0;
    this.#nextExpiry = Number.POSITIVE_INFINITY;
    this.#sweptAt = Number.NEGATIVE_INFINITY;
    this.#minTtlMs = Number.POSITIVE_INFINITY;
    this.#ring = [];
    this.#cursor = 0;
    this.#tombstones = 0;
    this.#spare = null;
    this.#evictedTtl = 0;
    this.#evictedLru = 0;
    this.#evictedSessions = 0;
  }

  // ---- slow paths ----

  #checkPut(ref: Ref, now: number): never {
    if (typeof ref !== 'object' || ref === null) invalid(`ref must be a Ref, got ${describe(ref)}`);
    checkId('ref.id', ref.id);
    checkId('ref.sessionId', ref.sessionId);
    checkNow(now);
    throw new RefRegistryError(
      RefRegistryErrorCode.SessionNotFound,
      `cannot put reference '${ref.id}' in store "${NAME}": session '${ref.sessionId}' is not open`,
    );
  }

  #getMissed(sessionId: string, refId: string, entry: Entry | undefined, now: number): never {
    checkId('sessionId', sessionId);
    checkId('refId', refId);
    checkNow(now);
    if (entry !== undefined && entry.reason === undefined) {
      // Held, but expired or by another session. An expired ref is gone whoever asks; a live ref of
      // another session is neither returned nor touched.
      if (now - entry.lastAccess < entry.session.ttlMs) {
        throw new SessionMismatchError(refId, entry.session.id, sessionId);
      }
      this.#deliver([this.#evict(entry, 'ttl')]);
      if (entry.session.id === sessionId) throw new RefNotFoundError(refId, sessionId, 'ttl');
    }
    throw new RefNotFoundError(refId, sessionId, this.#goneReason(sessionId, refId));
  }

  /** Why a ref is gone, when it belonged to `sessionId` and the store still remembers it. */
  #goneReason(sessionId: string, refId: string): RefGoneReason | undefined {
    const tombstone = this.#index.get(refId);
    if (tombstone?.reason !== undefined && tombstone.ref.sessionId === sessionId) return tombstone.reason;
    return this.#sessions.has(sessionId) ? undefined : this.#releasedSessions.get(sessionId)?.reason;
  }

  /**
   * Makes room for one more ref in `session`: the global cap first (expired refs anywhere, then the
   * least recently used idle session, whole), then the session's own cap (its least recently used
   * ref). Refuses (`REF_STORE_FULL`) before dropping any live ref when the global cap cannot be met.
   */
  #makeRoom(session: Session, ref: Ref, now: number, evictions: RefEviction[]): RefEviction[] {
    const ownExcess = session.size >= session.maxRefs ? session.size - session.maxRefs + 1 : 0;
    // The store never holds more than maxRefs, so a put is at most one ref over the global cap.
    let over = this.#size + 1 - ownExcess - this.#maxRefs;
    if (over > 0 && !this.#nothingExpired(now)) {
      const before = evictions.length;
      this.#sweepInto(now, evictions);
      over -= evictions.length - before;
    }
    if (over > 0) {
      const victim = this.#idleSession(session, now);
      if (victim === undefined) {
        throw new RefRegistryError(
          RefRegistryErrorCode.StoreFull,
          `store "${NAME}" is full (maxRefs ${this.#maxRefs}, ${this.#size} refs held): cannot put reference ` +
            `'${ref.id}' in session '${session.id}' because no other session has been idle for ${this.#idleMs} ms`,
        );
      }
      while (victim.head !== null) evictions.push(this.#evict(victim.head, 'lru'));
      this.#evictedSessions++;
    }
    for (let i = 0; i < ownExcess; i++) evictions.push(this.#evict(session.head!, 'lru'));
    return evictions;
  }

  /** The least recently used session, other than `writer`, idle at `now` and holding refs. */
  #idleSession(writer: Session, now: number): Session | undefined {
    for (let rescanned = false; ; rescanned = true) {
      const queue = this.#idleQueue;
      const stamps = this.#idleStamps;
      const usable = (i: number) => {
        const s = queue[i]!;
        const stamp = stamps[i]!;
        return s.open && s.size > 0 && lastAccessOf(s) === stamp && now - stamp >= this.#idleMs;
      };
      let i = this.#idleNext;
      while (i < queue.length && !usable(i)) i++;
      this.#idleNext = i;
      for (let j = i; j < queue.length; j++) if (queue[j] !== writer && usable(j)) return queue[j];
      if (rescanned || now < this.#rescanAt) return undefined;
      this.#scanIdle(now);
    }
  }

  #scanIdle(now: number): void {
    const idle: Session[] = [];
    // A session opened or accessed after this scan cannot be idle before now + idleMs.
    let rescanAt = now + this.#idleMs;
    for (const s of this.#sessions.values()) {
      if (s.size === 0) continue;
      const last = lastAccessOf(s);
      if (now - last >= this.#idleMs) idle.push(s);
      else if (last + this.#idleMs < rescanAt) rescanAt = last + this.#idleMs;
    }
    // Stable: sessions accessed at the same time keep the order they were opened in.
    const stamps = idle.map(lastAccessOf);
    const order = idle.map((_, i) => i).sort((a, b) => stamps[a]! - stamps[b]!);
    this.#idleQueue = order.map((i) => idle[i]!);
    this.#idleStamps = order.map((i) => stamps[i]!);
    this.#idleNext = 0;
    this.#rescanAt = rescanAt;
  }

  /** Drops the expired refs of every session (the least recently used prefix of each list). */
  #sweepInto(now: number, evictions: RefEviction[]): void {
    let nextExpiry = Number.POSITIVE_INFINITY;
    let minTtlMs = Number.POSITIVE_INFINITY;
    for (const s of this.#sessions.values()) {
      if (s.ttlMs < minTtlMs) minTtlMs = s.ttlMs;
      if (s.head === null) continue;
      this.#expire(s, now, evictions);
      if (s.head !== null && s.head.lastAccess + s.ttlMs < nextExpiry)
        nextExpiry = s.head.lastAccess + s.ttlMs;
    }
    this.#nextExpiry = nextExpiry;
    this.#minTtlMs = minTtlMs;
    this.#sweptAt = now;
  }

  #nothingExpired(now: number): boolean {
    return now < this.#nextExpiry && now - this.#sweptAt < this.#minTtlMs;
  }

  #expire(session: Session, now: number, evictions: RefEviction[]): RefEviction[] {
    for (
      let head = session.head;
      head !== null && now - head.lastAccess >= session.ttlMs;
      head = session.head
    ) {
      evictions.push(this.#evict(head, 'ttl'));
    }
    return evictions;
  }

  #evict(entry: Entry, reason: 'ttl' | 'lru'): RefEviction {
    this.#drop(entry, reason);
    if (reason === 'ttl') this.#evictedTtl++;
    else this.#evictedLru++;
    return { ref: entry.ref, reason };
  }

  /** Unlinks a live entry and leaves it in the index as a tombstone (or removes it, when none are kept). */
  #drop(entry: Entry, reason: RefGoneReason): void {
    const session = entry.session;
    const next = entry.next;
    // The session keeps the last access of its most recently used ref when that ref goes.
    if (next === null && entry.lastAccess > session.touchedAt) session.touchedAt = entry.lastAccess;
    if (session.head === entry) {
      // The new head's `prev` is left stale (it is never read on the head): saves touching the new
      // head, a cache miss on every LRU eviction.
      session.head = next;
      if (next === null) session.tail = null;
    } else {
      const prev = entry.prev!;
      prev.next = next;
      if (next === null) session.tail = prev;
      else next.prev = prev;
    }
    entry.prev = null;
    entry.next = null;
    entry.reason = reason;
    session.size--;
    this.#size--;
    const max = this.#maxTombstones;
    if (max === 0) {
      this.#index.delete(entry.id);
      entry.detached = true;
      return;
    }
    const ring = this.#ring;
    if (ring.length < max) ring.push(entry);
    else {
      const oldest = ring[this.#cursor]!;
      if (!oldest.detached) {
        this.#index.delete(oldest.id);
        oldest.detached = true;
        this.#tombstones--;
      }
      // Nothing refers to it any more: not the index, not a list, not the ring.
      this.#spare = oldest;
      ring[this.#cursor] = entry;
      this.#cursor = this.#cursor + 1 === max ? 0 : this.#cursor + 1;
    }
    this.#tombstones++;
  }

  #rememberSession(sessionId: string, reason: RefGoneReason): void {
    const max = this.#maxTombstones;
    if (max === 0) return;
    const released = this.#releasedSessions;
    const ring = this.#releasedRing;
    const slot = this.#releasedNext;
    this.#releasedNext = slot + 1 === max ? 0 : slot + 1;
    const oldest = ring[slot];
    // Forget the oldest only if this slot still owns its entry (it may have been remembered again).
    if (oldest !== undefined && released.get(oldest)?.slot === slot) released.delete(oldest);
    ring[slot] = sessionId;
    released.set(sessionId, { reason, slot });
  }

  #deliver(evictions: readonly RefEviction[]): void {
    const onEvict = this.#onEvict;
    if (onEvict === undefined) return;
    let failure: { error: unknown } | undefined;
    for (const eviction of evictions) {
      try {
        onEvict(eviction);
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure !== undefined) throw failure.error;
  }

  // ---- LRU lists ----

  #touch(session: Session, entry: Entry, now: number): void {
    entry.lastAccess = now;
    if (session.tail !== entry) this.#moveToTail(session, entry);
  }

  /** Moves an entry that is not the tail to the most recently used end. */
  #moveToTail(session: Session, entry: Entry): void {
    const next = entry.next!;
    if (session.head === entry) session.head = next;
    else {
      const prev = entry.prev!;
      prev.next = next;
      next.prev = prev;
    }
    const tail = session.tail!;
    tail.next = entry;
    entry.prev = tail;
    entry.next = null;
    session.tail = entry;
  }
}

function invalid(message: string): never {
  throw new RefRegistryError(RefRegistryErrorCode.InvalidArgument, `${message} (store "${NAME}")`);
}

const isCount = (value: unknown): value is number =>
  value === Number.POSITIVE_INFINITY || (Number.isInteger(value) && (value as number) >= 1);

function checkId(name: string, value: unknown): void {
  if (typeof value !== 'string' || value.length === 0) {
    invalid(`${name} must be a non-empty string, got ${describe(value)}`);
  }
}

function checkNow(now: unknown): void {
  if (!Number.isFinite(now)) invalid(`now must be a finite number, got ${describe(now)}`);
}

function checkLimits(sessionId: string, limits: SessionLimits): void {
  if (typeof limits !== 'object' || limits === null) {
    invalid(`limits of session '${sessionId}' must be an object, got ${describe(limits)}`);
  }
  if (!isCount(limits.maxRefs)) {
    invalid(
      `maxRefs of session '${sessionId}' must be an integer >= 1 or Infinity, got ${describe(limits.maxRefs)}`,
    );
  }
  if (typeof limits.ttlMs !== 'number' || !(limits.ttlMs > 0)) {
    invalid(
      `ttlMs of session '${sessionId}' must be a number > 0 or Infinity, got ${describe(limits.ttlMs)}`,
    );
  }
}
