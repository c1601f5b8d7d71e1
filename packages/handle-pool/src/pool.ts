import { resolveTimers } from './clock';
import { DischargerRegistry, isNonEmptyString, toEntry } from './dischargers';
import { asyncDisposeSymbol } from './dispose';
import { describeValue, HandlePoolError, HandlePoolErrorCode } from './errors';
import { buildLeakReport, DrainReportBuilder } from './report';
import { runDischarger } from './run-discharger';
import type {
  DischargeOptions,
  DischargeOutcome,
  Discharger,
  DischargerPlugin,
  DrainOptions,
  DrainReport,
  Handle,
  HandlePool,
  HandlePoolEvent,
  HandlePoolOptions,
  LeaksOptions,
  TrackInput,
  UnknownOutcome,
} from './types';

/**
 * Creates a pool that tracks resources with obligations and discharges each of them exactly once.
 *
 * @throws {HandlePoolError} `HANDLE_POOL_INVALID_INPUT` for a malformed option, and
 *   `HANDLE_POOL_DUPLICATE_DISCHARGER` when `dischargers` names an obligation twice.
 * @example
 * ```ts
 * import { type FileHandle, open } from 'node:fs/promises';
 * import { createHandlePool } from '@trestle/handle-pool';
 *
 * await using pool = createHandlePool();
 * pool.registerDischarger<FileHandle>('fs:close', (handle) => handle.resource.close());
 * const file = await open('data.csv');
 * const handle = pool.track({ binding: 'data.csv', obligation: 'fs:close', resource: file });
 * await pool.discharge(handle); // { status: 'discharged', ... }
 * // On scope exit the pool drains whatever is still live, newest first, and closes.
 * ```
 */
