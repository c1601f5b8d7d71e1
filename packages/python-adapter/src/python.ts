import {
  type Clock,
  createRef,
  createSessionContext,
  createSessionManager,
  decodeRef,
  encodeRef,
  InvalidRefError,
  isRef,
  isRefWire,
  type Ref,
  type RefInit,
  type RefWire,
  type SessionContext,
  type SessionHandle,
  type SessionManager,
  SessionMismatchError,
  SessionNotFoundError,
  systemClock,
  type WithSessionOptions,
} from '@trestle/ref-registry';
import { runBatch } from './batch';
import { type BlobList, Decoder, Encoder } from './codec';
import { adapterError, PythonAdapterError, PythonAdapterErrorCode, type WorkerCrashedError } from './errors';
import { encodeFrame } from './frame';
import { type Interpreter, resolveInterpreter, workerEnv } from './interpreter';
import { consoleLogger, type Logger, writeOutput } from './logger';
import { WorkerPool } from './pool';
import { ProxyFactory, type PyObject } from './proxy';
import { BatchingReleaser } from './releaser';
import { openStream, type StreamSource } from './stream';
import type {
  BatchItem,
  BatchResult,
  CallOptions,
  DoctorReport,
  Kwargs,
  PyStream,
  Python,
  PythonOptions,
  PythonStats,
  StreamOptions,
  WorkerPythonStats,
} from './types';
import { hostError, type WireError } from './wire-error';
import { PythonWorker } from './worker';

const DEFAULT_DOCTOR_MODULES = ['json', 'asyncio', 'ctypes', 'resource'];

/** The adapter. Users get it from {@link createPython}. */
export class PythonBridge implements Python {
  readonly sessions: SessionManager;
  readonly context: SessionContext;
  readonly interpreter: Interpreter;
  /** @internal */
  readonly pool: WorkerPool;
  /** @internal */
  readonly chunkSize: number;
  /** @internal */
  readonly clock: Clock;
  private readonly encoder: Encoder;
  private readonly decoder: Decoder;
  private readonly ownsManager: boolean;
  private readonly logger: Logger;
  /** @internal */
  readonly defaultTimeoutMs: number | undefined;
  private defaultSession: SessionHandle | undefined;
  private decodingSession = '';
  private closed: Promise<void> | undefined;
  private closing = false;
  /** @internal */
  calls = 0;
  /** @internal */
  errors = 0;
  /** @internal */
  finalized = 0;
  private readonly proxies: ProxyFactory;

  constructor(private readonly options: PythonOptions = {}) {
    validateOptions(options);
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? consoleLogger;
    this.chunkSize = options.chunkSize ?? 64;
    this.defaultTimeoutMs = options.timeoutMs;
    this.interpreter = resolveInterpreter(options);
    const releaser = new BatchingReleaser({
      knows: (sessionId) => this.pool.knows(sessionId),
      forget: (sessionId) => this.pool.forget(sessionId),
      releaseIds: async (sessionId, ids) => {
        if (this.closing) return;
        await this.pool.submit(sessionId, { op: 'release', session: sessionId, ids }, undefined, {
          label: 'release',
        });
      },
      releaseSession: async (sessionId) => {
        if (this.closing) {
          this.pool.forget(sessionId);
          return;
        }
        try {
          await this.pool.submit(sessionId, { op: 'release_session', session: sessionId }, undefined, {
            label: 'release_session',
          });
        } finally {
          this.pool.forget(sessionId);
        }
      },
    });
    if (options.sessions) {
      const existing = options.sessions.releaser;
      if (existing !== undefined && existing.name !== 'python') {
        throw adapterError(
          PythonAdapterErrorCode.InvalidArgument,
          `the session manager already has the releaser "${existing.name}"; give the adapter its own manager`,
        );
      }
      options.sessions.setReleaser(releaser);
      this.sessions = options.sessions;
      this.ownsManager = false;
    } else {
      this.sessions = createSessionManager({ releaser, defaults: options.defaults, clock: options.clock });
      this.ownsManager = true;
    }
    this.context = options.context ?? createSessionContext(this.sessions);
    this.proxies = new ProxyFactory(this, options.finalizationBatchMs ?? 100);
    const codecs = options.codecs ?? [];
    this.encoder = new Encoder({
      codecs,
      binaryThreshold: options.binaryThreshold ?? 4096,
      refToWire: (value) => {
        const ref = this.refOf?.(value);
        return ref === undefined ? undefined : encodeRef(ref);
      },
    });
    this.decoder = new Decoder({ codecs, onRef: (wire) => this.adoptRef(wire) });
    const configure = {
      defaults: this.limitsWire(undefined),
      max_total_refs: options.maxTotalRefs ?? 1_000_000,
      chunk_size: this.chunkSize,
      binary_threshold: options.binaryThreshold ?? 4096,
      max_frame_bytes: options.maxFrameBytes ?? 2 ** 30,
      codecs: codecs.flatMap((codec) => (codec.python ? [codec.python] : [])),
      allow_modules: options.allowModules ? [...options.allowModules] : null,
      rlimits: options.rlimits
        ? { as_bytes: options.rlimits.addressSpaceBytes, cpu_seconds: options.rlimits.cpuSeconds }
        : null,
    };
    const env = workerEnv(process.env, options.env);
    const maxFrameBytes = options.maxFrameBytes ?? 2 ** 30;
    const onOutput = options.onOutput ?? writeOutput;
    this.pool = new WorkerPool(
      {
        size: options.size ?? 1,
        maxInFlight: options.maxInFlight ?? 256,
        maxQueue: options.maxQueue ?? 10_000,
        queueTimeoutMs: options.queueTimeoutMs ?? 30_000,
        cancelGraceMs: options.cancelGraceMs ?? 1_000,
      },
      {
        clock: this.clock,
        logger: this.logger,
        limitsOf: (sessionId) => this.limitsWire(sessionId),
        onSessionsLost: (ids, error) => this.sessionsLost(ids, error),
        spawn: (workerId) =>
          new PythonWorker({
            id: workerId,
            command: this.interpreter.command,
            args: ['-u', '-m', 'trestle_bridge'],
            env,
            cwd: options.cwd,
            configure,
            maxFrameBytes: options.maxFrameBytes ?? 2 ** 30,
            startupTimeoutMs: options.startupTimeoutMs ?? 15_000,
            frame: (message, blobs) => encodeFrame(message, blobs, maxFrameBytes),
            onOutput,
            onExit: (worker, error) => this.pool.workerExited(worker, error),
          }),
      },
    );
  }

