import type {
  Budget,
  DebitOutcome,
  Decision,
  Reservation,
  ReserveResult,
  SettleOutcome,
  TierName,
} from '@trestle/budget';
import type { Discharger, DischargerPlugin, Handle, HandlePool, HandlePoolError } from '@trestle/handle-pool';
import type {
  RefGoneReason,
  ReleaseFailedError,
  SessionHandle,
  SessionLimits,
  SessionManager,
  SessionOwner,
  SessionReleaseCause,
} from '@trestle/ref-registry';
import type { Clock } from './clock';

/**
 * Why a session ended.
 * - `logout`: the client (or the code holding the session) let go; also `await using` and `session.end()`.
 * - `idle`: not busy and no activity for `idleTimeoutMs` (the sweeper), or its ref session was evicted
 *   as idle by the ref store.
 * - `budget`: the host ended it for running out of budget (the bridge never does this by itself).
 * - `shutdown`: `endAll('shutdown')`, `close()`, or the ref-registry manager was disposed.
 * - `owner-lost`: the owner given to `getOrCreate` ended (socket closed, signal aborted), or its ref
 *   session was released from outside the bridge.
 * - `worker-lost`: the worker holding its objects died (its ref session was released `worker_restarted`).
 * - `error`: the host ended it after a failure.
 */
export type EndReason = 'logout' | 'idle' | 'budget' | 'shutdown' | 'owner-lost' | 'worker-lost' | 'error';

/** Free-form, read-only data about a session (tenant, user, client address, ...). */
export type SessionMeta = Readonly<Record<string, unknown>>;

/** Where a session is in its life. `ending`: cleanup is running; it takes no new work. */
export type SessionState = 'open' | 'ending' | 'ended';

/** Options of {@link createBridgeManager}. */
export interface BridgeManagerOptions<TMeta extends SessionMeta = SessionMeta> {
  /**
   * The budget every session is charged through, one key per session (see `budgetKey`). Its tiers are
   * the sessions' tiers. The manager never disposes it.
   */
  readonly budget: Budget;
  /**
   * A ref-registry session manager. When given, each session registers a ref session with the same id,
   * and `end` releases it with the ref reason of the end reason (see {@link REF_REASON_BY_END_REASON}).
   * A ref session released from outside the bridge ends the bridge session. The manager never disposes it.
   * @default undefined (sessions have no refs)
   */
  readonly refs?: SessionManager;
  /**
   * Per-session ref limits, over the ref manager's defaults.
   * @default the ref manager's defaults
   */
  readonly refLimits?: Partial<SessionLimits>;
  /**
   * Dischargers of every session's handle pool: `{ [obligation]: fn }` or a list of plugins
   * (e.g. `{ 'py:close': ... }`). More can be registered per session on `session.handles`.
   * @default {}
   */
  readonly dischargers?: Readonly<Record<string, Discharger>> | readonly DischargerPlugin[];
  /**
   * Most live handles per session; `track()` beyond it throws `HANDLE_POOL_EXHAUSTED`.
   * @default 10_000
   */
  readonly maxHandles?: number;
  /**
   * Record a creation stack with each handle (shown in `session.handles.leaks()`).
   * @default false
   */
  readonly captureStacks?: boolean;
  /**
   * A session that is not busy and has had no activity for this long is ended with reason `idle`.
   * `Infinity` switches idle culling off (and the sweeper with it).
   * @default 900_000 (15 minutes)
   */
  readonly idleTimeoutMs?: number;
  /**
   * Interval of the one idle sweeper timer (armed only while sessions are open). A session is culled
   * between `idleTimeoutMs` and `idleTimeoutMs + sweepIntervalMs` after its last activity.
   * @default Math.min(60_000, idleTimeoutMs)
   */
  readonly sweepIntervalMs?: number;
  /**
   * Per-handle discharge deadline when a session ends (and the default of `session.handles.discharge`).
   * A discharger that misses it is reported as undischarged (`timeout`) and does not block the rest.
   * @default 5_000
   */
  readonly drainTimeoutMs?: number;
  /**
   * How long `end` waits for calls in flight (busy) to leave after aborting `session.signal`, before
   * it drains the handles anyway. `0` does not wait.
   * @default 5_000
   */
  readonly endGraceMs?: number;
  /**
   * Default lease of a `metered()` reservation: after it, an unsettled reservation is refunded by the
   * budget, and the bridge charges what was used post-paid (a `debit`) when the call settles.
   * @default 60_000
   */
  readonly leaseMs?: number;
  /**
   * Most sessions at once (open or ending). `getOrCreate` of a new id beyond it throws
   * `BRIDGE_TOO_MANY_SESSIONS`. A positive integer or `Infinity`.
   * @default 10_000
   */
  readonly maxSessions?: number;
  /**
   * How many end reports to remember by id, so that `manager.end(id)` after the session is gone returns
   * its report again. The session object itself returns its report forever.
   * @default 1_000
   */
  readonly retainReports?: number;
  /**
   * The budget key of a session. Ending a session does not reset its bucket: a client that ends and
   * reconnects does not get a full budget back.
   * @default (id) => id
   */
  readonly budgetKey?: (id: string, meta: TMeta | undefined) => string;
  /**
   * Time source and timers (the sweeper, end grace, discharge deadlines). Inject one in tests.
   * @default systemClock (performance.now, unref'd timers)
   */
  readonly clock?: Clock;
  /** Receives every event, after the `on()` listeners. A throwing observer becomes a process warning. */
  readonly onEvent?: (event: BridgeEvent<TMeta>) => void;
}