export function createHandlePool(options: HandlePoolOptions = {}): HandlePool {
  const {
    maxHandles = 10_000,
    captureStacks = false,
    clock,
    defaultTimeoutMs = 5_000,
    dischargers,
    retainOutcomes = 1_000,
    onEvent,
  } = options;
  if (!isCount(maxHandles) || maxHandles < 1) {
    throw invalid(`maxHandles must be a positive integer or Infinity, got ${describeValue(maxHandles)}`);
  }
  if (!isCount(retainOutcomes)) {
    throw invalid(
      `retainOutcomes must be a non-negative integer or Infinity, got ${describeValue(retainOutcomes)}`,
    );
  }
  if (!isTimeout(defaultTimeoutMs)) {
    throw invalid(
      `defaultTimeoutMs must be a positive number or Infinity, got ${describeValue(defaultTimeoutMs)}`,
    );
  }

  const timers = resolveTimers(clock);
  const registry = new DischargerRegistry();
  if (Array.isArray(dischargers)) {
    for (const plugin of dischargers as readonly DischargerPlugin[])
      registry.register(toEntry(plugin, undefined));
  } else if (dischargers !== undefined) {
    for (const [obligation, discharger] of Object.entries(dischargers as Record<string, Discharger>)) {
      registry.register(toEntry(obligation, discharger));
    }
  }

  // Live handles by id, in tracking order. A handle stays here until its outcome is settled.
  const live = new Map<string, Handle>();
  // The single outcome of every handle whose discharge started. Weak, so settled handles are
  // collected once nobody else holds them; this is what makes discharge(handle) idempotent forever.
  const outcomeByHandle = new WeakMap<Handle, Promise<DischargeOutcome>>();
  // Recent settled outcomes by id (bounded by retainOutcomes), for discharge(id) after settlement.
  const retained = new Map<string, DischargeOutcome>();
  let settlingCount = 0;
  let lastId = 0;
  let closed = false;
  let drainRun: Promise<DrainReport> | undefined;

  function emit(event: HandlePoolEvent): void {
    if (onEvent === undefined) return;
    try {
      onEvent(event);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  function complete(handle: Handle, outcome: DischargeOutcome): void {
    if (live.get(handle.id) === handle) live.delete(handle.id);
    if (retainOutcomes > 0) {
      retained.set(handle.id, outcome);
      if (retained.size > retainOutcomes) {
        const oldest = retained.keys().next();
        if (!oldest.done) retained.delete(oldest.value);
      }
    }
    if (outcome.status === 'discharged') emit({ type: 'handle-discharged', handle, outcome });
    else if (outcome.status === 'failed') emit({ type: 'handle-failed', handle, outcome });
    else if (outcome.status === 'no-discharger') emit({ type: 'handle-abandoned', handle, outcome });
  }

  function settleNow(handle: Handle, outcome: DischargeOutcome): Promise<DischargeOutcome> {
    const promise = Promise.resolve(outcome);
    outcomeByHandle.set(handle, promise);
    complete(handle, outcome);
    return promise;
  }

  /** Starts (or joins) the discharge of a live handle. The only place a discharger is started. */
  function settle(
    handle: Handle,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<DischargeOutcome> {
    const existing = outcomeByHandle.get(handle);
    if (existing !== undefined) return existing;

    const entry = registry.get(handle.obligation);
    if (entry === undefined) {
      return settleNow(handle, { status: 'no-discharger', id: handle.id, handle, durationMs: 0 });
    }

    // Registered before the discharger runs, so a discharger that re-enters discharge()/forget()
    // for its own handle joins this run instead of starting another.
    let resolveOutcome!: (outcome: DischargeOutcome) => void;
    const promise = new Promise<DischargeOutcome>((resolve) => {
      resolveOutcome = resolve;
    });
    outcomeByHandle.set(handle, promise);
    settlingCount += 1;
    const startedAt = timers.now();
    void runDischarger(entry, handle, timeoutMs, signal, timers).then((error) => {
      settlingCount -= 1;
      const durationMs = Math.max(0, timers.now() - startedAt);
      const outcome: DischargeOutcome =
        error === undefined
          ? { status: 'discharged', id: handle.id, handle, forgotten: false, durationMs }
          : { status: 'failed', id: handle.id, handle, error, durationMs };
      complete(handle, outcome);
      resolveOutcome(outcome);
    });
    return promise;
  }

  function track(input: TrackInput): Handle {
    if (typeof input !== 'object' || input === null) {
      throw invalid(`track() expects { binding, obligation }, got ${describeValue(input)}`);
    }
    const { binding, obligation, resource, meta } = input;
    if (!isNonEmptyString(binding)) {
      throw invalid(`track(): binding must be a non-empty string, got ${describeValue(binding)}`);
    }
    if (!isNonEmptyString(obligation)) {
      throw invalid(
        `track(): obligation must be a non-empty string, got ${describeValue(obligation)} (binding ${describeValue(binding)})`,
      );
    }
    if (closed) {
      throw new HandlePoolError(
        HandlePoolErrorCode.Closed,
        `handle pool is closed; cannot track binding ${describeValue(binding)} (obligation ${describeValue(obligation)})`,
      );
    }
    if (live.size >= maxHandles) {
      throw new HandlePoolError(
        HandlePoolErrorCode.Exhausted,
        `handle pool is full: maxHandles (${maxHandles}) handles are live; cannot track binding ` +
          `${describeValue(binding)} (obligation ${describeValue(obligation)})`,
      );
    }
    lastId += 1;
    const fields = { id: `h_${lastId}`, binding, obligation, createdAt: timers.now(), resource, meta };
    const handle: Handle = Object.freeze(captureStacks ? { ...fields, stack: captureStack(track) } : fields);
    live.set(handle.id, handle);
    emit({ type: 'handle-tracked', handle });
    return handle;
  }

  function registerDischarger(
    obligationOrPlugin: string | DischargerPlugin,
    discharger?: Discharger,
  ): () => void {
    return registry.register(toEntry(obligationOrPlugin, discharger));
  }

  function discharge(
    target: string | Handle,
    dischargeOptions: DischargeOptions = {},
  ): Promise<DischargeOutcome> {
    let timeoutMs: number;
    try {
      timeoutMs = resolveTimeout(dischargeOptions.timeoutMs, defaultTimeoutMs, 'discharge()');
    } catch (error) {
      return Promise.reject(error);
    }
    if (typeof target === 'string') {
      const handle = live.get(target);
      if (handle !== undefined) return settle(handle, timeoutMs, dischargeOptions.signal);
      return Promise.resolve(retained.get(target) ?? unknownOutcome(target));
    }
    if (typeof target === 'object' && target !== null && typeof target.id === 'string') {
      const existing = outcomeByHandle.get(target);
      if (existing !== undefined) return existing;
      // The id check alone is not enough: another pool's handle may carry the same id.
      if (live.get(target.id) === target) return settle(target, timeoutMs, dischargeOptions.signal);
      return Promise.resolve(unknownOutcome(target.id));
    }
    return Promise.reject(
      invalid(`discharge() expects a handle id or a handle, got ${describeValue(target)}`),
    );
  }

  function forget(target: string | Handle): boolean {
    const handle = typeof target === 'string' ? live.get(target) : findLive(target);
    if (handle === undefined || outcomeByHandle.has(handle)) return false;
    settleNow(handle, { status: 'discharged', id: handle.id, handle, forgotten: true, durationMs: 0 });
    return true;
  }

  function findLive(target: Handle | null | undefined): Handle | undefined {
    if (typeof target !== 'object' || target === null) return undefined;
    return live.get(target.id) === target ? target : undefined;
  }

  async function runDrain(timeoutMs: number, signal: AbortSignal | undefined): Promise<DrainReport> {
    const startedAt = timers.now();
    const builder = new DrainReportBuilder();
    // Rounds: each takes the handles live at its start, newest first. Handles tracked while a round
    // runs are picked up by the next one, so the drain ends only when the pool is empty.
    for (;;) {
      const round = Array.from(live.values()).reverse();
      if (round.length === 0) break;
      for (const handle of round) {
        // Sequential on purpose: a newer resource may depend on an older one still being open.
        builder.record(await settle(handle, timeoutMs, signal));
      }
    }
    return builder.finish(Math.max(0, timers.now() - startedAt));
  }

  function drain(drainOptions: DrainOptions = {}): Promise<DrainReport> {
    let timeoutMs: number;
    try {
      timeoutMs = resolveTimeout(drainOptions.timeoutMs, defaultTimeoutMs, 'drain()');
    } catch (error) {
      return Promise.reject(error);
    }
    if (drainOptions.close === true) closed = true;
    let run = drainRun;
    if (run === undefined) {
      const started = runDrain(timeoutMs, drainOptions.signal);
      const clear = (): void => {
        if (drainRun === started) drainRun = undefined;
      };
      started.then(clear, clear);
      drainRun = started;
      run = started;
    }
    if (drainOptions.throwOnError !== true) return run;
    return run.then((report) => {
      if (report.error !== undefined) throw report.error;
      return report;
    });
  }

  const pool: HandlePool = {
    get size() {
      return live.size;
    },
    get closed() {
      return closed;
    },
    track: track as HandlePool['track'],
    registerDischarger: registerDischarger as HandlePool['registerDischarger'],
    discharge: discharge as HandlePool['discharge'],
    forget,
    get: (id) => live.get(id),
    list: () => Array.from(live.values()),
    leaks({ olderThanMs = 0 }: LeaksOptions = {}) {
      if (typeof olderThanMs !== 'number' || Number.isNaN(olderThanMs) || olderThanMs < 0) {
        throw invalid(
          `leaks(): olderThanMs must be a non-negative number, got ${describeValue(olderThanMs)}`,
        );
      }
      return buildLeakReport(live.values(), timers.now(), olderThanMs);
    },
    drain,
    stats: () => ({
      live: live.size,
      settling: settlingCount,
      retainedOutcomes: retained.size,
      dischargers: registry.size,
      closed,
      draining: drainRun !== undefined,
    }),
    async [asyncDisposeSymbol]() {
      await drain({ close: true, throwOnError: true });
    },
  };
  return pool;
}

function invalid(message: string): HandlePoolError {
  return new HandlePoolError(HandlePoolErrorCode.InvalidInput, message);
}

function unknownOutcome(id: string): UnknownOutcome {
  return { status: 'unknown', id, handle: undefined, durationMs: 0 };
}

function isCount(value: unknown): value is number {
  return value === Number.POSITIVE_INFINITY || (Number.isInteger(value) && (value as number) >= 0);
}

function isTimeout(value: unknown): value is number {
  return typeof value === 'number' && value > 0 && !Number.isNaN(value);
}

function resolveTimeout(value: number | undefined, fallback: number, where: string): number {
  if (value === undefined) return fallback;
  if (!isTimeout(value)) {
    throw invalid(`${where}: timeoutMs must be a positive number or Infinity, got ${describeValue(value)}`);
  }
  return value;
}

/** The caller's stack, without the frames of `below` and above it (i.e. the pool's own). */
function captureStack(below: (...args: never[]) => unknown): string {
  const holder: { stack?: string } = {};
  if (typeof Error.captureStackTrace === 'function') Error.captureStackTrace(holder, below);
  else holder.stack = new Error().stack;
  // Drop the "Error" header line and indentation.
  return (holder.stack ?? '')
    .split('\n')
    .slice(1)
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .join('\n');
}
