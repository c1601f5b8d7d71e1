import { performance } from 'node:perf_hooks';
import type { Decision, DegradedDecision } from '../decision';
import { type RedisBudgetStore, redisStore } from '../redis';

/** The store's per-call deadline in the outage tests (the library default). */
export const DEADLINE_MS = 50;
/** What a degraded call may take beyond the deadline (timer lateness, a loaded CI machine). */
export const MARGIN_MS = 150;
/** A call that has not settled after this long is reported as hung (instead of a test timeout). */
export const HANG_GUARD_MS = 2_000;

/** The outcome of one timed call: its value, or what it threw, or that it hung; and how long it took. */
export interface Timed<T> {
  readonly value?: T;
  readonly error?: unknown;
  readonly threw: boolean;
  readonly hung: boolean;
  readonly ms: number;
}

/** Runs `call`, timing it with `performance.now`, never throwing and never waiting past the hang guard. */
export async function timed<T>(call: () => Promise<T>): Promise<Timed<T>> {
  const start = performance.now();
  let guard: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<{ hung: true }>((resolve) => {
    guard = setTimeout(() => resolve({ hung: true }), HANG_GUARD_MS);
  });
  try {
    const outcome = await Promise.race([call().then((value) => ({ value, hung: false as const })), hang]);
    const ms = performance.now() - start;
    return outcome.hung
      ? { threw: false, hung: true, ms }
      : { value: outcome.value, threw: false, hung: false, ms };
  } catch (error) {
    return { error, threw: true, hung: false, ms: performance.now() - start };
  } finally {
    clearTimeout(guard);
  }
}

/** A readable one-liner for assertion messages. */
export function describeTimed(label: string, outcome: Timed<unknown>): string {
  const what = outcome.hung
    ? 'HUNG'
    : outcome.threw
      ? `THREW ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}`
      : JSON.stringify(outcome.value, (_key, value) =>
          typeof value === 'number' && !Number.isFinite(value)
            ? String(value)
            : value instanceof Error
              ? value.message
              : value,
        );
  return `${label}: ${what} after ${outcome.ms.toFixed(1)} ms`;
}

export const isDegraded = (decision: Decision | undefined): decision is DegradedDecision =>
  decision?.kind === 'degraded';

/**
 * A Redis store on `url` with the library's own connection settings, except that its reconnect
 * strategy can be switched off for cleanup (belt and braces: `dispose()` disconnects the client it
 * created). The strategy is the library's default (`min(50 * 2^attempt, 2000)`) until
 * `stopReconnecting()`.
 */
export function stoppableStore(
  url: string,
  prefix: string,
): { store: RedisBudgetStore; stopReconnecting(): void } {
  let stopped = false;
  const store = redisStore({
    url,
    prefix,
    timeoutMs: DEADLINE_MS,
    redisOptions: { retryStrategy: (attempt) => (stopped ? null : Math.min(50 * 2 ** attempt, 2_000)) },
  });
  return {
    store,
    stopReconnecting: () => {
      stopped = true;
    },
  };
}

/** Awaits `promise` for at most `ms` (cleanup that must not hang a hook). Returns whether it settled. */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      limit,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
