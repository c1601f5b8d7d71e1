import type { Ref, RefGoneReason, Releaser } from '@trestle/ref-registry';

/** What the batching releaser needs from the adapter. */
export interface ReleaseTarget {
  /** Whether the session's current worker holds anything of it (a fresh worker does not). */
  knows(sessionId: string): boolean;
  /** Sends one `release` request for these ids. */
  releaseIds(sessionId: string, ids: readonly string[]): Promise<void>;
  /** Sends `release_session` and drops the session's affinity. */
  releaseSession(sessionId: string): Promise<void>;
  /** The session was released with reason `worker_restarted`: nothing left to free in Python. */
  forget(sessionId: string): void;
}

interface Batch {
  readonly ids: string[];
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * The adapter's `Releaser`: releases of single refs in the same tick are merged into one `release`
 * message per session.
 */
export class BatchingReleaser implements Releaser {
  readonly name = 'python';
  readonly contractVersion = 1 as const;
  private readonly batches = new Map<string, Batch>();
  private scheduled = false;

  constructor(private readonly target: ReleaseTarget) {}

  async releaseSession(sessionId: string, _refs: readonly Ref[], reason: RefGoneReason): Promise<void> {
    if (reason === 'worker_restarted' || !this.target.knows(sessionId)) {
      this.target.forget(sessionId);
      return;
    }
    await this.target.releaseSession(sessionId);
  }

  releaseRefs(sessionId: string, refs: readonly Ref[]): Promise<void> {
    if (!this.target.knows(sessionId)) return Promise.resolve();
    let batch = this.batches.get(sessionId);
    if (batch === undefined) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      batch = { ids: [], promise, resolve, reject };
      this.batches.set(sessionId, batch);
    }
    for (const ref of refs) batch.ids.push(ref.id);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
    return batch.promise;
  }

  private flush(): void {
    this.scheduled = false;
    const batches = [...this.batches];
    this.batches.clear();
    for (const [sessionId, batch] of batches) {
      this.target.releaseIds(sessionId, batch.ids).then(batch.resolve, batch.reject);
    }
  }
}
