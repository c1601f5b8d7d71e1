const marker = Symbol.for('trestle.python-adapter.error');

/** Stable error codes of `@trestle/python-adapter`. A published code never changes. */
export const PythonAdapterErrorCode = {
  /** Python code raised: see `PythonError` (type, message, traceback, module, fn). */
  Python: 'PY_EXCEPTION',
  /** The worker process exited (or was killed) while the call was in flight. */
  WorkerCrashed: 'PY_WORKER_CRASHED',
  /** The worker was restarted (a call did not yield to cancel in time); the call's session lost its refs. */
  WorkerRestarted: 'PY_WORKER_RESTARTED',
  /** The call's `timeoutMs` passed. */
  Timeout: 'PY_TIMEOUT',
  /** The call's `AbortSignal` fired. */
  Aborted: 'PY_ABORTED',
  /** The pool's queue is full (backpressure): retry later. */
  QueueFull: 'PY_QUEUE_FULL',
  /** The call waited in the queue longer than `queueTimeoutMs`. */
  QueueTimeout: 'PY_QUEUE_TIMEOUT',
  /** The worker could not be started (no interpreter, bad path, handshake timeout). */
  SpawnFailed: 'PY_SPAWN_FAILED',
  /** The worker speaks another protocol version. */
  ProtocolMismatch: 'PY_PROTOCOL_MISMATCH',
  /** A malformed frame or message on the protocol pipe. */
  Protocol: 'PY_PROTOCOL',
  /** A host value that has no Python form (a function, a symbol, a class instance without a codec). */
  Unencodable: 'PY_UNENCODABLE',
  /** A Python value the host cannot decode (an unknown tag or codec). */
  Undecodable: 'PY_UNDECODABLE',
  /** The module or attribute is not allowed (module allowlist, dunder names). */
  Forbidden: 'PY_FORBIDDEN',
  /** The adapter is closed. */
  Closed: 'PY_CLOSED',
  /** An argument is out of range or of the wrong type. */
  InvalidArgument: 'PY_INVALID_ARGUMENT',
} as const;
export type PythonAdapterErrorCode = (typeof PythonAdapterErrorCode)[keyof typeof PythonAdapterErrorCode];

/** The base class of every error of this package. */
export class PythonAdapterError extends Error {
  readonly [marker] = true;
  override readonly name: string = 'PythonAdapterError';
  readonly code: PythonAdapterErrorCode;
  constructor(code: PythonAdapterErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[python-adapter] ${message}`, options);
    this.code = code;
  }
  /** Works across duplicate installs, where `instanceof` does not. */
  static isInstance(value: unknown): value is PythonAdapterError {
    return typeof value === 'object' && value !== null && marker in value;
  }
}

/** What Python said about an exception. */
export interface PythonErrorInfo {
  /** The exception class's `__qualname__`, e.g. `ValueError`. */
  readonly type: string;
  /** The exception class's `__module__`, e.g. `builtins`. */
  readonly module: string;
  /** `str(exception)`. */
  readonly pythonMessage: string;
  /** The formatted traceback, the worker's own frames removed. */
  readonly traceback: string;
  /** What was called: `math.sqrt`, `Pattern.match`, ... */
  readonly fn: string;
}

/** Python code raised. `message` reads `ValueError: math domain error (in math.sqrt)`. */
export class PythonError extends PythonAdapterError implements PythonErrorInfo {
  override readonly name = 'PythonError';
  readonly type: string;
  readonly module: string;
  readonly pythonMessage: string;
  readonly traceback: string;
  readonly fn: string;
  constructor(info: PythonErrorInfo) {
    super(
      PythonAdapterErrorCode.Python,
      `${info.type}: ${info.pythonMessage}${info.fn ? ` (in ${info.fn})` : ''}`,
    );
    this.type = info.type;
    this.module = info.module;
    this.pythonMessage = info.pythonMessage;
    this.traceback = info.traceback;
    this.fn = info.fn;
  }
  /** The fully qualified exception type, e.g. `json.decoder.JSONDecodeError`. */
  get qualifiedType(): string {
    return this.module && this.module !== 'builtins' ? `${this.module}.${this.type}` : this.type;
  }
}

/** The worker died under the call: exit code or signal, and the last lines of its stderr. */
export class WorkerCrashedError extends PythonAdapterError {
  override readonly name = 'WorkerCrashedError';
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderrTail: string;
  readonly workerId: number;
  constructor(fields: {
    workerId: number;
    exitCode: number | null;
    signal: NodeJS.Signals | null;
    stderrTail: string;
    code?: PythonAdapterErrorCode;
    why?: string;
  }) {
    const how = fields.signal ? `was killed by ${fields.signal}` : `exited with code ${fields.exitCode}`;
    const tail = fields.stderrTail.trim();
    super(
      fields.code ?? PythonAdapterErrorCode.WorkerCrashed,
      `python worker ${fields.workerId} ${fields.why ?? how}${tail ? `; stderr tail:\n${tail}` : ''}`,
    );
    this.exitCode = fields.exitCode;
    this.signal = fields.signal;
    this.stderrTail = fields.stderrTail;
    this.workerId = fields.workerId;
  }
}

/** A value with no wire form, named by its path (`args[0].x`). Never stringified. */
export class UnencodableError extends PythonAdapterError {
  override readonly name = 'UnencodableError';
  readonly path: string;
  constructor(path: string, what: string) {
    super(
      PythonAdapterErrorCode.Unencodable,
      `cannot send ${what} at ${path} to Python (no codec claims it)`,
    );
    this.path = path;
  }
}

/** Builds an error of `code` with this package's prefix. */
export function adapterError(
  code: PythonAdapterErrorCode,
  message: string,
  cause?: unknown,
): PythonAdapterError {
  return new PythonAdapterError(code, message, cause === undefined ? undefined : { cause });
}
