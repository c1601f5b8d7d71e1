import type { Clock } from '../clock';

/** A clock that moves only when told to: `advance(ms)` runs due timers in order. For tests. */
export interface ManualClock extends Clock {
  advance(ms: number): void;
  /** Timers not yet fired (nor cleared). */
  readonly pending: number;
  /** Timers ever set. */
  readonly created: number;
}

export function manualClock(start = 0): ManualClock {
  let now = start;
  let sequence = 0;
  const timers = new Map<number, { at: number; callback: () => void }>();
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
      const until = now + ms;
      for (;;) {
        let next: [number, { at: number; callback: () => void }] | undefined;
        for (const entry of timers)
          if (entry[1].at <= until && (!next || entry[1].at < next[1].at)) next = entry;
        if (!next) break;
        timers.delete(next[0]);
        now = Math.max(now, next[1].at);
        next[1].callback();
      }
      now = until;
    },
    get pending() {
      return timers.size;
    },
    get created() {
      return sequence;
    },
  };
}

/** Lets every pending promise job run (one macrotask turn): no sleeping, no real time. */
export const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Advances the clock by `ms`, then lets the promise jobs the fired timers started run. */
export async function advance(clock: ManualClock, ms: number): Promise<void> {
  await flush();
  clock.advance(ms);
  await flush();
}
