import type { DeadlineEntry } from './deadline-list';
import { KernelTransportError } from './errors';
import type { AbortWatch, SendOptions } from './types';

/**
 * Marks the built-in transports, which reject a send at once when its call is stopped (through
 * `abortWatch` or `signal`), so the client does not need to race each send against the stop.
 */
export const honoursStop: unique symbol = Symbol.for('trestle.kernel-client.honours-stop');

/** Why a call was stopped before its reply. */
export type StopCause = 'timeout' | 'aborted' | 'closed';

/**
 * The stop of one call (deadline, the caller's signal, `close()`), handed to the transport as its
 * `SendOptions`. No `AbortController` unless somebody reads `signal`: one costs more than the rest of the
 * client's work on a call.
 */
export class CallControl implements SendOptions, AbortWatch, DeadlineEntry {
  readonly maxResponseBytes: number;
  at = 0;
  prev: DeadlineEntry | undefined = undefined;
  next: DeadlineEntry | undefined = undefined;
  aborted = false;
  reason: unknown = undefined;
  cause: StopCause | undefined = undefined;
  #controller: AbortController | undefined = undefined;
  /** The first listener, then (rarely: a caller racing a transport) the others. */
  #listener: (() => void) | undefined = undefined;
  #more: (() => void)[] | undefined = undefined;

  constructor(maxResponseBytes: number) {
    this.maxResponseBytes = maxResponseBytes;
  }

  get abortWatch(): AbortWatch {
    return this;
  }

  /** A real `AbortSignal` for the same stop, made on first read. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.reason);
    }
    return this.#controller.signal;
  }

  onAbort(listener: () => void): () => void {
    if (this.#listener === undefined) {
      this.#listener = listener;
      return () => {
        if (this.#listener === listener) this.#listener = undefined;
      };
    }
    this.#more ??= [];
    this.#more.push(listener);
    return () => {
      const index = this.#more?.indexOf(listener) ?? -1;
      if (index >= 0) this.#more?.splice(index, 1);
    };
  }

  /** The whole-call deadline passed. */
  expire(): void {
    this.stop('timeout');
  }

  /** Stops the call (once): the listeners run, the signal (if made) aborts. */
  stop(cause: StopCause): void {
    if (this.aborted) return;
    this.aborted = true;
    this.cause = cause;
    this.reason = new KernelTransportError('aborted', `the call was stopped (${cause})`);
    const listeners = [this.#listener, ...(this.#more ?? [])];
    this.#listener = undefined;
    this.#more = undefined;
    for (const listener of listeners) {
      if (listener === undefined) continue;
      try {
        listener();
      } catch {
        // A transport's listener must not keep the others from running.
      }
    }
    this.#controller?.abort(this.reason);
  }
}
