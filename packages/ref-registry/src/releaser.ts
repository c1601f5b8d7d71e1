import type { Clock } from './clock';
import type { RefGoneReason } from './errors';
import { RefRegistryError, RefRegistryErrorCode } from './errors';
import type { Ref } from './ref';

/**
 * The plugin that releases sessions and refs where the objects live (python-adapter registers one).
 * The manager drops a session locally first, then calls the releaser; a failed call is retried once,
 * and a second failure is reported (`release-failed` event and the release report), never thrown
 * at the caller and never dropped silently.
 *
 * Both methods must be idempotent: a session or ref the remote side no longer knows is a success.
 */
export interface Releaser {
  /** Stable name used in errors and logs, e.g. `"python"`. */
  readonly name: string;
  /** The version of this contract the releaser implements. */
  readonly contractVersion?: 1;
  /** Releases a whole session. `refs` are the refs the host knew about (the remote side may hold more). */
  releaseSession(sessionId: string, refs: readonly Ref[], reason: RefGoneReason): Promise<void>;
  /**
   * Releases single refs (an explicit `releaseRef`, or refs the store evicted for `ttl`/`lru`).
   * Optional capability: without it those refs are dropped on the host only, and the remote side
   * relies on its own limits or on the session's release.
   */
  releaseRefs?(sessionId: string, refs: readonly Ref[]): Promise<void>;
}

/** Which releaser call failed. */
export type ReleaseOperation = 'releaseSession' | 'releaseRefs';

/** The releaser failed twice (or timed out twice). The session or refs are gone on the host anyway. */
export class ReleaseFailedError extends RefRegistryError {
  override readonly name = 'ReleaseFailedError';
  readonly sessionId: string;
  /** The releaser's `name`. */
  readonly releaser: string;
  readonly operation: ReleaseOperation;
  readonly attempts: number;
  /** The ids of the refs the failed call was about. */
  readonly refIds: readonly string[];
  /** Every attempt's error, first to last (`cause` is the last one). */
  readonly errors: readonly unknown[];
  constructor(fields: {
    sessionId: string;
    releaser: string;
    operation: ReleaseOperation;
    refIds: readonly string[];
    errors: readonly unknown[];
  }) {
    const last = fields.errors[fields.errors.length - 1];
    const what =
      fields.operation === 'releaseSession'
        ? `session '${fields.sessionId}'`
        : `${fields.refIds.length} ref(s) of session '${fields.sessionId}'`;
    super(
      RefRegistryErrorCode.ReleaseFailed,
      `releaser "${fields.releaser}" failed to release ${what} after ${fields.errors.length} attempt(s): ${errorText(last)}`,
      { cause: last },
    );
    this.sessionId = fields.sessionId;
    this.releaser = fields.releaser;
    this.operation = fields.operation;
    this.attempts = fields.errors.length;
    this.refIds = fields.refIds;
    this.errors = fields.errors;
  }
}

/** A releaser call that did not settle within `releaseTimeoutMs`. */
export class ReleaseTimeoutError extends RefRegistryError {
  override readonly name = 'ReleaseTimeoutError';
  constructor(releaser: string, operation: ReleaseOperation, sessionId: string, timeoutMs: number) {
    super(
      RefRegistryErrorCode.ReleaseFailed,
      `releaser "${releaser}" did not settle ${operation} for session '${sessionId}' within ${timeoutMs} ms`,
    );
  }
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** How releaser calls are retried. @internal */
export interface RetryPolicy {
  readonly clock: Clock;
  /** Delay before the one retry. */
  readonly retryDelayMs: number;
  /** Per-attempt deadline; `Infinity` switches it off. */
  readonly timeoutMs: number;
}

function delay(clock: Clock, ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

function attemptOnce(
  call: () => Promise<void>,
  policy: RetryPolicy,
  timeout: () => ReleaseTimeoutError,
): Promise<void> {
  let result: Promise<void>;
  try {
    result = Promise.resolve(call());
  } catch (error) {
    return Promise.reject(error);
  }
  if (!Number.isFinite(policy.timeoutMs)) return result;
  return new Promise<void>((resolve, reject) => {
    const timer = policy.clock.setTimeout(() => reject(timeout()), policy.timeoutMs);
    result.then(
      () => {
        policy.clock.clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        policy.clock.clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * Calls the releaser, retrying once after `retryDelayMs`. Never rejects: resolves with `undefined`
 * on success, or with the {@link ReleaseFailedError} after the second failure.
 * @internal
 */
export async function callReleaser(
  releaser: Releaser,
  operation: ReleaseOperation,
  sessionId: string,
  refs: readonly Ref[],
  reason: RefGoneReason,
  policy: RetryPolicy,
): Promise<ReleaseFailedError | undefined> {
  const call =
    operation === 'releaseSession'
      ? () => releaser.releaseSession(sessionId, refs, reason)
      : () => releaser.releaseRefs!(sessionId, refs);
  const timeout = () => new ReleaseTimeoutError(releaser.name, operation, sessionId, policy.timeoutMs);
  const errors: unknown[] = [];
  for (let attempt = 1; attempt <= 2; attempt += 1) {
    try {
      await attemptOnce(call, policy, timeout);
      return undefined;
    } catch (error) {
      errors.push(error);
    }
    if (attempt === 1) await delay(policy.clock, policy.retryDelayMs);
  }
  return new ReleaseFailedError({
    sessionId,
    releaser: releaser.name,
    operation,
    refIds: refs.map((ref) => ref.id),
    errors,
  });
}
