import { setMaxListeners } from 'node:events';
import { homedir } from 'node:os';
import { retryDelay } from './backoff';
import { CallControl, honoursStop } from './call-control';
import { lengthPrefixedJson } from './codec-length';
import { lineCodec } from './codec-line';
import {
  type KernelClientOptions,
  type KernelConfig,
  type KernelEnvOptions,
  kernelConfigBounds,
  kernelConfigFromEnv,
  resolveKernelConfig,
} from './config';
import { DeadlineList } from './deadline-list';
import { parseEndpoint, redactEndpoint } from './endpoint';
import { KernelError, KernelTransportError, KernelUnavailableError } from './errors';
import { httpTransport } from './http-transport';
import { nullTransport } from './null-transport';
import { checkParams, describeValue, isPlainObject, methodNamePattern } from './request';
import { Semaphore } from './semaphore';
import { kernelTelemetryChannel, publishTelemetry } from './telemetry';
import type {
  Clock,
  KernelParams,
  KernelRequest,
  KernelResult,
  KernelStatus,
  KernelTransport,
  TransportReply,
} from './types';
import { KernelResultCode } from './types';
import { unixTransport } from './unix-transport';

/** Options of one call. */
export interface CallOptions {
  /** Aborts the call: it resolves at once with `status: 'error'`, `errorCode: 'KERNEL_ABORTED'`. */
  readonly signal?: AbortSignal;
  /** This call's whole-call deadline, same bounds as the option (100..30000). @default the client's `timeoutMs` */
  readonly timeoutMs?: number;
  /**
   * Whether the method is safe to send twice, so retried after a connection failure.
   * @default whether `idempotentMethods` lists the method
   */
  readonly idempotent?: boolean;
}

/** Options of `isAvailable()`. */
export interface AvailabilityCheckOptions {
  readonly signal?: AbortSignal;
  /** @default the client's `timeoutMs` */
  readonly timeoutMs?: number;
}

/** Counters of a client. */
export interface KernelClientStats {
  /** Calls holding an in-flight slot (sending, or sleeping before a retry). */
  readonly inflight: number;
  /** Calls waiting for a slot. */
  readonly waiting: number;
  /** Finished calls by status. */
  readonly calls: Readonly<Record<KernelStatus, number>>;
  /** Retries made, over all calls. */
  readonly retries: number;
  readonly closed: boolean;
}

/** Options of {@link KernelClient.fromEnv}: where to read, and options that win over the environment. */
export type KernelClientEnvOptions = Omit<KernelEnvOptions, 'overrides'> & KernelClientOptions;

/** The default clock: `performance.now()` and the global timers. */
const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

type Outcome = Omit<KernelResult, 'success' | 'latencyMs'>;
type StopCause = 'timeout' | 'aborted' | 'closed';

const emptyCounts = (): Record<KernelStatus, number> => ({
  ok: 0,
  error: 0,
  timeout: 0,
  unavailable: 0,
  invalid_request: 0,
});

const failed = (
  status: Exclude<KernelStatus, 'ok'>,
  errorCode: string,
  reason: string,
  retryCount: number,
  payloadSize = 0,
): Outcome => ({ status, reason, payload: null, errorCode, payloadSize, retryCount });

const reasonOf = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).replace(/^\[kernel-client\] /, '');

/** The result of each transport failure kind (`aborted` without a cause of ours: the transport's own). */
const failureResults = {
  connect: ['unavailable', KernelResultCode.Unavailable],
  lost: ['error', KernelResultCode.ConnectionLost],
  bad_reply: ['error', KernelResultCode.BadReply],
  too_large: ['error', KernelResultCode.ResponseTooLarge],
  http_status: ['error', KernelResultCode.HttpStatus],
  aborted: ['error', KernelResultCode.Aborted],
  closed: ['unavailable', KernelResultCode.Closed],
} as const satisfies Record<KernelTransportError['kind'], readonly [Exclude<KernelStatus, 'ok'>, string]>;

