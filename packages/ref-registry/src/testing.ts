import { afterEach, describe, expect, it, vi } from 'vitest';
import { type RefGoneReason, RefRegistryError, type RefRegistryErrorCode } from './errors';
import { createRef, type Ref } from './ref';
import type { RefEviction, RefStore, SessionLimits } from './store';

/** What {@link testRefStore} gives the store factory for each test. */
export interface RefStoreSuiteFactoryOptions {
  /** The global cap on refs, all sessions together. */
  readonly maxRefs: number;
  /** How long a session must go unaccessed before the global cap may evict it. */
  readonly idleMs: number;
  /** Must be called once for every ref the store drops on its own (`ttl`, `lru`). */
  readonly onEvict: (eviction: RefEviction) => void;
}

/** Options of {@link testRefStore}. */
export interface RefStoreSuiteOptions {
  /**
   * Refs in the large session of the "dropping a session costs O(its refs)" test.
   * @default 50_000
   */
  readonly largeSessionRefs?: number;
}

/** A ref for tests: `typeName` `Object`, `module` `test`. */
export function makeRef(
  sessionId: string,
  id: string,
  fields: { typeName?: string; module?: string } = {},
): Ref {
  return createRef({ id, sessionId, typeName: fields.typeName ?? 'Object', module: fields.module ?? 'test' });
}

/** The error `fn` throws (fails the test if it returns). Checked by fields, not `instanceof`. */
export function thrownBy(fn: () => unknown): RefRegistryError & Record<string, unknown> {
  try {
    fn();
  } catch (error) {
    expect(RefRegistryError.isInstance(error), `expected a RefRegistryError, got ${String(error)}`).toBe(
      true,
    );
    return error as RefRegistryError & Record<string, unknown>;
  }
  throw new Error('expected the call to throw');
}

/** `"id:reason"` per eviction, sorted: compares evictions whatever order a store reports them in. */
export function evictionKeys(evictions: readonly RefEviction[]): string[] {
  return evictions.map(({ ref, reason }) => `${ref.id}:${reason}`).sort();
}

const ids = (refs: readonly Ref[]): string[] => refs.map((ref) => ref.id);
const LONG: SessionLimits = Object.freeze({ maxRefs: 1_000, ttlMs: Number.POSITIVE_INFINITY });

/**
 * The conformance suite every `RefStore` must pass (the built-in memory store does). The factory is
 * called once per test with the global cap, the idle time and an `onEvict` the store must call for
 * every eviction; time is injected through the `now` argument of each call.
 *
 * @example
 * ```ts
 * import { testRefStore } from '@trestle/ref-registry/testing';
 * import { myStore } from './my-store';
 * testRefStore('my-store', (options) => myStore(options));
 * ```
 */
