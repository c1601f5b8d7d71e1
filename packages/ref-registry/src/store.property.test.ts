import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type RefGoneReason, RefRegistryError } from './errors';
import type { Ref } from './ref';
import type { RefEviction, RefStore, SessionLimits } from './store';
import { memoryRefStore } from './stores/memory';
import { makeRef } from './testing';

// ---- operations ----

const SESSIONS = ['s0', 's1', 's2', 's3'] as const;
const REF_IDS = Array.from({ length: 10 }, (_, i) => `r${i}`);
const session = fc.constantFrom(...SESSIONS);
const refId = fc.constantFrom(...REF_IDS);
const limits = fc.record({
  maxRefs: fc.constantFrom(1, 2, 3, 5, Number.POSITIVE_INFINITY),
  ttlMs: fc.constantFrom(20, 100, 400, Number.POSITIVE_INFINITY),
});

const operation = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('open' as const), session, limits }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('put' as const), session, refId }), weight: 6 },
  { arbitrary: fc.record({ op: fc.constant('get' as const), session, refId }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('has' as const), session, refId }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('list' as const), session }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('release' as const), session, refId }), weight: 1 },
  {
    arbitrary: fc.record({
      op: fc.constant('releaseSession' as const),
      session,
      reason: fc.constantFrom<RefGoneReason>('session_released', 'worker_restarted'),
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ op: fc.constant('sweep' as const) }), weight: 1 },
  {
    arbitrary: fc.record({
      op: fc.constant('advance' as const),
      ms: fc.constantFrom(0, 1, 10, 50, 150, 500),
    }),
    weight: 3,
  },
);
type Operation = typeof operation extends fc.Arbitrary<infer T> ? T : never;

const scenario = fc.record({
  maxRefs: fc.constantFrom(3, 6, 10, 1_000),
  idleMs: fc.constantFrom(1, 100, 1_000, Number.POSITIVE_INFINITY),
  /** Limits of the sessions opened before the operations (a session may be released and reopened). */
  initial: fc.array(limits, { minLength: SESSIONS.length, maxLength: SESSIONS.length }),
  operations: fc.array(operation, { minLength: 1, maxLength: 100, size: 'max' }),
});

// ---- a naive reference model: arrays in LRU order, linear scans ----

interface ModelRef {
  readonly ref: Ref;
  last: number;
}
interface ModelSession {
  readonly id: string;
  limits: SessionLimits;
  last: number;
  refs: ModelRef[];
}

class StoreFull extends Error {}

class Model {
  readonly sessions: ModelSession[] = []; // in the order they were opened
  readonly tombstones = new Map<string, { sessionId: string; reason: RefGoneReason }>();
  readonly releasedSessions = new Map<string, RefGoneReason>();
  readonly stats = { ttl: 0, lru: 0, sessions: 0 };
  delivered: string[] = [];

  constructor(
    readonly maxRefs: number,
    readonly idleMs: number,
  ) {}

  get size(): number {
    return this.sessions.reduce((total, s) => total + s.refs.length, 0);
  }
  session(id: string): ModelSession | undefined {
    return this.sessions.find((s) => s.id === id);
  }
  touchSession(s: ModelSession, now: number): void {
    s.last = now;
  }
  find(refId: string): { s: ModelSession; entry: ModelRef } | undefined {
    for (const s of this.sessions) {
      const entry = s.refs.find((e) => e.ref.id === refId);
      if (entry) return { s, entry };
    }
    return undefined;
  }
  expired(s: ModelSession, entry: ModelRef, now: number): boolean {
    return now - entry.last >= s.limits.ttlMs;
  }
  evict(s: ModelSession, entry: ModelRef, reason: 'ttl' | 'lru', out: string[]): void {
    s.refs.splice(s.refs.indexOf(entry), 1);
    this.tombstones.set(entry.ref.id, { sessionId: s.id, reason });
    this.stats[reason]++;
    out.push(`${entry.ref.id}:${reason}`);
    this.delivered.push(`${entry.ref.id}:${reason}`);
  }
  expireAll(s: ModelSession, now: number, out: string[]): void {
    for (const entry of [...s.refs]) if (this.expired(s, entry, now)) this.evict(s, entry, 'ttl', out);
  }

  open(id: string, limits: SessionLimits, now: number): void {
    const s = this.session(id);
    if (!s) {
      this.sessions.push({ id, limits, last: now, refs: [] });
      this.releasedSessions.delete(id);
      return;
    }
    s.limits = limits;
    this.touchSession(s, now);
    while (s.refs.length > limits.maxRefs) this.evict(s, s.refs[0]!, 'lru', []);
  }

