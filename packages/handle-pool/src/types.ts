import type { HandlePoolDrainError, HandlePoolError } from './errors';

/** Free-form, read-only data attached to a handle (tenant, path, request id, ...). */
export type HandleMeta = Readonly<Record<string, unknown>>;

/**
 * A tracked resource together with its obligation: the event that discharges it.
 * Handles are frozen; `resource` itself is not.
 */
export interface Handle<TResource = unknown> {
  /** Unique within the pool that issued it: `h_1`, `h_2`, ... */
  readonly id: string;
  /** What the resource is bound to in user terms, e.g. a variable name or `"upload.csv"`. */
  readonly binding: string;
  /** The event that discharges the handle, e.g. `"fs:close"`, `"py:release"`, `"socket:end"`. */
  readonly obligation: string;
  /** `clock.now()` when the handle was tracked. */
  readonly createdAt: number;
  /** The resource itself, passed to the discharger. `undefined` when not given. */
  readonly resource: TResource;
  /** `meta` as given to `track()`, or `undefined`. */
  readonly meta: HandleMeta | undefined;
  /** The stack at `track()` time, without the pool's own frames. Only with `captureStacks: true`. */
  readonly stack?: string;
}

/** Argument of {@link HandlePool.track}. */
export interface TrackInput<TResource = unknown> {
  /** Non-empty. */
  binding: string;
  /** Non-empty. Selects the discharger when the handle is discharged. */
  obligation: string;
  resource?: TResource;
  meta?: HandleMeta;
}

/** Second argument of every discharger. */
export interface DischargeContext {
  /**
   * Aborts when the discharge times out (reason: a `HANDLE_DISCHARGE_TIMEOUT` error) or when the
   * caller's `signal` aborts (reason: a `HANDLE_DISCHARGE_ABORTED` error). Pass it on to APIs that
   * accept one; the pool stops waiting either way.
   */
  readonly signal: AbortSignal;
  /** The timeout this discharge runs under, in milliseconds (`Infinity` for none). */
  readonly timeoutMs: number;
}

/**
 * Releases one handle's resource. Resolve (or return) when the resource is released; throw or reject
 * when it could not be. It runs at most once per handle.
 */
export type Discharger<TResource = unknown> = {
  // Method syntax makes the parameter bivariant, so a `Discharger<FileHandle>` fits where a
  // `Discharger` is expected (the `dischargers` record) without casts.
  bivariant(handle: Handle<TResource>, context: DischargeContext): void | Promise<void>;
}['bivariant'];

/**
 * The object form of a discharger: the plugin contract. Write a factory that returns one,
 * e.g. `fsCloseDischarger()`, and register it with `registerDischarger(plugin)` or `dischargers: [...]`.
 */
export interface DischargerPlugin<TResource = unknown> {
  /** Stable name used in error messages, e.g. `"fs-close"`. */
  readonly name: string;
  /** The obligation this plugin discharges. */
  readonly obligation: string;
  discharge(handle: Handle<TResource>, context: DischargeContext): void | Promise<void>;
}

/** Time source. Timers default to the global `setTimeout`/`clearTimeout`, looked up at each call. */
export interface HandlePoolClock {
  /** Milliseconds; used for `createdAt`, ages and durations. */
  now(): number;
  setTimeout?(callback: () => void, ms: number): unknown;
  clearTimeout?(timer: unknown): void;
}

/** Observations the pool reports through `onEvent`. */
export type HandlePoolEvent =
  | { readonly type: 'handle-tracked'; readonly handle: Handle }
  | { readonly type: 'handle-discharged'; readonly handle: Handle; readonly outcome: DischargedOutcome }
  | { readonly type: 'handle-failed'; readonly handle: Handle; readonly outcome: FailedOutcome }
  | { readonly type: 'handle-abandoned'; readonly handle: Handle; readonly outcome: NoDischargerOutcome };

