import { describe, expect, it } from 'vitest';
import type { RefEviction, SessionLimits } from '../store';
import { evictionKeys, makeRef, thrownBy } from '../testing';
import { memoryRefStore } from './memory';

const LONG: SessionLimits = { maxRefs: 1_000_000, ttlMs: Number.POSITIVE_INFINITY };

describe('memoryRefStore: options', () => {
  it('has the name "memory" and validates its options (REF_INVALID_ARGUMENT)', () => {
    expect(memoryRefStore().name).toBe('memory');
    for (const options of [
      { maxRefs: 0 },
      { maxRefs: 1.5 },
      { maxRefs: Number.NaN },
      { idleMs: 0 },
      { idleMs: -1 },
      { idleMs: Number.NaN },
      { maxTombstones: -1 },
      { maxTombstones: 2.5 },
      { maxTombstones: Number.POSITIVE_INFINITY },
      { onEvict: 'not a function' as unknown as () => void },
    ]) {
      expect(thrownBy(() => memoryRefStore(options)).code, JSON.stringify(options)).toBe(
        'REF_INVALID_ARGUMENT',
      );
    }
    expect(() =>
      memoryRefStore({ maxRefs: Number.POSITIVE_INFINITY, idleMs: 1, maxTombstones: 0 }),
    ).not.toThrow();
  });

  it('rejects a non-finite now and an unknown releaseSession reason', () => {
    const store = memoryRefStore();
    expect(thrownBy(() => store.openSession('s', LONG, Number.NaN)).code).toBe('REF_INVALID_ARGUMENT');
    store.openSession('s', LONG, 0);
    expect(thrownBy(() => store.put(makeRef('s', 'r'), Number.NaN)).code).toBe('REF_INVALID_ARGUMENT');
    store.put(makeRef('s', 'r'), 0);
    expect(thrownBy(() => store.get('s', 'r', Number.NaN)).code).toBe('REF_INVALID_ARGUMENT');
    expect(thrownBy(() => store.sweep(Number.POSITIVE_INFINITY)).code).toBe('REF_INVALID_ARGUMENT');
    expect(thrownBy(() => store.releaseSession('s', 'bored' as 'released')).code).toBe(
      'REF_INVALID_ARGUMENT',
    );
    expect(store.get('s', 'r', 1).id).toBe('r');
  });
});

