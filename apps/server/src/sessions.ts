/**
 * Server sessions. One `BridgeManager` per process; a session = tenant + tier + budget key `tenant`
 * (every session of a tenant shares the tenant's bucket, across replicas with the Redis store) + a
 * handle pool + a ref session in the tenant's Python.
 *
 * - A connection has at most one attached session. `open` creates one (a random id, and a resume
 *   token: 32 random bytes, base64url, of which only the SHA-256 is kept and compared in constant
 *   time); `resume` re-attaches one after a disconnect.
 * - A disconnect starts the resume grace (`resumeGraceMs`); when it runs out the session ends with
 *   `owner-lost` and its refs then report `session_released`.
 * - Idle sessions are culled by the bridge's one sweeper (`idleTimeoutMs`); a call in flight is
 *   activity (metered calls are busy periods).
 * - The end: the bridge drains the handle pool (`py:close` handles close their Python objects), then
 *   the server releases the ref session (objects freed in Python), unregisters the session from the
 *   directory, and logs the end report.
 *
 * Refs and tenants: each tenant's Python has its own ref registry, so a ref of another tenant is not
 * even known. A ref of another live session of the same tenant is `REF_SESSION_MISMATCH`; a ref of an
 * ended session of the same tenant is `REF_NOT_FOUND` with the reason its refs carry
 * (`session_released`, `ttl`, `worker_restarted`); a ref of another tenant (or never seen) is
 * `REF_NOT_FOUND` without a reason: it never says whether another tenant's session exists.
 */

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  type BridgeManager,
  type BudgetExceededError,
  type Clock,
  createBridgeManager,
  type EndReason,
  type EndReport,
  REF_REASON_BY_END_REASON,
  type Session,
} from '@trestle/bridge';
import type { Budget } from '@trestle/budget';
import type { CallOptions, Python } from '@trestle/python-adapter';
import {
  type Ref,
  type RefGoneReason,
  RefNotFoundError,
  type SessionHandle,
  SessionMismatchError,
} from '@trestle/ref-registry';
import {
  type Logger,
  type Metrics,
  type RpcConnection,
  RpcMethodError,
  type ServerConfig,
} from './contracts';
import type { SessionDirectory } from './directory';
import { codeOf } from './domain-errors';
import { followSignal } from './follow-signal';
import { failureOf, PY_CLOSE, pyCloseDischarger, type ResourceOwner } from './resources';
import type { RefSessionReleased, Tenant, Tenants } from './tenants';

/** The bridge session's meta. */
export interface SessionMetaData {
  readonly tenant: string;
  readonly [key: string]: unknown;
}

/** A server session. */
export interface ServerSession extends ResourceOwner {
  readonly id: string;
  readonly tenant: Tenant;
  readonly bridge: Session<SessionMetaData>;
  readonly python: Python;
  readonly refs: SessionHandle;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  /** SHA-256 of the resume token. */
  readonly tokenHash: Buffer;
  /** The attached connection, or `undefined` during the resume grace. */
  connection: RpcConnection | undefined;
  /** The resume grace timer. */
  graceTimer: unknown;
  /** ref id → `clock.now()` when the server first saw it (for `refs.list` ages). */
  readonly refTimes: Map<string, number>;
  /** The end reason, once ending. */
  endReason: EndReason | undefined;
  /** Resolves with the serialized end report when the end is complete (refs released, logged). */
  readonly done: Promise<SerializedEndReport>;
  /** @internal */
  resolveDone: (report: SerializedEndReport) => void;
  /** @internal true while the server itself releases the ref session */
  releasingRefs: boolean;
  /** @internal work to wait for before the ref session is released (streams closing) */
  readonly endWork: Promise<unknown>[];
}

/** `session.open` / `session.resume` results. */
export interface SessionDescription {
  readonly sessionId: string;
  readonly resumeToken: string;
  readonly tenant: string;
  readonly tier: string;
  readonly replica: string;
  readonly graceMs: number;
  readonly createdAt: number;
}

