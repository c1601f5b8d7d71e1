import type { Clock } from './clock';
import { systemClock } from './clock';
import type { RefGoneReason } from './errors';
import { SessionMismatchError } from './errors';
import type { IdGenerator } from './ids';
import { randomId } from './ids';
import type { OwnerLink, SessionOwner } from './owners';
import { linkOwner, ownerKind } from './owners';
import type { Ref } from './ref';
import { createRef, describe, isRef } from './ref';
import { ReleaseRuns, unknownReport } from './release-runs';
import type { Releaser } from './releaser';
import {
  SessionManagerDisposedError,
  SessionNotFoundError,
  SessionOwnerConflictError,
} from './session-errors';
import { EventHub } from './session-events';
import { asyncDispose, Handle, type HandleHost, SessionRecord } from './session-handle';
import { durationOption, invalidArgument, resolveLimits } from './session-options';
import type {
  OpenSessionOptions,
  RefInput,
  RefReleaseReport,
  SessionHandle,
  SessionInfo,
  SessionManager,
  SessionManagerEvent,
  SessionManagerEventType,
  SessionManagerOptions,
  SessionManagerStats,
  SessionOptions,
  SessionReleaseCause,
  SessionReleaseReport,
} from './session-types';
import type { RefEviction, RefStore, SessionLimits } from './store';
import { DEFAULT_SESSION_LIMITS } from './store';
import { memoryRefStore } from './stores/memory';

class Manager implements HandleHost {
  readonly store: RefStore;
  private readonly records = new Map<string, SessionRecord>();
  private readonly runs: ReleaseRuns;
  private readonly events: EventHub;
  private readonly defaults: SessionLimits;
  private readonly clock: Clock;
  private readonly idGenerator: IdGenerator;
  private readonly sweepIntervalMs: number;
  private readonly ownsStore: boolean;
  private sweepTimer: unknown;
  private sweepArmed = false;
  private ownerCount = 0;
  private disposing: Promise<void> | undefined;
  /** Evictions not yet reported (see `drainEvictions`). */
  private evictionQueue: RefEviction[] = [];

  constructor(options: SessionManagerOptions) {
    this.ownsStore = options.store === undefined;
    // A store of its own reports every eviction here, also those found lazily by get/list/openSession.
    this.store =
      options.store ?? memoryRefStore({ onEvict: (eviction) => this.evictionQueue.push(eviction) });
    this.defaults = resolveLimits(DEFAULT_SESSION_LIMITS, options.defaults);
    this.clock = options.clock ?? systemClock;
    this.idGenerator = options.idGenerator ?? randomId;
    this.sweepIntervalMs = durationOption('sweepIntervalMs', options.sweepIntervalMs, 60_000);
    this.events = new EventHub(options.onEvent);
    const policy = {
      clock: this.clock,
      retryDelayMs: durationOption('retryDelayMs', options.retryDelayMs, 100),
      timeoutMs: durationOption('releaseTimeoutMs', options.releaseTimeoutMs, 30_000),
    };
    this.runs = new ReleaseRuns(options.releaser, policy, this.events);
  }

  get releaser(): Releaser | undefined {
    return this.runs.releaser;
  }

  setReleaser(releaser: Releaser | undefined): void {
    this.runs.releaser = releaser;
  }

  registerSession(sessionId: string, options: SessionOptions = {}): SessionHandle {
    this.assertOpen('register a session');
    if (typeof sessionId !== 'string' || sessionId.length === 0) {
      throw invalidArgument(`a session id must be a non-empty string, got ${describe(sessionId)}`);
    }
    const existing = this.records.get(sessionId);
    return existing ? this.join(existing, options) : this.create(sessionId, options);
  }

  open(options: OpenSessionOptions = {}): SessionHandle {
    this.assertOpen('open a session');
    if (options.id === undefined) {
      const sessionId = this.idGenerator('s_');
      if (this.records.has(sessionId)) throw invalidArgument(`idGenerator returned '${sessionId}' twice`);
      return this.create(sessionId, options);
    }
    const existing = this.records.get(options.id);
    if (existing && !(existing.shared && options.shared)) {
      throw new SessionOwnerConflictError(
        options.id,
        'is already registered and not shared by both registrations',
      );
    }
    return this.registerSession(options.id, options);
  }

  sessionExists(sessionId: string): boolean {
    return this.records.has(sessionId);
  }

  session(sessionId: string): SessionHandle | undefined {
    const record = this.records.get(sessionId);
    return record ? this.handleOf(record) : undefined;
  }

  sessions(): readonly SessionInfo[] {
    return Array.from(this.records.values(), (record) => this.infoOf(record));
  }

  registerRef(sessionId: string, ref: RefInput): Ref {
    const record = this.records.get(sessionId);
    if (!record) throw new SessionNotFoundError(sessionId, 'cannot register a ref in it');
    return this.registerRefIn(record, ref);
  }

  getRef(sessionId: string, ref: Ref | string): Ref {
    try {
      return this.store.get(sessionId, typeof ref === 'string' ? ref : ref.id, this.clock.now());
    } finally {
      this.drainEvictions();
    }
  }

