/** Time and timers, injected so idle culling and deadlines are tested exactly. */
export interface Clock {
  /** Milliseconds, never going backwards (a monotonic source). */
  now(): number;
  /** Should not keep the process alive (`unref` real timers), as {@link systemClock} does. */
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** `performance.now()` and unref'd real timers: the sweeper never keeps a process alive. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => {
    const handle = setTimeout(callback, ms);
    handle.unref?.();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Node fires timers longer than 2^31 - 1 ms after 1 ms: longer delays are clamped to this. */
export const MAX_TIMER_MS = 2_147_483_647;
