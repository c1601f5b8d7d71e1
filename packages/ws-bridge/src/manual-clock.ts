import type { Clock } from './types';

/** A clock that moves only when told to: `advance(ms)` runs due timers in order. For tests. */
export interface ManualClock extends Clock {
  /** Moves time forward by `ms`, running every timer due on the way (in due order). */
  advance(ms: number): void;
  /** Moves time to `now` (never backwards). */
  set(now: number): void;
  /** Timers not yet fired. */
  readonly pending: number;
  /** Due time of the next timer, if any. */
  readonly nextAt: number | undefined;
}

/**
 * Creates a manual clock starting at `start`.
 * @example
 * ```ts
 * const clock = manualClock();
 * const bridge = createBridge({ url, tokenProvider, clock });
 * clock.advance(1_000); // the first retry is due
 * ```
 */
export function manualClock(start = 0): ManualClock {
  let now = start;
  let sequence = 0;
  const timers = new Map<number, { at: number; callback: () => void }>();
  const next = (until: number) => {
    let found: [number, { at: number; callback: () => void }] | undefined;
    for (const entry of timers)
      if (entry[1].at <= until && (!found || entry[1].at < found[1].at)) found = entry;
    return found;
  };
  const fire = (until: number) => {
    for (let found = next(until); found; found = next(until)) {
      timers.delete(found[0]);
      now = Math.max(now, found[1].at);
      found[1].callback();
    }
    now = Math.max(now, until);
  };
  return {
    now: () => now,
    setTimeout(callback, ms) {
      const id = ++sequence;
      timers.set(id, { at: now + Math.max(0, ms), callback });
      return id;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    advance(ms) {
      fire(now + ms);
    },
    set(value) {
      fire(value);
    },
    get pending() {
      return timers.size;
    },
    get nextAt() {
      let at: number | undefined;
      for (const timer of timers.values()) if (at === undefined || timer.at < at) at = timer.at;
      return at;
    },
  };
}

/** The real clock (`Date.now`, `setTimeout`). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/** A small seeded PRNG (mulberry32), so a schedule can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
