import type { Clock } from '@trestle/ref-registry';
import type { BlobList } from './codec';
import { adapterError, PythonAdapterErrorCode, type WorkerCrashedError } from './errors';
import type { Logger } from './logger';
import type { WireError } from './wire-error';
import type { PendingReply, PythonWorker, WorkerHello } from './worker';

/** Limits of the pool. */
export interface PoolLimits {
  readonly size: number;
  readonly maxInFlight: number;
  readonly maxQueue: number;
  readonly queueTimeoutMs: number;
  readonly cancelGraceMs: number;
}

/** What the pool needs from its owner. */
export interface PoolHooks {
  readonly spawn: (workerId: number) => PythonWorker;
  /** The `limits` field sent with the first request of a session to a worker. */
  readonly limitsOf: (sessionId: string) => Record<string, unknown>;
  /** A worker died or was restarted: these sessions lost their Python objects. */
  readonly onSessionsLost: (sessionIds: readonly string[], error: WorkerCrashedError) => void;
  readonly logger: Logger;
  readonly clock: Clock;
}

/** How one request is sent. */
export interface SubmitOptions {
  readonly timeoutMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  /** What the request does, for error messages (`math.sqrt`). */
  readonly label: string;
  /** Send to this worker id instead of the session's (requests about the worker itself). */
  readonly worker?: number;
}

/** A reply: the raw wire result and the frame's blob region. */
export interface RawReply {
  readonly result: unknown;
  readonly blob: Uint8Array | undefined;
}

const RESPAWN_MIN_MS = 100;
const RESPAWN_MAX_MS = 5_000;
const STABLE_UPTIME_MS = 2_000;

class Job implements PendingReply {
  state: 'queued' | 'sent' | 'abandoned' | 'settled' = 'queued';
  worker: PythonWorker | undefined;
  id = 0;
  timer: unknown;
  graceTimer: unknown;
  abortListener: (() => void) | undefined;
  constructor(
    readonly pool: WorkerPool,
    readonly slot: Slot,
    readonly sessionId: string | undefined,
    readonly message: Record<string, unknown>,
    readonly blobs: BlobList | undefined,
    readonly options: SubmitOptions,
    readonly resolve: (reply: RawReply) => void,
    readonly reject: (error: unknown) => void,
  ) {}

  onResult(result: unknown, blob: Uint8Array | undefined): void {
    this.pool.replied(this);
    if (this.state === 'sent') {
      this.state = 'settled';
      this.cleanup();
      this.resolve({ result, blob });
    }
  }

  onError(error: WireError): void {
    this.pool.replied(this);
    if (this.state === 'sent') {
      this.state = 'settled';
      this.cleanup();
      this.reject(error);
    }
  }

  onLost(error: Error): void {
    this.pool.replied(this);
    if (this.state === 'sent') {
      this.state = 'settled';
      this.cleanup();
      this.reject(error);
    }
  }

  cleanup(): void {
    const clock = this.pool.clock;
    if (this.timer !== undefined) clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.abortListener !== undefined)
      this.options.signal?.removeEventListener('abort', this.abortListener);
    this.abortListener = undefined;
  }
}

class Slot {
  worker: PythonWorker | undefined;
  ready = false;
  starting: Promise<WorkerHello> | undefined;
  readonly queue: Job[] = [];
  queueHead = 0;
  readonly sessions = new Set<string>();
  restarts = 0;
  failures = 0;
  startedAt = 0;
  lastError: Error | undefined;
  nextSpawnAt = 0;
  respawnTimer: unknown;
  constructor(readonly index: number) {}

  get queued(): number {
    return this.queue.length - this.queueHead;
  }
}

/** A snapshot of one worker slot. */
export interface WorkerStats {
  readonly id: number;
  readonly pid: number | undefined;
  readonly state: 'idle' | 'starting' | 'ready';
  readonly inflight: number;
  readonly queued: number;
  readonly sessions: number;
  readonly restarts: number;
}

/**
 * Python workers with strict session affinity: a session (and so every ref it holds) always goes to
 * the same worker; a bounded queue per pool; per-call deadlines and aborts that cancel in Python and
 * restart a worker that does not yield.
 */
export class WorkerPool {
  readonly clock: Clock;
  private readonly slots: Slot[];
  private readonly affinity = new Map<string, Slot>();
  private queuedTotal = 0;
  private closed = false;

