import type { Failure, FailureClass } from './types';

const marker = Symbol.for('trestle.ws-bridge.error');

/** Stable error codes of `@trestle/ws-bridge`. A published code never changes. */
export const BridgeErrorCode = {
  /** The upgrade was answered with an HTTP status other than 401/403 (`status` in `failure`). */
  HandshakeRefused: 'WS_HANDSHAKE_REFUSED',
  /** The upgrade was answered 401 (or the peer closed with 4401), again after a forced token refresh. */
  Unauthorized: 'WS_UNAUTHORIZED',
  /** The upgrade was answered 403 (or the peer closed with 4403). */
  Forbidden: 'WS_FORBIDDEN',
  /** The token provider failed. */
  TokenFailed: 'WS_TOKEN_FAILED',
  /** The peer closed the connection with a code classified as permanent (e.g. 1008). */
  ClosePermanent: 'WS_CLOSE_PERMANENT',
  /** The peer closed the connection, or the network dropped it (transient). */
  ConnectionLost: 'WS_CONNECTION_LOST',
  /** `retry.maxRetries` or `retry.maxElapsedMs` was reached; `cause` is the last failure. */
  RetriesExhausted: 'WS_RETRIES_EXHAUSTED',
  /** No open connection within `connectTimeoutMs` (token fetch and handshake included). */
  ConnectTimeout: 'WS_CONNECT_TIMEOUT',
  /** A ping went unanswered for `heartbeat.timeoutMs`: the peer is frozen or gone. */
  HeartbeatTimeout: 'WS_HEARTBEAT_TIMEOUT',
  /** The bridge is closed (by `close()` or the abort signal). */
  Closed: 'WS_CLOSED',
  /** An option or argument is out of range or of the wrong type. */
  InvalidArgument: 'WS_INVALID_ARGUMENT',
} as const;
export type BridgeErrorCode = (typeof BridgeErrorCode)[keyof typeof BridgeErrorCode];

/** The base class of every error of this package. */
export class BridgeError extends Error {
  readonly [marker] = true;
  override readonly name: string = 'BridgeError';
  readonly code: BridgeErrorCode;
  /** The failure this error reports, when it reports one. */
  readonly failure: Failure | undefined;
  constructor(code: BridgeErrorCode, message: string, options?: { cause?: unknown; failure?: Failure }) {
    super(`[ws-bridge] ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.failure = options?.failure;
  }
  /** Works across duplicate installs, where `instanceof` does not. */
  static isInstance(value: unknown): value is BridgeError {
    return typeof value === 'object' && value !== null && marker in value;
  }
}

const permanentMarker = Symbol.for('trestle.ws-bridge.permanent-error');

/**
 * The seed's `PermanentError`: the bridge gave up and will not reconnect; `run()` rejects with it.
 * A `TokenProvider` may also throw one (or any error with `permanent: true`) to stop the bridge,
 * e.g. for a revoked client.
 */
export class PermanentError extends BridgeError {
  readonly [permanentMarker] = true;
  override readonly name: string = 'PermanentError';
  readonly permanent = true;
  static override isInstance(value: unknown): value is PermanentError {
    return typeof value === 'object' && value !== null && permanentMarker in value;
  }
}

/** Whether an error says it is permanent (`PermanentError`, or `permanent: true` on any error). */
export function isPermanent(value: unknown): boolean {
  return (
    PermanentError.isInstance(value) ||
    (typeof value === 'object' && value !== null && (value as { permanent?: unknown }).permanent === true)
  );
}

/** The error that describes a failure (before classification). */
export function failureError(failure: Omit<Failure, 'error'>, cause?: unknown): BridgeError {
  switch (failure.source) {
    case 'handshake': {
      const code =
        failure.status === 401
          ? BridgeErrorCode.Unauthorized
          : failure.status === 403
            ? BridgeErrorCode.Forbidden
            : BridgeErrorCode.HandshakeRefused;
      return new BridgeError(code, `upgrade refused with HTTP ${failure.status}`, { cause, failure });
    }
    case 'close':
      return new BridgeError(
        BridgeErrorCode.ConnectionLost,
        `closed by the peer with code ${failure.code}${failure.reason ? ` (${failure.reason})` : ''}`,
        { cause, failure },
      );
    case 'token':
      return new BridgeError(
        BridgeErrorCode.TokenFailed,
        `token provider failed: ${cause instanceof Error ? cause.message : String(cause)}`,
        { cause, failure },
      );
    case 'timeout':
      return new BridgeError(BridgeErrorCode.ConnectTimeout, failure.reason ?? 'connect timeout', {
        cause,
        failure,
      });
    case 'heartbeat':
      return new BridgeError(BridgeErrorCode.HeartbeatTimeout, failure.reason ?? 'heartbeat timeout', {
        cause,
        failure,
      });
    case 'network':
      return new BridgeError(
        BridgeErrorCode.ConnectionLost,
        `connection lost${cause instanceof Error ? `: ${cause.message}` : ''}${failure.code ? ` (close ${failure.code})` : ''}`,
        { cause, failure },
      );
  }
}

/** The `PermanentError` for a failure classified permanent. */
export function permanentError(failure: Failure, failureClass: FailureClass = 'permanent'): PermanentError {
  const source = failure.error;
  let code: BridgeErrorCode = BridgeErrorCode.ClosePermanent;
  if (failure.source === 'close') {
    code =
      failure.code === 4401
        ? BridgeErrorCode.Unauthorized
        : failure.code === 4403
          ? BridgeErrorCode.Forbidden
          : BridgeErrorCode.ClosePermanent;
  } else if (BridgeError.isInstance(source)) code = source.code;
  const message =
    source?.message.replace(/^\[ws-bridge\] /, '') ?? `${failureClass} failure (${failure.source})`;
  return new PermanentError(code, `giving up: ${message}`, { cause: source, failure });
}
