/** Time source and timers, injected so every schedule can be tested exactly. */
export interface Clock {
  /** Milliseconds; must never go backwards for the memory store (a monotonic source). */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** `performance.now()` plus real timers. Monotonic: wall-clock jumps do not refill or drain buckets. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => {
    const handle = setTimeout(callback, ms);
    handle.unref?.();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