/** An `EndReport` as JSON. */
export interface SerializedEndReport {
  readonly sessionId: string;
  readonly tenant: string;
  readonly tier: string;
  readonly reason: EndReason;
  readonly durationMs: number;
  readonly cleanupMs: number;
  readonly discharged: readonly { id: string; obligation: string; label: string }[];
  readonly undischarged: readonly {
    id: string;
    obligation: string;
    label: string;
    why: string;
    error?: string;
  }[];
  readonly refs: {
    readonly status: string;
    readonly reason: RefGoneReason;
    readonly count: number;
    readonly error?: string;
  };
  readonly refsReleased: number;
  readonly calls: Readonly<Record<string, number>>;
  readonly abandonedCalls: number;
  readonly errors: readonly string[];
}

/** Options of {@link SessionService}. */
export interface SessionServiceOptions {
  readonly config: ServerConfig;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly budget: Budget;
  readonly tenants: Tenants;
  readonly directory: SessionDirectory;
  readonly replica: string;
  /** Per-handle discharge deadline at the end. @default 5_000 */
  readonly drainTimeoutMs?: number;
  /** How long an end waits for calls in flight. @default 5_000 */
  readonly endGraceMs?: number;
}

/** Hooks other parts register (streams). */
export interface SessionHooks {
  /** A session started ending: close what it owns; the returned promise is awaited before its refs go. */
  ending?(session: ServerSession, reason: EndReason): Promise<unknown> | undefined;
  /** The session's connection went away (the resume grace starts). */
  detached?(session: ServerSession, connection: RpcConnection): void;
}

const TOMBSTONES = 50_000;
/** `refTimes` entries past which the ones of gone refs are dropped. */
const REF_TIMES_PRUNE_AT = 20_000;
/** End reasons the client is told about with `session.ending` (it did not ask for them). */
const NOTIFIED: ReadonlySet<EndReason> = new Set(['budget', 'idle', 'shutdown', 'worker-lost', 'error']);

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** The sessions of this process. */
export class SessionService {
  readonly manager: BridgeManager<SessionMetaData>;
  readonly #options: SessionServiceOptions;
  readonly #sessions = new Map<string, ServerSession>();
  /** connection id → its attached session */
  readonly #attached = new Map<string, ServerSession>();
  /** session id → tenant and the reason its refs carry, for ended sessions */
  readonly #tombstones = new Map<string, { tenant: string; reason: RefGoneReason }>();
  readonly #hooks: SessionHooks[] = [];
  /** Connections with a `session.open` in progress (one session per connection). */
  readonly #opening = new Set<string>();

  constructor(options: SessionServiceOptions) {
    this.#options = options;
    const { config, clock, budget } = options;
    this.manager = createBridgeManager<SessionMetaData>({
      budget,
      dischargers: { [PY_CLOSE]: pyCloseDischarger },
      idleTimeoutMs: config.idleTimeoutMs,
      maxSessions: config.maxSessions,
      budgetKey: (id, meta) => meta?.tenant ?? id,
      drainTimeoutMs: options.drainTimeoutMs ?? 5_000,
      endGraceMs: options.endGraceMs ?? 5_000,
      clock,
    });
    this.manager.on('session-ending', ({ session, reason }) => {
      const record = this.#sessions.get(session.id);
      if (record !== undefined) this.#ending(record, reason);
    });
    this.manager.on('session-ended', ({ session, report }) => {
      const record = this.#sessions.get(session.id);
      if (record !== undefined) void this.#finish(record, report);
    });
  }

  /** Registers hooks (streams). */
  hook(hooks: SessionHooks): void {
    this.#hooks.push(hooks);
  }

  /** Sessions of this process (open, or in their resume grace). */
  get size(): number {
    return this.#sessions.size;
  }

