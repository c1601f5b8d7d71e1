import type { AbortWatch, SendOptions } from './types';

/** An {@link AbortWatch} over an `AbortSignal`, for sends that came without one. */
class SignalWatch implements AbortWatch {
  readonly #signal: AbortSignal;
  constructor(signal: AbortSignal) {
    this.#signal = signal;
  }
  get aborted(): boolean {
    return this.#signal.aborted;
  }
  get reason(): unknown {
    return this.#signal.reason;
  }
  onAbort(listener: () => void): () => void {
    const signal = this.#signal;
    const handler = () => listener();
    signal.addEventListener('abort', handler, { once: true });
    return () => signal.removeEventListener('abort', handler);
  }
}

/** The send's {@link AbortWatch}: the one the client gave, else one over `options.signal`. */
export function abortWatchOf(options: SendOptions): AbortWatch {
  return options.abortWatch ?? new SignalWatch(options.signal);
}