  constructor(
    private readonly limits: PoolLimits,
    private readonly hooks: PoolHooks,
  ) {
    this.clock = hooks.clock;
    this.slots = Array.from({ length: limits.size }, (_, index) => new Slot(index + 1));
  }

  /** Starts every worker; resolves with their hellos. @throws the first start-up error */
  async ready(): Promise<WorkerHello[]> {
    return Promise.all(this.slots.map((slot) => this.ensureStarted(slot)));
  }

  /** The worker slot a session is bound to (assigned on first use: the slot with fewest sessions). */
  slotOf(sessionId: string | undefined): Slot {
    if (sessionId === undefined) return this.leastLoaded();
    let slot = this.affinity.get(sessionId);
    if (slot === undefined) {
      slot = this.leastLoaded();
      this.affinity.set(sessionId, slot);
      slot.sessions.add(sessionId);
    }
    return slot;
  }

  /** The worker id a session is bound to, if any. */
  workerOf(sessionId: string): number | undefined {
    return this.affinity.get(sessionId)?.index;
  }

  /** Whether the session's current worker has seen it (a fresh worker holds nothing of it). */
  knows(sessionId: string): boolean {
    const slot = this.affinity.get(sessionId);
    return slot?.worker?.announced.has(sessionId) === true && slot.worker.state !== 'dead';
  }

  /** Drops a session's affinity (after it was released). */
  forget(sessionId: string): void {
    const slot = this.affinity.get(sessionId);
    if (slot === undefined) return;
    this.affinity.delete(sessionId);
    slot.sessions.delete(sessionId);
    slot.worker?.announced.delete(sessionId);
  }

  /**
   * Sends `message` to the session's worker (queued while it starts or is busy).
   * @throws (rejects) PythonAdapterError `PY_QUEUE_FULL`, `PY_QUEUE_TIMEOUT`, `PY_TIMEOUT`, `PY_ABORTED`,
   *   `PY_CLOSED`, `PY_SPAWN_FAILED`; WorkerCrashedError; or the worker's `WireError`.
   */
  submit(
    sessionId: string | undefined,
    message: Record<string, unknown>,
    blobs: BlobList | undefined,
    options: SubmitOptions,
  ): Promise<RawReply> {
    return new Promise<RawReply>((resolve, reject) => {
      if (this.closed) {
        reject(
          adapterError(PythonAdapterErrorCode.Closed, `cannot run ${options.label}: the adapter is closed`),
        );
        return;
      }
      const signal = options.signal;
      if (signal?.aborted) {
        reject(abortError(options.label, signal));
        return;
      }
      const slot =
        options.worker !== undefined
          ? (this.slots[options.worker - 1] ?? this.leastLoaded())
          : this.slotOf(sessionId);
      const job = new Job(this, slot, sessionId, message, blobs, options, resolve, reject);
      const worker = slot.worker;
      if (
        slot.ready &&
        worker !== undefined &&
        slot.queued === 0 &&
        worker.inflight < this.limits.maxInFlight
      ) {
        this.arm(job);
        this.send(job, worker);
        return;
      }
      if (this.queuedTotal >= this.limits.maxQueue) {
        reject(
          adapterError(
            PythonAdapterErrorCode.QueueFull,
            `cannot queue ${options.label}: ${this.queuedTotal} calls are waiting (maxQueue ${this.limits.maxQueue})`,
          ),
        );
        return;
      }
      this.arm(job);
      // Blob parts are views of the caller's bytes: a queued request keeps its own copy.
      if (blobs !== undefined) blobs.parts = blobs.parts.map((part) => part.slice());
      slot.queue.push(job);
      this.queuedTotal++;
      if (this.limits.queueTimeoutMs > 0 && Number.isFinite(this.limits.queueTimeoutMs)) {
        job.graceTimer = this.clock.setTimeout(() => {
          if (job.state !== 'queued') return;
          this.dropQueued(
            job,
            adapterError(
              PythonAdapterErrorCode.QueueTimeout,
              `${options.label} waited ${this.limits.queueTimeoutMs} ms in the queue (queueTimeoutMs)`,
            ),
          );
        }, this.limits.queueTimeoutMs);
      }
      if (!slot.ready) this.ensureStarted(slot).catch(() => {});
    });
  }

  /** Called by a job when its worker answered or was lost. */
  replied(job: Job): void {
    if (job.graceTimer !== undefined && job.state !== 'queued') {
      this.clock.clearTimeout(job.graceTimer);
      job.graceTimer = undefined;
    }
    const slot = job.slot;
    if (slot.queued > 0) queueMicrotask(() => this.pump(slot));
  }

