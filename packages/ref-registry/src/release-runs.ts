import type { RefGoneReason } from './errors';
import type { Ref } from './ref';
import type { ReleaseFailedError, ReleaseOperation, Releaser, RetryPolicy } from './releaser';
import { callReleaser } from './releaser';
import type { EventHub } from './session-events';
import type { RefReleaseReport, SessionReleaseCause, SessionReleaseReport } from './session-types';

/** The report of a release that found nothing to release. @internal */
export function unknownReport(sessionId: string, reason: RefGoneReason): SessionReleaseReport {
  return { sessionId, status: 'unknown', released: false, refs: [], reason, cause: undefined };
}

/**
 * The releaser calls of one manager: retried once, failures reported (`release-failed`, or a process
 * warning when nobody observes it), every call in flight tracked for `flush`. @internal
 */
export class ReleaseRuns {
  releaser: Releaser | undefined;
  failures = 0;
  /** Session release runs in flight, by session id (concurrent `releaseSession` calls share them). */
  private readonly bySession = new Map<string, Promise<SessionReleaseReport>>();
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    releaser: Releaser | undefined,
    private readonly policy: RetryPolicy,
    private readonly events: EventHub,
  ) {
    this.releaser = releaser;
  }

  /** Releaser calls in flight. */
  get size(): number {
    return this.pending.size;
  }

  /** The run releasing `sessionId`, while it is in flight. */
  inFlight(sessionId: string): Promise<SessionReleaseReport> | undefined {
    return this.bySession.get(sessionId);
  }

  /** Calls `releaser.releaseSession` for a session already dropped on the host. Never rejects. */
  releaseSession(
    sessionId: string,
    refs: readonly Ref[],
    reason: RefGoneReason,
    cause: SessionReleaseCause,
  ): Promise<SessionReleaseReport> {
    const report = (error?: ReleaseFailedError): SessionReleaseReport =>
      error
        ? { sessionId, status: 'failed', released: false, refs, reason, cause, error }
        : { sessionId, status: 'released', released: true, refs, reason, cause };
    const releaser = this.releaser;
    if (!releaser) return Promise.resolve(report());
    const run = this.track(this.call(releaser, 'releaseSession', sessionId, refs, reason).then(report));
    this.bySession.set(sessionId, run);
    void run.then(() => {
      if (this.bySession.get(sessionId) === run) this.bySession.delete(sessionId);
    });
    return run;
  }

  /** Calls `releaser.releaseRefs` (when the releaser has it) for one explicitly released ref. */
  releaseRef(ref: Ref): Promise<RefReleaseReport> {
    const releaser = this.releaser;
    if (!releaser?.releaseRefs) return Promise.resolve({ ref, status: 'released', released: true });
    return this.track(
      this.call(releaser, 'releaseRefs', ref.sessionId, [ref], 'released').then(
        (error): RefReleaseReport =>
          error
            ? { ref, status: 'failed', released: false, error }
            : { ref, status: 'released', released: true },
      ),
    );
  }

  /** Calls `releaser.releaseRefs` (when the releaser has it) for refs the store evicted. */
  releaseEvicted(sessionId: string, refs: readonly Ref[], reason: RefGoneReason): void {
    const releaser = this.releaser;
    if (releaser?.releaseRefs) void this.track(this.call(releaser, 'releaseRefs', sessionId, refs, reason));
  }

  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }

  private async call(
    releaser: Releaser,
    operation: ReleaseOperation,
    sessionId: string,
    refs: readonly Ref[],
    reason: RefGoneReason,
  ): Promise<ReleaseFailedError | undefined> {
    const error = await callReleaser(releaser, operation, sessionId, refs, reason, this.policy);
    if (error) {
      this.failures += 1;
      // Never lost silently: without an observer the failure becomes a process warning.
      if (this.events.has('release-failed')) {
        this.events.emit({
          type: 'release-failed',
          sessionId,
          operation,
          refs,
          attempts: error.attempts,
          error,
        });
      } else process.emitWarning(error);
    }
    return error;
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.pending.add(promise);
    void promise.then(() => this.pending.delete(promise));
    return promise;
  }
}
