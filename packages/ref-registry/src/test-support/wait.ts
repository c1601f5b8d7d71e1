import type { SessionManager, SessionManagerEvent, SessionManagerEventType } from '../session-types';

/** One macrotask turn (timers and I/O callbacks of the real event loop get to run). */
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Resolves with the next event of `type` matching `predicate`; rejects after `limitMs` of real time
 * (a guard against hanging, not a schedule: the event normally comes much sooner).
 */
export function nextEvent<K extends SessionManagerEventType>(
  manager: SessionManager,
  type: K,
  predicate: (event: Extract<SessionManagerEvent, { type: K }>) => boolean = () => true,
  limitMs = 10_000,
): Promise<Extract<SessionManagerEvent, { type: K }>> {
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no '${type}' event within ${limitMs} ms`));
    }, limitMs);
    const unsubscribe = manager.on(type, (event) => {
      if (!predicate(event)) return;
      clearTimeout(guard);
      unsubscribe();
      resolve(event);
    });
  });
}

/**
 * Runs `gc()` and yields a macrotask (finalization callbacks run on a later task), until `done()`
 * or `attempts` rounds. Returns whether done. `done()` is checked in its own task: a `WeakRef.deref()`
 * in it keeps the target alive until the task ends, so a collection in the same task would miss it.
 */
export async function collectUntil(done: () => boolean, attempts = 50): Promise<boolean> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc (see vitest.config.ts)');
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    gc();
    await turn();
    if (done()) return true;
    await turn();
  }
  return false;
}
