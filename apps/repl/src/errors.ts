/** Errors of the REPL's backends (Python exceptions are python-adapter's `PythonError`). */

/** The call was cancelled (Ctrl-C). */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
  readonly code = 'CANCELLED';
  constructor(message = 'cancelled') {
    super(message);
  }
}

/** The server answered with an error (`error.data.code`). */
export class RemoteError extends Error {
  override readonly name = 'RemoteError';
  readonly code: string;
  readonly rpcCode: number;
  readonly data: Readonly<Record<string, unknown>>;
  constructor(code: string, message: string, rpcCode: number, data: Readonly<Record<string, unknown>> = {}) {
    super(message);
    this.code = code;
    this.rpcCode = rpcCode;
    this.data = data;
  }
}

/** The connection dropped while a call was in flight: it may or may not have run. */
export class ConnectionLostError extends Error {
  override readonly name = 'ConnectionLostError';
  readonly code = 'CONNECTION_LOST';
  constructor(what: string, why: string) {
    super(`the connection dropped during ${what} (${why}); it may or may not have run`);
  }
}

/** The backend stopped for good (permanent connection failure, closed). */
export class BackendClosedError extends Error {
  override readonly name = 'BackendClosedError';
  readonly code = 'BACKEND_CLOSED';
}

/** Error codes that mean "cancelled". */
const CANCEL_CODES = new Set(['CANCELLED', 'PY_ABORTED', 'ERR_SCRIPT_EXECUTION_INTERRUPTED']);

/** Whether `error` is a cancellation (Ctrl-C, an aborted call, an interrupted evaluation). */
export function isCancellation(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && CANCEL_CODES.has(code);
}

/** The string `code` of an error-like value. */
export function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A message for any thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