  /** Every live session. */
  all(): ServerSession[] {
    return [...this.#sessions.values()];
  }

  get(sessionId: string): ServerSession | undefined {
    return this.#sessions.get(sessionId);
  }

  /** The session attached to `connection`, if any. */
  attachedTo(connection: RpcConnection): ServerSession | undefined {
    return this.#attached.get(connection.id);
  }

  /**
   * The session attached to `connection`; every call on it is activity (the idle sweep).
   * @throws RpcMethodError `NO_SESSION`
   */
  require(connection: RpcConnection): ServerSession {
    const record = this.#attached.get(connection.id);
    if (record === undefined || record.endReason !== undefined) {
      throw new RpcMethodError(
        'NO_SESSION',
        'this connection has no session: call session.open or session.resume first',
      );
    }
    record.bridge.touch();
    return record;
  }

  /** `session.open`: a new session for the connection's tenant. */
  async open(connection: RpcConnection): Promise<SessionDescription> {
    this.#refuseSecond(connection);
    this.#opening.add(connection.id);
    try {
      return await this.#open(connection);
    } finally {
      this.#opening.delete(connection.id);
    }
  }

  async #open(connection: RpcConnection): Promise<SessionDescription> {
    const { config, tenants, directory, logger, metrics } = this.#options;
    const principal = connection.principal;
    const tenant = tenants.get(principal.tenant);
    const tier = tenant.policy.tier ?? principal.tier;
    if (!this.#options.budget.tiers.has(tier)) {
      throw new RpcMethodError('SESSION_FORBIDDEN', `tier "${tier}" is not configured on this server`);
    }
    const id = `s_${randomBytes(16).toString('hex')}`;
    const resumeToken = randomBytes(32).toString('base64url');
    const python = tenants.python(tenant);
    tenants.attach(tenant, id);
    let refs: SessionHandle | undefined;
    let bridge: Session<SessionMetaData>;
    try {
      // Workers start here, not in the first (metered) call: a tenant never pays for a worker start.
      await python.ready();
      refs = python.sessions.registerSession(id);
      bridge = await this.manager.getOrCreate(id, tier, { meta: { tenant: tenant.name } });
    } catch (error) {
      tenants.detach(tenant, id);
      void refs?.release();
      throw error;
    }
    let resolveDone!: (report: SerializedEndReport) => void;
    const done = new Promise<SerializedEndReport>((resolve) => {
      resolveDone = resolve;
    });
    const record: ServerSession = {
      id,
      tenant,
      bridge,
      python,
      refs,
      handles: bridge.handles,
      closables: new Map(),
      createdAt: Date.now(),
      tokenHash: sha256(resumeToken),
      connection: undefined,
      graceTimer: undefined,
      refTimes: new Map(),
      endReason: undefined,
      done,
      resolveDone,
      releasingRefs: false,
      endWork: [],
    };
    this.#sessions.set(id, record);
    metrics.sessions.inc();
    this.#attach(record, connection);
    try {
      await directory.register(id, tenant.name);
    } catch (error) {
      logger.warn(
        { sessionId: id, err: error instanceof Error ? error.message : String(error) },
        'session directory: could not register the session (other replicas will not find it)',
      );
    }
    logger.info({ sessionId: id, tenant: tenant.name, tier, connection: connection.id }, 'session opened');
    if (record.endReason !== undefined) {
      throw new RpcMethodError('SESSION_NOT_FOUND', `session ${id} ended while it was being opened`);
    }
    return this.#describe(record, resumeToken, config);
  }

