import { KernelError, KernelErrorCode } from './errors';

/** Gives back a slot taken with {@link Semaphore.acquire}. Calling it again does nothing. */
export type Release = () => void;

interface Waiter {
  readonly grant: (release: Release) => void;
}

/**
 * A counting semaphore with a FIFO queue: a released slot goes to the oldest waiter (no barging), and
 * an aborted waiter leaves the queue at once (it holds nothing and is never granted afterwards).
 * @example
 * ```ts
 * const slots = new Semaphore(3);
 * const release = await slots.acquire(signal);
 * try { await work(); } finally { release(); }
 * ```
 */
export class Semaphore {
  readonly #limit: number;
  #held = 0;
  readonly #queue: Waiter[] = [];

  /** @throws KernelError (`KERNEL_INVALID_ARGUMENT`) unless `limit` is a positive integer. */
  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1)
      throw new KernelError(
        KernelErrorCode.InvalidArgument,
        `limit must be a positive integer (got ${limit})`,
      );
    this.#limit = limit;
  }

  /** Slots in total. */
  get limit(): number {
    return this.#limit;
  }

  /** Slots held now. */
  get held(): number {
    return this.#held;
  }

  /** Acquirers waiting for a slot. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Takes a slot now if one is free and nobody is waiting. */
  tryAcquire(): Release | undefined {
    if (this.#held >= this.#limit || this.#queue.length > 0) return undefined;
    this.#held++;
    return this.#releaser();
  }

  /**
   * Waits for a slot, in arrival order.
   * @throws the signal's `reason` (rejects) when `signal` aborts first; the waiter is removed.
   */
  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const now = this.tryAcquire();
    if (now) return Promise.resolve(now);
    return new Promise<Release>((resolve, reject) => {
      const onAbort = () => {
        const index = this.#queue.indexOf(waiter);
        if (index >= 0) this.#queue.splice(index, 1);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      this.#queue.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #releaser(): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.#queue.shift();
      // The slot passes straight to the oldest waiter: `held` stays the same.
      if (next) next.grant(this.#releaser());
      else this.#held--;
    };
  }
}
