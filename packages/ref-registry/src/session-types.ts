import type { Clock } from './clock';
import type { RefGoneReason } from './errors';
import type { IdGenerator } from './ids';
import type { SessionOwner } from './owners';
import type { Ref, RefInit } from './ref';
import type { ReleaseFailedError, ReleaseOperation, Releaser } from './releaser';
import type { RefEviction, RefStore, SessionLimits } from './store';

/** How a session is registered. */
export interface SessionOptions {
  /**
   * What the session's lifetime is tied to: when it ends, the session is released (reason
   * `session_released`, cause `owner-ended`). Without an owner the session lives until released.
   */
  readonly owner?: SessionOwner;
  /**
   * Whether other owners may join the session. A different owner joins only when the session and the
   * new registration are both shared; otherwise registering is a `SessionOwnerConflictError`.
   * A shared session with owners is released when its last owner ends.
   * @default false
   */
  readonly shared?: boolean;
  /** Limits the store enforces for this session, over the manager's `defaults`. Applied on re-registration too. */
  readonly limits?: Partial<SessionLimits>;
  /** Free-form labels, reported by `info()`. Merged on re-registration. */
  readonly tags?: Readonly<Record<string, string>>;
}

/** Options of {@link SessionManager.open}. */
export interface OpenSessionOptions extends SessionOptions {
  /**
   * The session id. It must not be registered already, unless the session and this call are both
   * `shared`. @default a fresh random id (`s_…`)
   */
  readonly id?: string;
}

/** Why a session was released. */
export type SessionReleaseCause =
  /** `releaseSession`, `handle.release()` or `await using`. */
  | 'explicit'
  /** Its (last) owner ended. */
  | 'owner-ended'
  /** The `withSession` scope that created it settled. */
  | 'scope-ended'
  /** The store dropped the whole idle session at its global cap. */
  | 'evicted'
  /** `manager.dispose()`. */
  | 'disposed';

/** A snapshot of a session. */
export interface SessionInfo {
  readonly id: string;
  readonly shared: boolean;
  /** Owners still watched. */
  readonly owners: number;
  readonly limits: SessionLimits;
  readonly tags: Readonly<Record<string, string>>;
  /** `clock.now()` at registration. */
  readonly createdAt: number;
}

/**
 * The outcome of releasing a session. `releaseSession` resolves with it; it never rejects because the
 * releaser failed.
 * - `released`: dropped on the host, and the releaser (if any) confirmed.
 * - `failed`: dropped on the host; the releaser failed twice: `error` (`REF_RELEASE_FAILED`) says why.
 * - `unknown`: nothing to release (never registered, or released before and already settled).
 */
export interface SessionReleaseReport {
  readonly sessionId: string;
  readonly status: 'released' | 'failed' | 'unknown';
  /** `status === 'released'`. */
  readonly released: boolean;
  /** The refs the host held for the session when it was released. */
  readonly refs: readonly Ref[];
  readonly reason: RefGoneReason;
  readonly cause: SessionReleaseCause | undefined;
  readonly error?: ReleaseFailedError;
}

/** The outcome of releasing one ref; `status` as in {@link SessionReleaseReport}. */
export interface RefReleaseReport {
  readonly ref: Ref;
  readonly status: 'released' | 'failed' | 'unknown';
  readonly released: boolean;
  readonly error?: ReleaseFailedError;
}

/** A ref to register: a `Ref`, or its fields (`id` @default a fresh `r_…` id; `sessionId` @default the session). */
export type RefInput =
  | Ref
  | (Omit<RefInit, 'id' | 'sessionId'> & { readonly id?: string; readonly sessionId?: string });

/** What observers receive, by event type. */
export interface SessionManagerEventMap {
  'session-registered': { readonly sessionId: string; readonly shared: boolean };
  'session-released': {
    readonly sessionId: string;
    readonly reason: RefGoneReason;
    readonly cause: SessionReleaseCause;
    readonly refs: readonly Ref[];
  };
  'ref-registered': { readonly ref: Ref };
  'ref-released': { readonly ref: Ref };
  /** The store dropped a ref on its own (`ttl`, `lru`). */
  'ref-evicted': { readonly ref: Ref; readonly reason: RefGoneReason };
  /** The releaser failed twice. Also in the release report. */
  'release-failed': {
    readonly sessionId: string;
    readonly operation: ReleaseOperation;
    readonly refs: readonly Ref[];
    readonly attempts: number;
    readonly error: ReleaseFailedError;
  };
}

export type SessionManagerEventType = keyof SessionManagerEventMap;

/** One event, tagged with its `type`. */
export type SessionManagerEvent = {
  [K in SessionManagerEventType]: { readonly type: K } & SessionManagerEventMap[K];
}[SessionManagerEventType];

/** A registered session. Stays bound to that registration: after it is released, it never acts on a new session with the same id. */
export interface SessionHandle extends AsyncDisposable {
  readonly id: string;
  readonly manager: SessionManager;
  /** Whether this session has been released. */
  readonly released: boolean;
  /** A snapshot, or `undefined` once released. */
  info(): SessionInfo | undefined;
  /** @throws SessionNotFoundError `REF_SESSION_NOT_FOUND` once released; store errors (`REF_STORE_FULL`). */
  registerRef(ref: RefInput): Ref;
  /** @throws RefNotFoundError, SessionMismatchError */
  getRef(ref: Ref | string): Ref;
  listRefs(): readonly Ref[];
  releaseRef(ref: Ref): Promise<RefReleaseReport>;
  /** Releases the session (all holders of a shared one). Idempotent. */
  release(reason?: RefGoneReason): Promise<SessionReleaseReport>;
}