  /** `session.resume`: re-attaches a session of the connection's tenant after a disconnect. */
  async resume(
    connection: RpcConnection,
    sessionId: string,
    resumeToken: string,
  ): Promise<SessionDescription> {
    const { config, directory, replica, tenants } = this.#options;
    const principal = connection.principal;
    const record = this.#sessions.get(sessionId);
    if (record === undefined || record.endReason !== undefined) {
      if (record === undefined) {
        let entry: Awaited<ReturnType<SessionDirectory['lookup']>>;
        try {
          entry = await directory.lookup(sessionId);
        } catch (error) {
          throw new RpcMethodError(
            'INTERNAL',
            `the session directory is unavailable: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
        if (entry !== undefined && entry.replica !== replica) {
          if (entry.tenant !== principal.tenant) throw forbidden(sessionId);
          throw new RpcMethodError(
            'SESSION_ELSEWHERE',
            `session ${sessionId} lives on replica ${entry.replica}: reconnect to ${entry.url}`,
            { replica: entry.replica, url: entry.url },
          );
        }
      }
      throw new RpcMethodError(
        'SESSION_NOT_FOUND',
        `session ${sessionId} does not exist (it ended, or its grace passed, or the server restarted)`,
      );
    }
    if (record.tenant.name !== principal.tenant) throw forbidden(sessionId);
    const presented = sha256(resumeToken);
    if (!timingSafeEqual(presented, record.tokenHash)) throw forbidden(sessionId);
    const current = this.#attached.get(connection.id);
    if (current === record) return this.#describe(record, resumeToken, config);
    this.#refuseSecond(connection);
    if (record.connection !== undefined && !record.connection.signal.aborted) {
      throw new RpcMethodError(
        'SESSION_ATTACHED',
        `session ${sessionId} is attached to another live connection`,
      );
    }
    if (record.connection !== undefined) this.#detach(record);
    this.#attach(record, connection);
    tenants.attach(record.tenant, record.id);
    const tier = record.tenant.policy.tier ?? principal.tier;
    if (record.bridge.tier !== tier && this.#options.budget.tiers.has(tier)) {
      await record.bridge.setTier(tier).catch((error: unknown) => {
        this.#options.logger.warn(
          { sessionId, tier, err: error instanceof Error ? error.message : String(error) },
          'could not apply the tier on resume',
        );
      });
    }
    record.bridge.touch();
    this.#options.logger.info({ sessionId, connection: connection.id }, 'session resumed');
    return this.#describe(record, resumeToken, config);
  }

  /**
   * Ends a session (idempotent; the first reason wins) and resolves with its serialized report once
   * its refs are released.
   */
  end(record: ServerSession, reason: EndReason): Promise<SerializedEndReport> {
    if (record.endReason === undefined) void this.manager.end(record.id, reason);
    return record.done;
  }

  /** The connection opened. */
  connected(_connection: RpcConnection): void {
    // Nothing to do until it opens or resumes a session.
  }

  /** The connection closed: its session waits `resumeGraceMs` for a resume, then ends (`owner-lost`). */
  disconnected(connection: RpcConnection): void {
    const record = this.#attached.get(connection.id);
    if (record === undefined || record.connection !== connection) {
      this.#attached.delete(connection.id);
      return;
    }
    this.#detach(record);
  }

  /**
   * Checks a ref given by the client against the session (before anything runs).
   * @throws RefNotFoundError, SessionMismatchError (see the module comment for which).
   */
  resolveRef(record: ServerSession, ref: Ref): Ref {
    if (ref.sessionId === record.id) return record.refs.getRef(ref);
    if (record.tenant.sessions.has(ref.sessionId)) {
      throw new SessionMismatchError(ref.id, ref.sessionId, record.id);
    }
    const tombstone = this.#tombstones.get(ref.sessionId);
    if (tombstone !== undefined && tombstone.tenant === record.tenant.name) {
      throw new RefNotFoundError(ref.id, ref.sessionId, tombstone.reason);
    }
    throw new RefNotFoundError(ref.id, ref.sessionId);
  }

  /**
   * Runs one Python call of `record`, metered: reserve 1 unit of the tenant's bucket first (a denial
   * is `BUDGET_EXCEEDED` and nothing runs), then settle `1 + floor(python_wall_ms / 100)` (the rest
   * charged post-paid, down to the tier's `maxDebt`). `fn` gets the call options: the session, the
   * call's signal (RPC cancel, disconnect, session end) and the deadline.
   */
  async metered<T>(
    record: ServerSession,
    signal: AbortSignal,
    fn: (options: CallOptions) => Promise<T>,
    timeoutMs?: number,
  ): Promise<T> {
    const { clock, metrics, config } = this.#options;
    try {
      return await record.bridge.metered(1, async (meter) => {
        metrics.budgetDecisions.inc({ decision: meter.decision.kind });
        const started = clock.now();
        // The call's signal and the meter's (the session ending), without AbortSignal.any (see followSignal).
        const controller = new AbortController();
        const unfollowCall = followSignal(controller, signal);
        const unfollowMeter = followSignal(controller, meter.signal);
        try {
          return await fn({
            session: record.refs,
            signal: controller.signal,
            timeoutMs: timeoutMs ?? config.python.callTimeoutMs,
          });
        } finally {
          unfollowCall();
          unfollowMeter();
          meter.use(1 + Math.floor(Math.max(0, clock.now() - started) / 100));
        }
      });
    } catch (error) {
      if (codeOf(error) !== 'BRIDGE_BUDGET_EXCEEDED') throw error;
      const decision = (error as BudgetExceededError).decision;
      metrics.budgetDecisions.inc({ decision: decision.kind === 'degraded' ? 'degraded' : 'denied' });
      const retryAfterMs = Math.max(0, Math.ceil(decision.retryAfterMs));
      if (config.endOnBudgetExhausted) void this.end(record, 'budget');
      throw new RpcMethodError(
        'BUDGET_EXCEEDED',
        `the budget of tenant "${record.tenant.name}" is exhausted on tier "${decision.tier}": retry in ${retryAfterMs} ms`,
        {
          retryAfterMs,
          remaining: Number.isFinite(decision.remaining) ? decision.remaining : null,
          tier: decision.tier,
        },
      );
    }
  }

  /** Notes when the server first saw each of `refs` (for `refs.list`). */
  noteRefs(record: ServerSession, refs: readonly Ref[]): void {
    const now = this.#options.clock.now();
    for (const ref of refs) if (!record.refTimes.has(ref.id)) record.refTimes.set(ref.id, now);
    if (record.refTimes.size > REF_TIMES_PRUNE_AT && !record.refs.released) {
      const live = new Set(record.refs.listRefs().map((ref) => ref.id));
      for (const id of record.refTimes.keys()) if (!live.has(id)) record.refTimes.delete(id);
    }
  }

  /**
   * A ref was evicted in Python (TTL, LRU): the object is gone, so its `py:close` handle (if any) is
   * forgotten rather than discharged at the end.
   */
  refEvicted(tenant: Tenant, ref: Ref): void {
    const record = this.#sessions.get(ref.sessionId);
    if (record === undefined || record.tenant !== tenant) return;
    record.refTimes.delete(ref.id);
    const handleId = record.closables.get(ref.id);
    if (handleId === undefined) return;
    record.closables.delete(ref.id);
    record.handles.forget(handleId);
  }

  /** The ref session of a tenant's Python was released: by the server (ignored) or not (the session ends). */
  refSessionReleased(tenant: Tenant, event: RefSessionReleased): void {
    const record = this.#sessions.get(event.sessionId);
    if (record === undefined || record.tenant !== tenant || record.releasingRefs) return;
    const reason: EndReason =
      event.reason === 'worker_restarted'
        ? 'worker-lost'
        : event.cause === 'disposed'
          ? 'shutdown'
          : event.cause === 'evicted'
            ? 'idle'
            : 'owner-lost';
    this.#options.logger.warn(
      { sessionId: record.id, reason: event.reason, cause: event.cause },
      'the session lost its python objects: ending it',
    );
    void this.end(record, reason);
  }

  /** Ends every session with `shutdown` (each report logged) and closes the manager. */
  async shutdown(): Promise<SerializedEndReport[]> {
    const reports = await Promise.all(this.all().map((record) => this.end(record, 'shutdown')));
    await this.manager.close();
    return reports;
  }

  #refuseSecond(connection: RpcConnection): void {
    if (this.#opening.has(connection.id)) {
      throw new RpcMethodError('SESSION_ATTACHED', 'this connection is already opening a session');
    }
    const current = this.#attached.get(connection.id);
    if (current !== undefined && current.endReason === undefined) {
      throw new RpcMethodError(
        'SESSION_ATTACHED',
        `this connection already has session ${current.id}: end it first (one session per connection)`,
        { sessionId: current.id },
      );
    }
  }

  #attach(record: ServerSession, connection: RpcConnection): void {
    if (record.graceTimer !== undefined) {
      this.#options.clock.clearTimeout(record.graceTimer);
      record.graceTimer = undefined;
    }
    record.connection = connection;
    this.#attached.set(connection.id, record);
    if (connection.signal.aborted) this.#detach(record);
  }

  #detach(record: ServerSession): void {
    const connection = record.connection;
    if (connection === undefined) return;
    record.connection = undefined;
    if (this.#attached.get(connection.id) === record) this.#attached.delete(connection.id);
    if (record.endReason !== undefined) return;
    for (const hooks of this.#hooks) hooks.detached?.(record, connection);
    const graceMs = this.#options.config.resumeGraceMs;
    this.#options.logger.info({ sessionId: record.id, graceMs }, 'session detached: waiting for a resume');
    if (graceMs <= 0) {
      void this.end(record, 'owner-lost');
      return;
    }
    record.graceTimer = this.#options.clock.setTimeout(() => {
      record.graceTimer = undefined;
      if (record.connection === undefined) void this.end(record, 'owner-lost');
    }, graceMs);
  }

  /** The bridge started ending the session (any reason, any trigger). */
  #ending(record: ServerSession, reason: EndReason): void {
    record.endReason = reason;
    if (record.graceTimer !== undefined) {
      this.#options.clock.clearTimeout(record.graceTimer);
      record.graceTimer = undefined;
    }
    if (record.connection !== undefined && NOTIFIED.has(reason)) {
      record.connection.notify('session.ending', { sessionId: record.id, reason });
    }
    for (const hooks of this.#hooks) {
      try {
        const work = hooks.ending?.(record, reason);
        if (work !== undefined) record.endWork.push(work);
      } catch (error) {
        record.endWork.push(Promise.reject(error));
      }
    }
  }

  /** The bridge finished the end (handles drained): release the refs, forget the session, report. */
  async #finish(record: ServerSession, report: EndReport<SessionMetaData>): Promise<void> {
    const { logger, metrics, tenants, directory } = this.#options;
    const errors: string[] = report.errors.map(errorText);
    const settled = await Promise.allSettled(record.endWork);
    for (const outcome of settled) if (outcome.status === 'rejected') errors.push(errorText(outcome.reason));
    const refReason = REF_REASON_BY_END_REASON[report.reason];
    let refs: SerializedEndReport['refs'];
    record.releasingRefs = true;
    try {
      const released = await record.refs.release(refReason);
      refs = {
        status: released.status,
        reason: released.reason,
        count: released.refs.length,
        ...(released.error ? { error: released.error.message } : {}),
      };
    } catch (error) {
      refs = { status: 'failed', reason: refReason, count: 0, error: errorText(error) };
    }
    this.#tombstone(record, refs.reason);
    this.#sessions.delete(record.id);
    const connection = record.connection;
    if (connection !== undefined && this.#attached.get(connection.id) === record) {
      this.#attached.delete(connection.id);
    }
    tenants.detach(record.tenant, record.id);
    try {
      await directory.unregister(record.id);
    } catch (error) {
      logger.warn(
        { sessionId: record.id, err: errorText(error) },
        'session directory: could not unregister the session (its lease expires)',
      );
    }
    metrics.sessions.dec();
    metrics.sessionsEnded.inc({ reason: report.reason });
    if (report.discharged.length > 0)
      metrics.handlesDischarged.inc({ outcome: 'discharged' }, report.discharged.length);
    for (const entry of report.undischarged) {
      metrics.handlesDischarged.inc({ outcome: entry.why === 'failed' ? failureOf(entry.error) : entry.why });
    }
    const serialized: SerializedEndReport = {
      sessionId: record.id,
      tenant: record.tenant.name,
      tier: report.tier,
      reason: report.reason,
      durationMs: Math.round(report.durationMs),
      cleanupMs: Math.round(report.cleanupMs),
      discharged: report.discharged.map((handle) => ({
        id: handle.id,
        obligation: handle.obligation,
        label: handle.binding,
      })),
      undischarged: report.undischarged.map(({ handle, why, error }) => ({
        id: handle.id,
        obligation: handle.obligation,
        label: handle.binding,
        why,
        ...(error ? { error: error.message } : {}),
      })),
      refs,
      refsReleased: refs.count,
      calls: { ...report.calls },
      abandonedCalls: report.abandonedCalls,
      errors,
    };
    logger.info({ report: serialized }, 'session ended');
    record.resolveDone(serialized);
  }

  #tombstone(record: ServerSession, reason: RefGoneReason): void {
    this.#tombstones.set(record.id, { tenant: record.tenant.name, reason });
    if (this.#tombstones.size > TOMBSTONES) {
      const oldest = this.#tombstones.keys().next();
      if (!oldest.done) this.#tombstones.delete(oldest.value);
    }
  }

  #describe(record: ServerSession, resumeToken: string, config: ServerConfig): SessionDescription {
    return {
      sessionId: record.id,
      resumeToken,
      tenant: record.tenant.name,
      tier: record.bridge.tier,
      replica: this.#options.replica,
      graceMs: config.resumeGraceMs,
      createdAt: record.createdAt,
    };
  }
}

function forbidden(sessionId: string): RpcMethodError {
  return new RpcMethodError(
    'SESSION_FORBIDDEN',
    `session ${sessionId} cannot be resumed with these credentials (another tenant, or a wrong resume token)`,
  );
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
