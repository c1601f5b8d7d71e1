/**
 * The contracts of `@trestle/kernel-client`: results, requests, codecs and transports.
 * Transports and codecs are plugin interfaces: the built-ins implement them like user code does.
 */

/** What became of a call. */
export type KernelStatus = 'ok' | 'error' | 'timeout' | 'unavailable' | 'invalid_request';

/**
 * The outcome of every call. Calls never reject for daemon or wire trouble; they resolve to a result
 * (the only rejection is `KernelUnavailableError` when the client is `required`).
 */
export interface KernelResult<T = Record<string, unknown>> {
  readonly status: KernelStatus;
  /** `status === 'ok'`. */
  readonly success: boolean;
  /** Why it failed, for people (the daemon's `message` for an error reply); `null` on success. */
  readonly reason: string | null;
  /** Whole-call time, from `call()` to the result, retries and waiting for a slot included. */
  readonly latencyMs: number;
  /** Size of the reply on the wire, framing included (0 when there was no reply). */
  readonly payloadSize: number;
  /**
   * The daemon's reply object (without the `id` of persistent mode): on `ok`, and on a daemon's error
   * reply (its `error`, `message`, `code` and any details); `null` otherwise.
   */
  readonly payload: T | null;
  /** The daemon's `code` for an error reply, or one of {@link KernelResultCode}; `null` on success. */
  readonly errorCode: string | null;
  /** Attempts after the first (0 when the first attempt decided). */
  readonly retryCount: number;
}

/** Stable codes this package puts in `KernelResult.errorCode` (a daemon's own codes pass through). */
export const KernelResultCode = {
  /** The whole-call deadline passed (`status: 'timeout'`). */
  Timeout: 'KERNEL_TIMEOUT',
  /** The daemon could not be reached, after any retries (`status: 'unavailable'`). */
  Unavailable: 'KERNEL_UNAVAILABLE',
  /** The connection closed or reset before the reply arrived (`status: 'error'`). */
  ConnectionLost: 'KERNEL_CONNECTION_LOST',
  /** The reply was not a valid frame: garbage, bad UTF-8/JSON, not an object, truncated (`status: 'error'`). */
  BadReply: 'KERNEL_BAD_REPLY',
  /** The reply announced or reached more than `maxResponseBytes` (`status: 'error'`). */
  ResponseTooLarge: 'KERNEL_RESPONSE_TOO_LARGE',
  /** The encoded request exceeds `maxRequestBytes` (`status: 'invalid_request'`). */
  RequestTooLarge: 'KERNEL_REQUEST_TOO_LARGE',
  /** Bad method name or params (not a plain JSON object) (`status: 'invalid_request'`). */
  InvalidRequest: 'KERNEL_INVALID_REQUEST',
  /** The caller's `signal` aborted the call (`status: 'error'`). */
  Aborted: 'KERNEL_ABORTED',
  /** The client was closed (`status: 'unavailable'`). */
  Closed: 'KERNEL_CLOSED',
  /** An error reply without a `code` (`status: 'error'`). */
  DaemonError: 'KERNEL_DAEMON_ERROR',
  /** The HTTP daemon answered with a status other than 200 (`status: 'error'`). */
  HttpStatus: 'KERNEL_HTTP_STATUS',
} as const;
export type KernelResultCode = (typeof KernelResultCode)[keyof typeof KernelResultCode];

/** Parameters of a call: a plain JSON object. */
export type KernelParams = Record<string, unknown>;

/** A request as it goes on the wire (seed framing: `{method, params, timestamp}`, plus `id` when multiplexed). */
export interface KernelRequest {
  readonly method: string;
  readonly params: KernelParams;
  /** Seconds since the epoch, as the seed sends it. */
  readonly timestamp: number;
  /** Present only on a persistent connection whose codec matches replies by id. */
  readonly id?: number;
  /**
   * `JSON.stringify(params)`, when the sender has it already (the client does, to check the size): a
   * codec may use it instead of serialising `params` again. It must be exactly that string.
   */
  readonly paramsJson?: string;
}

/** A decoded reply frame. `body` is whatever JSON value arrived; the client checks it is an object. */
export interface KernelReplyFrame {
  /** The `id` the reply carried (persistent mode with id matching). */
  readonly id?: number;
  readonly body: unknown;
  /** Bytes of this frame on the wire, framing included. */
  readonly wireBytes: number;
}

/** A decoded request frame (server side). */
export interface KernelRequestFrame {
  readonly request: KernelRequest;
  readonly wireBytes: number;
}