describe('memoryRefStore: tombstones', () => {
  it('remembers at most maxTombstones gone refs, forgetting the oldest first', () => {
    const store = memoryRefStore({ maxTombstones: 3 });
    store.openSession('s', { maxRefs: 2, ttlMs: Number.POSITIVE_INFINITY }, 0);
    for (let i = 0; i < 7; i++) store.put(makeRef('s', `r${i}`), i); // evicts r0..r4 (lru)
    store.release('s', 'r6');
    expect(store.stats().tombstones).toBe(3);
    expect(thrownBy(() => store.get('s', 'r6', 10)).reason).toBe('released');
    expect(thrownBy(() => store.get('s', 'r4', 10)).reason).toBe('lru');
    expect(thrownBy(() => store.get('s', 'r3', 10)).reason).toBe('lru');
    expect(thrownBy(() => store.get('s', 'r2', 10)).reason).toBeUndefined();
    expect(thrownBy(() => store.get('s', 'r0', 10)).reason).toBeUndefined();
  });

  it('stays bounded (and its count exact) under heavy churn with ids coming back', () => {
    const store = memoryRefStore({ maxTombstones: 100 });
    store.openSession('s', { maxRefs: 50, ttlMs: Number.POSITIVE_INFINITY }, 0);
    for (let i = 0; i < 20_000; i++) {
      const id = `r${(i * 7919) % 300}`;
      store.put(makeRef('s', id), i);
      if (i % 3 === 0) store.release('s', `r${(i * 31) % 300}`);
      const { tombstones } = store.stats();
      if (tombstones < 0 || tombstones > 100) expect.fail(`tombstones = ${tombstones} at ${i}`);
    }
    // Every live ref still reads back as itself.
    for (const ref of store.list('s', 20_000)) expect(store.get('s', ref.id, 20_000)).toBe(ref);
    expect(store.size).toBeLessThanOrEqual(50);
  });

  it('forgets nothing about ids that are live again, and nothing leaks between sessions', () => {
    const store = memoryRefStore();
    store.openSession('a', LONG, 0);
    store.openSession('b', LONG, 0);
    store.put(makeRef('a', 'x'), 0);
    store.release('a', 'x');
    store.put(makeRef('b', 'x'), 1); // the id is free again: another session may hold it
    expect(store.get('b', 'x', 2).sessionId).toBe('b');
    expect(store.stats().tombstones).toBe(0);
    // a's old ref: gone, reason not known to session a any more (the tombstone was replaced).
    expect(thrownBy(() => store.get('a', 'x', 3)).code).toBe('REF_SESSION_MISMATCH');
    store.release('b', 'x');
    expect(thrownBy(() => store.get('a', 'x', 4)).reason).toBeUndefined();
    expect(thrownBy(() => store.get('b', 'x', 4)).reason).toBe('released');
  });

  it('remembers released sessions as a whole, bounded by maxTombstones', () => {
    const store = memoryRefStore({ maxTombstones: 2 });
    for (const id of ['a', 'b', 'c']) {
      store.openSession(id, LONG, 0);
      for (let i = 0; i < 10; i++) store.put(makeRef(id, `${id}${i}`), 0);
      store.releaseSession(id, 'worker_restarted');
    }
    expect(store.stats().tombstones).toBe(0); // no per-ref tombstones for a released session
    expect(thrownBy(() => store.get('a', 'a1', 1)).reason).toBeUndefined();
    expect(thrownBy(() => store.get('b', 'b1', 1)).reason).toBe('worker_restarted');
    expect(thrownBy(() => store.get('c', 'c9', 1)).reason).toBe('worker_restarted');
    // Reopening the session forgets its release.
    store.openSession('c', LONG, 2);
    expect(thrownBy(() => store.get('c', 'c9', 3)).reason).toBeUndefined();
  });

  it('with maxTombstones 0 remembers nothing, but still reports ttl when it finds an expired ref', () => {
    const store = memoryRefStore({ maxTombstones: 0 });
    store.openSession('s', { maxRefs: 1, ttlMs: 100 }, 0);
    store.put(makeRef('s', 'a'), 0);
    store.put(makeRef('s', 'b'), 0);
    expect(thrownBy(() => store.get('s', 'a', 1)).reason).toBeUndefined();
    expect(thrownBy(() => store.get('s', 'b', 100)).reason).toBe('ttl');
    expect(thrownBy(() => store.get('s', 'b', 101)).reason).toBeUndefined();
    store.releaseSession('s', 'session_released');
    expect(thrownBy(() => store.get('s', 'b', 102)).reason).toBeUndefined();
    expect(store.stats().tombstones).toBe(0);
  });
});

