/**
 * Benchmark 6: @trestle/ref-registry's `memoryRefStore` against lru-cache v11, same keys, same sizes,
 * same run. `get` marks the ref used (LRU + TTL renewed), like lru-cache's `get` with
 * `updateAgeOnGet: true`; `put` inserts a new ref into a full store, so every call evicts the least
 * recently used one, like `set` of a new key into a full cache. Both read `performance.now()` on
 * every call (lru-cache does so internally for `updateAgeOnGet` and for `set` with a TTL).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Ref, RefStore } from '@trestle/ref-registry';
import { LRUCache } from 'lru-cache';
import { type Contender, type Measurement, measureThroughput, type ThroughputOptions } from './harness';
import { compare, readVersion, type ThroughputSection, throughputText } from './report';

/** Live refs in every scenario (all sessions together). */
export const REF_STORE_LIVE_REFS = 10_000;
export const REF_STORE_TTL_MS = 3_600_000;
/** Minimum ratio trestle / lru-cache for get and for put. */
export const REF_STORE_TARGET = 0.8;
export const REF_STORE_OPTIONS = {
  rounds: 8,
  sampleMs: 100,
  warmupMs: 300,
  maxOpsPerSample: 5_000_000,
} as const;

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const distEntry = fileURLToPath(
  new URL('../node_modules/@trestle/ref-registry/dist/index.js', import.meta.url),
);

export type RefStoreOutcome =
  | { readonly skipped: true; readonly reason: string }
  | {
      readonly skipped: false;
      readonly versions: Record<string, string>;
      readonly sections: ThroughputSection[];
    };

/** Runs section [6], prints its tables and returns the outcome (for the JSON) and its missed targets. */
export async function runRefStoreSection(): Promise<{ outcome: RefStoreOutcome; misses: string[] }> {
  const outcome = await runRefStoreBench();
  const misses: string[] = [];
  if (outcome.skipped) {
    console.log(`\n[6] ref store vs lru-cache SKIPPED: ${outcome.reason}`);
    return { outcome, misses };
  }
  for (const section of outcome.sections) {
    console.log(throughputText(section));
    const labels = new Map(section.rows.map((row) => [row.id, row.label]));
    for (const c of section.comparisons) {
      if (c.pass === false) {
        misses.push(
          `[${section.id}] ${labels.get(c.subject)} = ${c.ratio.toFixed(2)}x ${c.peerName} (target >= ${c.target}x)`,
        );
      }
    }
  }
  return { outcome, misses };
}

interface Scenario {
  readonly id: string;
  readonly sessions: number;
}
const SCENARIOS: readonly Scenario[] = [
  { id: '6a', sessions: 1 },
  { id: '6b', sessions: 100 },
];