/** Options of {@link createHandlePool}. */
export interface HandlePoolOptions {
  /**
   * Most live handles at once; `track()` beyond it throws `HANDLE_POOL_EXHAUSTED`.
   * A positive integer or `Infinity`.
   * @default 10_000
   */
  maxHandles?: number;
  /**
   * Record the creation stack of each handle (shown in leak reports). Costs one stack capture per
   * `track()`.
   * @default false
   */
  captureStacks?: boolean;
  /**
   * Time source and timers. Inject one in tests.
   * @default { now: () => Date.now() } with the global timers
   */
  clock?: HandlePoolClock;
  /**
   * Per-handle timeout of `discharge()` and `drain()` when the call does not give one, in
   * milliseconds. A positive number or `Infinity` (no timeout).
   * @default 5_000
   */
  defaultTimeoutMs?: number;
  /**
   * Dischargers to register up front: a record `obligation -> discharger` or a list of plugins.
   * @default {}
   */
  dischargers?: Readonly<Record<string, Discharger>> | readonly DischargerPlugin[];
  /**
   * How many settled outcomes to remember by id, so that `discharge(id)` called again after the
   * handle settled returns the same outcome. Oldest are forgotten first; a forgotten id gives
   * `status: 'unknown'` (the discharger still never runs twice). `discharge(handle)` always returns
   * the same outcome, whatever this is.
   * @default 1_000
   */
  retainOutcomes?: number;
  /**
   * Called synchronously for each {@link HandlePoolEvent}, after the pool's state is updated.
   * If it throws, the error is re-thrown from a microtask (as `EventTarget` does with listener
   * errors) so the pool's bookkeeping is never interrupted.
   * @default undefined
   */
  onEvent?: (event: HandlePoolEvent) => void;
}

/** Options of {@link HandlePool.discharge}. */
export interface DischargeOptions {
  /**
   * Timeout for this discharger, in milliseconds (`Infinity` for none).
   * @default the pool's `defaultTimeoutMs`
   */
  timeoutMs?: number;
  /** Stops waiting for the discharger (outcome `failed`, `HANDLE_DISCHARGE_ABORTED`). */
  signal?: AbortSignal;
}

/** The discharger ran and settled, or the handle was `forget()`-ten. */
export interface DischargedOutcome<TResource = unknown> {
  readonly status: 'discharged';
  readonly id: string;
  readonly handle: Handle<TResource>;
  /** `true` when settled by `forget()`: the discharger did not run. */
  readonly forgotten: boolean;
  readonly durationMs: number;
}

/** The discharger threw, rejected, timed out, or was aborted. The handle left the pool anyway. */
export interface FailedOutcome<TResource = unknown> {
  readonly status: 'failed';
  readonly id: string;
  readonly handle: Handle<TResource>;
  /** Code `HANDLE_DISCHARGE_FAILED` (the thrown value is its `cause`), `_TIMEOUT` or `_ABORTED`. */
  readonly error: HandlePoolError;
  readonly durationMs: number;
}

/** No discharger was registered for the obligation. The handle left the pool; release it yourself. */
export interface NoDischargerOutcome<TResource = unknown> {
  readonly status: 'no-discharger';
  readonly id: string;
  readonly handle: Handle<TResource>;
  readonly durationMs: 0;
}

/** The pool holds no handle with that id, and remembers no outcome for it. Nothing ran. */
export interface UnknownOutcome {
  readonly status: 'unknown';
  readonly id: string;
  readonly handle: undefined;
  readonly durationMs: 0;
}

/** Result of {@link HandlePool.discharge}. Discriminated by `status`. */
export type DischargeOutcome<TResource = unknown> =
  | DischargedOutcome<TResource>
  | FailedOutcome<TResource>
  | NoDischargerOutcome<TResource>
  | UnknownOutcome;

/** Options of {@link HandlePool.drain}. */
export interface DrainOptions {
  /**
   * Timeout for each handle's discharger (not for the whole drain; use `signal` for a deadline).
   * @default the pool's `defaultTimeoutMs`
   */
  timeoutMs?: number;
  /**
   * Aborts the drain: the running discharger and every handle not yet discharged are reported as
   * `failed` with `HANDLE_DISCHARGE_ABORTED` (their dischargers do not run), so nothing is lost.
   */
  signal?: AbortSignal;
  /**
   * Close the pool first: later `track()` calls throw `HANDLE_POOL_CLOSED`.
   * @default false
   */
  close?: boolean;
  /**
   * Reject with the report's {@link HandlePoolDrainError} when a handle failed, instead of resolving.
   * @default false
   */
  throwOnError?: boolean;
}

/**
 * What a drain did. Every handle live when the drain started (including one whose discharge was already
 * running) appears exactly once across `discharged`, `failed` and `noDischarger`, each list in discharge
 * order; so does every handle tracked while the drain ran and not settled by someone else first.
 */
export interface DrainReport {
  readonly discharged: Handle[];
  readonly failed: { readonly handle: Handle; readonly error: HandlePoolError }[];
  readonly noDischarger: Handle[];
  readonly durationMs: number;
  /** Set when `failed` is not empty: an `AggregateError` of the failures' errors. */
  error?: HandlePoolDrainError;
}