  put(ref: Ref, now: number): string[] {
    const s = this.session(ref.sessionId);
    if (!s) throw new Error('REF_SESSION_NOT_FOUND');
    const out: string[] = [];
    const found = this.find(ref.id);
    if (found) {
      if (!this.expired(found.s, found.entry, now)) {
        if (found.s !== s) throw new Error(`REF_SESSION_MISMATCH:${found.s.id}`);
        s.refs.splice(s.refs.indexOf(found.entry), 1);
        s.refs.push({ ref, last: now });
        this.touchSession(s, now);
        return out;
      }
      this.evict(found.s, found.entry, 'ttl', out);
    }
    this.expireAll(s, now, out);
    const ownExcess = Math.max(0, s.refs.length - s.limits.maxRefs + 1);
    let over = this.size + 1 - ownExcess - this.maxRefs;
    if (over > 0) {
      const before = out.length;
      for (const other of this.sessions) if (other !== s) this.expireAll(other, now, out);
      over -= out.length - before;
    }
    if (over > 0) {
      // The least recently used idle session (the first opened among equals), whole.
      let victim: ModelSession | undefined;
      for (const other of this.sessions) {
        if (other === s || other.refs.length === 0 || now - other.last < this.idleMs) continue;
        if (!victim || other.last < victim.last) victim = other;
      }
      if (!victim) throw new StoreFull();
      for (const entry of [...victim.refs]) this.evict(victim, entry, 'lru', out);
      this.stats.sessions++;
    }
    for (let i = 0; i < ownExcess; i++) this.evict(s, s.refs[0]!, 'lru', out);
    s.refs.push({ ref, last: now });
    this.tombstones.delete(ref.id);
    this.touchSession(s, now);
    return out;
  }

  get(sessionId: string, refId: string, now: number): string {
    const found = this.find(refId);
    if (found) {
      const own = found.s.id === sessionId;
      if (!this.expired(found.s, found.entry, now)) {
        if (!own) return `REF_SESSION_MISMATCH:${found.s.id}`;
        found.entry.last = now;
        found.s.refs.splice(found.s.refs.indexOf(found.entry), 1);
        found.s.refs.push(found.entry);
        this.touchSession(found.s, now);
        return `ok:${found.entry.ref.id}`;
      }
      this.evict(found.s, found.entry, 'ttl', []);
      if (own) return 'REF_NOT_FOUND:ttl';
    }
    const tombstone = this.tombstones.get(refId);
    if (tombstone?.sessionId === sessionId) return `REF_NOT_FOUND:${tombstone.reason}`;
    return `REF_NOT_FOUND:${this.session(sessionId) ? undefined : this.releasedSessions.get(sessionId)}`;
  }

  has(sessionId: string, refId: string, now: number): boolean {
    const found = this.find(refId);
    if (!found || found.s.id !== sessionId) return false;
    if (!this.expired(found.s, found.entry, now)) return true;
    this.evict(found.s, found.entry, 'ttl', []);
    return false;
  }

  list(sessionId: string, now: number): string[] {
    const s = this.session(sessionId);
    if (!s) return [];
    this.expireAll(s, now, []);
    return s.refs.map((e) => e.ref.id);
  }

  release(sessionId: string, refId: string): boolean {
    const found = this.find(refId);
    if (!found || found.s.id !== sessionId) return false;
    found.s.refs.splice(found.s.refs.indexOf(found.entry), 1);
    this.tombstones.set(refId, { sessionId, reason: 'released' });
    return true;
  }

  releaseSession(sessionId: string, reason: RefGoneReason): string[] {
    const s = this.session(sessionId);
    if (!s) return [];
    this.sessions.splice(this.sessions.indexOf(s), 1);
    this.releasedSessions.set(sessionId, reason);
    return s.refs.map((e) => e.ref.id);
  }

  sweep(now: number): string[] {
    const out: string[] = [];
    for (const s of this.sessions) this.expireAll(s, now, out);
    return out;
  }
}

// ---- running both ----

const errorText = (error: unknown): string => {
  if (!RefRegistryError.isInstance(error)) throw error;
  const fields = error as RefRegistryError & { reason?: string; expectedSession?: string };
  if (fields.code === 'REF_NOT_FOUND') return `REF_NOT_FOUND:${fields.reason}`;
  if (fields.code === 'REF_SESSION_MISMATCH') return `REF_SESSION_MISMATCH:${fields.expectedSession}`;
  return fields.code;
};
const modelText = (error: unknown): string => {
  if (error instanceof StoreFull) return 'REF_STORE_FULL';
  if (error instanceof Error) return error.message;
  throw error;
};
const keys = (evictions: readonly RefEviction[]) => evictions.map(({ ref, reason }) => `${ref.id}:${reason}`);
const attempt = <T>(fn: () => T, text: (error: unknown) => string): T | string => {
  try {
    return fn();
  } catch (error) {
    return text(error);
  }
};

