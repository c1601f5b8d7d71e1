import type { HandlePoolClock } from './types';

/** The timer functions the pool calls; resolved once per pool from the clock or the globals. */
export interface Timers {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

// Globals are looked up at call time, not import time, so fake timers installed after import
// (vi.useFakeTimers) still apply.
const defaultNow = (): number => Date.now();
const globalSetTimeout = (callback: () => void, ms: number): unknown => globalThis.setTimeout(callback, ms);
const globalClearTimeout = (timer: unknown): void =>
  globalThis.clearTimeout(timer as ReturnType<typeof globalThis.setTimeout>);

export function resolveTimers(clock: HandlePoolClock | undefined): Timers {
  if (clock === undefined) {
    return { now: defaultNow, setTimeout: globalSetTimeout, clearTimeout: globalClearTimeout };
  }
  return {
    now: () => clock.now(),
    setTimeout: clock.setTimeout ? (callback, ms) => clock.setTimeout?.(callback, ms) : globalSetTimeout,
    clearTimeout: clock.clearTimeout ? (timer) => clock.clearTimeout?.(timer) : globalClearTimeout,
  };
}
