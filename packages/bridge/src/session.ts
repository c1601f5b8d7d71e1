import type {
  Budget,
  DebitOutcome,
  Decision,
  Reservation,
  ReserveResult,
  SettleOutcome,
  TierName,
} from '@trestle/budget';
import {
  type DrainReport,
  type HandlePool,
  type HandlePoolError,
  HandlePoolErrorCode,
} from '@trestle/handle-pool';
import type { SessionHandle, SessionOwner } from '@trestle/ref-registry';
import { type Clock, MAX_TIMER_MS } from './clock';
import { BridgeError, BridgeErrorCode, BudgetExceededError, describeValue, invalidArgument } from './errors';
import type { EventHub } from './events';
import { watchOwner } from './owners';
import { isEndReason, REF_REASON_BY_END_REASON } from './reasons';
import type {
  BusyToken,
  EndReason,
  EndReport,
  Meter,
  MeteredOptions,
  RefsEndReport,
  Session,
  SessionBudget,
  SessionCallStats,
  SessionMeta,
  SessionState,
  UndischargedHandle,
  UndischargedReason,
} from './types';

/** What a session needs from its manager. @internal */
export interface SessionHost<TMeta extends SessionMeta> {
  readonly clock: Clock;
  readonly budget: Budget;
  readonly events: EventHub<TMeta>;
  readonly leaseMs: number;
  readonly endGraceMs: number;
  readonly drainTimeoutMs: number;
  /** @throws BridgeError `BRIDGE_UNKNOWN_TIER` */
  checkTier(tier: unknown, sessionId: string): TierName;
  /** Activity: keeps the manager's idle order. */
  touched(session: SessionImpl<TMeta>): void;
  /** The session started ending: it is no longer open. */
  ending(session: SessionImpl<TMeta>): void;
  /** The session ended: it is gone. */
  ended(session: SessionImpl<TMeta>, report: EndReport<TMeta>): void;
}

/** @internal */
export interface SessionInit<TMeta extends SessionMeta> {
  readonly id: string;
  readonly tier: TierName;
  readonly meta: TMeta | undefined;
  readonly budgetKey: string;
  readonly handles: HandlePool;
  readonly refs: SessionHandle | undefined;
}

type MutableCallStats = { -readonly [K in keyof SessionCallStats]: SessionCallStats[K] };

const asyncDisposeSymbol: typeof Symbol.asyncDispose =
  (Symbol as { asyncDispose?: typeof Symbol.asyncDispose }).asyncDispose ??
  (Symbol.for('nodejs.asyncDispose') as typeof Symbol.asyncDispose);
const disposeSymbol: typeof Symbol.dispose =
  (Symbol as { dispose?: typeof Symbol.dispose }).dispose ??
  (Symbol.for('nodejs.dispose') as typeof Symbol.dispose);

const isAmount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0;

/** @internal */
export class SessionImpl<TMeta extends SessionMeta> implements Session<TMeta> {
  readonly id: string;
  readonly meta: TMeta | undefined;
  readonly createdAt: number;
  readonly budgetKey: string;
  readonly handles: HandlePool;
  readonly refs: SessionHandle | undefined;
  readonly budget: SessionBudget;
  tier: TierName;
  state: SessionState = 'open';
  lastActiveAt: number;
  endReason: EndReason | undefined;
  private busyCount = 0;
  private controller: AbortController | undefined;
  private endRun: Promise<EndReport<TMeta>> | undefined;
  private endStartedAt = 0;
  /** The last tier asked for; tier changes are applied one after another, in call order. */
  private targetTier: TierName;
  private tierChain: Promise<void> = Promise.resolve();
  private stopWatchingOwner: (() => void) | undefined;
  /** Resolves the end's grace wait when the last call leaves. */
  private onIdle: (() => void) | undefined;
  private readonly stats: MutableCallStats = {
    metered: 0,
    succeeded: 0,
    failed: 0,
    denied: 0,
    charged: 0,
    leaseExpired: 0,
    settleFailures: 0,
  };

