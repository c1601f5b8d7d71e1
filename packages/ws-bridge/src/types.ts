/**
 * The contracts of `@trestle/ws-bridge` (DESIGN.md 2.5, the Go Bridge seed). Plugins: TokenProvider,
 * Logger, Metrics, Dialer (the WebSocket constructor), classify.
 */

/** Time and timers, injected so every schedule (backoff, refresh, heartbeat, timeouts) is tested exactly. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** An access token and when it expires (`clock.now()` time base; `Infinity` for never). */
export interface Token {
  readonly accessToken: string;
  /** Epoch milliseconds on the bridge's clock. */
  readonly expiresAt: number;
}

/**
 * Where tokens come from (plugin). `getToken()` returns a valid token, refreshing when needed;
 * concurrent calls share one refresh. `forceRefresh` drops the cached token first (after a 401).
 * @throws anything: the bridge classifies a provider failure (the first one is permanent, as in the seed).
 */
export interface TokenProvider {
  readonly name: string;
  getToken(options?: { readonly forceRefresh?: boolean; readonly signal?: AbortSignal }): Promise<Token>;
  /** Stops timers and in-flight refreshes. Optional. */
  close?(): void | Promise<void>;
}

/** What a connection carries: text as `string`, binary as `Uint8Array` (a `Buffer` in Node). */
export type WireData = string | Uint8Array;

/** Writes one message; says what happened to it. */
export type SendFunction = (data: WireData) => SendResult;

/** The seed's handler: events of the connection. Every member is optional. */
export interface Handler {
  /**
   * A connection is open. `send` writes on this connection (ahead of the send buffer, which is flushed
   * once the returned promise settles).
   */
  onConnect?(send: SendFunction): void | Promise<void>;
  /** A message arrived (text as `string`, binary as `Uint8Array`). */
  onMessage?(data: WireData, isBinary: boolean): void;
  /** The connection is gone; `error` says why (a `BridgeError`; a `PermanentError` when the bridge stops). */
  onDisconnect?(error: Error): void;
  /**
   * In-band re-authentication after a proactive token refresh: send the new token on the open connection
   * and resolve `true` if the peer accepted it. Without it (or when it resolves `false` or throws), the
   * bridge opens a new connection with the new token before closing the old one (make-before-break).
   */
  reauthenticate?(token: Token, send: SendFunction): Promise<boolean>;
}

/** Why `send()` refused a message. */
export type SendRejectReason = 'buffer_full' | 'too_large' | 'closed' | 'permanent_failure';

/** What `send()` did: written on the socket, queued for later, or refused (with why). */
export type SendResult =
  | { readonly status: 'sent' }
  | { readonly status: 'queued'; readonly queued: number }
  | { readonly status: 'rejected'; readonly reason: SendRejectReason };

/** The seed's retry policy plus multiplier, max retries, max elapsed and the stability window. */
export interface RetryPolicy {
  /** Delay before the first retry. @default 1_000 */
  readonly minBackoffMs: number;
  /** Upper bound of every delay (before `Retry-After`, which is honoured as sent). @default 60_000 */
  readonly maxBackoffMs: number;
  /** Growth per retry: delay(n) = min(max, min * multiplier^n). @default 2 */
  readonly multiplier: number;
  /** Jitter fraction in [0, 1]: a delay d becomes d * (1 - jitter * random()). @default 0.5 */
  readonly jitter: number;
  /** Retries after the first failure before giving up (`PermanentError` `WS_RETRIES_EXHAUSTED`). @default Infinity */
  readonly maxRetries: number;
  /** Time spent failing (since the last stable connection) before giving up. @default Infinity */
  readonly maxElapsedMs: number;
  /** A connection that stayed up this long resets the backoff. @default 30_000 */
  readonly stableAfterMs: number;
}

/** Ping/pong liveness check of an open connection. */
export interface HeartbeatOptions {
  /** Time between pings. @default 30_000 */
  readonly intervalMs: number;
  /** A ping unanswered this long terminates the connection (`WS_HEARTBEAT_TIMEOUT`, transient). @default 10_000 */
  readonly timeoutMs: number;
  /**
   * Application-level ping, for transports without protocol pings (browsers): send something the peer
   * answers. Any incoming message then counts as the pong. Without it, a connection without protocol
   * pings has no heartbeat.
   */
  readonly ping?: (send: SendFunction) => void;
}

/** What `send()` does when the buffer is full: refuse the new message, or evict the oldest (reported by the `drop` event). */
export type OverflowPolicy = 'reject-new' | 'drop-oldest';

/** The bounded send buffer: messages sent while no connection is ready wait here. */
export interface SendBufferOptions {
  /** @default 1_000 */
  readonly maxMessages: number;
  /** Sum of message sizes (UTF-8 bytes for text). @default 1_048_576 */
  readonly maxBytes: number;
  /** @default 'reject-new' */
  readonly overflow: OverflowPolicy;
}