  listRefs(sessionId: string): readonly Ref[] {
    if (!this.records.has(sessionId)) return [];
    try {
      return this.store.list(sessionId, this.clock.now());
    } finally {
      this.drainEvictions();
    }
  }

  releaseRef(ref: Ref): Promise<RefReleaseReport> {
    if (!this.store.release(ref.sessionId, ref.id)) {
      return Promise.resolve({ ref, status: 'unknown', released: false });
    }
    if (this.events.has('ref-released')) this.events.emit({ type: 'ref-released', ref });
    return this.runs.releaseRef(ref);
  }

  releaseSession(
    sessionId: string,
    reason: RefGoneReason = 'session_released',
  ): Promise<SessionReleaseReport> {
    const record = this.records.get(sessionId);
    if (record) return this.releaseRecord(record, reason, 'explicit');
    return this.runs.inFlight(sessionId) ?? Promise.resolve(unknownReport(sessionId, reason));
  }

  sweep(): readonly RefEviction[] {
    let evictions: readonly RefEviction[] = [];
    try {
      evictions = this.store.sweep(this.clock.now());
      this.queueEvictions(evictions);
    } finally {
      this.drainEvictions();
    }
    return evictions;
  }

  on<K extends SessionManagerEventType>(
    type: K,
    listener: (event: Extract<SessionManagerEvent, { type: K }>) => void,
  ): () => void {
    return this.events.on(type, listener);
  }

  flush(): Promise<void> {
    return this.runs.flush();
  }