/** Options of {@link BridgeManager.getOrCreate}. */
export interface GetOrCreateOptions<TMeta extends SessionMeta = SessionMeta> {
  /** Data about the session (tenant, user). Applied when the session is created; ignored otherwise. */
  readonly meta?: TMeta;
  /**
   * What the session's life is tied to: an `AbortSignal` or an emitter of `close`/`exit` (a socket, a
   * child process). When it ends, the session ends with reason `owner-lost`. Given for an existing
   * session, it replaces the previous owner (the session follows its latest connection).
   * @throws BridgeError `BRIDGE_OWNER_ENDED` when it has already ended.
   */
  readonly owner?: SessionOwner;
}

/** A session's view of the budget: every call is bound to its key and its current tier. */
export interface SessionBudget {
  readonly key: string;
  readonly tier: TierName;
  /**
   * Charge `cost` if the bucket holds it; a denial is a decision, never an error.
   * @throws BridgeError `BRIDGE_SESSION_ENDED` once the session is ending; BudgetError for bad input.
   */
  consume(cost?: number): Promise<Decision>;
  /**
   * Hold `max` up front for `leaseMs`; settle with what was used. Prefer {@link Session.metered}.
   * @throws BridgeError `BRIDGE_SESSION_ENDED` once the session is ending; BudgetError for bad input.
   */
  reserve(max: number, leaseMs?: number): Promise<ReserveResult>;
  /** Settle a reservation. Works after the session ended too: refunds are never refused. */
  settle(reservationId: string, used: number): Promise<SettleOutcome>;
  /**
   * Post-paid charge (bounded by the tier's `maxDebt`).
   * @throws BridgeError `BRIDGE_SESSION_ENDED` once the session is ending.
   */
  debit(used: number): Promise<DebitOutcome>;
  /** Tokens now (`null` for unlimited), without charging. */
  peek(): Promise<number | null>;
}

/** What a `metered()` function receives. */
export interface Meter {
  readonly sessionId: string;
  /** The reservation holding the maximum cost. */
  readonly reservation: Reservation;
  readonly decision: Decision;
  /** Aborts when the session starts ending: pass it to the work (e.g. a Python call). */
  readonly signal: AbortSignal;
  /** The cost reported so far with `use()`, or `undefined` when none was reported. */
  readonly used: number | undefined;
  /**
   * Report `amount` more of cost (adds up). What is reported is what is settled, on success and on
   * failure; without a report, success settles the full reservation and failure refunds it.
   * @throws BridgeError `BRIDGE_INVALID_ARGUMENT` unless a finite number >= 0.
   */
  use(amount: number): void;
}

/** Options of {@link Session.metered}. */
export interface MeteredOptions {
  /** @default the manager's `leaseMs` */
  readonly leaseMs?: number;
}

/** Returned by {@link Session.enter}: `leave()` (idempotent) ends the busy period; also `using`. */
export interface BusyToken extends Disposable {
  leave(): void;
}

/** Counters of a session's metered calls. */
export interface SessionCallStats {
  /** `metered()` calls that got a reservation and ran. */
  readonly metered: number;
  readonly succeeded: number;
  /** Ran and threw (or rejected). */
  readonly failed: number;
  /** Denied by the budget (`BRIDGE_BUDGET_EXCEEDED`): did not run, charged nothing. */
  readonly denied: number;
  /** Total cost settled (or debited) for the calls that ran. */
  readonly charged: number;
  /** Calls that outlived their lease and were charged post-paid. */
  readonly leaseExpired: number;
  /** Settles the budget store failed (the lease then refunds the reservation in full). */
  readonly settleFailures: number;
}

/**
 * One client's working set: a tier, a budget key, a handle pool and (optionally) a ref session.
 * Created by {@link BridgeManager.getOrCreate}.
 */
