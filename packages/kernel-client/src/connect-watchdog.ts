/**
 * One timer for every connect in progress, instead of one timer per connect: connects are watched in
 * the order they started (so their deadlines are in order too), and the single timer is re-armed for
 * the oldest one still waiting. Internal.
 */

/** Something connecting, told when it took too long. */
export interface Connecting {
  /** `performance.now()` when the connect started; set by {@link ConnectWatchdog.watch}. */
  connectStartedAt: number;
  /** The connect took longer than the timeout: give up on it. */
  connectTimedOut(): void;
}

export class ConnectWatchdog {
  readonly #timeoutMs: number;
  readonly #watched = new Set<Connecting>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  watch(connecting: Connecting): void {
    connecting.connectStartedAt = performance.now();
    this.#watched.add(connecting);
    if (this.#timer === undefined) this.#arm(this.#timeoutMs);
  }

  /** The connect finished (either way). */
  forget(connecting: Connecting): void {
    this.#watched.delete(connecting);
  }

  /** Stops the timer; nothing is watched any more. */
  stop(): void {
    this.#watched.clear();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(check, Math.max(1, Math.ceil(ms)), this);
    this.#timer.unref();
  }

  /** Expires the overdue connects and re-arms for the oldest one left. */
  check(): void {
    this.#timer = undefined;
    const now = performance.now();
    for (const connecting of this.#watched) {
      const left = connecting.connectStartedAt + this.#timeoutMs - now;
      if (left > 0) {
        this.#arm(left);
        return;
      }
      this.#watched.delete(connecting);
      connecting.connectTimedOut();
    }
  }
}

function check(watchdog: ConnectWatchdog): void {
  watchdog.check();
}
