import type { Timers } from './clock';
import type { DischargerEntry } from './dischargers';
import { HandlePoolError, HandlePoolErrorCode } from './errors';
import type { Handle } from './types';

/**
 * Runs one discharger under a timeout and an optional signal. Resolves with `undefined` on success or
 * with the error to report; never rejects. A discharger that settles after the timeout or abort is
 * ignored (its rejection is caught so it cannot become an unhandled rejection).
 */
const MAX_TIMER_MS = 2_147_483_647;

export function runDischarger(
  entry: DischargerEntry,
  handle: Handle,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  timers: Timers,
): Promise<HandlePoolError | undefined> {
  if (signal?.aborted) return Promise.resolve(abortedError(entry, handle, signal.reason));

  return new Promise((resolve) => {
    const controller = new AbortController();
    let settled = false;
    let timer: unknown;

    const finish = (error: HandlePoolError | undefined): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) timers.clearTimeout(timer);
      // Removing the listener matters: a long-lived drain signal would otherwise collect one per handle.
      signal?.removeEventListener('abort', onAbort);
      if (error !== undefined) controller.abort(error);
      resolve(error);
    };
    const onAbort = (): void => finish(abortedError(entry, handle, signal?.reason));

    // Node fires timers longer than 2^31 - 1 ms after 1 ms; treat them as "no timeout" instead.
    if (Number.isFinite(timeoutMs) && timeoutMs <= MAX_TIMER_MS) {
      timer = timers.setTimeout(() => finish(timeoutError(entry, handle, timeoutMs)), timeoutMs);
    }
    signal?.addEventListener('abort', onAbort, { once: true });

    let result: void | Promise<void>;
    try {
      result = entry.discharge(handle, { signal: controller.signal, timeoutMs });
    } catch (error) {
      finish(failedError(entry, handle, error));
      return;
    }
    if (isPromiseLike(result)) {
      Promise.resolve(result).then(
        () => finish(undefined),
        (error: unknown) => finish(failedError(entry, handle, error)),
      );
    } else {
      finish(undefined);
    }
  });
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function subject(entry: DischargerEntry, handle: Handle): string {
  return `discharger "${entry.name}" for handle ${handle.id} (binding "${handle.binding}", obligation "${handle.obligation}")`;
}

function timeoutError(entry: DischargerEntry, handle: Handle, timeoutMs: number): HandlePoolError {
  return new HandlePoolError(
    HandlePoolErrorCode.DischargeTimeout,
    `${subject(entry, handle)} did not settle within ${timeoutMs} ms`,
  );
}

function failedError(entry: DischargerEntry, handle: Handle, cause: unknown): HandlePoolError {
  const reason = cause instanceof Error ? cause.message : safeString(cause);
  return new HandlePoolError(
    HandlePoolErrorCode.DischargeFailed,
    `${subject(entry, handle)} failed: ${reason}`,
    {
      cause,
    },
  );
}

function abortedError(entry: DischargerEntry, handle: Handle, cause: unknown): HandlePoolError {
  return new HandlePoolError(
    HandlePoolErrorCode.DischargeAborted,
    `${subject(entry, handle)}: discharge aborted`,
    {
      cause,
    },
  );
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return `a value of type ${typeof value}`;
  }
}
