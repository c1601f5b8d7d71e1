/**
 * Benchmark 7: the cost of a session scope. `context.withSession(fn)` against a bare
 * `AsyncLocalStorage.run(store, fn)`, for a sync and an async `fn`; plus a scope that is really used
 * (`current()` registers the session, one ref, release at the end) for information.
 * Target: withSession adds less than 1 microsecond per call over AsyncLocalStorage.run.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createSessionContext, createSessionManager } from '@trestle/ref-registry';
import { type Contender, type Measurement, measureThroughput, type ThroughputOptions } from './harness';

export const SESSION_IDS = {
  alsSync: 'als-run-sync',
  scopeSync: 'with-session-sync',
  alsAsync: 'als-run-async',
  scopeAsync: 'with-session-async',
  used: 'with-session-used',
} as const;

export async function runSessionContextBench(options: ThroughputOptions): Promise<Measurement[]> {
  const manager = createSessionManager();
  const context = createSessionContext(manager);
  const storage = new AsyncLocalStorage<{ id: number }>();
  let sink = 0;
  const work = () => {
    sink++;
    return sink;
  };
  const asyncWork = async () => {
    sink++;
    return sink;
  };
  const contenders: (() => Contender)[] = [
    () => ({
      id: SESSION_IDS.alsSync,
      label: 'AsyncLocalStorage.run (sync fn)',
      mode: 'sync',
      run(n) {
        for (let i = 0; i < n; i++) storage.run({ id: i }, work);
        return n;
      },
    }),
    () => ({
      id: SESSION_IDS.scopeSync,
      label: 'withSession (sync fn, session unused)',
      mode: 'sync',
      run(n) {
        for (let i = 0; i < n; i++) context.withSession(work);
        return n;
      },
    }),
    () => ({
      id: SESSION_IDS.alsAsync,
      label: 'AsyncLocalStorage.run (async fn)',
      mode: 'async',
      async run(n) {
        for (let i = 0; i < n; i++) await storage.run({ id: i }, asyncWork);
        return n;
      },
    }),
    () => ({
      id: SESSION_IDS.scopeAsync,
      label: 'withSession (async fn, session unused)',
      mode: 'async',
      async run(n) {
        for (let i = 0; i < n; i++) await context.withSession(asyncWork);
        return n;
      },
    }),
    () => ({
      id: SESSION_IDS.used,
      label: 'withSession (async fn, session used: 1 ref)',
      mode: 'async',
      async run(n) {
        for (let i = 0; i < n; i++) {
          await context.withSession(async () => {
            context.ensure().registerRef({ typeName: 'Pattern', module: 're' });
          });
        }
        return n;
      },
    }),
  ];
  try {
    return await measureThroughput(contenders, options);
  } finally {
    await manager.dispose();
  }
}

/** Nanoseconds a call of `subject` costs more than a call of `baseline`. */
export function overheadNs(rows: readonly Measurement[], subject: string, baseline: string): number {
  const a = rows.find((row) => row.id === subject);
  const b = rows.find((row) => row.id === baseline);
  if (!a || !b || a.opsPerSec <= 0 || b.opsPerSec <= 0) return Number.NaN;
  return 1e9 / a.opsPerSec - 1e9 / b.opsPerSec;
}

/** Target: a scope costs less than this much more than `AsyncLocalStorage.run`. */
export const SCOPE_OVERHEAD_TARGET_NS = 1_000;

export interface SessionContextOutcome {
  readonly rows: readonly Measurement[];
  readonly overheadNs: { readonly sync: number; readonly async: number; readonly used: number };
  readonly targetNs: number;
}

/** Runs section [7], prints it, and returns its rows and misses. */
export async function runSessionContextSection(): Promise<{
  outcome: SessionContextOutcome;
  misses: string[];
}> {
  const rows = await runSessionContextBench({
    rounds: 8,
    sampleMs: 100,
    warmupMs: 300,
    maxOpsPerSample: 2_000_000,
  });
  const overhead = {
    sync: overheadNs(rows, SESSION_IDS.scopeSync, SESSION_IDS.alsSync),
    async: overheadNs(rows, SESSION_IDS.scopeAsync, SESSION_IDS.alsAsync),
    used: overheadNs(rows, SESSION_IDS.used, SESSION_IDS.alsAsync),
  };
  console.log(
    '\n[7] session scope: withSession vs a bare AsyncLocalStorage.run (target: < 1 us more per call)',
  );
  for (const row of rows) {
    console.log(
      `  ${row.label.padEnd(46)} ${(row.opsPerSec / 1e6).toFixed(2).padStart(7)} M/s  ${(1e9 / row.opsPerSec).toFixed(0).padStart(6)} ns/call`,
    );
  }
  const verdict = (ns: number) => (ns < SCOPE_OVERHEAD_TARGET_NS ? 'ok' : 'MISS');
  console.log(
    `  overhead, sync fn:  ${overhead.sync.toFixed(0)} ns/call  (< ${SCOPE_OVERHEAD_TARGET_NS} ns) ${verdict(overhead.sync)}`,
  );
  console.log(
    `  overhead, async fn: ${overhead.async.toFixed(0)} ns/call  (< ${SCOPE_OVERHEAD_TARGET_NS} ns) ${verdict(overhead.async)}`,
  );
  console.log(
    `  a used scope (session registered, 1 ref, released): +${overhead.used.toFixed(0)} ns/call (information)`,
  );
  const misses: string[] = [];
  if (!(overhead.sync < SCOPE_OVERHEAD_TARGET_NS))
    misses.push(`[7] withSession sync overhead ${overhead.sync.toFixed(0)} ns`);
  if (!(overhead.async < SCOPE_OVERHEAD_TARGET_NS))
    misses.push(`[7] withSession async overhead ${overhead.async.toFixed(0)} ns`);
  return { outcome: { rows, overheadNs: overhead, targetNs: SCOPE_OVERHEAD_TARGET_NS }, misses };
}