describe('memoryRefStore: evictions and stats', () => {
  it('counts ttl and lru evictions per ref and idle sessions evicted by the global cap', () => {
    const evicted: RefEviction[] = [];
    const store = memoryRefStore({ maxRefs: 5, idleMs: 100, onEvict: (eviction) => evicted.push(eviction) });
    store.openSession('a', { maxRefs: 2, ttlMs: 1_000 }, 0);
    store.openSession('b', LONG, 0);
    for (let i = 0; i < 3; i++) store.put(makeRef('a', `a${i}`), 0); // a0: lru
    for (let i = 0; i < 3; i++) store.put(makeRef('b', `b${i}`), 0); // at the cap (5)
    store.openSession('c', LONG, 500);
    store.put(makeRef('c', 'c0'), 500); // evicts a (least recently used, idle): a1, a2
    expect(store.has('b', 'b0', 2_000)).toBe(true);
    store.openSession('d', { maxRefs: 10, ttlMs: 10 }, 2_000);
    store.put(makeRef('d', 'd0'), 2_000);
    expect(store.sweep(2_010)).toHaveLength(1); // d0: ttl
    expect(store.stats()).toEqual({
      sessions: 4,
      refs: 4,
      evictions: { ttl: 1, lru: 3, sessions: 1 },
      tombstones: 4,
    });
    expect(evictionKeys(evicted)).toEqual(['a0:lru', 'a1:lru', 'a2:lru', 'd0:ttl']);
  });

  it('keeps an idle session evicted by the global cap open, and usable', () => {
    const store = memoryRefStore({ maxRefs: 2, idleMs: 10 });
    store.openSession('idle', LONG, 0);
    store.openSession('busy', LONG, 0);
    store.put(makeRef('idle', 'i0'), 0);
    store.put(makeRef('idle', 'i1'), 0);
    expect(evictionKeys(store.put(makeRef('busy', 'b0'), 100))).toEqual(['i0:lru', 'i1:lru']);
    expect(store.hasSession('idle')).toBe(true);
    expect(store.list('idle', 100)).toEqual([]);
    store.put(makeRef('idle', 'i2'), 101);
    expect(store.get('idle', 'i2', 102).id).toBe('i2');
  });

  it('does not evict a session accessed since it was found idle', () => {
    const store = memoryRefStore({ maxRefs: 3, idleMs: 100 });
    for (const id of ['a', 'b', 'c']) {
      store.openSession(id, LONG, 0);
      store.put(makeRef(id, `${id}0`), 0);
    }
    store.openSession('w', LONG, 0);
    expect(evictionKeys(store.put(makeRef('w', 'w0'), 200))).toEqual(['a0:lru']); // b and c idle too
    store.get('b', 'b0', 250); // b is busy again
    expect(evictionKeys(store.put(makeRef('w', 'w1'), 260))).toEqual(['c0:lru']);
    expect(thrownBy(() => store.put(makeRef('w', 'w2'), 270)).code).toBe('REF_STORE_FULL');
    // b idle again: found by a new scan.
    expect(evictionKeys(store.put(makeRef('w', 'w2'), 350))).toEqual(['b0:lru']);
  });

  it('counts a session as accessed when it put or got a ref, even after that ref is gone', () => {
    const store = memoryRefStore({ maxRefs: 3, idleMs: 500 });
    store.openSession('a', LONG, 0);
    store.openSession('b', LONG, 0);
    store.put(makeRef('a', 'a0'), 0);
    store.put(makeRef('a', 'a1'), 900); // a's last access: 900
    store.put(makeRef('b', 'b0'), 900);
    store.release('a', 'a1');
    store.put(makeRef('b', 'b1'), 1_000);
    expect(thrownBy(() => store.put(makeRef('b', 'b2'), 1_100)).code).toBe('REF_STORE_FULL');
    expect(evictionKeys(store.put(makeRef('b', 'b2'), 1_400))).toEqual(['a0:lru']);
  });

  it('never evicts a session as idle when now has gone back since it was found idle', () => {
    const store = memoryRefStore({ maxRefs: 2, idleMs: 500 });
    store.openSession('a', LONG, 0);
    store.openSession('b', LONG, 0);
    store.openSession('w', LONG, 0);
    store.put(makeRef('a', 'a0'), 0);
    store.put(makeRef('b', 'b0'), 0);
    expect(evictionKeys(store.put(makeRef('w', 'w0'), 1_000))).toEqual(['a0:lru']); // b found idle too
    expect(thrownBy(() => store.put(makeRef('w', 'w1'), 300)).code).toBe('REF_STORE_FULL');
  });

  it('refuses at the global cap in constant time while no session can be idle or expired', () => {
    const timeRefusals = (sessions: number) => {
      const store = memoryRefStore({ maxRefs: sessions, idleMs: 1_000 });
      for (let i = 0; i < sessions; i++) {
        store.openSession(`s${i}`, { maxRefs: 10, ttlMs: 5_000 }, 0);
        store.put(makeRef(`s${i}`, `r${i}`), 0);
      }
      const ref = makeRef('s0', 'extra');
      let refused = 0;
      const started = performance.now();
      for (let i = 0; i < 5_000; i++) {
        try {
          store.put(ref, 500);
        } catch (error) {
          if ((error as { code?: string }).code === 'REF_STORE_FULL') refused++;
        }
      }
      const elapsed = performance.now() - started;
      expect(refused).toBe(5_000);
      expect(store.size).toBe(sessions);
      expect(evictionKeys(store.put(ref, 1_000))).toEqual(['r1:lru']);
      return elapsed;
    };
    timeRefusals(10);
    const few = Math.min(timeRefusals(10), timeRefusals(10));
    const many = Math.min(timeRefusals(10_000), timeRefusals(10_000));
    // Scanning 10,000 sessions (for idle ones or expired refs) on every refusal: about 10x slower.
    expect(many).toBeLessThan(few * 3 + 10);
  });

  it('drops expired refs anywhere before evicting idle sessions or refusing at the global cap', () => {
    const evicted: RefEviction[] = [];
    const store = memoryRefStore({
      maxRefs: 3,
      idleMs: 1_000_000,
      onEvict: (eviction) => evicted.push(eviction),
    });
    store.openSession('short', { maxRefs: 10, ttlMs: 50 }, 0);
    store.openSession('long', LONG, 0);
    store.put(makeRef('short', 's0'), 0);
    store.put(makeRef('long', 'l0'), 0);
    store.put(makeRef('long', 'l1'), 0);
    expect(evictionKeys(store.put(makeRef('long', 'l2'), 60))).toEqual(['s0:ttl']);
    // Nothing expired and nothing idle: refused, and nothing else is dropped.
    store.openSession('short', { maxRefs: 10, ttlMs: 50 }, 60);
    expect(thrownBy(() => store.put(makeRef('short', 's1'), 61)).code).toBe('REF_STORE_FULL');
    expect(store.size).toBe(3);
    expect(evictionKeys(evicted)).toEqual(['s0:ttl']);
  });

  it('delivers every eviction to onEvict even when it throws, then rethrows the first error', () => {
    const seen: string[] = [];
    const store = memoryRefStore({
      onEvict: ({ ref }) => {
        seen.push(ref.id);
        throw new Error(`listener failed on ${ref.id}`);
      },
    });
    store.openSession('s', { maxRefs: 10, ttlMs: 10 }, 0);
    for (let i = 0; i < 3; i++) store.put(makeRef('s', `r${i}`), 0);
    expect(() => store.sweep(10)).toThrow('listener failed on r0');
    expect(seen).toEqual(['r0', 'r1', 'r2']);
    expect(store.size).toBe(0);
    expect(store.stats().evictions.ttl).toBe(3);
  });

  it('sweeps each session in least recently used order and returns a shared empty result when idle', () => {
    const store = memoryRefStore();
    store.openSession('s', { maxRefs: 10, ttlMs: 100 }, 0);
    for (let i = 0; i < 4; i++) store.put(makeRef('s', `r${i}`), i);
    store.get('s', 'r0', 50);
    expect(store.sweep(103).map(({ ref }) => ref.id)).toEqual(['r1', 'r2', 'r3']);
    expect(store.sweep(104)).toBe(store.sweep(105));
    expect(Object.isFrozen(store.sweep(106))).toBe(true);
  });

  it('drops a ref expired in another session instead of reporting a mismatch for it', () => {
    const evicted: RefEviction[] = [];
    const store = memoryRefStore({ onEvict: (eviction) => evicted.push(eviction) });
    store.openSession('a', { maxRefs: 10, ttlMs: 100 }, 0);
    store.openSession('b', LONG, 0);
    store.put(makeRef('a', 'x'), 0);
    expect(thrownBy(() => store.get('b', 'x', 50)).code).toBe('REF_SESSION_MISMATCH');
    const error = thrownBy(() => store.get('b', 'x', 100));
    expect(error).toMatchObject({ code: 'REF_NOT_FOUND', sessionId: 'b', reason: undefined });
    expect(evictionKeys(evicted)).toEqual(['x:ttl']);
    expect(thrownBy(() => store.get('a', 'x', 101)).reason).toBe('ttl');
    // The id is free: b may now hold it.
    store.put(makeRef('b', 'x'), 102);
    expect(store.get('b', 'x', 103).sessionId).toBe('b');
  });

  it('never drops a ref early when now goes backwards', () => {
    const store = memoryRefStore();
    store.openSession('s', { maxRefs: 10, ttlMs: 100 }, 1_000);
    store.put(makeRef('s', 'r'), 1_000);
    expect(store.get('s', 'r', 500).id).toBe('r');
    expect(store.sweep(550)).toEqual([]);
    expect(store.has('s', 'r', 599)).toBe(true);
    expect(store.has('s', 'r', 600)).toBe(false);
  });

  it('dispose resets sessions, refs, tombstones and counters, and the store stays usable', () => {
    const store = memoryRefStore();
    store.openSession('s', { maxRefs: 1, ttlMs: 10 }, 0);
    store.put(makeRef('s', 'a'), 0);
    store.put(makeRef('s', 'b'), 0);
    store.dispose();
    expect(store.stats()).toEqual({
      sessions: 0,
      refs: 0,
      evictions: { ttl: 0, lru: 0, sessions: 0 },
      tombstones: 0,
    });
    expect(thrownBy(() => store.get('s', 'a', 1)).reason).toBeUndefined();
    store.openSession('s', LONG, 2);
    store.put(makeRef('s', 'a'), 2);
    expect(store.get('s', 'a', 3).id).toBe('a');
  });
});