  constructor(
    private readonly host: SessionHost<TMeta>,
    init: SessionInit<TMeta>,
  ) {
    this.id = init.id;
    this.tier = init.tier;
    this.targetTier = init.tier;
    this.meta = init.meta;
    this.budgetKey = init.budgetKey;
    this.handles = init.handles;
    this.refs = init.refs;
    this.createdAt = host.clock.now();
    this.lastActiveAt = this.createdAt;
    this.budget = new BoundBudget(this);
  }

  get busy(): number {
    return this.busyCount;
  }

  get calls(): SessionCallStats {
    return { ...this.stats };
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.state !== 'open') this.controller.abort(this.endedError(undefined));
    }
    return this.controller.signal;
  }

  /** @internal The manager's budget. */
  get budgetOf(): Budget {
    return this.host.budget;
  }

  touch(): void {
    if (this.state !== 'open') return;
    const now = this.host.clock.now();
    if (now > this.lastActiveAt) this.lastActiveAt = now;
    this.host.touched(this);
  }

  enter(): BusyToken {
    this.assertOpen('enter');
    this.busyCount += 1;
    this.touch();
    let left = false;
    const leave = (): void => {
      if (left) return;
      left = true;
      this.busyCount -= 1;
      this.touch();
      if (this.busyCount === 0) this.onIdle?.();
    };
    return { leave, [disposeSymbol]: leave };
  }

  async run<T>(fn: (signal: AbortSignal) => T | Promise<T>): Promise<T> {
    const token = this.enter();
    try {
      return await fn(this.signal);
    } finally {
      token.leave();
    }
  }

  async metered<T>(
    maxCost: number,
    fn: (meter: Meter) => T | Promise<T>,
    options: MeteredOptions = {},
  ): Promise<T> {
    if (typeof fn !== 'function') {
      throw invalidArgument(
        `session "${this.id}": metered() needs a function, got ${describeValue(fn)}`,
        this.id,
      );
    }
    const leaseMs = options.leaseMs ?? this.host.leaseMs;
    const token = this.enter();
    try {
      const budget = this.host.budget;
      // Reserve first: the maximum is debited atomically before the work starts, so concurrent calls
      // (and replicas sharing a store) can never all pass on the same balance.
      const { decision, reservation } = await budget.reserve(this.budgetKey, this.tier, maxCost, leaseMs);
      if (reservation === null) {
        this.stats.denied += 1;
        throw new BudgetExceededError(this.id, maxCost, decision);
      }
      if (this.state !== 'open') {
        // The session started ending while the reservation was on its way: give it back, run nothing.
        await budget.settle(reservation.id, 0);
        throw this.endedError('run a metered call');
      }
      this.stats.metered += 1;
      const meter = new MeterImpl(this, reservation, decision);
      let result: T;
      try {
        result = await fn(meter);
      } catch (error) {
        this.stats.failed += 1;
        await this.settle(reservation, meter.used ?? 0);
        throw error;
      }
      this.stats.succeeded += 1;
      await this.settle(reservation, meter.used ?? maxCost);
      return result;
    } finally {
      token.leave();
    }
  }

  setTier(tier: TierName): Promise<void> {
    try {
      tier = this.host.checkTier(tier, this.id);
      this.assertOpen('change its tier');
    } catch (error) {
      return Promise.reject(error);
    }
    if (tier === this.targetTier) return this.tierChain;
    this.targetTier = tier;
    this.tierChain = this.tierChain.then(() => this.applyTier(tier));
    return this.tierChain;
  }

  end(reason: EndReason = 'logout'): Promise<EndReport<TMeta>> {
    if (!isEndReason(reason)) {
      return Promise.reject(
        invalidArgument(
          `session "${this.id}": unknown end reason ${describeValue(reason)} (expected logout, idle, budget, shutdown, owner-lost, worker-lost or error)`,
          this.id,
        ),
      );
    }
    if (this.endRun !== undefined) return this.endRun;
    this.state = 'ending';
    this.endReason = reason;
    this.endStartedAt = this.host.clock.now();
    this.stopWatchingOwner?.();
    this.stopWatchingOwner = undefined;
    this.host.ending(this);
    // The run is in place before anyone hears of the end (abort listeners, observers), so one that
    // calls `end()` again joins it. It does nothing observable before its first await.
    this.endRun = this.runEnd(reason);
    this.controller?.abort(this.endedError(undefined));
    if (this.host.events.has('session-ending')) {
      this.host.events.emit({ type: 'session-ending', session: this, reason });
    }
    return this.endRun;
  }

  async [asyncDisposeSymbol](): Promise<void> {
    await this.end('logout');
  }

  /** @internal Watches `owner` instead of the previous one. */
  watch(owner: SessionOwner): void {
    this.stopWatchingOwner?.();
    this.stopWatchingOwner = watchOwner(owner, () => void this.end('owner-lost'));
  }

  /** @internal The end in progress (or done), once `end` was called. */
  get whenEnded(): Promise<EndReport<TMeta>> | undefined {
    return this.endRun;
  }

  /** @internal */
  assertOpen(operation: string): void {
    if (this.state !== 'open') throw this.endedError(operation);
  }

  private endedError(operation: string | undefined): BridgeError {
    const what = this.state === 'ended' ? 'has ended' : 'is ending';
    const cannot = operation === undefined ? '' : `: cannot ${operation}`;
    return new BridgeError(
      BridgeErrorCode.SessionEnded,
      `session "${this.id}" ${what} (reason ${this.endReason ?? 'unknown'})${cannot}`,
      { sessionId: this.id },
    );
  }

  private async applyTier(tier: TierName): Promise<void> {
    if (tier === this.tier || this.state !== 'open') return;
    const from = this.tier;
    // `setTier` rescales synchronously on a synchronous store (before its first await), so the new
    // tier and the rescaled bucket take effect together; every later call uses the new limits.
    const rescale = this.host.budget.setTier(this.budgetKey, tier);
    this.tier = tier;
    let remaining: number | null | undefined;
    let error: unknown;
    try {
      remaining = await rescale;
    } catch (caught) {
      // The tier applies anyway (every call passes it); only the fill fraction was not carried over.
      error = caught;
    }
    // A session that started ending meanwhile reports its final tier in the end report; the event
    // would come after `session-ending`, breaking the per-session event order.
    if (this.state === 'open' && this.host.events.has('tier-changed')) {
      this.host.events.emit(
        error === undefined
          ? { type: 'tier-changed', session: this, from, to: tier, remaining }
          : { type: 'tier-changed', session: this, from, to: tier, remaining: undefined, error },
      );
    }
  }

  private async settle(reservation: Reservation, used: number): Promise<void> {
    const budget = this.host.budget;
    const outcome = await budget.settle(reservation.id, used);
    if (outcome.status === 'settled') {
      const unlimited = budget.tiers.get(reservation.tier)?.limits === null;
      this.stats.charged +=
        unlimited || used <= reservation.amount ? used : reservation.amount + outcome.extraCharged;
      return;
    }
    if (outcome.status === 'degraded') {
      this.stats.settleFailures += 1;
      return;
    }
    // `unknown`: our own reservation, settled once, so its lease ran out and the budget refunded it
    // in full. Charge what was used post-paid, so a call that outlives its lease is not free.
    this.stats.leaseExpired += 1;
    if (used > 0) {
      const debit = await budget.debit(this.budgetKey, this.tier, used);
      this.stats.charged += debit.charged;
    }
  }

  private async runEnd(reason: EndReason): Promise<EndReport<TMeta>> {
    const errors: unknown[] = [];
    await this.grace();
    const abandonedCalls = this.busyCount;

    let drain: DrainReport | undefined;
    try {
      // Never metered: cleanup runs whatever the budget says. `close` refuses handles tracked from now on.
      drain = await this.handles.drain({ timeoutMs: this.host.drainTimeoutMs, close: true });
    } catch (error) {
      errors.push(error);
    }

    let refs: RefsEndReport | undefined;
    if (this.refs !== undefined) {
      try {
        // After the handles: a discharger (e.g. `py:close`) may need the objects the refs keep alive.
        const release = await this.refs.release(REF_REASON_BY_END_REASON[reason]);
        refs = {
          status: release.status,
          reason: release.reason,
          cause: release.cause,
          count: release.refs.length,
          ...(release.error === undefined ? {} : { error: release.error }),
        };
      } catch (error) {
        errors.push(error);
      }
    }

    this.state = 'ended';
    const endedAt = this.host.clock.now();
    const report: EndReport<TMeta> = Object.freeze({
      id: this.id,
      meta: this.meta,
      tier: this.tier,
      reason,
      startedAt: this.createdAt,
      endStartedAt: this.endStartedAt,
      endedAt,
      durationMs: Math.max(0, endedAt - this.createdAt),
      cleanupMs: Math.max(0, endedAt - this.endStartedAt),
      discharged: drain?.discharged ?? [],
      undischarged: drain === undefined ? [] : undischargedOf(drain),
      refs,
      refsReleased: refs?.count ?? 0,
      calls: this.calls,
      abandonedCalls,
      errors,
    });
    this.host.ended(this, report);
    if (this.host.events.has('session-ended')) {
      this.host.events.emit({ type: 'session-ended', session: this, report });
    }
    return report;
  }

  /** Waits up to `endGraceMs` for the calls in flight to leave (their signal was aborted). */
  private grace(): Promise<void> {
    const graceMs = this.host.endGraceMs;
    if (this.busyCount === 0 || graceMs <= 0) return Promise.resolve();
    const clock = this.host.clock;
    return new Promise<void>((resolve) => {
      let timer: unknown;
      const done = (): void => {
        this.onIdle = undefined;
        if (timer !== undefined) clock.clearTimeout(timer);
        resolve();
      };
      this.onIdle = done;
      if (Number.isFinite(graceMs)) timer = clock.setTimeout(done, Math.min(graceMs, MAX_TIMER_MS));
    });
  }
}