  /** @internal Set by the proxy layer: the ref behind a proxy. */
  refOf: ((value: object) => Ref | undefined) | undefined;

  module(name: string, options?: CallOptions): PyObject {
    checkName('module', name);
    return this.proxies.module(name, options);
  }

  wrap(ref: Ref, options?: CallOptions): PyObject {
    return this.proxies.wrap(ref, options);
  }

  async ready(): Promise<void> {
    await this.pool.ready();
  }

  call<T = unknown>(
    module: string,
    fn: string,
    args?: readonly unknown[],
    kwargs?: Kwargs,
    options?: CallOptions,
  ): Promise<T> {
    try {
      checkName('module', module);
      checkName('fn', fn);
      const session = this.sessionFor(options, undefined);
      const blobs: BlobList = { parts: [], size: 0 };
      const message = {
        op: 'call',
        session: session.id,
        module,
        fn,
        args: this.encodeArgs(args, blobs),
        kwargs: this.encodeKwargs(kwargs, blobs),
      };
      return this.run<T>(session.id, message, blobs, options, `${module}.${fn}`);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  method<T = unknown>(
    ref: Ref,
    name: string,
    args?: readonly unknown[],
    kwargs?: Kwargs,
    options?: CallOptions,
  ): Promise<T> {
    try {
      checkName('name', name);
      const { session, wire } = this.useRef(ref, options);
      const blobs: BlobList = { parts: [], size: 0 };
      const message = {
        op: 'method',
        session: session.id,
        ref: wire,
        name,
        args: this.encodeArgs(args, blobs),
        kwargs: this.encodeKwargs(kwargs, blobs),
      };
      return this.run<T>(session.id, message, blobs, options, `${ref.typeName}.${name}`);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async attr<T = unknown>(target: Ref | string, name: string, options?: CallOptions): Promise<T> {
    checkName('name', name);
    if (typeof target === 'string') {
      checkName('module', target);
      const session = this.sessionFor(options, undefined);
      const message = { op: 'attr', session: session.id, module: target, name };
      return this.run<T>(session.id, message, undefined, options, `${target}.${name}`);
    }
    const { session, wire } = this.useRef(target, options);
    const message = { op: 'attr', session: session.id, ref: wire, name };
    return this.run<T>(session.id, message, undefined, options, `${target.typeName}.${name}`);
  }

  async setattr(ref: Ref, name: string, value: unknown, options?: CallOptions): Promise<void> {
    checkName('name', name);
    const { session, wire } = this.useRef(ref, options);
    const blobs: BlobList = { parts: [], size: 0 };
    const message = {
      op: 'setattr',
      session: session.id,
      ref: wire,
      name,
      value: this.encoder.value(value, blobs),
    };
    await this.run(session.id, message, blobs, options, `${ref.typeName}.${name} =`);
  }

  batch(items: readonly BatchItem[], options?: CallOptions): Promise<BatchResult[]> {
    return runBatch(this, items, options);
  }

  async release(refs: Ref | readonly Ref[]): Promise<void> {
    const list: readonly Ref[] = isRef(refs) ? [refs] : (refs as readonly Ref[]);
    await Promise.all(list.map((ref) => this.sessions.releaseRef(ref)));
  }

  async releaseSession(sessionId: string): Promise<void> {
    await this.sessions.releaseSession(sessionId);
  }

  stream<T = unknown>(
    target: Ref | string,
    fnOrOptions?: string | StreamOptions,
    args?: readonly unknown[],
    kwargs?: Kwargs,
    options?: StreamOptions,
  ): PyStream<T> {
    let source: StreamSource;
    let opts: StreamOptions | undefined;
    if (typeof target === 'string') {
      if (typeof fnOrOptions !== 'string') {
        throw adapterError(
          PythonAdapterErrorCode.InvalidArgument,
          'stream(module, fn, ...) needs a function name',
        );
      }
      checkName('module', target);
      checkName('fn', fnOrOptions);
      opts = options;
      const session = this.sessionFor(opts, undefined);
      const blobs: BlobList = { parts: [], size: 0 };
      source = {
        session: session.id,
        label: `${target}.${fnOrOptions}`,
        open: {
          op: 'call',
          session: session.id,
          module: target,
          fn: fnOrOptions,
          args: this.encodeArgs(args, blobs),
          kwargs: this.encodeKwargs(kwargs, blobs),
          stream: true,
        },
        blobs,
      };
    } else {
      opts = typeof fnOrOptions === 'object' ? fnOrOptions : undefined;
      const { session, wire } = this.useRef(target, opts);
      source = {
        session: session.id,
        label: `iter(${target.typeName})`,
        open: { op: 'iter', session: session.id, ref: wire },
        blobs: undefined,
      };
    }
    return openStream<T>(this, source, opts);
  }

  withSession<T>(optionsOrFn: WithSessionOptions | (() => T), fn?: () => T): T {
    if (typeof optionsOrFn === 'function') return this.context.withSession(optionsOrFn);
    return this.context.withSession(optionsOrFn, fn as () => T);
  }

  async doctor(modules: readonly string[] = DEFAULT_DOCTOR_MODULES): Promise<DoctorReport> {
    const interpreter = { command: this.interpreter.command, source: this.interpreter.source };
    try {
      await this.ready();
      const reply = await this.pool.submit(undefined, { op: 'doctor', modules: [...modules] }, undefined, {
        label: 'doctor',
        timeoutMs: 30_000,
      });
      const result = reply.result as {
        python: string;
        executable: string;
        implementation: string;
        prefix: string;
        modules: Record<string, true | string>;
      };
      return {
        ok: Object.values(result.modules).every((value) => value === true),
        interpreter,
        executable: result.executable,
        version: result.python,
        implementation: result.implementation,
        prefix: result.prefix,
        modules: result.modules,
      };
    } catch (error) {
      return {
        ok: false,
        interpreter,
        modules: {},
        error: error instanceof Error ? error.message : String(error),
      };
    }
  }

  stats(): PythonStats {
    const manager = this.sessions.stats();
    return {
      workers: this.pool.stats(),
      sessions: manager.sessions,
      refs: manager.refs,
      calls: this.calls,
      errors: this.errors,
      finalized: this.finalized,
    };
  }

  async pythonStats(sessionId?: string): Promise<WorkerPythonStats[]> {
    const ids =
      sessionId === undefined
        ? this.pool.workerIds()
        : [this.pool.workerOf(sessionId)].filter((id) => id !== undefined);
    return Promise.all(
      ids.map(async (worker) => {
        const reply = await this.pool.submit(
          undefined,
          sessionId === undefined ? { op: 'stats' } : { op: 'stats', session: sessionId },
          undefined,
          { label: 'stats', worker, timeoutMs: 10_000 },
        );
        return { worker, ...(reply.result as Omit<WorkerPythonStats, 'worker'>) };
      }),
    );
  }

  close(graceMs = 5_000): Promise<void> {
    this.closing = true;
    this.closed ??= (async () => {
      this.pool.stopAccepting();
      if (this.ownsManager) await this.sessions.dispose();
      else if (this.defaultSession && !this.defaultSession.released) await this.defaultSession.release();
      await this.sessions.flush().catch(() => undefined);
      await this.pool.close(graceMs);
    })();
    return this.closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal Sends a request and decodes its reply in `sessionId`. */
  run<T>(
    sessionId: string | undefined,
    message: Record<string, unknown>,
    blobs: BlobList | undefined,
    options: CallOptions | undefined,
    label: string,
  ): Promise<T> {
    this.calls++;
    return this.pool
      .submit(sessionId, message, blobs && blobs.size > 0 ? blobs : undefined, {
        label,
        timeoutMs: options?.timeoutMs ?? this.defaultTimeoutMs,
        signal: options?.signal,
      })
      .then(
        (reply) => this.decode(sessionId, reply.result, reply.blob) as T,
        (error: unknown) => {
          this.errors++;
          throw this.translate(error, label);
        },
      );
  }

  /** @internal */
  decode(sessionId: string | undefined, wire: unknown, blob: Uint8Array | undefined): unknown {
    if (typeof wire !== 'object' || wire === null) return wire;
    this.decodingSession = sessionId ?? '';
    return this.decoder.value(wire, blob);
  }

  /** @internal */
  translate(error: unknown, label: string): Error {
    if (error instanceof Error) return error;
    if (typeof error === 'object' && error !== null && 'kind' in error)
      return hostError(error as WireError, label);
    return adapterError(PythonAdapterErrorCode.Protocol, `unexpected failure of ${label}: ${String(error)}`);
  }

  /** @internal The session a call runs in (see `CallOptions.session`). */
  sessionFor(options: CallOptions | undefined, ref: Ref | undefined): SessionHandle {
    if (this.closing) throw adapterError(PythonAdapterErrorCode.Closed, 'the adapter is closed');
    const explicit = options?.session;
    if (typeof explicit === 'string') {
      return this.sessions.session(explicit) ?? this.sessions.registerSession(explicit);
    }
    if (explicit !== undefined) return live(explicit);
    const current = this.context.current();
    if (current !== undefined) return live(current);
    if (ref !== undefined) {
      const own = this.sessions.session(ref.sessionId);
      if (own !== undefined) return own;
    }
    if (this.defaultSession === undefined || this.defaultSession.released) {
      this.defaultSession = this.sessions.open();
    }
    return this.defaultSession;
  }

  /** @internal Resolves the session of a call on `ref` and checks the ref in it. */
  useRef(ref: Ref, options: CallOptions | undefined): { session: SessionHandle; wire: RefWire } {
    const actual = asRef(ref, this.refOf);
    const explicit = options?.session;
    const expected =
      typeof explicit === 'string'
        ? explicit
        : (explicit?.id ?? this.context.current()?.id ?? actual.sessionId);
    if (actual.sessionId !== expected) throw new SessionMismatchError(actual.id, actual.sessionId, expected);
    // Checked in the ref's own session first, so a released session reports why its refs are gone.
    this.sessions.getRef(actual.sessionId, actual);
    const session = this.sessionFor(options, actual);
    let wire = wireOf.get(actual);
    if (wire === undefined) {
      wire = encodeRef(actual);
      wireOf.set(actual, wire);
    }
    return { session, wire };
  }

  private adoptRef(wire: RefWire & { stream?: boolean }): Ref {
    const ref = decodeRef(wire);
    const session = this.sessions.session(ref.sessionId);
    if (session === undefined) {
      // The session ended while the call ran: free the object in Python, report the session as gone.
      void this.pool
        .submit(ref.sessionId, { op: 'release', session: ref.sessionId, ids: [ref.id] }, undefined, {
          label: 'release',
        })
        .catch(() => undefined);
      throw new SessionNotFoundError(ref.sessionId, 'it was released while the call ran');
    }
    if (this.decodingSession && ref.sessionId !== this.decodingSession) {
      throw new SessionMismatchError(ref.id, ref.sessionId, this.decodingSession);
    }
    return session.registerRef(ref);
  }

  /** @internal */
  encodeArgs(args: readonly unknown[] | undefined, blobs: BlobList, path = 'args'): unknown[] {
    if (args === undefined) return [];
    if (!Array.isArray(args)) {
      throw adapterError(PythonAdapterErrorCode.InvalidArgument, 'args must be an array');
    }
    return this.encoder.value(args, blobs, path) as unknown[];
  }

  /** @internal */
  encodeKwargs(kwargs: Kwargs | undefined, blobs: BlobList, path = 'kwargs'): unknown {
    if (kwargs === undefined) return undefined;
    if (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs)) {
      throw adapterError(PythonAdapterErrorCode.InvalidArgument, 'kwargs must be a plain object');
    }
    return this.encoder.value(kwargs, blobs, path);
  }

  private limitsWire(sessionId: string | undefined): { max_refs: number; ttl_ms: number } {
    const info = sessionId === undefined ? undefined : this.sessions.session(sessionId)?.info();
    const limits = info?.limits ?? {
      maxRefs: this.options.defaults?.maxRefs ?? 10_000,
      ttlMs: this.options.defaults?.ttlMs ?? 3_600_000,
    };
    return {
      max_refs: Number.isFinite(limits.maxRefs) ? limits.maxRefs : 0,
      ttl_ms: Number.isFinite(limits.ttlMs) ? limits.ttlMs : 0,
    };
  }

  private sessionsLost(sessionIds: readonly string[], error: WorkerCrashedError): void {
    for (const sessionId of sessionIds) {
      this.pool.forget(sessionId);
      if (this.sessions.sessionExists(sessionId)) {
        void this.sessions.releaseSession(sessionId, 'worker_restarted');
      }
    }
    this.logger.warn('sessions lost their python objects (worker_restarted)', {
      sessions: sessionIds.length,
      reason: error.message,
    });
  }
}

/** A ref, a proxy's ref, or a ref parsed from its wire form or fields (validated). @throws InvalidRefError */
function asRef(value: unknown, refOf: ((value: object) => Ref | undefined) | undefined): Ref {
  if (isRef(value)) return value;
  if ((typeof value === 'object' || typeof value === 'function') && value !== null) {
    const proxied = refOf?.(value);
    if (proxied !== undefined) return proxied;
    if (isRefWire(value)) return decodeRef(value);
    return createRef(value as RefInit);
  }
  throw new InvalidRefError('not_an_object', `expected a ref, got ${value === null ? 'null' : typeof value}`);
}

function live(handle: SessionHandle): SessionHandle {
  if (handle.released) {
    throw new SessionNotFoundError(handle.id, 'it was released (its scope ended, or its worker restarted)');
  }
  return handle;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

const checkedNames = new Set<string>();
/** Refs are frozen: their wire form is computed once. */
const wireOf = new WeakMap<Ref, RefWire>();

/** @internal @throws PythonAdapterError `PY_INVALID_ARGUMENT` for anything but a dotted Python name. */
export function checkName(what: string, value: unknown): void {
  if (typeof value === 'string' && checkedNames.has(value)) return;
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw adapterError(
      PythonAdapterErrorCode.InvalidArgument,
      `${what} must be a dotted Python name, got ${JSON.stringify(value) ?? String(value)}`,
    );
  }
  if (checkedNames.size < 10_000) checkedNames.add(value);
}

function validateOptions(options: PythonOptions): void {
  const positive = (name: string, value: number | undefined, allowZero = false) => {
    if (value === undefined) return;
    if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (!allowZero && value === 0)) {
      throw adapterError(
        PythonAdapterErrorCode.InvalidArgument,
        `option ${name} must be a positive number, got ${value}`,
      );
    }
  };
  if (
    options.size !== undefined &&
    (!Number.isInteger(options.size) || options.size < 1 || options.size > 256)
  ) {
    throw adapterError(
      PythonAdapterErrorCode.InvalidArgument,
      `option size must be an integer in 1..256, got ${options.size}`,
    );
  }
  positive('maxInFlight', options.maxInFlight);
  positive('maxQueue', options.maxQueue, true);
  positive('queueTimeoutMs', options.queueTimeoutMs, true);
  positive('timeoutMs', options.timeoutMs);
  positive('cancelGraceMs', options.cancelGraceMs, true);
  positive('startupTimeoutMs', options.startupTimeoutMs);
  positive('chunkSize', options.chunkSize);
  positive('maxFrameBytes', options.maxFrameBytes);
}

/**
 * Creates the adapter. Workers start on the first call (or `ready()`).
 * @example
 * ```ts
 * const py = createPython();
 * console.log(await py.call('math', 'sqrt', [16])); // 4
 * const pattern = await py.call('re', 'compile', ['\\d+']); // a Ref: the object stays in Python
 * console.log(await py.attr(pattern, 'pattern')); // '\\d+'
 * await py.close();
 * ```
 * @throws PythonAdapterError `PY_INVALID_ARGUMENT` for bad options, `PY_SPAWN_FAILED` for a venv without an interpreter.
 */
export function createPython(options?: PythonOptions): PythonBridge {
  return new PythonBridge(options);
}

export { PythonAdapterError };