/**
 * How the token travels in the upgrade request. Browsers cannot set headers: use a query parameter
 * (`{ query: 'access_token' }`) or a subprotocol (`{ subprotocol: 'bearer.' }`, sent as `bearer.<token>`
 * before `protocols`).
 */
export type TokenTransport = 'header' | { readonly query: string } | { readonly subprotocol: string };

/** Transient failures are retried with backoff; permanent ones stop the bridge. */
export type FailureClass = 'transient' | 'permanent';

/** Where a failure came from. */
export type FailureSource = 'handshake' | 'close' | 'token' | 'timeout' | 'heartbeat' | 'network';

/** A failure, described for `classify`. */
export interface Failure {
  readonly source: FailureSource;
  /** Handshake HTTP status (`handshake`). */
  readonly status?: number;
  /** Close code (`close`). */
  readonly code?: number;
  readonly reason?: string;
  /** `Retry-After`, in ms, when the server sent one (seconds or an HTTP date). */
  readonly retryAfterMs?: number;
  readonly error?: Error;
  /** Token failures in a row, this one included. */
  readonly tokenFailures?: number;
  /** Tokens obtained since the bridge started (0: the provider never delivered one). */
  readonly tokensObtained: number;
  /** Whether a forced token refresh was already made after an unauthorized answer (since the last connection). */
  readonly forcedRefresh: boolean;
  /** Whether the connection had opened before this failure. */
  readonly wasOpen: boolean;
}

/**
 * A classification: the class, an optional delay before the next attempt (at least the backoff; e.g.
 * from `Retry-After`), and whether to force a token refresh before it.
 */
export interface Classification {
  readonly class: FailureClass;
  readonly delayMs?: number;
  readonly refreshToken?: boolean;
}

/** Overrides the default classification; return `undefined` to keep it. */
export type Classifier = (failure: Failure, defaults: Classification) => Classification | undefined;

