const marker = Symbol.for('trestle.ref-registry.error');

/** Stable error codes of `@trestle/ref-registry`. A published code never changes. */
export const RefRegistryErrorCode = {
  /** The ref is gone (see `RefNotFoundError.reason`) or never existed. */
  RefNotFound: 'REF_NOT_FOUND',
  /** A ref was used in a session other than its own. */
  SessionMismatch: 'REF_SESSION_MISMATCH',
  /** A payload that claims to be a ref is malformed. */
  InvalidRef: 'REF_INVALID',
  /** The session does not exist (never registered, or released). */
  SessionNotFound: 'REF_SESSION_NOT_FOUND',
  /** The session id is registered with another owner and is not shared. */
  SessionOwnerConflict: 'REF_SESSION_OWNER_CONFLICT',
  /** The store is at its global cap and no idle session could be evicted. */
  StoreFull: 'REF_STORE_FULL',
  /** A value cannot be encoded (a function, a symbol, a class instance, ...): it is never stringified. */
  UnencodableValue: 'REF_UNENCODABLE_VALUE',
  /** The releaser failed twice for a session; the failure is reported, the session is gone locally. */
  ReleaseFailed: 'REF_RELEASE_FAILED',
  /** An argument is out of range or of the wrong type. */
  InvalidArgument: 'REF_INVALID_ARGUMENT',
  /** The session manager was disposed and takes no new work. */
  ManagerDisposed: 'REF_MANAGER_DISPOSED',
} as const;
export type RefRegistryErrorCode = (typeof RefRegistryErrorCode)[keyof typeof RefRegistryErrorCode];

/** Why a ref is gone. */
export type RefGoneReason = 'released' | 'ttl' | 'lru' | 'session_released' | 'worker_restarted';

/** Why a payload is not a valid ref. */
export type InvalidRefReason =
  | 'not_an_object'
  | 'missing_type'
  | 'not_a_ref'
  | 'unknown_schema'
  | 'missing_id'
  | 'missing_session'
  | 'missing_type_name'
  | 'invalid_field';

/** The base class of every error of this package. */
export class RefRegistryError extends Error {
  readonly [marker] = true;
  override readonly name: string = 'RefRegistryError';
  readonly code: RefRegistryErrorCode;
  constructor(code: RefRegistryErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[ref-registry] ${message}`, options);
    this.code = code;
  }
  /** Works across duplicate installs, where `instanceof` does not. */
  static isInstance(value: unknown): value is RefRegistryError {
    return typeof value === 'object' && value !== null && marker in value;
  }
}

const reasonText: Record<RefGoneReason, string> = {
  released: 'it was released',
  ttl: 'its time to live ran out',
  lru: 'it was evicted (least recently used)',
  session_released: 'its session was released',
  worker_restarted: 'the worker holding it restarted',
};

/** A ref that no longer exists (or never did), with the reason when it is known. */
export class RefNotFoundError extends RefRegistryError {
  override readonly name = 'RefNotFoundError';
  readonly refId: string;
  readonly sessionId: string;
  /** `undefined` when the ref was never known here (or its tombstone aged out). */
  readonly reason: RefGoneReason | undefined;
  constructor(refId: string, sessionId: string, reason?: RefGoneReason, options?: { cause?: unknown }) {
    super(
      RefRegistryErrorCode.RefNotFound,
      `reference '${refId}' not found in session '${sessionId}'${reason ? `: ${reasonText[reason]}` : ''}`,
      options,
    );
    this.refId = refId;
    this.sessionId = sessionId;
    this.reason = reason;
  }
}

/** A ref used in a session other than the one that owns it. */
export class SessionMismatchError extends RefRegistryError {
  override readonly name = 'SessionMismatchError';
  readonly refId: string;
  /** The session the ref belongs to. */
  readonly expectedSession: string;
  /** The session it was used in. */
  readonly actualSession: string;
  constructor(refId: string, expectedSession: string, actualSession: string) {
    super(
      RefRegistryErrorCode.SessionMismatch,
      `reference '${refId}' belongs to session '${expectedSession}' but was used in session '${actualSession}'`,
    );
    this.refId = refId;
    this.expectedSession = expectedSession;
    this.actualSession = actualSession;
  }
}

/** A payload that claims to be a ref but is malformed. */
export class InvalidRefError extends RefRegistryError {
  override readonly name = 'InvalidRefError';
  readonly reason: InvalidRefReason;
  /** The ref id and session when the payload had them. */
  readonly refId: string | undefined;
  readonly sessionId: string | undefined;
  constructor(reason: InvalidRefReason, detail: string, refId?: string, sessionId?: string) {
    const named = refId ? ` (ref '${refId}'${sessionId ? ` in session '${sessionId}'` : ''})` : '';
    super(RefRegistryErrorCode.InvalidRef, `invalid reference${named}: ${detail}`);
    this.reason = reason;
    this.refId = refId;
    this.sessionId = sessionId;
  }
}