/**
 * A client for a local daemon that cannot hang: every call resolves to a {@link KernelResult} within its
 * whole-call deadline (`timeoutMs`: waiting for a slot, connecting, every attempt, backoff and read),
 * at most `maxInflight` calls are on the wire at once, and only connection failures (`connect`, `lost`)
 * of idempotent methods are retried, flat, with exponential backoff and jitter, never past the deadline.
 * A daemon's error reply is never retried. One telemetry event per call goes to the
 * `trestle:kernel-client:call` diagnostics channel and `onTelemetry`.
 *
 * Disabled by default: until `enabled: true`, calls go to the null transport (an echo with `mock: true`).
 * @example
 * ```ts
 * const kernel = await KernelClient.connect({ enabled: true, endpoint: 'unix:///run/user/1000/kernel.sock' });
 * const result = await kernel.applyPolicy({ maxCpu: 2 });
 * if (!result.success) console.warn(result.errorCode, result.reason);
 * await kernel.close();
 * ```
 */
export class KernelClient {
  /** The validated options, defaults applied. */
  readonly config: KernelConfig;
  /** The transport calls go through (the null transport while disabled). */
  readonly transport: KernelTransport;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #slots: Semaphore;
  readonly #idempotent: ReadonlySet<string>;
  readonly #closing = new AbortController();
  /** The calls in progress: `close()` stops them. */
  readonly #active = new Set<CallControl>();
  /** The whole-call deadlines, on one timer. */
  readonly #deadlines: DeadlineList;
  readonly #endpoint: string;
  /** The transport is a built-in one, known to reject a send at once when its call is stopped. */
  readonly #honoursStop: boolean;
  #closed: Promise<void> | undefined;
  readonly #counts = emptyCounts();
  #retries = 0;