/** Counters of a session manager. */
export interface SessionManagerStats {
  readonly sessions: number;
  /** Refs held in the store (all sessions). */
  readonly refs: number;
  /** Owners watched (listeners or `FinalizationRegistry` entries). */
  readonly owners: number;
  /** Releaser calls in flight. */
  readonly releasing: number;
  /** Releaser calls that failed twice, since creation. */
  readonly releaseFailures: number;
}

/** Options of {@link createSessionManager}. */
export interface SessionManagerOptions {
  /** Where refs are tracked. A store the manager creates is disposed with it. @default memoryRefStore() */
  readonly store?: RefStore;
  /** Releases sessions and refs remotely; can be set later with `setReleaser`. @default none (host only) */
  readonly releaser?: Releaser;
  /** Limits of sessions registered without their own. @default DEFAULT_SESSION_LIMITS */
  readonly defaults?: Partial<SessionLimits>;
  /** @default systemClock */
  readonly clock?: Clock;
  /** @default randomId (`s_` + 24 hex for sessions, `r_` for refs) */
  readonly idGenerator?: IdGenerator;
  /** Delay before the one retry of a failed releaser call. @default 100 */
  readonly retryDelayMs?: number;
  /** Deadline of one releaser call; a call past it counts as failed. `Infinity` switches it off. @default 30_000 */
  readonly releaseTimeoutMs?: number;
  /**
   * Interval of the TTL sweep: one timer (from `clock`), armed only while sessions exist. `0` or
   * `Infinity` switches it off (TTL is then found on access only). @default 60_000
   */
  readonly sweepIntervalMs?: number;
  /** Receives every event (after the `on` listeners). */
  readonly onEvent?: (event: SessionManagerEvent) => void;
}

/** Sessions with owners, and the refs they hold. Create one with {@link createSessionManager}. */
export interface SessionManager extends AsyncDisposable {
  readonly store: RefStore;
  readonly releaser: Releaser | undefined;
  setReleaser(releaser: Releaser | undefined): void;
  /**
   * Registers a session, or returns the registered one (a fresh handle is not created twice):
   * - a new id: registered with `options`;
   * - an existing id with no owner, or with one of its owners: the existing session (new `limits` applied);
   * - an existing id with another owner: that owner joins if both are `shared`, else it throws.
   * An owner that has already ended releases the new session at once (the handle comes back released).
   * @throws SessionOwnerConflictError `REF_SESSION_OWNER_CONFLICT`; RefRegistryError `REF_INVALID_ARGUMENT`
   *   for a bad id, owner or limits.
   */
  registerSession(sessionId: string, options?: SessionOptions): SessionHandle;
  /**
   * Registers a new session (a fresh id unless `options.id`).
   * @throws SessionOwnerConflictError when `options.id` is registered and not shared by both.
   */
  open(options?: OpenSessionOptions): SessionHandle;
  sessionExists(sessionId: string): boolean;
  /** The live registration of `sessionId`, if any. */
  session(sessionId: string): SessionHandle | undefined;
  sessions(): readonly SessionInfo[];
  /**
   * Adds a ref to a registered session. Sessions are never created here: a ref arriving after its
   * session was released must not bring the session back.
   * @throws SessionNotFoundError `REF_SESSION_NOT_FOUND`, SessionMismatchError, RefRegistryError `REF_STORE_FULL`
   */
  registerRef(sessionId: string, ref: RefInput): Ref;
  /** The ref, marked used. @throws RefNotFoundError (with its reason), SessionMismatchError */
  getRef(sessionId: string, ref: Ref | string): Ref;
  /** The session's live refs, least recently used first; `[]` for an unknown session. */
  listRefs(sessionId: string): readonly Ref[];
  /** Drops the ref on the host, then `releaser.releaseRefs` (retried once). Never rejects. */
  releaseRef(ref: Ref): Promise<RefReleaseReport>;
  /**
   * Drops the session and its refs on the host at once, stops watching its owners, then calls
   * `releaser.releaseSession` (retried once). Idempotent: concurrent calls share one run.
   * Never rejects for a releaser failure.
   * @default reason 'session_released'
   */
  releaseSession(sessionId: string, reason?: RefGoneReason): Promise<SessionReleaseReport>;
  /** Drops refs past their TTL now (reported as `ref-evicted`). */
  sweep(): readonly RefEviction[];
  /** Subscribes to one event type; returns the unsubscribe function. */
  on<K extends SessionManagerEventType>(
    type: K,
    listener: (event: Extract<SessionManagerEvent, { type: K }>) => void,
  ): () => void;
  /** Resolves when every releaser call started so far has settled. */
  flush(): Promise<void>;
  stats(): SessionManagerStats;
  /** Releases every session (cause `disposed`), stops every watch and the timer, awaits the releaser. Idempotent. */
  dispose(): Promise<void>;
}
