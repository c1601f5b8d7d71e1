import { Backoff, backoffDelay, defaultRetryPolicy } from './backoff';
import { defaultClassify, defaultPermanentCloseCodes, parseRetryAfter } from './classify';
import {
  BridgeError,
  BridgeErrorCode,
  failureError,
  isPermanent,
  PermanentError,
  permanentError,
} from './errors';
import { systemClock } from './manual-clock';
import { defaultSendBufferOptions, SendBuffer } from './send-buffer';
import { minRefreshIntervalMs, sharedTokenProvider, tokenRefresher } from './token';
import type {
  Bridge,
  BridgeEvents,
  BridgeOptions,
  BridgeState,
  BridgeStats,
  Classification,
  Connection,
  Failure,
  HeartbeatOptions,
  Logger,
  Metrics,
  RetryPolicy,
  SendBufferOptions,
  SendFunction,
  SendResult,
  Token,
  WireData,
} from './types';
import { wsDialer } from './ws-dialer';

const noopLogger: Logger = { info() {}, error() {} };
const noopMetrics: Metrics = {
  incConnections() {},
  incDisconnects() {},
  incTokenRefreshes() {},
  setConnectionStatus() {},
};

/** Default heartbeat: a ping every 30 s, dead after 10 s without a pong. */
export const defaultHeartbeat: HeartbeatOptions = Object.freeze({ intervalMs: 30_000, timeoutMs: 10_000 });

/** How often a send blocked on the high-water mark re-checks the socket (besides write callbacks). */
const drainPollMs = 50;

type FailureInput = Omit<Failure, 'tokensObtained' | 'forcedRefresh' | 'wasOpen' | 'error'> & {
  cause?: unknown;
};

/** One dialed connection and its timers. */
interface Link {
  connection: Connection | undefined;
  token: Token;
  phase: 'connecting' | 'open' | 'draining' | 'ended';
  lastError: Error | undefined;
  pingTimer: unknown;
  pongTimer: unknown;
  closeTimer: unknown;
  ended: () => void;
  whenEnded: Promise<void>;
}

/** One connect attempt (token fetch + handshake) under one timeout. */
interface Attempt {
  readonly number: number;
  /** A make-before-break attempt, while the current connection stays up. */
  switching: boolean;
  timer: unknown;
  link: Link | undefined;
}

const finiteNonNegative = (name: string, value: number, allowInfinity = false) => {
  if (
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    value < 0 ||
    (!allowInfinity && !Number.isFinite(value))
  )
    throw new BridgeError(
      BridgeErrorCode.InvalidArgument,
      `${name} must be a number >= 0, got ${String(value)}`,
    );
};

