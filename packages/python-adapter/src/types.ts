import type {
  Clock,
  Ref,
  SessionContext,
  SessionHandle,
  SessionLimits,
  SessionManager,
  WithSessionOptions,
} from '@trestle/ref-registry';
import type { PyCodec } from './codec';
import type { Logger, PythonOutput } from './logger';
import type { WorkerStats } from './pool';
import type { PyObject } from './proxy';

/** Options of {@link createPython}. Every one is optional. */
export interface PythonOptions {
  /** The interpreter (a path or a command on `PATH`). @default `venv`, then `TRESTLE_PYTHON`, then `VIRTUAL_ENV`, then `python3` */
  readonly python?: string;
  /** A virtual environment directory: its `bin/python3` is used. */
  readonly venv?: string;
  /** The workers' working directory (on `sys.path`, so its modules are importable). @default process.cwd() */
  readonly cwd?: string;
  /** Extra environment variables of the workers (over the host's). `PYTHONPATH` is extended, not replaced. */
  readonly env?: Readonly<Record<string, string>>;
  /** Worker processes. Sessions are spread over them; a session always stays on its worker. @default 1 */
  readonly size?: number;
  /** Requests sent to one worker and not answered yet; more wait in the queue. @default 256 */
  readonly maxInFlight?: number;
  /** Calls waiting in the pool's queue; past it a call fails at once with `PY_QUEUE_FULL`. @default 10_000 */
  readonly maxQueue?: number;
  /** How long a call may wait in the queue (`PY_QUEUE_TIMEOUT`). `0` or `Infinity`: no limit. @default 30_000 */
  readonly queueTimeoutMs?: number;
  /** The default deadline of every call (`PY_TIMEOUT`); per-call `timeoutMs` overrides. @default none */
  readonly timeoutMs?: number;
  /**
   * After a deadline or abort, how long Python gets to stop the call (it is interrupted) before the
   * worker is killed and respawned, failing its sessions with `worker_restarted`. @default 1_000
   */
  readonly cancelGraceMs?: number;
  /** Start-up deadline of a worker (spawn, handshake, configure). @default 15_000 */
  readonly startupTimeoutMs?: number;
  /** The session manager (shared with other packages, e.g. `@trestle/bridge`). The adapter becomes its releaser. @default a new one */
  readonly sessions?: SessionManager;
  /** The session context used when a call names no session. @default a new one over `sessions` */
  readonly context?: SessionContext;
  /** Per-session limits, enforced on both sides (only when the adapter creates the manager). @default `{ maxRefs: 10_000, ttlMs: 3_600_000 }` */
  readonly defaults?: Partial<SessionLimits>;
  /** Refs one worker holds in all; at the cap, the least recently used idle session is evicted whole. @default 1_000_000 */
  readonly maxTotalRefs?: number;
  /** Items fetched per round trip when streaming. @default 64 */
  readonly chunkSize?: number;
  /** `bytes` of at least this size travel raw in binary frames instead of base64. @default 4096 */
  readonly binaryThreshold?: number;
  /** The largest frame accepted, checked before allocating. @default 1 GiB */
  readonly maxFrameBytes?: number;
  /** Custom codecs (plugins), each with an optional Python half (`python: "module:attr"`). */
  readonly codecs?: readonly PyCodec[];
  /** Modules Python code may be called in (with their submodules). A guard, not a sandbox. @default all */
  readonly allowModules?: readonly string[];
  /** Resource limits applied in each worker (`resource.setrlimit`). */
  readonly rlimits?: { readonly addressSpaceBytes?: number; readonly cpuSeconds?: number };
  /** The adapter's own events (worker started, exited, restarted). @default warnings and errors to `console` */
  readonly logger?: Logger;
  /** Each line the workers print (stdout) or write to stderr. @default to the host's stdout / stderr, tagged `[py1]` */
  readonly onOutput?: (entry: PythonOutput) => void;
  /** Forgotten proxies are released in batches after this delay. @default 100 */
  readonly finalizationBatchMs?: number;
  /** @default `performance.now` with unref'd timers */
  readonly clock?: Clock;
}

/** Options of one call. */
export interface CallOptions {
  /**
   * The session: an id (registered on first use, a named session), a handle, or none: the current
   * `withSession` scope, else the session of the ref the call is on, else the adapter's default session.
   */
  readonly session?: string | SessionHandle;
  /** The deadline of this call (`PY_TIMEOUT`): Python is told to cancel. @default the adapter's `timeoutMs` */
  readonly timeoutMs?: number;
  /** Aborts the call (`PY_ABORTED`): Python is told to cancel. */
  readonly signal?: AbortSignal;
}

/** Options of {@link Python.stream}. */
export interface StreamOptions extends CallOptions {
  /** Items fetched per round trip. @default the adapter's `chunkSize` */
  readonly chunkSize?: number;
}

/** Keyword arguments. */
export type Kwargs = Readonly<Record<string, unknown>>;

/** One item of {@link Python.batch}: a call, a method call, or an attribute read. */
export type BatchItem =
  | {
      readonly module: string;
      readonly fn: string;
      readonly args?: readonly unknown[];
      readonly kwargs?: Kwargs;
    }
  | {
      readonly ref: Ref;
      readonly method: string;
      readonly args?: readonly unknown[];
      readonly kwargs?: Kwargs;
    }
  | { readonly ref: Ref; readonly attr: string }
  | { readonly module: string; readonly attr: string };