function undischargedOf(drain: DrainReport): UndischargedHandle[] {
  const list: UndischargedHandle[] = drain.failed.map(({ handle, error }) => ({
    handle,
    why: whyOf(error),
    error,
  }));
  for (const handle of drain.noDischarger) list.push({ handle, why: 'no-discharger' });
  return list;
}

function whyOf(error: HandlePoolError): UndischargedReason {
  if (error.code === HandlePoolErrorCode.DischargeTimeout) return 'timeout';
  if (error.code === HandlePoolErrorCode.DischargeAborted) return 'aborted';
  return 'failed';
}

class MeterImpl implements Meter {
  used: number | undefined;
  constructor(
    private readonly session: Session,
    readonly reservation: Reservation,
    readonly decision: Decision,
  ) {}
  get sessionId(): string {
    return this.session.id;
  }
  /** Created on first read: most calls never look, and an AbortController is not free. */
  get signal(): AbortSignal {
    return this.session.signal;
  }
  use(amount: number): void {
    if (!isAmount(amount)) {
      throw invalidArgument(
        `session "${this.sessionId}": meter.use() needs a finite number >= 0, got ${describeValue(amount)}`,
        this.sessionId,
      );
    }
    this.used = (this.used ?? 0) + amount;
  }
}

/** The session's view of the budget: its key, its current tier. */
class BoundBudget<TMeta extends SessionMeta> implements SessionBudget {
  constructor(private readonly session: SessionImpl<TMeta>) {}
  get key(): string {
    return this.session.budgetKey;
  }
  get tier(): TierName {
    return this.session.tier;
  }
  consume(cost?: number): Promise<Decision> {
    return this.open('consume', () => this.session.budgetOf.consume(this.key, this.tier, cost));
  }
  reserve(max: number, leaseMs?: number): Promise<ReserveResult> {
    return this.open('reserve', () => this.session.budgetOf.reserve(this.key, this.tier, max, leaseMs));
  }
  settle(reservationId: string, used: number): Promise<SettleOutcome> {
    return this.session.budgetOf.settle(reservationId, used);
  }
  debit(used: number): Promise<DebitOutcome> {
    return this.open('debit', () => this.session.budgetOf.debit(this.key, this.tier, used));
  }
  peek(): Promise<number | null> {
    return this.session.budgetOf.peek(this.key, this.tier);
  }
  private open<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      this.session.assertOpen(operation);
    } catch (error) {
      return Promise.reject(error);
    }
    return call();
  }
}