/** An incremental decoder: feed it chunks as they arrive, get whole frames out. */
export interface FrameDecoder<F> {
  /**
   * Feeds bytes; returns every frame completed by them, in order.
   * @throws KernelFrameError (`too_large` as soon as a length prefix or partial line exceeds the limit,
   *   before allocating; `malformed` for bad UTF-8, bad JSON or a wrong shape). After a throw the stream
   *   is unusable: close the connection.
   */
  push(chunk: Uint8Array): F[];
  /** Bytes of an incomplete frame held back; non-zero at end of stream means a truncated frame. */
  readonly pending: number;
}

/** Limits given to a decoder. */
export interface DecoderLimits {
  /** Largest frame accepted, framing included. */
  readonly maxFrameBytes: number;
}

/**
 * A codec plugin: how requests and replies are framed on a stream (Unix socket). Both directions,
 * so `createKernelServer` speaks every codec the client does.
 */
export interface KernelCodec {
  readonly name: string;
  /**
   * How replies find their request on a persistent connection: `id` (the reply echoes the request's
   * `id`, so many can be in flight and answered in any order) or `order` (replies come in request
   * order, like a line daemon).
   */
  readonly matching: 'id' | 'order';
  encodeRequest(request: KernelRequest): Uint8Array;
  /** A reply `body` is a JSON-able object; an error reply has a truthy `error`, `message` and `code`. */
  encodeReply(reply: { readonly id?: number; readonly body: unknown }): Uint8Array;
  requestDecoder(limits: DecoderLimits): FrameDecoder<KernelRequestFrame>;
  replyDecoder(limits: DecoderLimits): FrameDecoder<KernelReplyFrame>;
}

/**
 * The stop of one send, watched without an `AbortSignal`: the client gives one with every send, because
 * an `AbortController` per call costs more (about 5 us on Node 20) than a whole round trip's client work.
 */
export interface AbortWatch {
  /** Whether the send was stopped already. */
  readonly aborted: boolean;
  /** Why it was stopped (a `KernelTransportError` of kind `aborted`), once `aborted`. */
  readonly reason: unknown;
  /**
   * Calls `listener` once, when the send is stopped (not if it is stopped already: check `aborted`).
   * Returns the function that unregisters it; call it when the send settles.
   */
  onAbort(listener: () => void): () => void;
}

/** What a transport is given for one attempt. */
export interface SendOptions {
  /**
   * Fires at the whole-call deadline, on the caller's abort, or on `close()`: stop and reject at once.
   * From the client it is created on first read: a transport that can should use `abortWatch`.
   */
  readonly signal: AbortSignal;
  /** The same stop as `signal`, cheaper (see {@link AbortWatch}); the client always gives it. */
  readonly abortWatch?: AbortWatch;
  /** Largest reply accepted, framing included; checked before allocating. */
  readonly maxResponseBytes: number;
}

/** The reply of one attempt. */
export interface TransportReply {
  /** The decoded JSON value (not yet checked to be an object). */
  readonly body: unknown;
  /** Bytes of the reply on the wire, framing included. */
  readonly wireBytes: number;
}

/** Options of `isAvailable()` on a transport. */
export interface AvailabilityOptions {
  readonly signal: AbortSignal;
}

/**
 * A transport plugin: carries one request to the daemon and brings its reply back.
 * It rejects with a `KernelTransportError` whose `kind` tells the client what happened, and never
 * retries by itself (the client decides).
 */
export interface KernelTransport {
  readonly name: string;
  /** Where it connects, safe to log: no credentials, no query, home directory shown as `~`. */
  readonly endpoint: string;
  /**
   * Sends `request` (without `id`: the transport adds one when its codec matches by id) and resolves
   * with the reply.
   * @throws KernelTransportError
   */
  send(request: KernelRequest, options: SendOptions): Promise<TransportReply>;
  /** Whether the daemon can be reached now (connect, or `GET /health` for HTTP). Never rejects. */
  isAvailable(options: AvailabilityOptions): Promise<boolean>;
  /** Closes connections; pending sends reject with kind `closed`. Idempotent. */
  close(): Promise<void>;
}

/** Injected time, so deadlines, backoff and jitter are tested exactly. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The telemetry event published once per call (channel `trestle:kernel-client:call`). */
export interface KernelTelemetryEvent {
  readonly op: 'kernel_client.call';
  readonly method: string;
  /** The transport's safe endpoint (no secrets, home directory as `~`). */
  readonly endpoint: string;
  readonly transport: string;
  readonly latencyMs: number;
  readonly success: boolean;
  readonly status: KernelStatus;
  readonly retryCount: number;
  readonly payloadSize: number;
  readonly errorCode: string | null;
  readonly reason: string | null;
}