/** What the bridge asks a dialer to open. The token is already in `url`, `protocols` or `headers`. */
export interface DialRequest {
  readonly url: string;
  readonly protocols: readonly string[];
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * Events of one dialed connection. A dialer calls `open` at most once, then any number of `message` and
 * `pong`, and ends with exactly one of `rejected` (a non-101 answer to the upgrade) or `close`.
 * `error` may come before the end; it never ends the connection by itself.
 */
export interface DialEvents {
  open(): void;
  message(data: WireData, isBinary: boolean): void;
  pong(): void;
  /** The upgrade was answered with HTTP `status` (Node only: browsers report a close 1006 instead). */
  rejected(status: number, headers: Readonly<Record<string, string | undefined>>): void;
  close(code: number, reason: string): void;
  error(error: Error): void;
}

/** A dialed connection: the minimal structural socket. */
export interface Connection {
  /** Bytes accepted by `send` but not yet written to the network. */
  readonly bufferedAmount: number;
  /** Writes a message; `written` runs once it left the process (when the transport can tell). */
  send(data: WireData, written?: () => void): void;
  /** Starts the closing handshake. */
  close(code: number, reason: string): void;
  /** Drops the connection now (no closing handshake); ends with a `close` event. */
  terminate(): void;
  /** Sends a protocol ping (absent when the transport has none, as in browsers). */
  ping?(): void;
}

/**
 * Opens connections (plugin). Built-ins: `wsDialer()` (Node, `ws`, the default) and `webSocketDialer()`
 * (any WHATWG `WebSocket`, e.g. browsers).
 */
export interface Dialer {
  /** Stable name used in logs and errors, e.g. `"ws"`. */
  readonly name: string;
  /** Whether `DialRequest.headers` reach the server (browsers: no). */
  readonly supportsHeaders: boolean;
  dial(request: DialRequest, events: DialEvents): Connection;
}

/** The seed's logger. */
export interface Logger {
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  error(error: unknown, message: string, fields?: Readonly<Record<string, unknown>>): void;
  debug?(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

/** The seed's metrics, plus counters the fault tests read. */
export interface Metrics {
  incConnections(): void;
  incDisconnects(failureClass: FailureClass): void;
  incTokenRefreshes(): void;
  /** 1 connected, 0 disconnected. */
  setConnectionStatus(status: 0 | 1): void;
  incReconnectAttempts?(): void;
  observeConnectMs?(ms: number): void;
}

/** Bridge states. `failed` is final (a permanent failure), as is `closed`. */
export type BridgeState = 'idle' | 'connecting' | 'open' | 'backoff' | 'closing' | 'closed' | 'failed';

/** Options of `createBridge`. Only `url` and `tokenProvider` are required. */
export interface BridgeOptions {
  /** `ws:` or `wss:` URL. */
  readonly url: string | URL;
  /** Where tokens come from; called before every connect (a fresh token each time). */
  readonly tokenProvider: TokenProvider;
  /** Connection events. @default {} */
  readonly handler?: Handler;
  /** Backoff and giving up. @default defaultRetryPolicy (1 s → 60 s, ×2, jitter 0.5, forever, stable after 30 s) */
  readonly retry?: Partial<RetryPolicy>;
  /** Refresh the token this long before it expires. @default 300_000 */
  readonly refreshBufferMs?: number;
  /** The refresh happens earlier by up to this fraction of `refreshBufferMs` (random). @default 0.1 */
  readonly refreshJitter?: number;
  /** Token fetch plus handshake must finish within this; always on. @default 10_000 */
  readonly connectTimeoutMs?: number;
  /** After `close()` or a make-before-break switch, a peer that does not finish the closing handshake within this is dropped. @default 5_000 */
  readonly closeTimeoutMs?: number;
  /** Ping/pong liveness; `false` turns it off. @default { intervalMs: 30_000, timeoutMs: 10_000 } */
  readonly heartbeat?: Partial<HeartbeatOptions> | false;
  /** The bounded send buffer. @default { maxMessages: 1_000, maxBytes: 1_048_576, overflow: 'reject-new' } */
  readonly sendBuffer?: Partial<SendBufferOptions>;
  /** `send` queues instead of writing while the socket's `bufferedAmount` is above this; `drain` follows. @default 1_048_576 */
  readonly highWaterMark?: number;
  /** How the token travels. @default 'header' (`Authorization: Bearer <token>`) */
  readonly tokenTransport?: TokenTransport;
  /** Subprotocols to offer. @default [] */
  readonly protocols?: readonly string[];
  /** Extra upgrade headers (Node). @default {} */
  readonly headers?: Readonly<Record<string, string>>;
  /** Close codes that stop the bridge. @default [1002, 1003, 1007, 1008, 1010] */
  readonly permanentCloseCodes?: Iterable<number>;
  /** Overrides the default classification; return `undefined` to keep it. @default none */
  readonly classify?: Classifier;
  /** @default no-op */
  readonly logger?: Logger;
  /** @default no-op */
  readonly metrics?: Metrics;
  /** Opens connections. @default wsDialer() */
  readonly dialer?: Dialer;
  /** Time and timers. @default the system clock */
  readonly clock?: Clock;
  /** Random source in [0, 1) for jitter. @default Math.random */
  readonly random?: () => number;
}

/** Events of a bridge and their payloads. */
export interface BridgeEvents {
  state: { readonly from: BridgeState; readonly to: BridgeState };
  connect: { readonly attempt: number; readonly url: string };
  disconnect: { readonly error: Error; readonly class: FailureClass };
  message: { readonly data: WireData; readonly isBinary: boolean };
  retry: {
    readonly attempt: number;
    readonly delayMs: number;
    readonly class: FailureClass;
    readonly error: Error;
  };
  'token-refresh': { readonly expiresAt: number; readonly mode: 'reauthenticate' | 'reconnect' | 'connect' };
  /** The send buffer emptied and the socket is below the high-water mark again. */
  drain: { readonly bufferedAmount: number };
  /** `drop-oldest` evicted a message. */
  drop: { readonly data: WireData };
  /** A non-fatal problem: a handler threw, a refresh failed. Fatal ones reject `run()`. */
  error: { readonly error: Error };
}

/** Counters since the bridge was created. */
export interface BridgeStats {
  readonly state: BridgeState;
  readonly connects: number;
  readonly disconnects: number;
  readonly retries: number;
  readonly tokenRefreshes: number;
  readonly sent: number;
  readonly queued: number;
  readonly rejected: number;
  readonly dropped: number;
  readonly received: number;
  /** Messages waiting in the send buffer. */
  readonly buffered: number;
}

/** A persistent, authenticated WebSocket. */
export interface Bridge {
  /**
   * Connects and keeps connecting until `close()` or `signal` aborts (then it resolves).
   * Calling it again returns the same promise.
   * @throws PermanentError when it gives up (a permanent failure, or retries exhausted).
   * @throws BridgeError `WS_CLOSED` when the bridge was closed before `run()`.
   */
  run(signal?: AbortSignal): Promise<void>;
  /** Writes now when a connection is ready; queues otherwise (bounded); never throws. */
  send(data: WireData): SendResult;
  /** Stops: closes the socket with 1000, clears every timer and listener; resolves when the socket is gone. Idempotent. */
  close(): Promise<void>;
  readonly state: BridgeState;
  /** Bytes waiting: the send buffer plus the socket's own buffer. */
  readonly bufferedAmount: number;
  /** Subscribes; returns the unsubscribe function. */
  on<TEvent extends keyof BridgeEvents>(
    event: TEvent,
    listener: (payload: BridgeEvents[TEvent]) => void,
  ): () => void;
  stats(): BridgeStats;
}