/** The outcome of one batch item: its value, or its own error (other items are unaffected). */
export type BatchResult<T = unknown> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: Error };

/** What `doctor()` reports. */
export interface DoctorReport {
  readonly ok: boolean;
  /** The command the workers run, and where it came from. */
  readonly interpreter: { readonly command: string; readonly source: string };
  readonly executable?: string;
  readonly version?: string;
  readonly implementation?: string;
  readonly prefix?: string;
  /** Per module: `true` when importable, else the import error. */
  readonly modules: Readonly<Record<string, true | string>>;
  /** Why the check failed (the interpreter could not be started). */
  readonly error?: string;
}

/** Counters of the adapter. */
export interface PythonStats {
  readonly workers: readonly WorkerStats[];
  readonly sessions: number;
  readonly refs: number;
  readonly calls: number;
  readonly errors: number;
  /** Proxies released by the `FinalizationRegistry` backstop. */
  readonly finalized: number;
}

/** What a worker's Python side reports (`stats` op). Times are Unix seconds. */
export interface WorkerPythonStats {
  readonly worker: number;
  readonly pid: number;
  readonly sessions: number;
  readonly refs: number;
  readonly rss_bytes: number;
  readonly counters: Readonly<Record<string, number>>;
  /** With a session id: that session's refs, least recently used first. */
  readonly session?: {
    readonly id: string;
    readonly refs: readonly {
      readonly id: string;
      readonly type_name: string;
      readonly python_module: string;
      readonly created_at: number;
      readonly last_access: number;
    }[];
    readonly created_at: number;
    readonly last_access: number;
  };
}

/** A Python iterator consumed from Node: `for await`, `break` closes it in Python. */
export interface PyStream<T = unknown> extends AsyncIterableIterator<T>, AsyncDisposable {
  /** Closes the iterator in Python (`gen.close()`). Idempotent. */
  close(): Promise<void>;
}

/** The Node side of the bridge. Create it with {@link createPython}. */
export interface Python extends AsyncDisposable {
  readonly sessions: SessionManager;
  readonly context: SessionContext;
  /** Starts the workers (calls do it on first use). @throws PythonAdapterError `PY_SPAWN_FAILED` */
  ready(): Promise<void>;
  /** Calls `module.fn(*args, **kwargs)`. `fn` may be dotted (`path.join`). Objects come back as `Ref`s. */
  call<T = unknown>(
    module: string,
    fn: string,
    args?: readonly unknown[],
    kwargs?: Kwargs,
    options?: CallOptions,
  ): Promise<T>;
  /** Calls `ref.name(*args, **kwargs)`. */
  method<T = unknown>(
    ref: Ref,
    name: string,
    args?: readonly unknown[],
    kwargs?: Kwargs,
    options?: CallOptions,
  ): Promise<T>;
  /** Reads `ref.name`, or `module.name` when `target` is a module name. */
  attr<T = unknown>(target: Ref | string, name: string, options?: CallOptions): Promise<T>;
  /** Sets `ref.name = value`. */
  setattr(ref: Ref, name: string, value: unknown, options?: CallOptions): Promise<void>;
  /**
   * Runs several calls in one round trip, in order, in one session (each item's own error is in its
   * result; an async item is awaited before the next). The whole batch shares `options`.
   */
  batch(items: readonly BatchItem[], options?: CallOptions): Promise<BatchResult[]>;
  /** Releases refs now (batched into one message per session). Idempotent. */
  release(refs: Ref | readonly Ref[]): Promise<void>;
  /** Releases a session and every object it holds. Idempotent. */
  releaseSession(sessionId: string): Promise<void>;
  /** Iterates a Python iterable ref, in chunks. */
  stream<T = unknown>(ref: Ref, options?: StreamOptions): PyStream<T>;
  /** Iterates what `module.fn(*args, **kwargs)` returns (a generator, an iterator, any iterable). */
  stream<T = unknown>(
    module: string,
    fn: string,
    args?: readonly unknown[],
    kwargs?: Kwargs,
    options?: StreamOptions,
  ): PyStream<T>;
  /**
   * A module proxy: `const re = py.module('re'); const p = await re.compile('\\d+')`. Calls go
   * through `call` / `method` / `attr`; refs come back as proxies (`AsyncDisposable`, released when
   * collected as a backstop).
   */
  module(name: string, options?: CallOptions): PyObject;
  /** A proxy over a ref. */
  wrap(ref: Ref, options?: CallOptions): PyObject;
  /** Runs `fn` in a session scope (see `SessionContext.withSession`). */
  withSession<T>(fn: () => T): T;
  withSession<T>(options: WithSessionOptions, fn: () => T): T;
  /** Checks the interpreter and which modules import. Never throws. */
  doctor(modules?: readonly string[]): Promise<DoctorReport>;
  stats(): PythonStats;
  /** Asks every worker (or the session's worker) what it holds: sessions, refs, RSS, counters. */
  pythonStats(sessionId?: string): Promise<WorkerPythonStats[]>;
  /** Fails queued calls, lets in-flight ones finish for `graceMs`, stops the workers, releases every session. */
  close(graceMs?: number): Promise<void>;
}