  stats(): SessionManagerStats {
    return {
      sessions: this.records.size,
      refs: this.store.size,
      owners: this.ownerCount,
      releasing: this.runs.size,
      releaseFailures: this.runs.failures,
    };
  }

  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      for (const record of [...this.records.values()]) {
        void this.releaseRecord(record, 'session_released', 'disposed');
      }
      this.disarmSweep();
      await this.flush();
      if (this.ownsStore) this.store.dispose?.();
    })();
    return this.disposing;
  }

  [asyncDispose](): Promise<void> {
    return this.dispose();
  }

  // --- internals (used by Handle and SessionContext) ---

  infoOf(record: SessionRecord): SessionInfo {
    return {
      id: record.id,
      shared: record.shared,
      owners: record.owners?.length ?? 0,
      limits: record.limits,
      tags: record.tags,
      createdAt: record.createdAt,
    };
  }

  registerRefIn(record: SessionRecord, input: RefInput): Ref {
    const ref = this.toRef(record.id, input);
    try {
      this.queueEvictions(this.store.put(ref, this.clock.now()));
    } catch (error) {
      // A store that dropped the whole session on its own: follow it.
      if (!this.store.hasSession(record.id)) void this.releaseRecord(record, 'session_released', 'evicted');
      throw error;
    } finally {
      this.drainEvictions();
    }
    if (this.events.has('ref-registered')) this.events.emit({ type: 'ref-registered', ref });
    return ref;
  }

  releaseRecord(
    record: SessionRecord,
    reason: RefGoneReason,
    cause: SessionReleaseCause,
    held?: readonly Ref[],
  ): Promise<SessionReleaseReport> {
    if (record.released) return record.release ?? Promise.resolve(unknownReport(record.id, reason));
    record.released = true;
    const sessionId = record.id;
    if (this.records.get(sessionId) === record) this.records.delete(sessionId);
    this.unlinkOwners(record);
    const dropped = this.store.releaseSession(sessionId, reason);
    const refs = held && dropped.length === 0 ? held : dropped;
    if (this.records.size === 0) this.disarmSweep();
    // The run is in place before observers hear of the release, so they can await it.
    record.release = this.runs.releaseSession(sessionId, refs, reason, cause);
    if (this.events.has('session-released')) {
      this.events.emit({ type: 'session-released', sessionId, reason, cause, refs });
    }
    return record.release;
  }

  // --- private ---

  private create(sessionId: string, options: SessionOptions): SessionHandle {
    const limits = resolveLimits(this.defaults, options.limits);
    if (options.owner !== undefined) ownerKind(options.owner);
    const now = this.clock.now();
    this.store.openSession(sessionId, limits, now);
    const record = new SessionRecord(
      sessionId,
      options.shared === true,
      options.owner === undefined,
      limits,
      Object.freeze({ ...options.tags }),
      now,
    );
    this.records.set(sessionId, record);
    this.armSweep();
    if (this.events.has('session-registered')) {
      this.events.emit({ type: 'session-registered', sessionId, shared: record.shared });
    }
    const handle = this.handleOf(record);
    if (options.owner !== undefined && !this.link(record, options.owner)) {
      void this.releaseRecord(record, 'session_released', 'owner-ended');
    }
    return handle;
  }

  private join(record: SessionRecord, options: SessionOptions): SessionHandle {
    const owner = options.owner;
    if (owner !== undefined && !record.owners?.some((link) => link.matches(owner))) {
      ownerKind(owner);
      if (!(record.shared && options.shared)) {
        throw new SessionOwnerConflictError(
          record.id,
          record.shared
            ? 'is shared, but this registration with another owner is not (pass shared: true)'
            : 'is registered with another owner and is not shared',
        );
      }
      // An owner that has already ended adds nothing; the session's other holders keep it.
      this.link(record, owner);
    }
    if (options.limits !== undefined) {
      const limits = resolveLimits(record.limits, options.limits);
      try {
        // A lowered maxRefs evicts at once (reported through the store's onEvict).
        this.store.openSession(record.id, limits, this.clock.now());
      } finally {
        this.drainEvictions();
      }
      record.limits = limits;
    }
    if (options.tags !== undefined) record.tags = Object.freeze({ ...record.tags, ...options.tags });
    return this.handleOf(record);
  }

  private handleOf(record: SessionRecord): SessionHandle {
    record.handle ??= new Handle(this, record);
    return record.handle;
  }

  /** Watches one more owner of `record`; false when the owner has already ended. */
  private link(record: SessionRecord, owner: SessionOwner): boolean {
    const link = linkOwner(owner, record, this.ownerEnded);
    if (!link) return false;
    if (record.owners) record.owners.push(link);
    else record.owners = [link];
    this.ownerCount += 1;
    return true;
  }

  private unlinkOwners(record: SessionRecord): void {
    const owners = record.owners;
    if (!owners) return;
    record.owners = undefined;
    for (const link of owners) link.stop();
    this.ownerCount -= owners.length;
  }

  private readonly ownerEnded = (link: OwnerLink<SessionRecord>): void => {
    const record = link.session;
    const owners = record.owners;
    if (record.released || !owners) return;
    const index = owners.indexOf(link);
    if (index === -1) return;
    owners.splice(index, 1);
    this.ownerCount -= 1;
    if (owners.length === 0 && !record.pinned)
      void this.releaseRecord(record, 'session_released', 'owner-ended');
  };

  private toRef(sessionId: string, input: RefInput): Ref {
    if (isRef(input)) {
      if (input.sessionId !== sessionId) throw new SessionMismatchError(input.id, input.sessionId, sessionId);
      return input;
    }
    if (input.sessionId !== undefined && input.sessionId !== sessionId) {
      throw new SessionMismatchError(input.id ?? '(new)', input.sessionId, sessionId);
    }
    return createRef({
      id: input.id ?? this.idGenerator('r_'),
      sessionId,
      typeName: input.typeName,
      module: input.module,
      library: input.library,
      poolName: input.poolName,
    });
  }

  /** Evictions a store call returned. A store of our own reports them through onEvict instead. */
  private queueEvictions(evictions: readonly RefEviction[]): void {
    if (!this.ownsStore && evictions.length > 0) this.evictionQueue.push(...evictions);
  }

  /** Reports queued evictions: `ref-evicted` events, then `releaser.releaseRefs` per session. */
  private drainEvictions(): void {
    if (this.evictionQueue.length === 0) return;
    const evictions = this.evictionQueue;
    this.evictionQueue = [];
    const bySession = new Map<string, RefEviction[]>();
    for (const eviction of evictions) {
      if (this.events.has('ref-evicted')) this.events.emit({ type: 'ref-evicted', ...eviction });
      const list = bySession.get(eviction.ref.sessionId);
      if (list) list.push(eviction);
      else bySession.set(eviction.ref.sessionId, [eviction]);
    }
    for (const [sessionId, list] of bySession) {
      const refs = list.map((eviction) => eviction.ref);
      const record = this.records.get(sessionId);
      if (record && !this.store.hasSession(sessionId)) {
        // A store that dropped the whole session: release it here too (the releaser learns of it).
        void this.releaseRecord(record, list[0]!.reason, 'evicted', refs);
        continue;
      }
      this.runs.releaseEvicted(sessionId, refs, list[0]!.reason);
    }
  }

  private armSweep(): void {
    if (this.sweepArmed || !(this.sweepIntervalMs > 0) || !Number.isFinite(this.sweepIntervalMs)) return;
    this.sweepArmed = true;
    this.sweepTimer = this.clock.setTimeout(this.onSweepTimer, this.sweepIntervalMs);
  }

  private disarmSweep(): void {
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
      if (this.records.size > 0 && this.disposing === undefined) this.armSweep();
    }
  };

  private assertOpen(operation: string): void {
    if (this.disposing !== undefined) throw new SessionManagerDisposedError(operation);
  }
}

/**
 * Creates a session manager: sessions with owners, their refs in a {@link RefStore}, and a releaser
 * plugin that releases them where the objects live.
 * @example
 * ```ts
 * const manager = createSessionManager({ releaser: myReleaser });
 * const controller = new AbortController();
 * const session = manager.registerSession('request-1', { owner: controller.signal });
 * session.registerRef({ typeName: 'Pattern', module: 're' });
 * controller.abort(); // the session is released, and myReleaser.releaseSession is called
 * ```
 */
export function createSessionManager(options: SessionManagerOptions = {}): SessionManager {
  return new Manager(options);
}
