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