  /**
   * Validates `options` and builds the transport (`transport`, else one for `endpoint`: a Unix socket
   * with `codec` and `mode`, or loopback HTTP). Opens no connection.
   * @throws KernelConfigError naming the option at fault.
   */
  constructor(options: KernelClientOptions = {}) {
    this.config = resolveKernelConfig(options);
    const config = this.config;
    this.#clock = config.clock ?? systemClock;
    this.#random = config.random ?? Math.random;
    this.#deadlines = new DeadlineList(this.#clock);
    this.#slots = new Semaphore(config.maxInflight);
    this.#idempotent = new Set(config.idempotentMethods);
    this.transport = !config.enabled ? nullTransport() : (config.transport ?? transportFor(config));
    this.#endpoint = redactEndpoint(this.transport.endpoint);
    this.#honoursStop = honoursStop in this.transport;
    // One listener per pending call: no warning however many are pending.
    setMaxListeners(0, this.#closing.signal);
  }

  /**
   * A client configured from environment variables (see `kernelConfigFromEnv`), with options that win.
   * @throws KernelConfigError naming the variable (or the option) at fault.
   * @example
   * ```ts
   * const kernel = KernelClient.fromEnv({ prefix: 'HEIDI_KERNEL_', onTelemetry: log });
   * ```
   */
  static fromEnv(options: KernelClientEnvOptions = {}): KernelClient {
    const { env, prefix, ...overrides } = options;
    return new KernelClient(kernelConfigFromEnv({ env, prefix, overrides }));
  }

  /**
   * Constructs a client and, when `required`, checks the daemon answers (`isAvailable()`).
   * @throws KernelConfigError for invalid options.
   * @throws KernelUnavailableError when `required` and the daemon cannot be reached (the client is closed).
   */
  static async connect(options: KernelClientOptions = {}): Promise<KernelClient> {
    const client = new KernelClient(options);
    if (client.config.required && !(await client.isAvailable())) {
      await client.close();
      throw new KernelUnavailableError(
        `the daemon at ${redactEndpoint(client.transport.endpoint)} is unavailable and the client is required`,
      );
    }
    return client;
  }

  /**
   * `PING {}`.
   * @throws KernelUnavailableError only when `required` and the daemon is unavailable.
   */
  ping(options?: CallOptions): Promise<KernelResult> {
    return this.call('PING', {}, options);
  }

  /**
   * `STATUS {}`.
   * @throws KernelUnavailableError only when `required` and the daemon is unavailable.
   */
  getStatus(options?: CallOptions): Promise<KernelResult> {
    return this.call('STATUS', {}, options);
  }

  /**
   * `APPLY_POLICY { policy }`. Not idempotent unless `idempotent: true` (never retried by default).
   * @throws KernelUnavailableError only when `required` and the daemon is unavailable.
   */
  applyPolicy(policy: KernelParams, options?: CallOptions): Promise<KernelResult> {
    return this.call('APPLY_POLICY', { policy }, options);
  }

  /**
   * Calls `method` with `params` (a plain JSON object). Resolves, never rejects, for every daemon or
   * wire trouble: see {@link KernelResult} and {@link KernelResultCode}.
   * @throws KernelUnavailableError (rejects) only when `required` and the result is `unavailable`
   *   (except `KERNEL_CLOSED` after `close()`); `error.result` is the result.
   * @example
   * ```ts
   * const r = await kernel.call('VERSION', {}, { timeoutMs: 500 });
   * if (r.status === 'timeout') ...
   * ```
   */
  async call<T extends Record<string, unknown> = Record<string, unknown>>(
    method: string,
    params: KernelParams = {},
    options: CallOptions = {},
  ): Promise<KernelResult<T>> {
    const start = this.#clock.now();
    let outcome: Outcome;
    try {
      outcome = await this.#run(method, params, options, start);
    } catch (error) {
      // A bug or a misbehaving plugin (clock, random): still a result, never a rejection.
      outcome = failed('error', KernelResultCode.ConnectionLost, `internal failure: ${reasonOf(error)}`, 0);
    }
    const result: KernelResult<T> = {
      status: outcome.status,
      success: outcome.status === 'ok',
      reason: outcome.reason,
      latencyMs: Math.max(0, this.#clock.now() - start),
      payloadSize: outcome.payloadSize,
      payload: outcome.payload as T | null,
      errorCode: outcome.errorCode,
      retryCount: outcome.retryCount,
    };
    this.#counts[result.status]++;
    if (kernelTelemetryChannel.hasSubscribers || this.config.onTelemetry !== undefined)
      publishTelemetry(
        {
          op: 'kernel_client.call',
          method: typeof method === 'string' && methodNamePattern.test(method) ? method : '<invalid>',
          endpoint: this.#endpoint,
          transport: this.transport.name,
          latencyMs: result.latencyMs,
          success: result.success,
          status: result.status,
          retryCount: result.retryCount,
          payloadSize: result.payloadSize,
          errorCode: result.errorCode,
          reason: result.reason === null ? null : hideHome(result.reason),
        },
        this.config.onTelemetry,
      );
    if (
      this.config.required &&
      result.status === 'unavailable' &&
      result.errorCode !== KernelResultCode.Closed
    )
      throw new KernelUnavailableError(`${method}: ${result.reason ?? 'unavailable'}`, result);
    return result;
  }

  /**
   * Whether the daemon answers now (a connect, or `GET /health` for HTTP), within `timeoutMs`.
   * Never rejects; `false` after `close()`.
   */
  async isAvailable(options: AvailabilityCheckOptions = {}): Promise<boolean> {
    if (this.#closed !== undefined || options.signal?.aborted) return false;
    const timeoutMs = options.timeoutMs ?? this.config.timeoutMs;
    if (!validTimeout(timeoutMs)) return false;
    const deadline = this.#deadline(timeoutMs, options.signal);
    try {
      const answer = Promise.resolve()
        .then(() => this.transport.isAvailable({ signal: deadline.signal }))
        .then(
          (value) => value === true,
          () => false,
        );
      return await Promise.race([answer, deadline.stopped.then(() => false)]);
    } catch {
      return false;
    } finally {
      deadline.dispose();
    }
  }

  /**
   * Closes the client: pending calls resolve at once with `unavailable`/`KERNEL_CLOSED`, later calls
   * resolve the same, and the transport is closed. Idempotent (returns the same promise).
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing.abort();
      for (const control of this.#active) control.stop('closed');
      this.#deadlines.dispose();
      try {
        await this.transport.close();
      } catch {
        // A transport that fails to close is closed as far as the client is concerned.
      }
    })();
    return this.#closed;
  }

  /** `await using kernel = new KernelClient(...)` closes it. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** In-flight and waiting calls, finished calls by status, retries. */
  stats(): KernelClientStats {
    return {
      inflight: this.#slots.held,
      waiting: this.#slots.waiting,
      calls: { ...this.#counts },
      retries: this.#retries,
      closed: this.#closed !== undefined,
    };
  }

  /** A deadline `timeoutMs` from now, linked to the caller's signal and to `close()`. */
  #deadline(timeoutMs: number, callerSignal: AbortSignal | undefined, start = this.#clock.now()) {
    const controller = new AbortController();
    let cause: StopCause | undefined;
    const stop = (why: StopCause) => {
      if (cause !== undefined) return;
      cause = why;
      controller.abort(new KernelTransportError('aborted', `the call was stopped (${why})`));
    };
    const stopped = new Promise<StopCause>((resolve) =>
      controller.signal.addEventListener('abort', () => resolve(cause ?? 'aborted'), { once: true }),
    );
    const onCaller = () => stop('aborted');
    const onClose = () => stop('closed');
    const timer = this.#clock.setTimeout(
      () => stop('timeout'),
      Math.max(0, start + timeoutMs - this.#clock.now()),
    );
    callerSignal?.addEventListener('abort', onCaller, { once: true });
    this.#closing.signal.addEventListener('abort', onClose, { once: true });
    if (callerSignal?.aborted) stop('aborted');
    if (this.#closing.signal.aborted) stop('closed');
    return {
      signal: controller.signal,
      stopped,
      at: start + timeoutMs,
      cause: () => cause,
      dispose: () => {
        this.#clock.clearTimeout(timer);
        callerSignal?.removeEventListener('abort', onCaller);
        this.#closing.signal.removeEventListener('abort', onClose);
      },
    };
  }

  async #run(method: string, params: KernelParams, options: CallOptions, start: number): Promise<Outcome> {
    if (this.#closed !== undefined)
      return failed('unavailable', KernelResultCode.Closed, 'the client is closed', 0);
    if (typeof method !== 'string' || !methodNamePattern.test(method))
      return failed(
        'invalid_request',
        KernelResultCode.InvalidRequest,
        `method must match ${methodNamePattern} (got ${typeof method === 'string' ? JSON.stringify(method.slice(0, 140)) : describeValue(method)})`,
        0,
      );
    const paramsProblem = checkParams(params);
    if (paramsProblem !== undefined)
      return failed('invalid_request', KernelResultCode.InvalidRequest, paramsProblem, 0);
    const timeoutMs = options.timeoutMs ?? this.config.timeoutMs;
    if (timeoutMs !== this.config.timeoutMs && !validTimeout(timeoutMs)) {
      const { min, max } = kernelConfigBounds.timeoutMs;
      return failed(
        'invalid_request',
        KernelResultCode.InvalidRequest,
        `timeoutMs must be an integer between ${min} and ${max} (got ${String(timeoutMs)})`,
        0,
      );
    }
    const callerSignal = options.signal;
    if (callerSignal?.aborted)
      return failed('error', KernelResultCode.Aborted, 'the call was aborted before it started', 0);
    let paramsJson: string;
    try {
      paramsJson = JSON.stringify(params);
    } catch (error) {
      return failed(
        'invalid_request',
        KernelResultCode.InvalidRequest,
        `params cannot be serialised: ${reasonOf(error)}`,
        0,
      );
    }
    const timestamp = Date.now() / 1000;
    // Exactly the length of `{"method":M,"params":P,"timestamp":T}` (the method is ASCII).
    const bytes = 38 + method.length + Buffer.byteLength(paramsJson) + JSON.stringify(timestamp).length;
    if (bytes > this.config.maxRequestBytes)
      return failed(
        'invalid_request',
        KernelResultCode.RequestTooLarge,
        `the request is ${bytes} bytes, more than maxRequestBytes (${this.config.maxRequestBytes})`,
        0,
      );
    const request: KernelRequest = { method, params, timestamp, paramsJson };
    const idempotent = options.idempotent ?? this.#idempotent.has(method);

    // One deadline for the whole call, the caller's signal and close(): all stop `control`.
    const control = new CallControl(this.config.maxResponseBytes);
    const deadlineAt = start + timeoutMs;
    // Deadlines that fall due in call order share one timer; another one (a shorter per-call
    // timeoutMs) gets its own.
    let timer: unknown;
    const listed = deadlineAt >= this.#deadlines.lastAt;
    if (listed) {
      control.at = deadlineAt;
      this.#deadlines.add(control);
    } else
      timer = this.#clock.setTimeout(
        () => control.stop('timeout'),
        Math.max(0, deadlineAt - this.#clock.now()),
      );
    const onCaller = callerSignal === undefined ? undefined : () => control.stop('aborted');
    if (onCaller !== undefined) callerSignal?.addEventListener('abort', onCaller, { once: true });
    this.#active.add(control);
    try {
      let release = this.#slots.tryAcquire();
      if (release === undefined) {
        try {
          release = await this.#slots.acquire(control.signal);
        } catch {
          return stoppedOutcome(control, timeoutMs, 0);
        }
      }
      try {
        for (let attempt = 0; ; attempt++) {
          let sent: TransportReply | Failure | typeof STOPPED;
          if (this.#honoursStop) {
            // The built-in transports reject at once when the call is stopped: no race needed.
            try {
              sent = await this.transport.send(request, control);
            } catch (error) {
              sent = control.aborted ? STOPPED : new Failure(error);
            }
          } else sent = await this.#race(request, control);
          if (sent === STOPPED) return stoppedOutcome(control, timeoutMs, attempt);
          if (!(sent instanceof Failure)) return replyOutcome(sent, attempt);
          const error = sent.error;
          if (control.aborted) return stoppedOutcome(control, timeoutMs, attempt);
          const kind = transportKind(error);
          if ((kind === 'connect' || kind === 'lost') && idempotent && attempt < this.config.retryAttempts) {
            const delay = retryDelay(attempt, {
              baseMs: this.config.retryDelayMs,
              maxMs: this.config.maxRetryDelayMs,
              random: this.#random,
            });
            if (this.#clock.now() + delay < deadlineAt) {
              if (!(await this.#sleep(delay, control))) return stoppedOutcome(control, timeoutMs, attempt);
              this.#retries++;
              continue;
            }
          }
          return failureOutcome(error, attempt);
        }
      } finally {
        release();
      }
    } finally {
      if (listed) this.#deadlines.remove(control);
      else this.#clock.clearTimeout(timer);
      if (onCaller !== undefined) callerSignal?.removeEventListener('abort', onCaller);
      this.#active.delete(control);
    }
  }

  /**
   * One transport attempt, raced against the call's stop: the stop wins even against a transport that
   * ignores it. Resolves with the reply, a {@link Failure}, or {@link STOPPED}.
   */
  #race(request: KernelRequest, control: CallControl): Promise<TransportReply | Failure | typeof STOPPED> {
    if (control.aborted) return Promise.resolve(STOPPED);
    return new Promise((resolve) => {
      let done = false;
      const unwatch = control.onAbort(() => {
        if (done) return;
        done = true;
        resolve(STOPPED);
      });
      const settle = (value: TransportReply | Failure) => {
        if (done) return;
        done = true;
        unwatch();
        resolve(value);
      };
      let sent: Promise<TransportReply>;
      try {
        sent = this.transport.send(request, control);
      } catch (error) {
        settle(new Failure(error));
        return;
      }
      Promise.resolve(sent).then(settle, (error: unknown) => settle(new Failure(error)));
    });
  }

  /** Sleeps `ms` on the clock; `false` when the call was stopped first. */
  #sleep(ms: number, control: CallControl): Promise<boolean> {
    if (control.aborted) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const unwatch = control.onAbort(() => {
        this.#clock.clearTimeout(timer);
        resolve(false);
      });
      const timer = this.#clock.setTimeout(() => {
        unwatch();
        resolve(true);
      }, ms);
    });
  }
}