export interface Session<TMeta extends SessionMeta = SessionMeta> extends AsyncDisposable {
  readonly id: string;
  /** The current tier: every budget call uses it. Change it with `setTier` or `getOrCreate`. */
  readonly tier: TierName;
  readonly meta: TMeta | undefined;
  readonly state: SessionState;
  /** `clock.now()` at creation. */
  readonly createdAt: number;
  /** Last activity: creation, `getOrCreate`, `touch`, and every `enter`/`leave`. */
  readonly lastActiveAt: number;
  /** Calls in flight (`enter` without `leave`): a busy session is never culled as idle. */
  readonly busy: number;
  /** Aborts (reason: a `BRIDGE_SESSION_ENDED` error) when the session starts ending. */
  readonly signal: AbortSignal;
  readonly budget: SessionBudget;
  /** The session's handle pool (dischargers from the manager's options). */
  readonly handles: HandlePool;
  /** The session's ref session, when the manager has `refs`. */
  readonly refs: SessionHandle | undefined;
  readonly calls: SessionCallStats;
  /** The end reason, once ending. */
  readonly endReason: EndReason | undefined;
  /** Marks activity now (resets the idle timer). */
  touch(): void;
  /**
   * Starts a busy period (activity now, and at `leave`).
   * @throws BridgeError `BRIDGE_SESSION_ENDED` once the session is ending.
   */
  enter(): BusyToken;
  /**
   * Runs `fn` while busy. @throws BridgeError `BRIDGE_SESSION_ENDED` (as a rejection) once ending.
   */
  run<T>(fn: (signal: AbortSignal) => T | Promise<T>): Promise<T>;
  /**
   * Metered execution: reserves `maxCost` first (atomically, so concurrent calls never overdraw), runs
   * `fn` while busy, then settles with what `fn` reported through `meter.use()` (or the full
   * reservation on success / nothing on failure when it reported none).
   * @throws BudgetExceededError `BRIDGE_BUDGET_EXCEEDED` when the budget denies the reservation;
   *   BridgeError `BRIDGE_SESSION_ENDED`; BudgetError `BUDGET_COST_EXCEEDS_CAPACITY` and
   *   `BUDGET_INVALID_ARGUMENT` for a cost no tier can grant or a malformed one; and whatever `fn` throws.
   */
  metered<T>(maxCost: number, fn: (meter: Meter) => T | Promise<T>, options?: MeteredOptions): Promise<T>;
  /**
   * Moves the session (and its budget key, keeping its fill fraction) to another tier.
   * @throws BridgeError `BRIDGE_UNKNOWN_TIER`, `BRIDGE_SESSION_ENDED`.
   */
  setTier(tier: TierName): Promise<void>;
  /**
   * Ends the session: aborts `signal`, waits up to `endGraceMs` for calls in flight, drains the handle
   * pool, releases the ref session, removes the session. Idempotent: every call returns the same
   * promise, whatever its reason. Never rejects, and never touches the budget.
   * @default reason 'logout'
   * @throws BridgeError `BRIDGE_INVALID_ARGUMENT` (as a rejection) for an unknown reason.
   */
  end(reason?: EndReason): Promise<EndReport<TMeta>>;
  /** `end('logout')`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Why a handle was not discharged at the end of its session. */
export type UndischargedReason = 'failed' | 'timeout' | 'aborted' | 'no-discharger';

/** A handle the end of its session could not discharge. */
export interface UndischargedHandle {
  readonly handle: Handle;
  readonly why: UndischargedReason;
  /** The handle pool's error (`HANDLE_DISCHARGE_FAILED` with the discharger's error as `cause`, ...). */
  readonly error?: HandlePoolError;
}

/** What releasing the ref session did. */
export interface RefsEndReport {
  readonly status: 'released' | 'failed' | 'unknown';
  /** The reason the refs carry now (`RefNotFoundError.reason`). */
  readonly reason: RefGoneReason;
  /** `explicit` when the bridge released it; another cause when something else did first. */
  readonly cause: SessionReleaseCause | undefined;
  /** How many refs the host held for the session. */
  readonly count: number;
  /** The releaser's failure (`REF_RELEASE_FAILED`). */
  readonly error?: ReleaseFailedError;
}

/** What ending a session did. Every handle live at the end appears exactly once, in `discharged` or `undischarged`. */
export interface EndReport<TMeta extends SessionMeta = SessionMeta> {
  readonly id: string;
  readonly meta: TMeta | undefined;
  readonly tier: TierName;
  readonly reason: EndReason;
  /** When the session was created. */
  readonly startedAt: number;
  /** When `end` was first called. */
  readonly endStartedAt: number;
  readonly endedAt: number;
  /** The session's life: `endedAt - startedAt`. */
  readonly durationMs: number;
  /** How long the end took: `endedAt - endStartedAt`. */
  readonly cleanupMs: number;
  /** Handles discharged by the end, in discharge order (newest first). */
  readonly discharged: readonly Handle[];
  /** Handles the end could not discharge, each exactly once, with why. */
  readonly undischarged: readonly UndischargedHandle[];
  /** `undefined` when the manager has no `refs`. */
  readonly refs: RefsEndReport | undefined;
  /** Refs released with the session (`refs.count`, or 0). */
  readonly refsReleased: number;
  readonly calls: SessionCallStats;
  /** Calls still in flight when the grace period ran out (the handles were drained under them). */
  readonly abandonedCalls: number;
  /** Unexpected failures during the end (never thrown). Empty normally. */
  readonly errors: readonly unknown[];
}

/** What observers receive. */
export type BridgeEvent<TMeta extends SessionMeta = SessionMeta> =
  | { readonly type: 'session-created'; readonly session: Session<TMeta> }
  | {
      readonly type: 'tier-changed';
      readonly session: Session<TMeta>;
      readonly from: TierName;
      readonly to: TierName;
      /** Tokens after the rescale (`null`: unlimited), or `undefined` when the store failed (`error`). */
      readonly remaining: number | null | undefined;
      readonly error?: unknown;
    }
  | { readonly type: 'session-ending'; readonly session: Session<TMeta>; readonly reason: EndReason }
  | { readonly type: 'session-ended'; readonly session: Session<TMeta>; readonly report: EndReport<TMeta> };

export type BridgeEventType = BridgeEvent['type'];

/** Counters of a manager. */
export interface BridgeManagerStats {
  readonly open: number;
  readonly ending: number;
  /** Open sessions with calls in flight. */
  readonly busy: number;
  /** Sessions created since the manager was. */
  readonly created: number;
  /** Sessions ended, by reason. */
  readonly ended: Readonly<Record<EndReason, number>>;
  /** Whether the one idle sweeper timer is armed. */
  readonly sweeperArmed: boolean;
  readonly retainedReports: number;
  readonly closed: boolean;
}

/** Sessions over a shared budget. Create one with {@link createBridgeManager}. */
export interface BridgeManager<TMeta extends SessionMeta = SessionMeta> extends AsyncDisposable {
  readonly budget: Budget;
  readonly refs: SessionManager | undefined;
  readonly closed: boolean;
  /**
   * Returns the open session `id`, or creates it. A different `tier` is applied to an existing
   * session (event `tier-changed`). Concurrent calls for one id get the same session. A session that
   * is ending is never returned: the call waits for its end, then creates a new session.
   * @throws BridgeError (as rejections) `BRIDGE_INVALID_ARGUMENT`, `BRIDGE_UNKNOWN_TIER`,
   *   `BRIDGE_TOO_MANY_SESSIONS`, `BRIDGE_OWNER_ENDED`, `BRIDGE_MANAGER_CLOSED`; ref-registry errors.
   */
  getOrCreate(id: string, tier: TierName, options?: GetOrCreateOptions<TMeta>): Promise<Session<TMeta>>;
  /** The open session `id` (not one that is ending). */
  get(id: string): Session<TMeta> | undefined;
  /** Open sessions, oldest activity first. */
  sessions(): Session<TMeta>[];
  /**
   * Ends session `id` (see {@link Session.end}). Idempotent: concurrent and repeated calls return the
   * same report; after the session is gone, its report while retained (`retainReports`); `undefined`
   * for an id never seen.
   * @throws BridgeError `BRIDGE_INVALID_ARGUMENT` (as a rejection) for an unknown reason.
   */
  end(id: string, reason: EndReason): Promise<EndReport<TMeta> | undefined>;
  /** Ends every session concurrently (ending ones are awaited) and returns their reports. */
  endAll(reason: EndReason): Promise<EndReport<TMeta>[]>;
  /** Runs the idle sweep now; returns how many sessions it started ending. */
  sweep(): number;
  /** Subscribes to one event type; returns the unsubscribe function. */
  on<K extends BridgeEventType>(
    type: K,
    listener: (event: Extract<BridgeEvent<TMeta>, { type: K }>) => void,
  ): () => void;
  stats(): BridgeManagerStats;
  /**
   * Refuses new sessions, stops the sweeper, and ends every session with reason `shutdown`.
   * Idempotent. Does not dispose the budget or the ref manager.
   */
  close(): Promise<EndReport<TMeta>[]>;
  /** `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}
