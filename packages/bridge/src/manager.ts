import type { Budget, TierName } from '@trestle/budget';
import { createHandlePool, type HandlePoolOptions } from '@trestle/handle-pool';
import type { SessionHandle, SessionManager, SessionManagerEvent } from '@trestle/ref-registry';
import { type Clock, MAX_TIMER_MS, systemClock } from './clock';
import { BridgeError, BridgeErrorCode, describeValue, invalidArgument } from './errors';
import { EventHub } from './events';
import { checkOwner } from './owners';
import { END_REASONS, endReasonOfRefRelease, isEndReason } from './reasons';
import { type SessionHost, SessionImpl } from './session';
import type {
  BridgeEvent,
  BridgeEventType,
  BridgeManager,
  BridgeManagerOptions,
  BridgeManagerStats,
  EndReason,
  EndReport,
  GetOrCreateOptions,
  Session,
  SessionMeta,
} from './types';

const asyncDisposeSymbol: typeof Symbol.asyncDispose =
  (Symbol as { asyncDispose?: typeof Symbol.asyncDispose }).asyncDispose ??
  (Symbol.for('nodejs.asyncDispose') as typeof Symbol.asyncDispose);

const isDuration = (value: unknown, allowZero: boolean): value is number =>
  typeof value === 'number' && !Number.isNaN(value) && (allowZero ? value >= 0 : value > 0);
const isCount = (value: unknown, allowZero: boolean): value is number =>
  value === Number.POSITIVE_INFINITY || (Number.isInteger(value) && (value as number) >= (allowZero ? 0 : 1));

class Manager<TMeta extends SessionMeta> implements BridgeManager<TMeta>, SessionHost<TMeta> {
  readonly budget: Budget;
  readonly refs: SessionManager | undefined;
  readonly clock: Clock;
  readonly events: EventHub<TMeta>;
  readonly leaseMs: number;
  readonly endGraceMs: number;
  readonly drainTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly sweepIntervalMs: number;
  private readonly maxSessions: number;
  private readonly retainReports: number;
  private readonly poolOptions: HandlePoolOptions;
  private readonly budgetKey: (id: string, meta: TMeta | undefined) => string;
  private readonly refLimits: BridgeManagerOptions<TMeta>['refLimits'];
  /** Every session that is open or ending, by id. */
  private readonly all = new Map<string, SessionImpl<TMeta>>();
  /** Open sessions, least recently active first (re-inserted on activity): the sweeper stops early. */
  private readonly open = new Map<string, SessionImpl<TMeta>>();
  /** Reports of ended sessions, oldest first, at most `retainReports`. */
  private readonly reports = new Map<string, EndReport<TMeta>>();
  private readonly endedCounts: Record<EndReason, number> = Object.fromEntries(
    END_REASONS.map((reason) => [reason, 0]),
  ) as Record<EndReason, number>;
  private created = 0;
  private sweepTimer: unknown;
  private sweepArmed = false;
  private closing: Promise<EndReport<TMeta>[]> | undefined;
  private readonly unsubscribeRefs: (() => void) | undefined;