/** A transport attempt that failed (its error, thrown or rejected). */
class Failure {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
}

/** The attempt lost the race against the call's stop. */
const STOPPED = Symbol('stopped');

function stoppedOutcome(control: CallControl, timeoutMs: number, retryCount: number): Outcome {
  switch (control.cause) {
    case 'closed':
      return failed('unavailable', KernelResultCode.Closed, 'the client was closed', retryCount);
    case 'timeout':
      return failed('timeout', KernelResultCode.Timeout, `no reply within ${timeoutMs} ms`, retryCount);
    default:
      return failed('error', KernelResultCode.Aborted, 'the caller aborted the call', retryCount);
  }
}

function validTimeout(value: unknown): value is number {
  const { min, max } = kernelConfigBounds.timeoutMs;
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

function transportFor(config: KernelConfig): KernelTransport {
  // `resolveKernelConfig` guarantees an endpoint when enabled without a transport.
  const endpoint = parseEndpoint(config.endpoint ?? '', 'endpoint');
  if (endpoint.kind === 'http')
    return httpTransport({ url: endpoint.url.href, maxSockets: config.maxInflight });
  const codec =
    typeof config.codec !== 'string'
      ? config.codec
      : config.codec === 'lines'
        ? lineCodec()
        : lengthPrefixedJson();
  return unixTransport({ path: endpoint.path, codec, mode: config.mode });
}

function replyOutcome(reply: TransportReply, retryCount: number): Outcome {
  const { body, wireBytes } = reply;
  if (!isPlainObject(body))
    return failed(
      'error',
      KernelResultCode.BadReply,
      `the reply is not a JSON object (got ${describeValue(body)})`,
      retryCount,
      wireBytes,
    );
  if (body.error) {
    const { message, code } = body;
    return {
      status: 'error',
      reason: typeof message === 'string' && message !== '' ? message : 'daemon error',
      payload: body,
      errorCode:
        (typeof code === 'string' && code !== '') || (typeof code === 'number' && Number.isFinite(code))
          ? String(code)
          : KernelResultCode.DaemonError,
      payloadSize: wireBytes,
      retryCount,
    };
  }
  return { status: 'ok', reason: null, payload: body, errorCode: null, payloadSize: wireBytes, retryCount };
}

/** The `kind` of a `KernelTransportError` (also from a duplicate install), else `undefined`. */
function transportKind(error: unknown): KernelTransportError['kind'] | undefined {
  if (!KernelError.isInstance(error)) return undefined;
  const kind: unknown = (error as { kind?: unknown }).kind;
  return typeof kind === 'string' && Object.hasOwn(failureResults, kind)
    ? (kind as KernelTransportError['kind'])
    : undefined;
}

function failureOutcome(error: unknown, retryCount: number): Outcome {
  const kind = transportKind(error);
  if (kind === undefined)
    return failed(
      'error',
      KernelResultCode.ConnectionLost,
      `the transport failed: ${reasonOf(error)}`,
      retryCount,
    );
  const [status, code] = failureResults[kind];
  const wireBytes = (error as { wireBytes?: unknown }).wireBytes;
  return failed(status, code, reasonOf(error), retryCount, typeof wireBytes === 'number' ? wireBytes : 0);
}

let home: string | undefined;
/** Hides the home directory in a text published as telemetry. */
function hideHome(text: string): string {
  try {
    home ??= homedir();
  } catch {
    home = '';
  }
  return home.length > 1 ? text.split(home).join('~') : text;
}
