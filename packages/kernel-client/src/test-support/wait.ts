/**
 * Waiting for a condition, not for time: `until` re-checks on every turn of the event loop and fails
 * after a bound (a safety net, never the expected path). Test support only.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Resolves once `condition()` holds; rejects after `timeoutMs` with `what` in the message. */
export async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await nextTurn();
  }
}

/** The `kind` of the `KernelTransportError` a promise rejects with (fails if it resolves). */
export async function rejectionKind(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    const kind = (error as { kind?: unknown }).kind;
    if (typeof kind !== 'string') throw error;
    return kind;
  }
  throw new Error('expected a rejection');
}

/** The error a promise rejects with (fails if it resolves). */
export async function rejection<E = Error>(promise: Promise<unknown>): Promise<E> {
  try {
    await promise;
  } catch (error) {
    return error as E;
  }
  throw new Error('expected a rejection');
}

/** Counts of `process.getActiveResourcesInfo()` by type. */
export function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}