  constructor(options: BridgeManagerOptions<TMeta>) {
    if (typeof options !== 'object' || options === null) {
      throw invalidArgument(`createBridgeManager() expects an options object, got ${describeValue(options)}`);
    }
    const {
      budget,
      refs,
      refLimits,
      dischargers,
      maxHandles = 10_000,
      captureStacks = false,
      idleTimeoutMs = 900_000,
      drainTimeoutMs = 5_000,
      endGraceMs = 5_000,
      leaseMs = 60_000,
      maxSessions = 10_000,
      retainReports = 1_000,
      budgetKey = (id: string) => id,
      clock = systemClock,
      onEvent,
    } = options;
    if (typeof budget !== 'object' || budget === null || typeof budget.reserve !== 'function') {
      throw invalidArgument(`budget must be a Budget from createBudget(), got ${describeValue(budget)}`);
    }
    if (
      refs !== undefined &&
      (typeof refs !== 'object' || refs === null || typeof refs.registerSession !== 'function')
    ) {
      throw invalidArgument(
        `refs must be a SessionManager from createSessionManager(), got ${describeValue(refs)}`,
      );
    }
    if (!isDuration(idleTimeoutMs, false)) {
      throw invalidArgument(
        `idleTimeoutMs must be a number > 0 or Infinity, got ${describeValue(idleTimeoutMs)}`,
      );
    }
    const sweepIntervalMs = options.sweepIntervalMs ?? Math.min(60_000, idleTimeoutMs);
    if (!isDuration(sweepIntervalMs, false) || !Number.isFinite(sweepIntervalMs)) {
      throw invalidArgument(
        `sweepIntervalMs must be a finite number > 0, got ${describeValue(sweepIntervalMs)}`,
      );
    }
    if (!isDuration(drainTimeoutMs, false)) {
      throw invalidArgument(
        `drainTimeoutMs must be a number > 0 or Infinity, got ${describeValue(drainTimeoutMs)}`,
      );
    }
    if (!isDuration(endGraceMs, true)) {
      throw invalidArgument(`endGraceMs must be a number >= 0 or Infinity, got ${describeValue(endGraceMs)}`);
    }
    if (!isDuration(leaseMs, false) || !Number.isFinite(leaseMs)) {
      throw invalidArgument(`leaseMs must be a finite number > 0, got ${describeValue(leaseMs)}`);
    }
    if (!isCount(maxSessions, false)) {
      throw invalidArgument(
        `maxSessions must be a positive integer or Infinity, got ${describeValue(maxSessions)}`,
      );
    }
    if (!isCount(retainReports, true)) {
      throw invalidArgument(
        `retainReports must be a non-negative integer or Infinity, got ${describeValue(retainReports)}`,
      );
    }
    if (typeof budgetKey !== 'function') {
      throw invalidArgument(`budgetKey must be a function, got ${describeValue(budgetKey)}`);
    }
    if (
      typeof clock !== 'object' ||
      clock === null ||
      typeof clock.now !== 'function' ||
      typeof clock.setTimeout !== 'function' ||
      typeof clock.clearTimeout !== 'function'
    ) {
      throw invalidArgument('clock must have now(), setTimeout() and clearTimeout()');
    }
    this.budget = budget;
    this.refs = refs;
    this.refLimits = refLimits;
    this.clock = clock;
    this.events = new EventHub(onEvent);
    this.idleTimeoutMs = idleTimeoutMs;
    this.sweepIntervalMs = sweepIntervalMs;
    this.drainTimeoutMs = drainTimeoutMs;
    this.endGraceMs = endGraceMs;
    this.leaseMs = leaseMs;
    this.maxSessions = maxSessions;
    this.retainReports = retainReports;
    this.budgetKey = budgetKey;
    this.poolOptions = {
      clock,
      maxHandles,
      captureStacks,
      defaultTimeoutMs: drainTimeoutMs,
      ...(dischargers === undefined ? {} : { dischargers }),
    };
    try {
      // Validates maxHandles and the dischargers once, here, rather than at the first getOrCreate.
      createHandlePool(this.poolOptions);
    } catch (error) {
      throw new BridgeError(
        BridgeErrorCode.InvalidArgument,
        `invalid handle pool options: ${(error as Error).message}`,
        { cause: error },
      );
    }
    this.unsubscribeRefs = refs?.on('session-released', this.onRefSessionReleased);
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  async getOrCreate(
    id: string,
    tier: TierName,
    options: GetOrCreateOptions<TMeta> = {},
  ): Promise<Session<TMeta>> {
    if (typeof id !== 'string' || id.length === 0) {
      throw invalidArgument(`a session id must be a non-empty string, got ${describeValue(id)}`);
    }
    tier = this.checkTier(tier, id);
    const owner = options.owner === undefined ? undefined : checkOwner(options.owner, id);
    for (;;) {
      this.assertOpen(id);
      const existing = this.all.get(id);
      if (existing === undefined) return this.create(id, tier, options.meta, owner);
      if (existing.state === 'open') {
        existing.touch();
        if (owner !== undefined) existing.watch(owner);
        try {
          await existing.setTier(tier);
        } catch (error) {
          // It started ending meanwhile: wait for that below and create a new one.
          if (!(BridgeError.isInstance(error) && error.code === BridgeErrorCode.SessionEnded)) throw error;
        }
        if (existing.state === 'open') return existing;
      }
      // A session that is ending is never handed out: wait for its end, then create a new one.
      await existing.whenEnded;
    }
  }

  get(id: string): Session<TMeta> | undefined {
    return this.open.get(id);
  }

  sessions(): Session<TMeta>[] {
    return [...this.open.values()];
  }

  end(id: string, reason: EndReason): Promise<EndReport<TMeta> | undefined> {
    if (!isEndReason(reason)) {
      return Promise.reject(
        invalidArgument(
          `unknown end reason ${describeValue(reason)} for session ${describeValue(id)} (expected ${END_REASONS.join(', ')})`,
        ),
      );
    }
    const session = this.all.get(id);
    if (session !== undefined) return session.end(reason);
    return Promise.resolve(this.reports.get(id));
  }

  endAll(reason: EndReason): Promise<EndReport<TMeta>[]> {
    if (!isEndReason(reason)) {
      return Promise.reject(
        invalidArgument(`unknown end reason ${describeValue(reason)} (expected ${END_REASONS.join(', ')})`),
      );
    }
    return Promise.all(Array.from(this.all.values(), (session) => session.end(reason)));
  }

  sweep(): number {
    if (!Number.isFinite(this.idleTimeoutMs)) return 0;
    const now = this.clock.now();
    const idle: SessionImpl<TMeta>[] = [];
    for (const session of this.open.values()) {
      // Least recently active first: the first session that is not idle ends the scan.
      if (now - session.lastActiveAt < this.idleTimeoutMs) break;
      // Busy counts as activity: a call in flight is never culled, however long it runs.
      if (session.busy === 0) idle.push(session);
    }
    for (const session of idle) void session.end('idle');
    return idle.length;
  }

  on<K extends BridgeEventType>(
    type: K,
    listener: (event: Extract<BridgeEvent<TMeta>, { type: K }>) => void,
  ): () => void {
    return this.events.on(type, listener as (event: BridgeEvent<TMeta>) => void);
  }

  stats(): BridgeManagerStats {
    let busy = 0;
    for (const session of this.open.values()) if (session.busy > 0) busy += 1;
    return {
      open: this.open.size,
      ending: this.all.size - this.open.size,
      busy,
      created: this.created,
      ended: { ...this.endedCounts },
      sweeperArmed: this.sweepArmed,
      retainedReports: this.reports.size,
      closed: this.closing !== undefined,
    };
  }

  close(): Promise<EndReport<TMeta>[]> {
    this.closing ??= (async () => {
      this.disarm();
      try {
        return await this.endAll('shutdown');
      } finally {
        this.unsubscribeRefs?.();
      }
    })();
    return this.closing;
  }

  async [asyncDisposeSymbol](): Promise<void> {
    await this.close();
  }

  // --- SessionHost ---

  checkTier(tier: unknown, sessionId: string): TierName {
    if (typeof tier === 'string' && this.budget.tiers.has(tier)) return tier;
    const known = [...this.budget.tiers.keys()].join(', ');
    throw new BridgeError(
      BridgeErrorCode.UnknownTier,
      `session "${sessionId}": unknown tier ${describeValue(tier)} (known: ${known})`,
      { sessionId },
    );
  }

  touched(session: SessionImpl<TMeta>): void {
    if (this.open.get(session.id) !== session) return;
    this.open.delete(session.id);
    this.open.set(session.id, session);
  }

  ending(session: SessionImpl<TMeta>): void {
    if (this.open.get(session.id) === session) this.open.delete(session.id);
    if (this.open.size === 0) this.disarm();
  }

  ended(session: SessionImpl<TMeta>, report: EndReport<TMeta>): void {
    if (this.all.get(session.id) === session) this.all.delete(session.id);
    this.endedCounts[report.reason] += 1;
    if (this.retainReports > 0) {
      this.reports.delete(session.id);
      this.reports.set(session.id, report);
      if (this.reports.size > this.retainReports) {
        const oldest = this.reports.keys().next();
        if (!oldest.done) this.reports.delete(oldest.value);
      }
    }
  }

  // --- private ---

  private create(
    id: string,
    tier: TierName,
    meta: TMeta | undefined,
    owner: GetOrCreateOptions['owner'],
  ): SessionImpl<TMeta> {
    if (this.all.size >= this.maxSessions) {
      throw new BridgeError(
        BridgeErrorCode.TooManySessions,
        `cannot create session "${id}": maxSessions (${this.maxSessions}) sessions exist (${this.open.size} open, ${this.all.size - this.open.size} ending)`,
        { sessionId: id },
      );
    }
    const budgetKey = this.budgetKey(id, meta);
    if (typeof budgetKey !== 'string' || budgetKey.length === 0) {
      throw invalidArgument(
        `session "${id}": budgetKey() must return a non-empty string, got ${describeValue(budgetKey)}`,
        id,
      );
    }
    const handles = createHandlePool(this.poolOptions);
    let refs: SessionHandle | undefined;
    if (this.refs !== undefined) {
      // No owner here: the bridge watches the owner, so that its end drains the handles first.
      refs = this.refs.registerSession(id, this.refLimits === undefined ? {} : { limits: this.refLimits });
    }
    const session = new SessionImpl<TMeta>(this, { id, tier, meta, budgetKey, handles, refs });
    this.all.set(id, session);
    this.open.set(id, session);
    this.created += 1;
    if (owner !== undefined) session.watch(owner);
    this.arm();
    if (this.events.has('session-created')) this.events.emit({ type: 'session-created', session });
    return session;
  }

  private assertOpen(id: string): void {
    if (this.closing !== undefined) {
      throw new BridgeError(
        BridgeErrorCode.ManagerClosed,
        `cannot create session "${id}": the manager is closed`,
        {
          sessionId: id,
        },
      );
    }
  }

  /** A ref session released by something other than the bridge (an owner, a worker crash, a dispose). */
  private readonly onRefSessionReleased = (
    event: Extract<SessionManagerEvent, { type: 'session-released' }>,
  ): void => {
    const session = this.open.get(event.sessionId);
    // Our own end sets the state to `ending` before it releases the refs, so it never comes here.
    if (session === undefined || session.refs === undefined || !session.refs.released) return;
    void session.end(endReasonOfRefRelease(event.reason, event.cause));
  };

  private arm(): void {
    if (this.sweepArmed || this.open.size === 0 || this.closing !== undefined) return;
    if (!Number.isFinite(this.idleTimeoutMs)) return;
    this.sweepArmed = true;
    this.sweepTimer = this.clock.setTimeout(this.onSweepTimer, Math.min(this.sweepIntervalMs, MAX_TIMER_MS));
  }

  private disarm(): void {
    if (!this.sweepArmed) return;
    this.sweepArmed = false;
    this.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  private readonly onSweepTimer = (): void => {
    this.sweepArmed = false;
    this.sweepTimer = undefined;
    try {
      this.sweep();
    } finally {
      this.arm();
    }
  };
}

/**
 * Creates a bridge manager: sessions that each own a tier, a key in the shared budget, a handle pool
 * and (with `refs`) a ref session; ended idempotently with a report; culled when idle by one sweeper.
 *
 * @throws BridgeError `BRIDGE_INVALID_ARGUMENT` for a missing budget or a malformed option.
 * @example
 * ```ts
 * import { createBudget } from '@trestle/budget';
 * import { createBridgeManager } from '@trestle/bridge';
 *
 * const manager = createBridgeManager({ budget: createBudget(), dischargers: { 'py:close': closeInPython } });
 * const session = await manager.getOrCreate('user-123', 'free', { meta: { tenant: 'acme' } });
 * const result = await session.metered(10, async (meter) => {
 *   meter.use(3); // what the call really cost; the other 7 are refunded
 *   return 'done';
 * });
 * const report = await manager.end('user-123', 'logout'); // every undischarged handle, once
 * ```
 */
export function createBridgeManager<TMeta extends SessionMeta = SessionMeta>(
  options: BridgeManagerOptions<TMeta>,
): BridgeManager<TMeta> {
  return new Manager<TMeta>(options);
}