  stats(): WorkerStats[] {
    return this.slots.map((slot) => ({
      id: slot.index,
      pid: slot.worker?.pid,
      state: slot.ready ? 'ready' : slot.starting ? 'starting' : 'idle',
      inflight: slot.worker?.inflight ?? 0,
      queued: slot.queued,
      sessions: slot.sessions.size,
      restarts: slot.restarts,
    }));
  }

  /** The worker ids (1..size). */
  workerIds(): number[] {
    return this.slots.map((slot) => slot.index);
  }

  /** Stops taking calls and fails the queued ones (`PY_CLOSED`). Idempotent. */
  stopAccepting(): void {
    if (this.closed) return;
    this.closed = true;
    for (const slot of this.slots) {
      if (slot.respawnTimer !== undefined) this.clock.clearTimeout(slot.respawnTimer);
      slot.respawnTimer = undefined;
      this.failQueue(slot, adapterError(PythonAdapterErrorCode.Closed, 'the adapter was closed'));
    }
  }

  /**
   * Stops taking calls, fails queued ones (`PY_CLOSED`), lets in-flight ones finish for `graceMs`,
   * then shuts every worker down (killing what does not exit).
   */
  async close(graceMs: number): Promise<void> {
    this.stopAccepting();
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && this.slots.some((slot) => (slot.worker?.inflight ?? 0) > 0)) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await Promise.all(
      this.slots.map(async (slot) => {
        await slot.starting?.catch(() => undefined);
        await slot.worker?.shutdown(Math.max(0, Math.min(1_000, deadline - Date.now())) + 200);
      }),
    );
  }

  private leastLoaded(): Slot {
    let best = this.slots[0] as Slot;
    for (const slot of this.slots) {
      if (
        slot.sessions.size < best.sessions.size ||
        (slot.sessions.size === best.sessions.size &&
          (slot.worker?.inflight ?? 0) + slot.queued < (best.worker?.inflight ?? 0) + best.queued)
      ) {
        best = slot;
      }
    }
    return best;
  }

  private arm(job: Job): void {
    const { timeoutMs, signal, label } = job.options;
    if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
      job.timer = this.clock.setTimeout(() => {
        job.timer = undefined;
        this.giveUp(
          job,
          adapterError(PythonAdapterErrorCode.Timeout, `${label} timed out after ${timeoutMs} ms`),
        );
      }, timeoutMs);
    }
    if (signal !== undefined) {
      job.abortListener = () => this.giveUp(job, abortError(label, signal));
      signal.addEventListener('abort', job.abortListener, { once: true });
    }
  }

  /** A deadline or abort: reject now; cancel in Python; restart the worker if it does not yield. */
  private giveUp(job: Job, error: Error): void {
    if (job.state === 'queued') {
      this.dropQueued(job, error);
      return;
    }
    if (job.state !== 'sent') return;
    job.state = 'abandoned';
    job.cleanup();
    job.reject(error);
    const worker = job.worker;
    if (worker === undefined || worker.state === 'dead') return;
    worker.cancel(job.id);
    job.graceTimer = this.clock.setTimeout(() => {
      job.graceTimer = undefined;
      if (!worker.isPending(job.id) || worker.state === 'dead') return;
      this.hooks.logger.warn('a python call did not yield to cancel: restarting its worker', {
        worker: worker.id,
        pid: worker.pid,
        call: job.options.label,
        graceMs: this.limits.cancelGraceMs,
      });
      worker.kill({
        code: PythonAdapterErrorCode.WorkerRestarted,
        why: `was restarted: ${job.options.label} did not yield to cancel within ${this.limits.cancelGraceMs} ms`,
      });
    }, this.limits.cancelGraceMs);
  }

  private dropQueued(job: Job, error: Error): void {
    job.state = 'settled';
    job.cleanup();
    if (job.graceTimer !== undefined) this.clock.clearTimeout(job.graceTimer);
    job.graceTimer = undefined;
    this.queuedTotal--;
    job.reject(error);
  }

  private send(job: Job, worker: PythonWorker): void {
    const sessionId = job.sessionId;
    if (sessionId !== undefined && !worker.announced.has(sessionId)) {
      worker.announced.add(sessionId);
      job.message.limits = this.hooks.limitsOf(sessionId);
    }
    job.state = 'sent';
    job.worker = worker;
    try {
      job.id = worker.send(job.message, job, job.blobs);
    } catch (error) {
      // The request could not be framed (too large, not JSON): it fails alone, the worker is fine.
      job.state = 'settled';
      job.cleanup();
      job.reject(error);
    }
  }

  private pump(slot: Slot): void {
    const worker = slot.worker;
    if (!slot.ready || worker === undefined) return;
    while (slot.queued > 0 && worker.inflight < this.limits.maxInFlight) {
      const job = slot.queue[slot.queueHead] as Job;
      slot.queue[slot.queueHead] = undefined as unknown as Job;
      slot.queueHead++;
      if (job.state !== 'queued') continue;
      this.queuedTotal--;
      if (job.graceTimer !== undefined) this.clock.clearTimeout(job.graceTimer);
      job.graceTimer = undefined;
      this.send(job, worker);
    }
    if (slot.queueHead > 1024 && slot.queueHead * 2 > slot.queue.length) {
      slot.queue.splice(0, slot.queueHead);
      slot.queueHead = 0;
    } else if (slot.queued === 0) {
      slot.queue.length = 0;
      slot.queueHead = 0;
    }
  }

  private failQueue(slot: Slot, error: Error): void {
    while (slot.queued > 0) {
      const job = slot.queue[slot.queueHead] as Job;
      slot.queueHead++;
      if (job.state === 'queued') this.dropQueued(job, error);
    }
    slot.queue.length = 0;
    slot.queueHead = 0;
  }

  private ensureStarted(slot: Slot): Promise<WorkerHello> {
    if (slot.ready && slot.worker?.hello) return Promise.resolve(slot.worker.hello);
    if (slot.starting) return slot.starting;
    if (this.closed)
      return Promise.reject(adapterError(PythonAdapterErrorCode.Closed, 'the adapter is closed'));
    const now = this.clock.now();
    if (slot.lastError !== undefined && now < slot.nextSpawnAt && slot.respawnTimer === undefined) {
      // A worker that keeps failing to start: fail fast until the back-off passes.
      const error = slot.lastError;
      this.failQueue(slot, error);
      return Promise.reject(error);
    }
    const worker = this.hooks.spawn(slot.index);
    slot.worker = worker;
    slot.startedAt = now;
    const starting = worker.start().then(
      (hello) => {
        if (slot.worker !== worker) return hello;
        slot.starting = undefined;
        slot.ready = true;
        slot.lastError = undefined;
        this.pump(slot);
        return hello;
      },
      (error: unknown) => {
        if (slot.worker === worker) {
          slot.starting = undefined;
          slot.worker = undefined;
          slot.ready = false;
          slot.failures++;
          slot.lastError = error as Error;
          slot.nextSpawnAt = this.clock.now() + backoff(slot.failures);
          this.failQueue(slot, error as Error);
        }
        throw error;
      },
    );
    slot.starting = starting;
    return starting;
  }

  /** The owner routes every worker's exit here. */
  workerExited(worker: PythonWorker, error: WorkerCrashedError): void {
    const slot = this.slots[worker.id - 1];
    if (slot === undefined || slot.worker !== worker) return;
    if (!slot.ready) return; // a start-up failure: handled by ensureStarted
    slot.worker = undefined;
    slot.ready = false;
    slot.restarts++;
    const lost = [...slot.sessions].filter((id) => worker.announced.has(id));
    if (!this.closed && error.code !== PythonAdapterErrorCode.Closed) {
      this.hooks.logger.warn('python worker exited; respawning', {
        worker: worker.id,
        pid: worker.pid,
        exitCode: error.exitCode,
        signal: error.signal,
        reason: error.message,
        sessionsLost: lost.length,
      });
    }
    if (lost.length > 0) this.hooks.onSessionsLost(lost, error);
    if (this.closed) return;
    const uptime = this.clock.now() - slot.startedAt;
    slot.failures = uptime < STABLE_UPTIME_MS ? slot.failures + 1 : 0;
    const delay = slot.failures === 0 ? 0 : backoff(slot.failures);
    const respawn = () => {
      slot.respawnTimer = undefined;
      this.ensureStarted(slot).catch(() => {});
    };
    if (delay === 0) respawn();
    else slot.respawnTimer = this.clock.setTimeout(respawn, delay);
  }
}

function backoff(failures: number): number {
  return Math.min(RESPAWN_MAX_MS, RESPAWN_MIN_MS * 2 ** Math.max(0, failures - 1));
}

function abortError(label: string, signal: AbortSignal): Error {
  return adapterError(PythonAdapterErrorCode.Aborted, `${label} was aborted`, signal.reason);
}
