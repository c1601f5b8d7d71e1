/**
 * Runs method handlers for `createKernelServer`: looks the method up, turns what the handler returns
 * or throws into a reply body, and bounds asynchronous handlers by `handlerTimeoutMs` with one timer
 * for all of them. Internal.
 */
import { KernelMethodError } from './server-method-error';
import type { KernelParams, KernelRequest } from './types';
import { isPlainObject } from './wire-json';

/** What a method handler is given besides the params. */
export interface KernelMethodContext {
  /** The method called (as it arrived: uppercased by the line codec). */
  readonly method: string;
  /**
   * Aborts when the handler runs past `handlerTimeoutMs`, when the caller's connection closes or
   * ends (a client that gave up: on a Unix socket a half-close looks the same, and its reply is still
   * sent), and when the server closes past its grace period. Created on first access.
   */
  readonly signal: AbortSignal;
}

/**
 * A method handler. What it returns (or resolves to) is the reply: a plain object as is, any other
 * value as `{ result: value }`. Throw a `KernelMethodError` for an error reply with your own code.
 */
export type KernelMethodHandler = (params: KernelParams, context: KernelMethodContext) => unknown;

/** The methods a server answers, by name (exact match; no inherited properties). */
export type KernelMethods = Readonly<Record<string, KernelMethodHandler>>;

/** Where an error reported to `onError` came from. */
export interface KernelServerErrorContext {
  /** `handler`: a handler threw something other than a `KernelMethodError`; `reply`: a reply could not be encoded. */
  readonly phase: 'handler' | 'reply';
  readonly method: string;
}

/** The error reply codes the server itself produces. */
export const KernelServerErrorCode = {
  /** No handler for the method. */
  UnknownMethod: 'UNKNOWN_METHOD',
  /** A handler threw something other than a `KernelMethodError`, or its reply could not be encoded. */
  Internal: 'INTERNAL',
  /** A handler ran past `handlerTimeoutMs`. */
  HandlerTimeout: 'HANDLER_TIMEOUT',
  /** The request frame or body could not be decoded (the connection is then closed). */
  BadRequest: 'BAD_REQUEST',
  /** The request frame or body is larger than `maxRequestBytes` (the connection is then closed). */
  RequestTooLarge: 'REQUEST_TOO_LARGE',
  /** HTTP only: no such path. */
  NotFound: 'NOT_FOUND',
} as const;
export type KernelServerErrorCode = (typeof KernelServerErrorCode)[keyof typeof KernelServerErrorCode];

/** A reply body. */
export type ReplyBody = Record<string, unknown>;

/** Where a call's reply goes (a stream connection or an HTTP response). */
export interface ReplyTarget {
  reply(call: Call, body: ReplyBody): void;
  /** The handler looked at its signal: abort it if the caller goes away. */
  watch(call: Call): void;
  unwatch(call: Call): void;
}

/** One handler execution; it is the handler's `context`. */
export class Call implements KernelMethodContext {
  readonly method: string;
  /** The request's id (persistent `id` matching), echoed in the reply. */
  readonly id: number | undefined;
  readonly target: ReplyTarget;
  deadline = 0;
  settled = false;
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;

