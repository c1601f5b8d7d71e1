import { type RefGoneReason, RefNotFoundError, SessionMismatchError } from './errors';
import type { OwnerLink } from './owners';
import type { Ref } from './ref';
import { SessionNotFoundError } from './session-errors';
import type {
  RefInput,
  RefReleaseReport,
  SessionHandle,
  SessionInfo,
  SessionManager,
  SessionReleaseCause,
  SessionReleaseReport,
} from './session-types';
import type { SessionLimits } from './store';

/** `Symbol.asyncDispose`, or the symbol Node polyfills it with. */
export const asyncDispose: typeof Symbol.asyncDispose =
  Symbol.asyncDispose ?? (Symbol.for('nodejs.asyncDispose') as typeof Symbol.asyncDispose);

/** Releases a handle's session with a cause other than `explicit` (used by `SessionContext`). @internal */
export const releaseWithCause = Symbol('trestle.ref-registry.releaseWithCause');

/** A handle's session, released with a cause. @internal */
export type ReleasableHandle = SessionHandle & {
  [releaseWithCause](cause: SessionReleaseCause): Promise<SessionReleaseReport>;
};

/** One registration of a session id. A later registration of the same id is another record. @internal */
export class SessionRecord {
  owners: OwnerLink<SessionRecord>[] | undefined;
  released = false;
  /** The release run, once released. */
  release: Promise<SessionReleaseReport> | undefined;
  handle: SessionHandle | undefined;
  constructor(
    readonly id: string,
    readonly shared: boolean,
    /** Registered without an owner: owners ending never release it. */
    readonly pinned: boolean,
    public limits: SessionLimits,
    public tags: Readonly<Record<string, string>>,
    readonly createdAt: number,
  ) {}
}

/** What a handle needs from its manager. @internal */
export interface HandleHost extends SessionManager {
  infoOf(record: SessionRecord): SessionInfo;
  registerRefIn(record: SessionRecord, ref: RefInput): Ref;
  releaseRecord(
    record: SessionRecord,
    reason: RefGoneReason,
    cause: SessionReleaseCause,
  ): Promise<SessionReleaseReport>;
}

/** @internal */
export class Handle implements ReleasableHandle {
  constructor(
    private readonly host: HandleHost,
    private readonly record: SessionRecord,
  ) {}
  get id(): string {
    return this.record.id;
  }
  get manager(): SessionManager {
    return this.host;
  }
  get released(): boolean {
    return this.record.released;
  }
  info(): SessionInfo | undefined {
    return this.record.released ? undefined : this.host.infoOf(this.record);
  }
  registerRef(ref: RefInput): Ref {
    if (this.record.released) {
      throw new SessionNotFoundError(this.record.id, 'cannot register a ref: it was released');
    }
    return this.host.registerRefIn(this.record, ref);
  }
  getRef(ref: Ref | string): Ref {
    if (this.record.released) {
      // Never look in a later session that reuses the id.
      throw new RefNotFoundError(typeof ref === 'string' ? ref : ref.id, this.record.id, 'session_released');
    }
    return this.host.getRef(this.record.id, ref);
  }
  listRefs(): readonly Ref[] {
    return this.record.released ? [] : this.host.listRefs(this.record.id);
  }
  releaseRef(ref: Ref): Promise<RefReleaseReport> {
    if (ref.sessionId !== this.record.id) {
      return Promise.reject(new SessionMismatchError(ref.id, ref.sessionId, this.record.id));
    }
    if (this.record.released) return Promise.resolve({ ref, status: 'unknown', released: false });
    return this.host.releaseRef(ref);
  }
  release(reason: RefGoneReason = 'session_released'): Promise<SessionReleaseReport> {
    return this.host.releaseRecord(this.record, reason, 'explicit');
  }
  [releaseWithCause](cause: SessionReleaseCause): Promise<SessionReleaseReport> {
    return this.host.releaseRecord(this.record, 'session_released', cause);
  }
  async [asyncDispose](): Promise<void> {
    await this.release();
  }
}
