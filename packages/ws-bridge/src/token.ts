import { BridgeError, BridgeErrorCode } from './errors';
import type { Clock, Token, TokenProvider } from './types';

/**
 * A provider that always returns the same token.
 * @param expiresAt epoch ms on the bridge's clock; `Infinity` (never) by default, so no proactive refresh.
 * @throws BridgeError `WS_INVALID_ARGUMENT` when `accessToken` is empty.
 * @example
 * ```ts
 * createBridge({ url, tokenProvider: staticToken(process.env.API_TOKEN!) });
 * ```
 */
export function staticToken(accessToken: string, expiresAt = Number.POSITIVE_INFINITY): TokenProvider {
  if (typeof accessToken !== 'string' || accessToken.length === 0)
    throw new BridgeError(
      BridgeErrorCode.InvalidArgument,
      `staticToken: accessToken must be a non-empty string`,
    );
  const token: Token = Object.freeze({ accessToken, expiresAt });
  return { name: 'static', getToken: async () => token };
}

/**
 * Wraps a provider so concurrent `getToken` calls share one in-flight call (per `forceRefresh` value);
 * a forced call also serves plain callers that arrive while it runs.
 */
export function sharedTokenProvider(provider: TokenProvider): TokenProvider {
  let plain: Promise<Token> | undefined;
  let forced: Promise<Token> | undefined;
  return {
    name: provider.name,
    getToken(options) {
      const force = options?.forceRefresh === true;
      if (forced) return forced;
      if (!force && plain) return plain;
      const promise = provider.getToken(force ? { forceRefresh: true } : undefined).finally(() => {
        if (force && forced === promise) forced = undefined;
        if (!force && plain === promise) plain = undefined;
      });
      if (force) forced = promise;
      else plain = promise;
      return promise;
    },
    close: provider.close ? () => provider.close?.() : undefined,
  };
}

/** Refreshes never come closer together than this, so a short-lived token cannot make a hot loop. */
export const minRefreshIntervalMs = 1_000;

/**
 * When to refresh `token` proactively, in ms from `now`: at `expiresAt - refreshBufferMs * (1 + jitter * r)`
 * (earlier by up to `jitter` of the buffer, so a fleet spreads its refreshes). A token that lives shorter
 * than that is refreshed at half its remaining life (at least {@link minRefreshIntervalMs}). `undefined`:
 * never (`expiresAt` is `Infinity`) or already expired (the next connect fetches a new one).
 */
export function refreshDelay(
  token: Token,
  now: number,
  refreshBufferMs: number,
  jitter: number,
  random: () => number,
): number | undefined {
  if (!Number.isFinite(token.expiresAt)) return undefined;
  const remaining = token.expiresAt - now;
  if (remaining <= 0) return undefined;
  const at = token.expiresAt - refreshBufferMs * (1 + jitter * random());
  if (at - now >= minRefreshIntervalMs) return Math.round(at - now);
  return Math.max(minRefreshIntervalMs, Math.floor(remaining / 2));
}

/** Options of {@link tokenRefresher}. */
export interface TokenRefresherOptions {
  readonly clock: Clock;
  readonly random: () => number;
  /** @default 300_000 */
  readonly refreshBufferMs?: number;
  /** @default 0.1 */
  readonly jitter?: number;
  /** Called when the refresh is due. */
  readonly onDue: () => void;
}

/** Schedules one proactive refresh at a time on the injected clock. */
export interface TokenRefresher {
  /** (Re)schedules the refresh for `token`; returns the delay, or `undefined` when none is due. */
  schedule(token: Token): number | undefined;
  /** Schedules the refresh `delayMs` from now (a retry after a failed refresh). */
  scheduleIn(delayMs: number): void;
  cancel(): void;
  readonly pending: boolean;
}

/**
 * Creates a refresher: `schedule(token)` arms one timer at the proactive refresh time.
 * @example
 * ```ts
 * const refresher = tokenRefresher({ clock, random: Math.random, onDue: () => void refresh() });
 * refresher.schedule(await provider.getToken());
 * ```
 */
export function tokenRefresher({
  clock,
  random,
  refreshBufferMs = 300_000,
  jitter = 0.1,
  onDue,
}: TokenRefresherOptions): TokenRefresher {
  let handle: unknown;
  const cancel = () => {
    if (handle !== undefined) clock.clearTimeout(handle);
    handle = undefined;
  };
  const scheduleIn = (delayMs: number) => {
    cancel();
    handle = clock.setTimeout(() => {
      handle = undefined;
      onDue();
    }, delayMs);
  };
  return {
    schedule(token) {
      cancel();
      const delay = refreshDelay(token, clock.now(), refreshBufferMs, jitter, random);
      if (delay !== undefined) scheduleIn(delay);
      return delay;
    },
    scheduleIn,
    cancel,
    get pending() {
      return handle !== undefined;
    },
  };
}
