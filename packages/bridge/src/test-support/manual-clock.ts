import {
  type ManualClock as BaseManualClock,
  manualClock as baseManualClock,
} from '@trestle/ws-bridge/testing';

/** The shared manual clock (from `@trestle/ws-bridge/testing`), counting the timers it was asked for. */
export interface ManualClock extends BaseManualClock {
  /** Timers ever set. */
  readonly created: number;
}

export function manualClock(start = 0): ManualClock {
  const clock = baseManualClock(start);
  const setTimeout = clock.setTimeout.bind(clock);
  let created = 0;
  clock.setTimeout = (callback, ms) => {
    created++;
    return setTimeout(callback, ms);
  };
  return Object.defineProperty(clock, 'created', { get: () => created }) as ManualClock;
}

/** Lets every pending promise job run (one macrotask turn): no sleeping, no real time. */
export const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Advances the clock by `ms`, then lets the promise jobs the fired timers started run. */
export async function advance(clock: ManualClock, ms: number): Promise<void> {
  await flush();
  clock.advance(ms);
  await flush();
}