/** A fixed permutation (mulberry32, seed 6), so every contender visits the same keys in the same order. */
function shuffled<T>(items: readonly T[], seed = 6): T[] {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export async function runRefStoreBench(
  options: ThroughputOptions = REF_STORE_OPTIONS,
): Promise<RefStoreOutcome> {
  if (!existsSync(distEntry)) {
    console.log(
      '@trestle/ref-registry has no dist/: building it (pnpm --filter @trestle/ref-registry run build) ...',
    );
    try {
      execFileSync('pnpm', ['--filter', '@trestle/ref-registry', 'run', 'build'], {
        cwd: repoRoot,
        stdio: 'inherit',
      });
    } catch (error) {
      return { skipped: true, reason: `building @trestle/ref-registry failed: ${String(error)}` };
    }
  }
  const registry = await import('@trestle/ref-registry');
  if (typeof registry.memoryRefStore !== 'function') {
    return {
      skipped: true,
      reason:
        'memoryRefStore is not exported by packages/ref-registry/dist (rebuild it: pnpm --filter @trestle/ref-registry build)',
    };
  }
  const { createRef, memoryRefStore } = registry;
  const sections: ThroughputSection[] = [];
  for (const scenario of SCENARIOS) {
    const perSession = REF_STORE_LIVE_REFS / scenario.sessions;
    const sessionIds = Array.from(
      { length: scenario.sessions },
      (_, s) => `s_${s.toString(16).padStart(24, '0')}`,
    );
    // Twice as many refs as fit, in two halves that each hold exactly perSession refs of every
    // session: the first half is the initial content, and cycling through both halves makes every
    // put a new id into a full session (and a full cache), evicting the least recently used.
    const halves: Ref[][] = [[], []];
    for (const [s, sessionId] of sessionIds.entries()) {
      for (let i = 0; i < perSession * 2; i++) {
        const id = `r_${(s * perSession * 2 + i).toString(16).padStart(24, '0')}`;
        halves[i < perSession ? 0 : 1]!.push(createRef({ id, sessionId, typeName: 'Pattern', module: 're' }));
      }
    }
    const live = shuffled(halves[0]!, 6);
    const cycle = [...live, ...shuffled(halves[1]!, 8)];
    const getOrder = shuffled(live, 7);
    const getSessions = getOrder.map((ref) => ref.sessionId);
    const getIds = getOrder.map((ref) => ref.id);

    const openStore = (): RefStore => {
      const store = memoryRefStore({ maxRefs: 1_000_000 });
      const now = performance.now();
      for (const sessionId of sessionIds)
        store.openSession(sessionId, { maxRefs: perSession, ttlMs: REF_STORE_TTL_MS }, now);
      for (const ref of live) store.put(ref, now);
      return store;
    };
    const openCache = () => {
      const cache = new LRUCache<string, Ref>({
        max: REF_STORE_LIVE_REFS,
        ttl: REF_STORE_TTL_MS,
        updateAgeOnGet: true,
      });
      for (const ref of live) cache.set(ref.id, ref);
      return cache;
    };
    /** What a user would build for per-session caps with lru-cache: one cache per session. */
    const openCaches = () => {
      const caches = new Map<string, LRUCache<string, Ref>>();
      for (const sessionId of sessionIds) {
        caches.set(sessionId, new LRUCache({ max: perSession, ttl: REF_STORE_TTL_MS, updateAgeOnGet: true }));
      }
      for (const ref of live) caches.get(ref.sessionId)!.set(ref.id, ref);
      return caches;
    };

    // Each contender owns its loop (no shared closure), so every timed call site is monomorphic.
    const liveRefs = REF_STORE_LIVE_REFS;
    const getStore = openStore();
    const getCache = openCache();
    const putStore = openStore();
    const putCache = openCache();
    let storeGetAt = 0;
    let cacheGetAt = 0;
    let storePutAt = liveRefs;
    let cachePutAt = liveRefs;
    const contenders: (() => Contender)[] = [
      () => ({
        id: `trestle-get-${scenario.id}`,
        label: 'memoryRefStore.get (touch)',
        mode: 'sync',
        run(n) {
          let ok = 0;
          let k = storeGetAt;
          for (let i = 0; i < n; i++) {
            if (getStore.get(getSessions[k]!, getIds[k]!, performance.now()) !== undefined) ok++;
            if (++k === liveRefs) k = 0;
          }
          storeGetAt = k;
          return ok;
        },
      }),
      () => ({
        id: `lru-get-${scenario.id}`,
        label: 'LRUCache.get (updateAgeOnGet)',
        mode: 'sync',
        run(n) {
          let ok = 0;
          let k = cacheGetAt;
          for (let i = 0; i < n; i++) {
            if (getCache.get(getIds[k]!) !== undefined) ok++;
            if (++k === liveRefs) k = 0;
          }
          cacheGetAt = k;
          return ok;
        },
      }),
      () => ({
        id: `trestle-put-${scenario.id}`,
        label: 'memoryRefStore.put (new ref, evicts)',
        mode: 'sync',
        // ok = exactly one ref evicted: the store is full at every put, as designed.
        run(n) {
          let ok = 0;
          let k = storePutAt;
          for (let i = 0; i < n; i++) {
            if (putStore.put(cycle[k]!, performance.now()).length === 1) ok++;
            if (++k === cycle.length) k = 0;
          }
          storePutAt = k;
          return ok;
        },
      }),
      () => ({
        id: `lru-set-${scenario.id}`,
        label: 'LRUCache.set (new key, evicts)',
        mode: 'sync',
        // ok = the cache is still full (it evicted to make room).
        run(n) {
          let ok = 0;
          let k = cachePutAt;
          for (let i = 0; i < n; i++) {
            const ref = cycle[k]!;
            if (putCache.set(ref.id, ref).size === liveRefs) ok++;
            if (++k === cycle.length) k = 0;
          }
          cachePutAt = k;
          return ok;
        },
      }),
    ];
    if (scenario.sessions === 1) {
      // Information: lru-cache reporting its evictions too (the store returns them, by contract).
      let disposed = 0;
      const reportingCache = new LRUCache<string, Ref>({
        max: liveRefs,
        ttl: REF_STORE_TTL_MS,
        updateAgeOnGet: true,
        dispose: () => {
          disposed++;
        },
      });
      for (const ref of live) reportingCache.set(ref.id, ref);
      let reportingAt = liveRefs;
      contenders.push(() => ({
        id: `lru-set-dispose-${scenario.id}`,
        label: 'LRUCache.set with dispose (reports evictions)',
        mode: 'sync',
        // ok = dispose was called once (one eviction reported).
        run(n) {
          let ok = 0;
          let k = reportingAt;
          for (let i = 0; i < n; i++) {
            const ref = cycle[k]!;
            const before = disposed;
            reportingCache.set(ref.id, ref);
            if (disposed === before + 1) ok++;
            if (++k === cycle.length) k = 0;
          }
          reportingAt = k;
          return ok;
        },
      }));
    }
    if (scenario.sessions > 1) {
      const getCaches = openCaches();
      const putCaches = openCaches();
      let cachesGetAt = 0;
      let cachesPutAt = liveRefs;
      contenders.push(
        () => ({
          id: `lru-sessions-get-${scenario.id}`,
          label: 'Map of LRUCache per session: get',
          mode: 'sync',
          run(n) {
            let ok = 0;
            let k = cachesGetAt;
            for (let i = 0; i < n; i++) {
              if (getCaches.get(getSessions[k]!)!.get(getIds[k]!) !== undefined) ok++;
              if (++k === liveRefs) k = 0;
            }
            cachesGetAt = k;
            return ok;
          },
        }),
        () => ({
          id: `lru-sessions-set-${scenario.id}`,
          label: 'Map of LRUCache per session: set',
          mode: 'sync',
          run(n) {
            let ok = 0;
            let k = cachesPutAt;
            for (let i = 0; i < n; i++) {
              const ref = cycle[k]!;
              const cache = putCaches.get(ref.sessionId)!;
              if (cache.set(ref.id, ref).size === perSession) ok++;
              if (++k === cycle.length) k = 0;
            }
            cachesPutAt = k;
            return ok;
          },
        }),
      );
    }
    const rows: Measurement[] = await measureThroughput(contenders, options);
    const id = scenario.id;
    const comparisons = [
      compare('sync', rows, `trestle-get-${id}`, `lru-get-${id}`, 'lru-cache', REF_STORE_TARGET),
      compare('sync', rows, `trestle-put-${id}`, `lru-set-${id}`, 'lru-cache', REF_STORE_TARGET),
      ...(scenario.sessions === 1
        ? [compare('sync', rows, `trestle-put-${id}`, `lru-set-dispose-${id}`, 'lru-cache with dispose')]
        : []),
      ...(scenario.sessions > 1
        ? [
            compare('sync', rows, `trestle-get-${id}`, `lru-sessions-get-${id}`, 'lru-cache per session'),
            compare('sync', rows, `trestle-put-${id}`, `lru-sessions-set-${id}`, 'lru-cache per session'),
          ]
        : []),
    ];
    const sessionsText =
      scenario.sessions === 1
        ? `ONE session of ${REF_STORE_LIVE_REFS.toLocaleString('en-US')} refs`
        : `${scenario.sessions} sessions of ${perSession} refs`;
    sections.push({
      id,
      title: `[${id}] ref store vs lru-cache: ${REF_STORE_LIVE_REFS.toLocaleString('en-US')} live refs, ${sessionsText} (maxRefs ${perSession} each), ttl 1 h`,
      notes: [
        `get: the live refs in a fixed random order, round robin; put: ${(REF_STORE_LIVE_REFS * 2).toLocaleString('en-US')} refs cycled, so every put is a new id into a full store and evicts the least recently used`,
        `lru-cache ${readVersion('lru-cache')}: one LRUCache({ max: ${REF_STORE_LIVE_REFS}, ttl: 1 h, updateAgeOnGet: true })${scenario.sessions > 1 ? `; per session: a Map of ${scenario.sessions} LRUCache({ max: ${perSession} })` : '; with dispose: the same plus a dispose callback (information: the store returns every eviction)'}`,
        `both read performance.now() on every call; memoryRefStore without onEvict (lru-cache without dispose); ${options.rounds} interleaved rounds of ~${options.sampleMs} ms, ops/s = median round`,
      ],
      okHeader: 'ok',
      rows,
      comparisons,
    });
  }
  return {
    skipped: false,
    versions: {
      '@trestle/ref-registry': readVersion('@trestle/ref-registry'),
      'lru-cache': readVersion('lru-cache'),
    },
    sections,
  };
}
