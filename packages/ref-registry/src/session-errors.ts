import { RefRegistryError, RefRegistryErrorCode } from './errors';

/** A session id that is not registered (never was, or was released). */
export class SessionNotFoundError extends RefRegistryError {
  override readonly name = 'SessionNotFoundError';
  readonly sessionId: string;
  constructor(sessionId: string, detail = 'it was never registered or has been released') {
    super(RefRegistryErrorCode.SessionNotFound, `session '${sessionId}' not found: ${detail}`);
    this.sessionId = sessionId;
  }
}

/**
 * A session id registered again with a different owner, when the session and the new registration
 * are not both `shared: true`. Sharing a session is always a decision, never an accident.
 */
export class SessionOwnerConflictError extends RefRegistryError {
  override readonly name = 'SessionOwnerConflictError';
  readonly sessionId: string;
  constructor(sessionId: string, detail: string) {
    super(RefRegistryErrorCode.SessionOwnerConflict, `session '${sessionId}' ${detail}`);
    this.sessionId = sessionId;
  }
}

/** The session manager was disposed; it registers nothing any more (`REF_MANAGER_DISPOSED`). */
export class SessionManagerDisposedError extends RefRegistryError {
  override readonly name = 'SessionManagerDisposedError';
  constructor(operation: string) {
    super(RefRegistryErrorCode.ManagerDisposed, `cannot ${operation}: the session manager was disposed`);
  }
}