/** Options of {@link HandlePool.leaks}. */
export interface LeaksOptions {
  /**
   * Only handles at least this old, in milliseconds.
   * @default 0
   */
  olderThanMs?: number;
}

/** One live handle in a leak report. */
export interface LeakReportEntry {
  readonly id: string;
  readonly binding: string;
  readonly obligation: string;
  readonly createdAt: number;
  readonly ageMs: number;
  readonly stack?: string;
}

/** Counters for observability and leak tests. */
export interface HandlePoolStats {
  /** Live handles, including those whose discharger is running. Same as `size`. */
  readonly live: number;
  /** Handles whose discharger is running. */
  readonly settling: number;
  /** Settled outcomes remembered by id (at most `retainOutcomes`). */
  readonly retainedOutcomes: number;
  /** Registered dischargers. */
  readonly dischargers: number;
  readonly closed: boolean;
  readonly draining: boolean;
}

/**
 * A pool of handles with obligations. See {@link createHandlePool}.
 */
export interface HandlePool extends AsyncDisposable {
  /** Live handles (tracked and not yet settled). */
  readonly size: number;
  /** `true` after `drain({ close: true })` or async dispose. */
  readonly closed: boolean;

  /**
   * Starts tracking a resource.
   * @throws {HandlePoolError} `HANDLE_POOL_INVALID_INPUT` when `binding` or `obligation` is not a
   *   non-empty string; `HANDLE_POOL_CLOSED` after the pool was closed; `HANDLE_POOL_EXHAUSTED` when
   *   `maxHandles` handles are live.
   */
  track<TResource = unknown>(input: TrackInput<TResource>): Handle<TResource>;

  /**
   * Registers the discharger for an obligation and returns a function that unregisters it (idempotent).
   * @throws {HandlePoolError} `HANDLE_POOL_INVALID_INPUT` for an empty obligation or a non-function;
   *   `HANDLE_POOL_DUPLICATE_DISCHARGER` when the obligation already has one.
   */
  registerDischarger<TResource = unknown>(obligation: string, discharger: Discharger<TResource>): () => void;
  registerDischarger<TResource = unknown>(plugin: DischargerPlugin<TResource>): () => void;

  /**
   * Runs the handle's discharger (with a timeout) and removes the handle. Idempotent: later and
   * concurrent calls return the same outcome and never run the discharger again. Never rejects for a
   * discharger failure; the outcome says `failed`.
   * @throws {HandlePoolError} (as a rejection) `HANDLE_POOL_INVALID_INPUT` for a bad id or timeout.
   */
  discharge<TResource = unknown>(
    target: string | Handle<TResource>,
    options?: DischargeOptions,
  ): Promise<DischargeOutcome<TResource>>;

  /**
   * Settles a live handle as `discharged` without running its discharger, for a resource released by
   * other means. Returns `false` (and changes nothing) when the pool does not hold the handle or its
   * discharger is already running.
   */
  forget(target: string | Handle): boolean;

  /** The live handle with this id, if any. */
  get(id: string): Handle | undefined;

  /** Live handles, oldest first. */
  list(): Handle[];

  /** Live handles at least `olderThanMs` old, oldest first, with their age by the pool's clock. */
  leaks(options?: LeaksOptions): LeakReportEntry[];

  /**
   * Discharges every live handle, newest first and one at a time (a later resource may depend on an
   * earlier one), each under its own timeout; then discharges handles tracked meanwhile, until the pool
   * is empty. Concurrent calls share one run. Resolves with the report; a failure sets `report.error`
   * (or rejects with it when `throwOnError` is set).
   * @throws {HandlePoolError} (as a rejection) `HANDLE_POOL_INVALID_INPUT` for a bad `timeoutMs`.
   * @throws {HandlePoolDrainError} (as a rejection) only with `throwOnError: true`.
   */
  drain(options?: DrainOptions): Promise<DrainReport>;

  /** Counters: live, settling, retained outcomes, dischargers. */
  stats(): HandlePoolStats;

  /**
   * `drain({ close: true })`: every handle is attempted, then the pool stays closed. Idempotent.
   * @throws {HandlePoolDrainError} (as a rejection) when a handle failed, as `DisposableStack` does
   *   with a failing resource; its `report` lists everything.
   */
  [Symbol.asyncDispose](): Promise<void>;
}