describe('memoryRefStore: cost', () => {
  it('releases a session in time proportional to its own refs, not to the store', () => {
    const refs = 200_000;
    const store = memoryRefStore();
    store.openSession('big', LONG, 0);
    for (let i = 0; i < refs; i++) store.put(makeRef('big', `big-${i}`), 0);
    const cycle = (rounds: number) => {
      const started = performance.now();
      for (let i = 0; i < rounds; i++) {
        store.openSession(`s${i}`, LONG, 1);
        for (let j = 0; j < 10; j++) store.put(makeRef(`s${i}`, `s${i}-${j}`), 1);
        expect(store.releaseSession(`s${i}`, 'session_released')).toHaveLength(10);
      }
      return (performance.now() - started) / rounds;
    };
    cycle(200);
    const perSmallSession = cycle(1_000);
    const started = performance.now();
    expect(store.releaseSession('big', 'session_released')).toHaveLength(refs);
    const perBigSession = performance.now() - started;
    // 10 refs vs 200,000 refs: the small release must be far cheaper than the big one.
    expect(perSmallSession).toBeLessThan(perBigSession / 20);
    expect(store.size).toBe(0);
  });

  it('sweeps in time proportional to sessions plus expired refs, not to live refs', () => {
    const store = memoryRefStore();
    store.openSession('live', LONG, 0);
    for (let i = 0; i < 200_000; i++) store.put(makeRef('live', `l${i}`), 0);
    store.openSession('short', { maxRefs: 100, ttlMs: 10 }, 0);
    for (let i = 0; i < 100; i++) store.put(makeRef('short', `s${i}`), 0);
    const started = performance.now();
    for (let now = 20; now < 20_020; now++) store.sweep(now);
    const perSweep = (performance.now() - started) / 20_000;
    expect(perSweep).toBeLessThan(0.05); // 50 us; a walk over 200,000 refs takes milliseconds
    expect(store.size).toBe(200_000);
  });
});
