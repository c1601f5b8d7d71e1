import type { DrainReport } from './types';

// Registry symbols, so `isInstance` works across duplicate installs where `instanceof` fails.
// Package-specific (as in @trestle/budget), so another Trestle package's errors do not match.
const poolMarker = Symbol.for('trestle.handle-pool.error');
const drainMarker = Symbol.for('trestle.handle-pool.drain-error');

/**
 * Stable error codes of `@trestle/handle-pool`. A published code never changes.
 */
export const HandlePoolErrorCode = {
  /** `track()` was called while `maxHandles` handles were live. */
  Exhausted: 'HANDLE_POOL_EXHAUSTED',
  /** An argument was malformed: empty binding or obligation, bad timeout, non-function discharger. */
  InvalidInput: 'HANDLE_POOL_INVALID_INPUT',
  /** `track()` was called after the pool was closed (`drain({ close: true })` or async dispose). */
  Closed: 'HANDLE_POOL_CLOSED',
  /** `registerDischarger()` was called for an obligation that already has a discharger. */
  DuplicateDischarger: 'HANDLE_POOL_DUPLICATE_DISCHARGER',
  /** A discharger did not settle within its timeout. */
  DischargeTimeout: 'HANDLE_DISCHARGE_TIMEOUT',
  /** A discharger threw or returned a rejected promise; the original error is the `cause`. */
  DischargeFailed: 'HANDLE_DISCHARGE_FAILED',
  /** The discharge (or drain) signal aborted before the discharger settled or started. */
  DischargeAborted: 'HANDLE_DISCHARGE_ABORTED',
  /** `drain()` finished with at least one failed handle (see {@link HandlePoolDrainError}). */
  DrainFailed: 'HANDLE_POOL_DRAIN_FAILED',
} as const;
export type HandlePoolErrorCode = (typeof HandlePoolErrorCode)[keyof typeof HandlePoolErrorCode];

/** Every error thrown by the pool, or recorded in an outcome, except the drain's aggregate. */
export class HandlePoolError extends Error {
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: read by `isInstance` through `in`.
  private readonly [poolMarker] = true;
  override readonly name = 'HandlePoolError';
  readonly code: Exclude<HandlePoolErrorCode, 'HANDLE_POOL_DRAIN_FAILED'>;

  constructor(
    code: Exclude<HandlePoolErrorCode, 'HANDLE_POOL_DRAIN_FAILED'>,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`[handle-pool] ${message}`, options);
    this.code = code;
  }

  /** Works across duplicate installs, where `instanceof` does not. */
  static isInstance(value: unknown): value is HandlePoolError {
    return typeof value === 'object' && value !== null && poolMarker in value;
  }
}

/**
 * The `AggregateError` a drain produces when at least one handle failed: `errors` holds each failed
 * handle's {@link HandlePoolError} in discharge order, and `report` is the full drain report.
 * It is both `report.error` and what `drain({ throwOnError: true })` rejects with.
 */
export class HandlePoolDrainError extends AggregateError {
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: read by `isInstance` through `in`.
  private readonly [drainMarker] = true;
  override readonly name = 'HandlePoolDrainError';
  readonly code = HandlePoolErrorCode.DrainFailed;
  // Non-enumerable: `report.error.report === report` would otherwise be a cycle for JSON.stringify
  // and for loggers that walk enumerable properties.
  declare readonly report: DrainReport;

  constructor(errors: readonly HandlePoolError[], report: DrainReport, message: string) {
    super(errors, `[handle-pool] ${message}`);
    Object.defineProperty(this, 'report', { value: report, enumerable: false });
  }

  /** Works across duplicate installs, where `instanceof` does not. */
  static isInstance(value: unknown): value is HandlePoolDrainError {
    return typeof value === 'object' && value !== null && drainMarker in value;
  }
}

/** Formats a user-supplied value for an error message: strings quoted, the rest by type. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  return `a value of type ${typeof value}`;
}