/** What one operation returns, from the store and from the model, as comparable values. */
function step(store: RefStore, model: Model, operation: Operation, now: number): [unknown, unknown] {
  switch (operation.op) {
    case 'open':
      store.openSession(operation.session, operation.limits, now);
      model.open(operation.session, operation.limits, now);
      return [null, null];
    case 'put': {
      const ref = makeRef(operation.session, operation.refId);
      return [
        attempt(() => keys(store.put(ref, now)).sort(), errorText),
        attempt(() => model.put(ref, now).sort(), modelText),
      ];
    }
    case 'get':
      return [
        attempt(() => {
          const ref = store.get(operation.session, operation.refId, now);
          // A get never returns a ref of another session.
          expect(ref.sessionId).toBe(operation.session);
          return `ok:${ref.id}`;
        }, errorText),
        model.get(operation.session, operation.refId, now),
      ];
    case 'has':
      return [
        store.has(operation.session, operation.refId, now),
        model.has(operation.session, operation.refId, now),
      ];
    case 'list':
      return [store.list(operation.session, now).map((ref) => ref.id), model.list(operation.session, now)];
    case 'release':
      return [
        store.release(operation.session, operation.refId),
        model.release(operation.session, operation.refId),
      ];
    case 'releaseSession':
      return [
        store.releaseSession(operation.session, operation.reason).map((ref) => ref.id),
        model.releaseSession(operation.session, operation.reason),
      ];
    case 'sweep':
      return [keys(store.sweep(now)).sort(), model.sweep(now).sort()];
    case 'advance':
      return [null, null];
  }
}

describe('RefStore properties (memory store against a reference model)', () => {
  it('behaves like the model, and keeps its invariants, under random operation sequences', () => {
    fc.assert(
      fc.property(scenario, ({ maxRefs, idleMs, initial, operations }) => {
        const delivered: RefEviction[] = [];
        const store = memoryRefStore({
          maxRefs,
          idleMs,
          maxTombstones: 1_000,
          onEvict: (e) => delivered.push(e),
        });
        const model = new Model(maxRefs, idleMs);
        /** What the store told us it holds: put minus every reported departure. */
        const shadow = new Map<string, { sessionId: string; last: number }>();
        let now = 1_000;
        for (const [i, sessionLimits] of initial.entries()) {
          store.openSession(SESSIONS[i]!, sessionLimits, now);
          model.open(SESSIONS[i]!, sessionLimits, now);
        }
        for (const [index, operation] of operations.entries()) {
          if (operation.op === 'advance') now += operation.ms;
          delivered.length = 0;
          model.delivered = [];
          const [actual, expected] = step(store, model, operation, now);
          const context = { index, operation, now };
          expect({ ...context, result: actual }).toEqual({ ...context, result: expected });
          expect({ ...context, onEvict: keys(delivered).sort() }).toEqual({
            ...context,
            onEvict: [...model.delivered].sort(),
          });

          // The shadow set, from reports alone.
          for (const { ref, reason } of delivered) {
            const known = shadow.get(ref.id);
            expect(known?.sessionId).toBe(ref.sessionId);
            const s = model.session(ref.sessionId);
            // A ref accessed within its TTL is never dropped by ttl.
            if (reason === 'ttl' && s) expect(now - known!.last).toBeGreaterThanOrEqual(s.limits.ttlMs);
            shadow.delete(ref.id);
          }
          if (operation.op === 'put' && Array.isArray(actual)) {
            shadow.set(operation.refId, { sessionId: operation.session, last: now });
          } else if (operation.op === 'get' && typeof actual === 'string' && actual.startsWith('ok:')) {
            shadow.set(operation.refId, { sessionId: operation.session, last: now });
          } else if (operation.op === 'release' && actual === true) {
            shadow.delete(operation.refId);
          } else if (operation.op === 'releaseSession') {
            for (const id of actual as string[]) shadow.delete(id);
          }

          // Every ref that disappears was reported: the store holds exactly what the reports say.
          expect(store.size).toBe(shadow.size);
          // The global cap holds, and each session stays within its own maxRefs.
          expect(store.size).toBeLessThanOrEqual(maxRefs);
          for (const s of model.sessions) {
            const held = [...shadow.values()].filter((r) => r.sessionId === s.id).length;
            expect(held).toBeLessThanOrEqual(s.limits.maxRefs);
          }
          const stats = store.stats();
          expect(stats.evictions).toEqual(model.stats);
          expect(stats.sessions).toBe(model.sessions.length);
          expect([...store.sessionIds()].sort()).toEqual(model.sessions.map((s) => s.id).sort());
        }
        // At the end, every session lists what the model holds.
        for (const s of SESSIONS) expect(store.list(s, now).map((r) => r.id)).toEqual(model.list(s, now));
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 400) },
    );
  });
});