export function testRefStore(
  name: string,
  factory: (options: RefStoreSuiteFactoryOptions) => RefStore,
  options: RefStoreSuiteOptions = {},
): void {
  const { largeSessionRefs = 50_000 } = options;

  describe(`RefStore conformance: ${name}`, () => {
    const created: RefStore[] = [];
    afterEach(() => {
      for (const store of created.splice(0)) store.dispose?.();
    });

    /** A fresh store and the evictions it reports. */
    function setup(overrides: { maxRefs?: number; idleMs?: number } = {}) {
      const evicted: RefEviction[] = [];
      const store = factory({
        maxRefs: overrides.maxRefs ?? 1_000_000,
        idleMs: overrides.idleMs ?? 60_000,
        onEvict: (eviction) => evicted.push(eviction),
      });
      created.push(store);
      return { store, evicted };
    }

    const expectCode = (error: RefRegistryError, code: RefRegistryErrorCode) => expect(error.code).toBe(code);

    it('has a name and contract version 1', () => {
      const { store } = setup();
      expect(typeof store.name).toBe('string');
      expect(store.name.length).toBeGreaterThan(0);
      expect(store.contractVersion).toBe(1);
      expect(store.size).toBe(0);
    });

    it('opens sessions, lists them, and updates their limits when opened again', () => {
      const { store } = setup();
      expect(store.hasSession('a')).toBe(false);
      store.openSession('a', LONG, 0);
      store.openSession('b', LONG, 0);
      store.openSession('a', { maxRefs: 5, ttlMs: 1_000 }, 1);
      expect(store.hasSession('a')).toBe(true);
      expect([...store.sessionIds()].sort()).toEqual(['a', 'b']);
      expect(store.stats().sessions).toBe(2);
      // The new ttl applies: a ref put at 1 is gone at 1001.
      store.put(makeRef('a', 'r1'), 1);
      expect(store.has('a', 'r1', 1_000)).toBe(true);
      expect(store.has('a', 'r1', 1_001)).toBe(false);
    });

    it('puts a ref into its open session and gets it back', () => {
      const { store, evicted } = setup();
      store.openSession('s', LONG, 0);
      const ref = makeRef('s', 'r1', { typeName: 'Pattern', module: 're' });
      expect(store.put(ref, 0)).toEqual([]);
      const got = store.get('s', 'r1', 1);
      expect(got).toMatchObject({ id: 'r1', sessionId: 's', typeName: 'Pattern', module: 're' });
      expect(store.has('s', 'r1', 1)).toBe(true);
      expect(store.size).toBe(1);
      expect(store.stats()).toMatchObject({ sessions: 1, refs: 1 });
      expect(evicted).toEqual([]);
    });

    it('refuses a ref whose session is not open (REF_SESSION_NOT_FOUND)', () => {
      const { store } = setup();
      expectCode(
        thrownBy(() => store.put(makeRef('never', 'r1'), 0)),
        'REF_SESSION_NOT_FOUND',
      );
      store.openSession('gone', LONG, 0);
      store.releaseSession('gone', 'session_released');
      expectCode(
        thrownBy(() => store.put(makeRef('gone', 'r2'), 0)),
        'REF_SESSION_NOT_FOUND',
      );
      expect(store.size).toBe(0);
    });

    it("keeps refs per session: list returns only the session's refs, least recently used first", () => {
      const { store } = setup();
      store.openSession('a', LONG, 0);
      store.openSession('b', LONG, 0);
      store.put(makeRef('a', 'a1'), 1);
      store.put(makeRef('b', 'b1'), 2);
      store.put(makeRef('a', 'a2'), 3);
      store.put(makeRef('a', 'a3'), 4);
      expect(ids(store.list('a', 5))).toEqual(['a1', 'a2', 'a3']);
      expect(ids(store.list('b', 5))).toEqual(['b1']);
      expect(store.list('b', 5).every((ref) => ref.sessionId === 'b')).toBe(true);
      expect(store.size).toBe(4);
    });

    it('get marks a ref used (LRU order); has and list do not', () => {
      const { store } = setup();
      store.openSession('s', LONG, 0);
      for (const id of ['r1', 'r2', 'r3']) store.put(makeRef('s', id), 0);
      store.get('s', 'r1', 1);
      expect(ids(store.list('s', 2))).toEqual(['r2', 'r3', 'r1']);
      store.has('s', 'r2', 3);
      store.list('s', 4);
      expect(ids(store.list('s', 5))).toEqual(['r2', 'r3', 'r1']);
    });

    it('putting a ref id its session already holds replaces the ref and marks it used', () => {
      const { store, evicted } = setup();
      store.openSession('s', LONG, 0);
      store.put(makeRef('s', 'r1'), 0);
      store.put(makeRef('s', 'r2'), 0);
      expect(store.put(makeRef('s', 'r1', { typeName: 'Updated' }), 1)).toEqual([]);
      expect(store.size).toBe(2);
      expect(ids(store.list('s', 2))).toEqual(['r2', 'r1']);
      expect(store.get('s', 'r1', 2).typeName).toBe('Updated');
      expect(evicted).toEqual([]);
    });

    it('never returns or touches a ref of another session: SessionMismatchError', () => {
      const { store } = setup();
      store.openSession('a', { maxRefs: 10, ttlMs: 1_000 }, 0);
      store.openSession('b', LONG, 0);
      store.put(makeRef('a', 'a1'), 0);
      store.put(makeRef('a', 'a2'), 0);
      const error = thrownBy(() => store.get('b', 'a1', 900));
      expectCode(error, 'REF_SESSION_MISMATCH');
      expect(error).toMatchObject({ refId: 'a1', expectedSession: 'a', actualSession: 'b' });
      expect(store.has('b', 'a1', 900)).toBe(false);
      expect(store.release('b', 'a1')).toBe(false);
      // Not touched: still least recently used, and its TTL still runs from 0.
      expect(ids(store.list('a', 900))).toEqual(['a1', 'a2']);
      expect(store.has('a', 'a1', 1_000)).toBe(false);
    });

    it('refuses to put a ref id that another session holds (SessionMismatchError)', () => {
      const { store } = setup();
      store.openSession('a', LONG, 0);
      store.openSession('b', LONG, 0);
      store.put(makeRef('a', 'shared'), 0);
      const error = thrownBy(() => store.put(makeRef('b', 'shared'), 1));
      expectCode(error, 'REF_SESSION_MISMATCH');
      expect(error).toMatchObject({ refId: 'shared', expectedSession: 'a', actualSession: 'b' });
      expect(store.size).toBe(1);
      expect(store.get('a', 'shared', 2).sessionId).toBe('a');
      expect(store.list('b', 2)).toEqual([]);
    });

    it("evicts a session's own least recently used ref past its maxRefs (lru), never another session's", () => {
      const { store, evicted } = setup();
      store.openSession('a', { maxRefs: 2, ttlMs: Number.POSITIVE_INFINITY }, 0);
      store.openSession('b', LONG, 0);
      store.put(makeRef('b', 'b1'), 0);
      store.put(makeRef('a', 'a1'), 1);
      store.put(makeRef('a', 'a2'), 2);
      store.get('a', 'a1', 3);
      const returned = store.put(makeRef('a', 'a3'), 4);
      expect(evictionKeys(returned)).toEqual(['a2:lru']);
      expect(evictionKeys(evicted)).toEqual(['a2:lru']);
      expect(returned[0]?.ref).toMatchObject({ id: 'a2', sessionId: 'a' });
      expect(ids(store.list('a', 5))).toEqual(['a1', 'a3']);
      expect(ids(store.list('b', 5))).toEqual(['b1']);
      expect(thrownBy(() => store.get('a', 'a2', 5))).toMatchObject({ code: 'REF_NOT_FOUND', reason: 'lru' });
    });

    it('enforces a lowered maxRefs when the session is opened again, reporting the evictions', () => {
      const { store, evicted } = setup();
      store.openSession('s', LONG, 0);
      for (let i = 0; i < 5; i++) store.put(makeRef('s', `r${i}`), i);
      store.openSession('s', { maxRefs: 2, ttlMs: Number.POSITIVE_INFINITY }, 10);
      expect(ids(store.list('s', 10))).toEqual(['r3', 'r4']);
      expect(evictionKeys(evicted)).toEqual(['r0:lru', 'r1:lru', 'r2:lru']);
      expect(store.size).toBe(2);
    });

    it('drops a ref not accessed for ttlMs (ttl), found lazily by get, has and list', () => {
      const { store, evicted } = setup();
      store.openSession('s', { maxRefs: 100, ttlMs: 1_000 }, 0);
      for (const id of ['g', 'h', 'l', 'kept']) store.put(makeRef('s', id), 0);
      // Accessed within its TTL, a ref lives on: get renews it.
      expect(store.get('s', 'kept', 999).id).toBe('kept');
      expect(thrownBy(() => store.get('s', 'g', 1_000))).toMatchObject({
        code: 'REF_NOT_FOUND',
        refId: 'g',
        sessionId: 's',
        reason: 'ttl',
      });
      expect(store.has('s', 'h', 1_000)).toBe(false);
      expect(ids(store.list('s', 1_000))).toEqual(['kept']);
      expect(evictionKeys(evicted)).toEqual(['g:ttl', 'h:ttl', 'l:ttl']);
      expect(store.size).toBe(1);
      expect(store.get('s', 'kept', 1_998).id).toBe('kept');
      expect(thrownBy(() => store.get('s', 'h', 1_999))).toMatchObject({ reason: 'ttl' });
    });

    it('sweep drops the refs past their TTL in every session, and only those', () => {
      const { store, evicted } = setup();
      store.openSession('short', { maxRefs: 100, ttlMs: 100 }, 0);
      store.openSession('long', { maxRefs: 100, ttlMs: 10_000 }, 0);
      store.openSession('forever', { maxRefs: 100, ttlMs: Number.POSITIVE_INFINITY }, 0);
      store.put(makeRef('short', 's1'), 0);
      store.put(makeRef('short', 's2'), 50);
      store.put(makeRef('long', 'l1'), 0);
      store.put(makeRef('forever', 'f1'), 0);
      expect(store.sweep(99)).toEqual([]);
      store.get('short', 's1', 99);
      const swept = store.sweep(150);
      expect(evictionKeys(swept)).toEqual(['s2:ttl']);
      expect(evictionKeys(evicted)).toEqual(['s2:ttl']);
      expect(evictionKeys(store.sweep(1_000_000))).toEqual(['l1:ttl', 's1:ttl']);
      expect(store.sweep(2_000_000)).toEqual([]);
      expect(ids(store.list('forever', 2_000_000))).toEqual(['f1']);
      expect(store.size).toBe(1);
      // A session opened after a sweep, with a shorter TTL than any before, is swept on time.
      store.openSession('shorter', { maxRefs: 100, ttlMs: 10 }, 2_000_000);
      store.put(makeRef('shorter', 'x1'), 2_000_000);
      expect(evictionKeys(store.sweep(2_000_010))).toEqual(['x1:ttl']);
      // So is a session whose TTL is shortened.
      store.openSession('forever', { maxRefs: 100, ttlMs: 5 }, 2_000_010);
      expect(evictionKeys(store.sweep(2_000_015))).toEqual(['f1:ttl']);
    });

    it('at the global cap evicts whole idle sessions, least recently used first, and reports them', () => {
      const { store, evicted } = setup({ maxRefs: 6, idleMs: 1_000 });
      for (const [session, at] of [
        ['a', 0],
        ['b', 100],
        ['c', 200],
      ] as const) {
        store.openSession(session, LONG, at);
        store.put(makeRef(session, `${session}1`), at);
        store.put(makeRef(session, `${session}2`), at);
      }
      store.get('a', 'a1', 300); // a is now the most recently used session
      store.openSession('d', LONG, 2_000);
      const returned = store.put(makeRef('d', 'd1'), 2_000);
      expect(evictionKeys(returned)).toEqual(['b1:lru', 'b2:lru']);
      expect(evictionKeys(evicted)).toEqual(['b1:lru', 'b2:lru']);
      expect(store.size).toBe(5);
      expect(store.stats().evictions.sessions).toBe(1);
      expect(thrownBy(() => store.get('b', 'b1', 2_001))).toMatchObject({
        code: 'REF_NOT_FOUND',
        reason: 'lru',
      });
      expect(ids(store.list('a', 2_001))).toEqual(['a2', 'a1']);
      expect(ids(store.list('c', 2_001))).toEqual(['c1', 'c2']);
    });

    it('never evicts the session being written to, even when it is the least recently used', () => {
      const { store, evicted } = setup({ maxRefs: 4, idleMs: 1_000 });
      store.openSession('writer', LONG, 0);
      store.openSession('other', LONG, 0);
      for (const id of ['w1', 'w2', 'w3']) store.put(makeRef('writer', id), 0);
      store.put(makeRef('other', 'o1'), 10);
      const returned = store.put(makeRef('writer', 'w4'), 5_000);
      expect(evictionKeys(returned)).toEqual(['o1:lru']);
      expect(evictionKeys(evicted)).toEqual(['o1:lru']);
      expect(ids(store.list('writer', 5_000))).toEqual(['w1', 'w2', 'w3', 'w4']);
    });

    it('refuses a ref at the global cap when no other session is idle (REF_STORE_FULL), changing nothing', () => {
      const { store, evicted } = setup({ maxRefs: 4, idleMs: 10_000 });
      store.openSession('a', LONG, 0);
      store.openSession('b', LONG, 0);
      store.openSession('c', LONG, 0);
      for (const id of ['a1', 'a2']) store.put(makeRef('a', id), 0);
      for (const id of ['b1', 'b2']) store.put(makeRef('b', id), 10);
      const error = thrownBy(() => store.put(makeRef('c', 'c1'), 100));
      expectCode(error, 'REF_STORE_FULL');
      expect(error.message).toContain("'c'");
      expect(error.message).toContain('4');
      expect(evicted).toEqual([]);
      expect(store.size).toBe(4);
      expect(ids(store.list('a', 100))).toEqual(['a1', 'a2']);
      expect(ids(store.list('b', 100))).toEqual(['b1', 'b2']);
      expect(store.list('c', 100)).toEqual([]);
      // Once a session has been idle long enough, the same put succeeds.
      expect(evictionKeys(store.put(makeRef('c', 'c1'), 10_005))).toEqual(['a1:lru', 'a2:lru']);
      expect(store.get('c', 'c1', 10_006).id).toBe('c1');
    });

    it('says why a ref is gone (RefNotFoundError.reason), and nothing for an unknown ref', () => {
      const { store } = setup();
      store.openSession('s', { maxRefs: 1, ttlMs: 1_000 }, 0);
      store.openSession('t', LONG, 0);
      store.openSession('w', LONG, 0);
      store.put(makeRef('s', 'evicted'), 0);
      store.put(makeRef('s', 'expired'), 1);
      store.put(makeRef('t', 'released'), 0);
      store.put(makeRef('t', 'in-session'), 0);
      store.put(makeRef('w', 'in-crashed'), 0);
      store.release('t', 'released');
      store.sweep(2_000);
      store.releaseSession('t', 'session_released');
      store.releaseSession('w', 'worker_restarted');
      const reasonOf = (session: string, id: string) => {
        const error = thrownBy(() => store.get(session, id, 2_001));
        expect(error).toMatchObject({ code: 'REF_NOT_FOUND', refId: id, sessionId: session });
        return error.reason as RefGoneReason | undefined;
      };
      expect(reasonOf('s', 'evicted')).toBe('lru');
      expect(reasonOf('s', 'expired')).toBe('ttl');
      expect(reasonOf('t', 'released')).toBe('released');
      expect(reasonOf('t', 'in-session')).toBe('session_released');
      expect(reasonOf('w', 'in-crashed')).toBe('worker_restarted');
      expect(reasonOf('s', 'never-existed')).toBeUndefined();
    });

    it('release drops one ref and says whether it was there; it is not an eviction', () => {
      const { store, evicted } = setup();
      store.openSession('s', LONG, 0);
      store.put(makeRef('s', 'r1'), 0);
      store.put(makeRef('s', 'r2'), 0);
      expect(store.release('s', 'r1')).toBe(true);
      expect(store.release('s', 'r1')).toBe(false);
      expect(store.release('s', 'unknown')).toBe(false);
      expect(store.has('s', 'r1', 1)).toBe(false);
      expect(ids(store.list('s', 1))).toEqual(['r2']);
      expect(store.size).toBe(1);
      expect(evicted).toEqual([]);
    });

    it('releaseSession drops the session and returns its refs; it is idempotent', () => {
      const { store, evicted } = setup();
      store.openSession('a', LONG, 0);
      store.openSession('b', LONG, 0);
      for (const id of ['a1', 'a2', 'a3']) store.put(makeRef('a', id), 0);
      store.put(makeRef('b', 'b1'), 0);
      expect(ids(store.releaseSession('a', 'session_released')).sort()).toEqual(['a1', 'a2', 'a3']);
      expect(store.hasSession('a')).toBe(false);
      expect(store.sessionIds()).toEqual(['b']);
      expect(store.size).toBe(1);
      expect(store.releaseSession('a', 'session_released')).toEqual([]);
      expect(store.releaseSession('never-opened', 'session_released')).toEqual([]);
      expect(store.has('a', 'a1', 1)).toBe(false);
      expect(store.list('a', 1)).toEqual([]);
      expect(ids(store.list('b', 1))).toEqual(['b1']);
      expect(evicted).toEqual([]);
      // A session can be opened again under the same id, empty.
      store.openSession('a', LONG, 2);
      expect(store.list('a', 2)).toEqual([]);
      store.put(makeRef('a', 'a1'), 2);
      expect(store.get('a', 'a1', 3).id).toBe('a1');
    });

    it('drops a session in O(its refs), not O(all refs)', () => {
      const timeSmallSessions = (store: RefStore, rounds: number) => {
        const started = performance.now();
        for (let i = 0; i < rounds; i++) {
          store.openSession(`small-${i}`, LONG, 1);
          store.put(makeRef(`small-${i}`, `small-ref-${i}`), 1);
          store.releaseSession(`small-${i}`, 'session_released');
        }
        return performance.now() - started;
      };
      const { store: empty } = setup();
      const { store: crowded } = setup();
      crowded.openSession('big', { maxRefs: Number.POSITIVE_INFINITY, ttlMs: Number.POSITIVE_INFINITY }, 0);
      for (let i = 0; i < largeSessionRefs; i++) crowded.put(makeRef('big', `big-${i}`), 0);
      timeSmallSessions(empty, 200);
      timeSmallSessions(crowded, 200);
      const rounds = 2_000;
      const baseline = Math.min(timeSmallSessions(empty, rounds), timeSmallSessions(empty, rounds));
      const withBig = Math.min(timeSmallSessions(crowded, rounds), timeSmallSessions(crowded, rounds));
      // O(all refs) would make this largeSessionRefs times slower; allow generous noise.
      expect(withBig).toBeLessThan(baseline * 10 + 20);
      expect(crowded.size).toBe(largeSessionRefs);
      const started = performance.now();
      expect(crowded.releaseSession('big', 'session_released')).toHaveLength(largeSessionRefs);
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(crowded.size).toBe(0);
    });

    it('reports every eviction through onEvict, as it returns them', () => {
      const { store, evicted } = setup({ maxRefs: 4, idleMs: 100 });
      const returned: RefEviction[] = [];
      store.openSession('a', { maxRefs: 2, ttlMs: 500 }, 0);
      store.openSession('b', { maxRefs: 10, ttlMs: 10_000 }, 0);
      for (let i = 0; i < 4; i++) returned.push(...store.put(makeRef('a', `a${i}`), i));
      returned.push(...store.put(makeRef('b', 'b1'), 10));
      returned.push(...store.put(makeRef('b', 'b2'), 10));
      returned.push(...store.sweep(600));
      store.openSession('a', { maxRefs: 2, ttlMs: 500 }, 700);
      returned.push(...store.put(makeRef('a', 'a9'), 700));
      returned.push(...store.put(makeRef('a', 'a10'), 700));
      returned.push(...store.put(makeRef('a', 'a11'), 700)); // a at its own cap: a9
      store.openSession('c', { maxRefs: 10, ttlMs: 10_000 }, 700);
      returned.push(...store.put(makeRef('c', 'c1'), 700)); // global cap: b is idle
      expect(evictionKeys(evicted)).toEqual(evictionKeys(returned));
      expect(evictionKeys(evicted)).toEqual(
        ['a0:lru', 'a1:lru', 'a2:ttl', 'a3:ttl', 'a9:lru', 'b1:lru', 'b2:lru'].sort(),
      );
      expect(store.stats().evictions).toEqual({ ttl: 2, lru: 5, sessions: 1 });
    });

    it('rejects invalid arguments (REF_INVALID_ARGUMENT)', () => {
      const { store } = setup();
      const bad = [
        () => store.openSession('', LONG, 0),
        () => store.openSession('s', { maxRefs: 0, ttlMs: 1_000 }, 0),
        () => store.openSession('s', { maxRefs: -1, ttlMs: 1_000 }, 0),
        () => store.openSession('s', { maxRefs: Number.NaN, ttlMs: 1_000 }, 0),
        () => store.openSession('s', { maxRefs: 10, ttlMs: 0 }, 0),
        () => store.openSession('s', { maxRefs: 10, ttlMs: -5 }, 0),
        () => store.openSession('s', { maxRefs: 10, ttlMs: Number.NaN }, 0),
      ];
      for (const call of bad) expectCode(thrownBy(call), 'REF_INVALID_ARGUMENT');
      expect(store.sessionIds()).toEqual([]);
      store.openSession('s', { maxRefs: Number.POSITIVE_INFINITY, ttlMs: Number.POSITIVE_INFINITY }, 0);
      const emptyId = { ...makeRef('s', 'x'), id: '' } as Ref;
      expectCode(
        thrownBy(() => store.put(emptyId, 0)),
        'REF_INVALID_ARGUMENT',
      );
      expectCode(
        thrownBy(() => store.get('s', '', 0)),
        'REF_INVALID_ARGUMENT',
      );
      expectCode(
        thrownBy(() => store.get('', 'x', 0)),
        'REF_INVALID_ARGUMENT',
      );
      expect(store.size).toBe(0);
    });

    it('uses no timers: time comes only from the now of each call', () => {
      vi.useFakeTimers();
      try {
        const { store } = setup({ maxRefs: 3, idleMs: 10 });
        store.openSession('a', { maxRefs: 2, ttlMs: 100 }, 0);
        store.openSession('b', { maxRefs: 2, ttlMs: 100 }, 0);
        for (let i = 0; i < 3; i++) store.put(makeRef('a', `a${i}`), i);
        store.put(makeRef('b', 'b0'), 50);
        store.get('b', 'b0', 60);
        store.sweep(500);
        expect(vi.getTimerCount()).toBe(0);
      } finally {
        vi.useRealTimers();
      }
    });

    it('dispose (when the store has it) drops everything and is idempotent', () => {
      const { store } = setup();
      if (store.dispose === undefined) return;
      store.openSession('s', LONG, 0);
      store.put(makeRef('s', 'r1'), 0);
      store.dispose();
      store.dispose();
      expect(store.size).toBe(0);
      expect(store.sessionIds()).toEqual([]);
    });
  });
}