  constructor(method: string, id: number | undefined, target: ReplyTarget) {
    this.method = method;
    this.id = id;
    this.target = target;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
      else if (!this.settled) this.target.watch(this);
    }
    return this.#controller.signal;
  }

  /** Whether the handler asked for its signal (so the target watches it). */
  get watched(): boolean {
    return this.#controller !== undefined;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/** Runs handlers and tracks the asynchronous ones until they settle or time out. */
export class Dispatcher {
  readonly #methods: Map<string, KernelMethodHandler>;
  readonly #timeoutMs: number;
  readonly #onError: ((error: unknown, context: KernelServerErrorContext) => void) | undefined;
  /** Asynchronous calls not settled, oldest first (their deadlines are in order). */
  readonly #pending = new Set<Call>();
  #running = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Replies produced (handler results, error replies, timeouts). */
  served = 0;

  constructor(
    methods: KernelMethods,
    timeoutMs: number,
    onError: ((error: unknown, context: KernelServerErrorContext) => void) | undefined,
  ) {
    this.#methods = new Map(Object.entries(methods));
    this.#timeoutMs = timeoutMs;
    this.#onError = onError;
  }

  /** Handler executions in progress. */
  get inflight(): number {
    return this.#pending.size + this.#running;
  }

  /** Runs `request`'s handler; the reply body goes to `target.reply` exactly once. */
  run(request: KernelRequest, target: ReplyTarget): void {
    const call = new Call(request.method, request.id, target);
    const handler = this.#methods.get(request.method);
    if (handler === undefined) {
      this.finish(call, {
        error: true,
        code: KernelServerErrorCode.UnknownMethod,
        message: `unknown method ${JSON.stringify(request.method)}`,
      });
      return;
    }
    let result: unknown;
    this.#running++;
    try {
      result = handler(request.params, call);
    } catch (error) {
      this.#running--;
      this.finish(call, this.#errorBody(error, call));
      return;
    }
    this.#running--;
    if (!isThenable(result)) {
      this.finish(call, bodyOf(result));
      return;
    }
    call.deadline = performance.now() + this.#timeoutMs;
    this.#pending.add(call);
    if (this.#timer === undefined) this.#arm(this.#timeoutMs);
    Promise.resolve(result).then(
      (value) => this.finish(call, bodyOf(value)),
      (error: unknown) => this.finish(call, this.#errorBody(error, call)),
    );
  }

  /** Settles `call` with `body` (once; later settlements are ignored). */
  finish(call: Call, body: ReplyBody): void {
    if (call.settled) return;
    call.settled = true;
    this.#pending.delete(call);
    if (call.watched) call.target.unwatch(call);
    this.served++;
    call.target.reply(call, body);
  }

  /** Reports a reply that could not be encoded, and gives the body to send instead. */
  replyFailed(call: Call, error: unknown): ReplyBody {
    this.#report(error, { phase: 'reply', method: call.method });
    return {
      error: true,
      code: KernelServerErrorCode.Internal,
      message: `reply of ${call.method} could not be encoded: ${messageOf(error)}`,
    };
  }

  /** Aborts every pending handler's signal (their replies still go out if they settle). */
  abortAll(reason: unknown): void {
    for (const call of this.#pending) call.abort(reason);
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Times out the calls past their deadline; re-arms for the oldest one left. */
  expire(): void {
    this.#timer = undefined;
    const now = performance.now();
    for (const call of this.#pending) {
      if (call.deadline > now) {
        this.#arm(call.deadline - now);
        return;
      }
      const message = `${call.method} did not finish within ${this.#timeoutMs} ms`;
      call.abort(new KernelMethodError(KernelServerErrorCode.HandlerTimeout, message));
      this.finish(call, { error: true, code: KernelServerErrorCode.HandlerTimeout, message });
    }
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(expireCalls, Math.max(1, Math.ceil(ms)), this);
    this.#timer.unref();
  }

  #errorBody(error: unknown, call: Call): ReplyBody {
    if (KernelMethodError.isInstance(error))
      return { error: true, code: String(error.code), message: String(error.message) };
    this.#report(error, { phase: 'handler', method: call.method });
    return { error: true, code: KernelServerErrorCode.Internal, message: messageOf(error) };
  }

  #report(error: unknown, context: KernelServerErrorContext): void {
    try {
      this.#onError?.(error, context);
    } catch {
      // A failing error hook must not take the server down.
    }
  }
}

function expireCalls(dispatcher: Dispatcher): void {
  dispatcher.expire();
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** A handler's value as a reply body: a plain object as is, anything else as `{ result }`. */
function bodyOf(value: unknown): ReplyBody {
  if (isPlainObject(value)) return value;
  return { result: value === undefined ? null : value };
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { message?: unknown }).message === 'string'
  )
    return (error as { message: string }).message;
  return String(error);
}