function resolveOptions(options: BridgeOptions) {
  if (typeof options !== 'object' || options === null)
    throw new BridgeError(BridgeErrorCode.InvalidArgument, 'createBridge: options are required');
  let url: URL;
  try {
    url = new URL(String(options.url));
  } catch (error) {
    throw new BridgeError(BridgeErrorCode.InvalidArgument, `url is not a URL: ${String(options.url)}`, {
      cause: error,
    });
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:')
    throw new BridgeError(BridgeErrorCode.InvalidArgument, `url must be ws: or wss:, got ${url.href}`);
  if (typeof options.tokenProvider?.getToken !== 'function')
    throw new BridgeError(BridgeErrorCode.InvalidArgument, 'tokenProvider.getToken must be a function');
  const retry: RetryPolicy = { ...defaultRetryPolicy, ...options.retry };
  finiteNonNegative('retry.minBackoffMs', retry.minBackoffMs);
  finiteNonNegative('retry.maxBackoffMs', retry.maxBackoffMs);
  finiteNonNegative('retry.maxRetries', retry.maxRetries, true);
  finiteNonNegative('retry.maxElapsedMs', retry.maxElapsedMs, true);
  finiteNonNegative('retry.stableAfterMs', retry.stableAfterMs);
  if (!(retry.multiplier >= 1))
    throw new BridgeError(
      BridgeErrorCode.InvalidArgument,
      `retry.multiplier must be >= 1, got ${retry.multiplier}`,
    );
  if (!(retry.jitter >= 0 && retry.jitter <= 1))
    throw new BridgeError(
      BridgeErrorCode.InvalidArgument,
      `retry.jitter must be in [0, 1], got ${retry.jitter}`,
    );
  if (retry.maxBackoffMs < retry.minBackoffMs)
    throw new BridgeError(
      BridgeErrorCode.InvalidArgument,
      `retry.maxBackoffMs (${retry.maxBackoffMs}) is below retry.minBackoffMs (${retry.minBackoffMs})`,
    );
  const heartbeat: HeartbeatOptions | false =
    options.heartbeat === false ? false : { ...defaultHeartbeat, ...options.heartbeat };
  if (heartbeat) {
    finiteNonNegative('heartbeat.intervalMs', heartbeat.intervalMs);
    finiteNonNegative('heartbeat.timeoutMs', heartbeat.timeoutMs);
  }
  const sendBuffer: SendBufferOptions = { ...defaultSendBufferOptions, ...options.sendBuffer };
  finiteNonNegative('sendBuffer.maxMessages', sendBuffer.maxMessages);
  finiteNonNegative('sendBuffer.maxBytes', sendBuffer.maxBytes);
  if (sendBuffer.overflow !== 'reject-new' && sendBuffer.overflow !== 'drop-oldest')
    throw new BridgeError(
      BridgeErrorCode.InvalidArgument,
      `sendBuffer.overflow must be 'reject-new' or 'drop-oldest', got ${String(sendBuffer.overflow)}`,
    );
  const resolved = {
    url,
    retry,
    heartbeat,
    sendBuffer,
    refreshBufferMs: options.refreshBufferMs ?? 300_000,
    refreshJitter: options.refreshJitter ?? 0.1,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    closeTimeoutMs: options.closeTimeoutMs ?? 5_000,
    highWaterMark: options.highWaterMark ?? 1_048_576,
    tokenTransport: options.tokenTransport ?? 'header',
    protocols: [...(options.protocols ?? [])],
    headers: { ...options.headers },
    permanentCloseCodes: new Set(options.permanentCloseCodes ?? defaultPermanentCloseCodes),
    dialer: options.dialer ?? wsDialer(),
    clock: options.clock ?? systemClock,
    random: options.random ?? Math.random,
    logger: options.logger ?? noopLogger,
    metrics: options.metrics ?? noopMetrics,
  };
  finiteNonNegative('refreshBufferMs', resolved.refreshBufferMs);
  finiteNonNegative('refreshJitter', resolved.refreshJitter);
  finiteNonNegative('closeTimeoutMs', resolved.closeTimeoutMs);
  finiteNonNegative('highWaterMark', resolved.highWaterMark, true);
  if (!(resolved.connectTimeoutMs > 0 && Number.isFinite(resolved.connectTimeoutMs)))
    throw new BridgeError(
      BridgeErrorCode.InvalidArgument,
      `connectTimeoutMs must be a finite number > 0 (it is always on), got ${String(resolved.connectTimeoutMs)}`,
    );
  if (resolved.tokenTransport === 'header' && !resolved.dialer.supportsHeaders)
    throw new BridgeError(
      BridgeErrorCode.InvalidArgument,
      `dialer "${resolved.dialer.name}" cannot send headers: set tokenTransport to { query } or { subprotocol }`,
    );
  return resolved;
}

/**
 * Creates a bridge: a persistent, authenticated WebSocket that reconnects with backoff, refreshes its
 * token ahead of expiry, detects dead peers and buffers what is sent while disconnected.
 * @throws BridgeError `WS_INVALID_ARGUMENT` for a bad option (the message names it).
 * @example
 * ```ts
 * const bridge = createBridge({
 *   url: 'wss://example.com/ws',
 *   tokenProvider: staticToken('secret'),
 *   handler: { onMessage: (data) => console.log(data) },
 * });
 * bridge.send('hello'); // queued until connected
 * await bridge.run(AbortSignal.timeout(60_000));
 * ```
 */
export function createBridge(options: BridgeOptions): Bridge {
  const config = resolveOptions(options);
  const { clock, random, logger, metrics, dialer, retry, heartbeat, highWaterMark } = config;
  const handler = options.handler ?? {};
  const provider = sharedTokenProvider(options.tokenProvider);
  const buffer = new SendBuffer(config.sendBuffer);
  const backoff = new Backoff(retry, random);
  const listeners = new Map<keyof BridgeEvents, Set<(payload: never) => void>>();

  let state: BridgeState = 'idle';
  let attempt: Attempt | undefined;
  let attemptCount = 0;
  let primary: Link | undefined;
  const draining = new Set<Link>();
  /** The primary link accepts writes (open, `onConnect` done, not switching). */
  let ready = false;
  let blocked = false;
  let retryTimer: unknown;
  let stableTimer: unknown;
  let drainTimer: unknown;
  let forceNextRefresh = false;
  let forcedRefresh = false;
  let tokensObtained = 0;
  let tokenFailures = 0;
  let switchFailures = 0;
  let runPromise: Promise<void> | undefined;
  let settleRun: { resolve: () => void; reject: (error: Error) => void } | undefined;
  let closing: Promise<void> | undefined;
  let detachSignal: (() => void) | undefined;
  const stats = {
    connects: 0,
    disconnects: 0,
    retries: 0,
    tokenRefreshes: 0,
    sent: 0,
    queued: 0,
    rejected: 0,
    dropped: 0,
    received: 0,
  };

  const refresher = tokenRefresher({
    clock,
    random,
    refreshBufferMs: config.refreshBufferMs,
    jitter: config.refreshJitter,
    onDue: () => void refreshToken(),
  });

  function emit<TEvent extends keyof BridgeEvents>(event: TEvent, payload: BridgeEvents[TEvent]): void {
    const set = listeners.get(event);
    if (!set || set.size === 0) {
      if (event === 'error') logger.error((payload as BridgeEvents['error']).error, 'ws-bridge error');
      return;
    }
    for (const listener of [...set]) {
      try {
        (listener as (payload: BridgeEvents[TEvent]) => void)(payload);
      } catch (error) {
        logger.error(error, `ws-bridge: a "${event}" listener threw`);
      }
    }
  }

  const reportError = (error: unknown, context: string) => {
    const wrapped = error instanceof Error ? error : new Error(String(error));
    logger.error(wrapped, context);
    emit('error', { error: wrapped });
  };

  function setState(next: BridgeState): void {
    if (state === next) return;
    const from = state;
    state = next;
    emit('state', { from, to: next });
  }

  const clear = (handle: unknown): undefined => {
    if (handle !== undefined) clock.clearTimeout(handle);
    return undefined;
  };

  const isFinal = () => state === 'closed' || state === 'failed' || state === 'closing';

  // ---- links ---------------------------------------------------------------------------------------

  function newLink(token: Token): Link {
    let ended!: () => void;
    const whenEnded = new Promise<void>((resolve) => {
      ended = resolve;
    });
    return {
      connection: undefined,
      token,
      phase: 'connecting',
      lastError: undefined,
      pingTimer: undefined,
      pongTimer: undefined,
      closeTimer: undefined,
      ended,
      whenEnded,
    };
  }

  /** Ends a link for the bridge: timers cleared, late events ignored. */
  function endLink(link: Link, how: 'terminate' | 'none'): void {
    if (link.phase === 'ended') return;
    link.phase = 'ended';
    link.pingTimer = clear(link.pingTimer);
    link.pongTimer = clear(link.pongTimer);
    link.closeTimer = clear(link.closeTimer);
    draining.delete(link);
    if (how === 'terminate') {
      try {
        link.connection?.terminate();
      } catch (error) {
        logger.error(error, 'ws-bridge: terminate threw');
      }
    }
    link.ended();
  }

  /** Closes a link with a closing handshake; drops it after `closeTimeoutMs`. */
  function drainLink(link: Link, code: number, reason: string): void {
    if (link.phase === 'ended') return;
    link.phase = 'draining';
    link.pingTimer = clear(link.pingTimer);
    link.pongTimer = clear(link.pongTimer);
    draining.add(link);
    try {
      link.connection?.close(code, reason);
    } catch (error) {
      logger.error(error, 'ws-bridge: close threw');
    }
    link.closeTimer = clock.setTimeout(() => {
      link.closeTimer = undefined;
      endLink(link, 'terminate');
    }, config.closeTimeoutMs);
  }

  function writeOn(link: Link, data: WireData): boolean {
    const connection = link.connection;
    if (!connection || link.phase !== 'open') return false;
    // Ask for a completion callback only for the write that crosses the high-water mark: it wakes the flush.
    const size = typeof data === 'string' ? data.length : data.byteLength;
    if (connection.bufferedAmount + size > highWaterMark) connection.send(data, onWritten);
    else connection.send(data);
    stats.sent++;
    return true;
  }

  const sendOn =
    (link: Link): SendFunction =>
    (data) => {
      if (link.phase !== 'open') {
        stats.rejected++;
        return { status: 'rejected', reason: 'closed' };
      }
      return writeOn(link, data) ? { status: 'sent' } : { status: 'rejected', reason: 'closed' };
    };

  function onWritten(): void {
    if (ready) flush();
  }

  /** Polls for the socket to go below the high-water mark (for transports without write callbacks). */
  function armDrain(): void {
    drainTimer ??= clock.setTimeout(() => {
      drainTimer = undefined;
      flush();
    }, drainPollMs);
  }

  /** Writes the buffer on the primary link, in order, up to the high-water mark. */
  function flush(): void {
    const link = primary;
    if (!ready || !link?.connection) return;
    while (buffer.length > 0) {
      if (link.connection.bufferedAmount > highWaterMark) {
        blocked = true;
        armDrain();
        return;
      }
      const data = buffer.shift() as WireData;
      writeOn(link, data);
    }
    if (link.connection.bufferedAmount > highWaterMark) {
      blocked = true;
      armDrain();
      return;
    }
    drainTimer = clear(drainTimer);
    if (blocked) {
      blocked = false;
      emit('drain', { bufferedAmount: link.connection.bufferedAmount });
    }
  }

  // ---- heartbeat -----------------------------------------------------------------------------------

  function startHeartbeat(link: Link): void {
    if (!heartbeat || !link.connection) return;
    const appPing = heartbeat.ping;
    if (!appPing && !link.connection.ping) return;
    const ping = () => {
      link.pingTimer = undefined;
      if (link.phase !== 'open') return;
      try {
        if (appPing) appPing(sendOn(link));
        else link.connection?.ping?.();
      } catch (error) {
        reportError(error, 'ws-bridge: ping failed');
      }
      link.pongTimer ??= clock.setTimeout(() => {
        link.pongTimer = undefined;
        if (link !== primary || link.phase !== 'open') return;
        endLink(link, 'terminate');
        lost(link, {
          source: 'heartbeat',
          reason: `no pong within ${heartbeat.timeoutMs} ms`,
        });
      }, heartbeat.timeoutMs);
      link.pingTimer = clock.setTimeout(ping, heartbeat.intervalMs);
    };
    link.pingTimer = clock.setTimeout(ping, heartbeat.intervalMs);
  }

  const alive = (link: Link) => {
    link.pongTimer = clear(link.pongTimer);
  };

  // ---- connecting ----------------------------------------------------------------------------------

  function buildRequest(token: Token) {
    const url = new URL(config.url.href);
    const protocols = [...config.protocols];
    const headers: Record<string, string> = { ...config.headers };
    const transport = config.tokenTransport;
    if (transport === 'header') headers.authorization = `Bearer ${token.accessToken}`;
    else if ('query' in transport) url.searchParams.set(transport.query, token.accessToken);
    else protocols.unshift(`${transport.subprotocol}${token.accessToken}`);
    return { url: url.href, protocols, headers };
  }

  /** Starts one attempt; `token` given for a make-before-break switch. */
  function connect(switchToken?: Token): void {
    if (isFinal() || attempt) return;
    const current: Attempt = {
      number: ++attemptCount,
      switching: switchToken !== undefined,
      timer: undefined,
      link: undefined,
    };
    attempt = current;
    if (!current.switching) setState('connecting');
    current.timer = clock.setTimeout(() => {
      current.timer = undefined;
      if (attempt !== current) return;
      attemptFailed(current, {
        source: 'timeout',
        reason: `no open connection within ${config.connectTimeoutMs} ms`,
      });
    }, config.connectTimeoutMs);
    const dial = (token: Token) => {
      if (attempt !== current) return;
      const link = newLink(token);
      current.link = link;
      try {
        link.connection = dialer.dial(buildRequest(token), {
          open: () => {
            if (attempt !== current || link.phase !== 'connecting') return;
            current.timer = clear(current.timer);
            attempt = undefined;
            opened(link, current);
          },
          message: (data, isBinary) => {
            if (link.phase !== 'open' && link.phase !== 'draining') return;
            alive(link);
            stats.received++;
            try {
              handler.onMessage?.(data, isBinary);
            } catch (error) {
              reportError(error, 'ws-bridge: handler.onMessage threw');
            }
            emit('message', { data, isBinary });
          },
          pong: () => alive(link),
          error: (error) => {
            link.lastError = error;
          },
          rejected: (status, headers) => {
            if (link.phase === 'ended') return;
            endLink(link, 'none');
            if (attempt !== current) return;
            attemptFailed(current, {
              source: 'handshake',
              status,
              retryAfterMs: parseRetryAfter(headers['retry-after'], clock.now()),
            });
          },
          close: (code, reason) => {
            const phase = link.phase;
            if (phase === 'ended') return;
            endLink(link, 'none');
            if (phase === 'draining') {
              maybeClosed();
              return;
            }
            const input: FailureInput =
              code === 1006 || code === 1005
                ? { source: 'network', code, reason, cause: link.lastError }
                : { source: 'close', code, reason };
            if (phase === 'connecting') {
              if (attempt === current) attemptFailed(current, input);
            } else if (link === primary) lost(link, input);
          },
        });
      } catch (error) {
        endLink(link, 'none');
        attemptFailed(current, { source: 'network', cause: error });
      }
    };
    if (switchToken) {
      dial(switchToken);
      return;
    }
    const force = forceNextRefresh;
    forceNextRefresh = false;
    if (force) {
      stats.tokenRefreshes++;
      metrics.incTokenRefreshes();
    }
    provider.getToken(force ? { forceRefresh: true } : undefined).then(
      (token) => {
        if (attempt !== current) return;
        tokensObtained++;
        tokenFailures = 0;
        if (force) emit('token-refresh', { expiresAt: token.expiresAt, mode: 'connect' });
        dial(token);
      },
      (error: unknown) => {
        if (attempt !== current) return;
        tokenFailures++;
        attemptFailed(current, { source: 'token', tokenFailures, cause: error });
      },
    );
  }

  function attemptFailed(current: Attempt, input: FailureInput): void {
    current.timer = clear(current.timer);
    if (current.link) endLink(current.link, 'terminate');
    attempt = undefined;
    if (current.switching && primary && primary.phase === 'open') {
      switchFailed(input);
      return;
    }
    failed(input, false);
  }

  function opened(link: Link, current: Attempt): void {
    const previous = primary;
    link.phase = 'open';
    primary = link;
    ready = false;
    forcedRefresh = false;
    switchFailures = 0;
    stats.connects++;
    metrics.incConnections();
    metrics.setConnectionStatus(1);
    if (previous && previous.phase === 'open') {
      // Make-before-break: the old link stops taking writes now and is closed once this one is ready.
      previous.pingTimer = clear(previous.pingTimer);
      previous.pongTimer = clear(previous.pongTimer);
      previous.phase = 'draining';
      draining.add(previous);
    }
    setState('open');
    logger.info('ws-bridge connected', { attempt: current.number, switch: current.switching });
    emit('connect', { attempt: current.number, url: config.url.href });
    stableTimer = clear(stableTimer);
    stableTimer = clock.setTimeout(() => {
      stableTimer = undefined;
      backoff.reset();
    }, retry.stableAfterMs);
    startHeartbeat(link);
    refresher.schedule(link.token);
    const afterConnect = () => {
      if (primary !== link || link.phase !== 'open') return;
      ready = true;
      flush();
      if (previous && previous.phase === 'draining' && previous.closeTimer === undefined)
        drainLink(previous, 1000, 'token refresh');
    };
    let pending: void | Promise<void> | undefined;
    try {
      pending = handler.onConnect?.(sendOn(link));
    } catch (error) {
      reportError(error, 'ws-bridge: handler.onConnect threw');
    }
    if (pending && typeof (pending as Promise<void>).then === 'function') {
      (pending as Promise<void>).then(afterConnect, (error: unknown) => {
        reportError(error, 'ws-bridge: handler.onConnect rejected');
        afterConnect();
      });
    } else afterConnect();
  }

  /** The primary link went down. */
  function lost(link: Link, input: FailureInput): void {
    if (primary !== link) return;
    primary = undefined;
    ready = false;
    stableTimer = clear(stableTimer);
    refresher.cancel();
    drainTimer = clear(drainTimer);
    failed(input, true);
  }

  function buildFailure(input: FailureInput, wasOpen: boolean): Failure {
    const { cause, ...rest } = input;
    const base = { ...rest, tokensObtained, forcedRefresh, wasOpen };
    return { ...base, error: failureError(base, cause) };
  }

  function classifyFailure(failure: Failure): Classification {
    const defaults = defaultClassify(failure, config.permanentCloseCodes);
    if (!options.classify) return defaults;
    try {
      return options.classify(failure, defaults) ?? defaults;
    } catch (error) {
      reportError(error, 'ws-bridge: classify threw; using the default classification');
      return defaults;
    }
  }

  function failed(input: FailureInput, wasOpen: boolean): void {
    if (isFinal()) return;
    const failure = buildFailure(input, wasOpen);
    const classification = classifyFailure(failure);
    const error =
      classification.class === 'permanent' ? permanentError(failure) : (failure.error as BridgeError);
    if (wasOpen) {
      stats.disconnects++;
      metrics.incDisconnects(classification.class);
      metrics.setConnectionStatus(0);
      logger.info('ws-bridge disconnected', { code: error.code, class: classification.class });
      emit('disconnect', { error, class: classification.class });
      try {
        handler.onDisconnect?.(error);
      } catch (handlerError) {
        reportError(handlerError, 'ws-bridge: handler.onDisconnect threw');
      }
      if (isFinal()) return;
    }
    if (PermanentError.isInstance(error)) {
      fail(error);
      return;
    }
    if (attempt) {
      // A make-before-break attempt is in flight: it becomes the reconnect.
      attempt.switching = false;
      setState('connecting');
      return;
    }
    if (classification.refreshToken) {
      forceNextRefresh = true;
      forcedRefresh = true;
      scheduleRetry(classification.delayMs ?? 0, classification, error, false);
      return;
    }
    const decision = backoff.next(clock.now(), classification.delayMs ?? 0);
    if (!decision.retry) {
      fail(
        new PermanentError(
          BridgeErrorCode.RetriesExhausted,
          `giving up after ${backoff.attempt} retries (${decision.reason}): ${error.message.replace(/^\[ws-bridge\] /, '')}`,
          { cause: error, failure },
        ),
      );
      return;
    }
    scheduleRetry(decision.delayMs, classification, error, true);
  }

  function scheduleRetry(
    delayMs: number,
    classification: Classification,
    error: Error,
    counted: boolean,
  ): void {
    stats.retries++;
    metrics.incReconnectAttempts?.();
    setState('backoff');
    logger.info('ws-bridge retrying', { delayMs, attempt: backoff.attempt, counted });
    emit('retry', { attempt: attemptCount + 1, delayMs, class: classification.class, error });
    if (isFinal() || retryTimer !== undefined) return;
    retryTimer = clock.setTimeout(() => {
      retryTimer = undefined;
      connect();
    }, delayMs);
  }

  /** A make-before-break attempt failed while the old connection is still up. */
  function switchFailed(input: FailureInput): void {
    const failure = buildFailure(input, false);
    const classification = classifyFailure(failure);
    if (classification.class === 'permanent') {
      const error = permanentError(failure);
      if (primary) {
        const link = primary;
        primary = undefined;
        ready = false;
        drainLink(link, 1000, 'permanent failure');
        stats.disconnects++;
        metrics.incDisconnects('permanent');
        metrics.setConnectionStatus(0);
        emit('disconnect', { error, class: 'permanent' });
        try {
          handler.onDisconnect?.(error);
        } catch (handlerError) {
          reportError(handlerError, 'ws-bridge: handler.onDisconnect threw');
        }
      }
      fail(error);
      return;
    }
    reportError(failure.error, 'ws-bridge: make-before-break connect failed; keeping the current connection');
    ready = true;
    flush();
    refresher.scheduleIn(
      Math.max(
        classification.delayMs ?? 0,
        backoffDelay(switchFailures++, retry, random),
        minRefreshIntervalMs,
      ),
    );
  }

  // ---- token refresh -------------------------------------------------------------------------------

  async function refreshToken(): Promise<void> {
    const link = primary;
    if (link?.phase !== 'open' || attempt || isFinal()) return;
    stats.tokenRefreshes++;
    metrics.incTokenRefreshes();
    let token: Token;
    try {
      token = await provider.getToken({ forceRefresh: true });
    } catch (error) {
      if (primary !== link || isFinal()) return;
      if (isPermanent(error)) {
        const failure = buildFailure({ source: 'token', tokenFailures: ++tokenFailures, cause: error }, true);
        const permanent = permanentError(failure);
        primary = undefined;
        ready = false;
        drainLink(link, 1000, 'permanent failure');
        stats.disconnects++;
        metrics.incDisconnects('permanent');
        metrics.setConnectionStatus(0);
        emit('disconnect', { error: permanent, class: 'permanent' });
        try {
          handler.onDisconnect?.(permanent);
        } catch (handlerError) {
          reportError(handlerError, 'ws-bridge: handler.onDisconnect threw');
        }
        fail(permanent);
        return;
      }
      reportError(error, 'ws-bridge: proactive token refresh failed; retrying later');
      const remaining = link.token.expiresAt - clock.now();
      refresher.scheduleIn(
        Math.max(minRefreshIntervalMs, Number.isFinite(remaining) ? remaining / 2 : 60_000),
      );
      return;
    }
    if (primary !== link || link.phase !== 'open' || attempt || isFinal()) return;
    tokensObtained++;
    if (handler.reauthenticate) {
      let accepted = false;
      try {
        accepted = await handler.reauthenticate(token, sendOn(link));
      } catch (error) {
        reportError(error, 'ws-bridge: handler.reauthenticate threw; reconnecting instead');
      }
      if (primary !== link || link.phase !== 'open' || attempt || isFinal()) return;
      if (accepted) {
        link.token = token;
        emit('token-refresh', { expiresAt: token.expiresAt, mode: 'reauthenticate' });
        refresher.schedule(token);
        return;
      }
    }
    emit('token-refresh', { expiresAt: token.expiresAt, mode: 'reconnect' });
    // New writes wait in the buffer and go to the new connection once it is open.
    ready = false;
    connect(token);
  }

  // ---- ending --------------------------------------------------------------------------------------

  function clearTimers(): void {
    retryTimer = clear(retryTimer);
    stableTimer = clear(stableTimer);
    drainTimer = clear(drainTimer);
    refresher.cancel();
    if (attempt) {
      attempt.timer = clear(attempt.timer);
      if (attempt.link) endLink(attempt.link, 'terminate');
      attempt = undefined;
    }
  }

  function fail(error: PermanentError): void {
    if (state === 'failed' || state === 'closed') return;
    logger.error(error, 'ws-bridge gave up');
    clearTimers();
    if (primary) {
      drainLink(primary, 1000, 'permanent failure');
      primary = undefined;
    }
    ready = false;
    const rest = buffer.clear();
    stats.rejected += rest.length;
    setState('failed');
    detachSignal?.();
    settleRun?.reject(error);
  }

  function maybeClosed(): void {
    if (state !== 'closing' || primary || draining.size > 0 || attempt) return;
    setState('closed');
  }

  function close(): Promise<void> {
    if (closing) return closing;
    if (state === 'failed') {
      closing = Promise.all([...draining].map((link) => link.whenEnded)).then(() => {});
      return closing;
    }
    const wasOpen = primary?.phase === 'open';
    setState('closing');
    clearTimers();
    ready = false;
    const links: Link[] = [...draining];
    if (primary) {
      links.push(primary);
      drainLink(primary, 1000, 'closed');
      primary = undefined;
    }
    const rest = buffer.clear();
    stats.rejected += rest.length;
    if (wasOpen) {
      metrics.setConnectionStatus(0);
      const error = new BridgeError(BridgeErrorCode.Closed, 'closed by close()');
      emit('disconnect', { error, class: 'transient' });
      try {
        handler.onDisconnect?.(error);
      } catch (handlerError) {
        reportError(handlerError, 'ws-bridge: handler.onDisconnect threw');
      }
    }
    closing = Promise.all(links.map((link) => link.whenEnded)).then(() => {
      setState('closed');
      detachSignal?.();
      settleRun?.resolve();
    });
    return closing;
  }

  // ---- the public object ---------------------------------------------------------------------------

  return {
    run(signal) {
      if (runPromise) return runPromise;
      if (state !== 'idle')
        return Promise.reject(
          new BridgeError(BridgeErrorCode.Closed, `run() after close() (state ${state})`),
        );
      runPromise = new Promise<void>((resolve, reject) => {
        settleRun = { resolve, reject };
      });
      if (signal) {
        const onAbort = () => void close();
        if (signal.aborted) {
          void close();
          return runPromise;
        }
        signal.addEventListener('abort', onAbort, { once: true });
        detachSignal = () => {
          signal.removeEventListener('abort', onAbort);
          detachSignal = undefined;
        };
      }
      connect();
      return runPromise;
    },
    send(data) {
      if (state === 'failed') {
        stats.rejected++;
        return { status: 'rejected', reason: 'permanent_failure' } satisfies SendResult;
      }
      if (state === 'closing' || state === 'closed') {
        stats.rejected++;
        return { status: 'rejected', reason: 'closed' };
      }
      if (
        ready &&
        buffer.length === 0 &&
        primary?.connection &&
        primary.connection.bufferedAmount <= highWaterMark &&
        writeOn(primary, data)
      )
        return { status: 'sent' };
      const pushed = buffer.push(data);
      if (!pushed.ok) {
        stats.rejected++;
        blocked = true;
        return { status: 'rejected', reason: pushed.reason };
      }
      for (const dropped of pushed.dropped) {
        stats.dropped++;
        emit('drop', { data: dropped });
      }
      stats.queued++;
      blocked = true;
      if (ready) armDrain();
      return { status: 'queued', queued: buffer.length };
    },
    close,
    get state() {
      return state;
    },
    get bufferedAmount() {
      return buffer.bytes + (primary?.connection?.bufferedAmount ?? 0);
    },
    on(event, listener) {
      let set = listeners.get(event);
      if (!set) {
        set = new Set();
        listeners.set(event, set);
      }
      set.add(listener as (payload: never) => void);
      return () => {
        set.delete(listener as (payload: never) => void);
      };
    },
    stats(): BridgeStats {
      return { state, ...stats, buffered: buffer.length };
    },
  };
}
