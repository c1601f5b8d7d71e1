/**
 * An OAuth 2.0 client-credentials {@link TokenProvider} (RFC 6749 section 4.4) built on `oauth4webapi`.
 *
 * Caches the token, shares one in-flight request between concurrent callers, and turns every failure
 * into a {@link TokenRequestError} that says whether retrying can help ({@link isPermanentTokenError}).
 * No secret (client secret, access token) ever appears in an error message or an error's `cause`.
 */

import type { AuthorizationServer, Client, ClientAuth } from 'oauth4webapi';
import {
  allowInsecureRequests as allowInsecureRequestsSymbol,
  ClientSecretBasic,
  ClientSecretPost,
  clientCredentialsGrantRequest,
  customFetch,
  OperationProcessingError,
  processClientCredentialsResponse,
  ResponseBodyError,
  WWWAuthenticateChallengeError,
} from 'oauth4webapi';
import type { Clock, Token, TokenProvider } from './types';

// The package-wide marker (a registry symbol), so the bridge recognises these errors across duplicate
// installs, where `instanceof` fails.
const errorMarker = Symbol.for('trestle.ws-bridge.error');

/** Stable error codes of the OAuth token provider. A published code never changes. */
export const TokenErrorCode = {
  /** The request did not produce a token: network error, timeout, 5xx, malformed response, abort. */
  RequestFailed: 'WS_TOKEN_REQUEST_FAILED',
  /** The token endpoint answered a 4xx OAuth error response (`invalid_client`, `invalid_scope`...). */
  Rejected: 'WS_TOKEN_REJECTED',
  /** `getToken()` after `close()`, or the in-flight request was aborted by `close()`. */
  ProviderClosed: 'WS_TOKEN_PROVIDER_CLOSED',
} as const;
export type TokenErrorCode = (typeof TokenErrorCode)[keyof typeof TokenErrorCode];

/** Why a token request failed, in more detail than {@link TokenErrorCode}. */
export type TokenFailureReason =
  /** The endpoint could not be reached (DNS, refused, reset, TLS). */
  | 'network'
  /** No response within `timeoutMs`. */
  | 'timeout'
  /** A non-200 response that is not a 4xx OAuth error response (a 5xx, a 429, a 502 HTML page). */
  | 'http'
  /** A 200 response that is not a valid token response (e.g. no `access_token`). */
  | 'invalid_response'
  /** An OAuth error response (`error` in the JSON body or the `WWW-Authenticate` challenge). */
  | 'oauth_error'
  /** The caller's `signal` aborted (the shared request goes on for the other callers). */
  | 'aborted'
  /** The provider was closed. */
  | 'closed';

/**
 * OAuth `error` codes that retrying with the same configuration can never fix: the bridge stops on them
 * (see {@link isPermanentTokenError}). An HTTP 401 from the token endpoint is `invalid_client` too
 * (RFC 6749 section 5.2), whatever its body says.
 */
export const PERMANENT_OAUTH_ERRORS: ReadonlySet<string> = new Set([
  'invalid_client',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
]);

/** The fields of a {@link TokenRequestError}. */
export interface TokenRequestErrorDetails {
  readonly reason: TokenFailureReason;
  readonly permanent: boolean;
  readonly status?: number | undefined;
  readonly oauthError?: string | undefined;
  readonly oauthErrorDescription?: string | undefined;
  readonly retryAfterMs?: number | undefined;
  readonly cause?: unknown;
}

/**
 * A token request failed. `permanent` says whether the bridge should stop (`invalid_client`,
 * `unauthorized_client`, any 401...) or retry with backoff (network errors, timeouts, 5xx, 429).
 * @example
 * ```ts
 * try { await provider.getToken(); } catch (error) {
 *   if (TokenRequestError.isInstance(error) && error.oauthError === 'invalid_client') rotateSecret();
 * }
 * ```
 */
export class TokenRequestError extends Error {
  /** The `@trestle/ws-bridge` error marker (`Symbol.for('trestle.ws-bridge.error')`). */
  readonly [errorMarker] = true;
  override readonly name = 'TokenRequestError';
  readonly code: TokenErrorCode;
  readonly reason: TokenFailureReason;
  /** True when retrying can never succeed: the bridge stops with a `PermanentError`. */
  readonly permanent: boolean;
  /** The HTTP status of the token endpoint's response, when there was one. */
  readonly status: number | undefined;
  /** The OAuth `error` code (`invalid_client`, `temporarily_unavailable`...), when the server sent one. */
  readonly oauthError: string | undefined;
  /** The OAuth `error_description`, when the server sent one (server text: not in `message`). */
  readonly oauthErrorDescription: string | undefined;
  /** The token endpoint's `Retry-After` (429/503), in ms, when it sent one. */
  readonly retryAfterMs: number | undefined;

  constructor(code: TokenErrorCode, message: string, details: TokenRequestErrorDetails) {
    super(`[ws-bridge] ${message}`, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.reason = details.reason;
    this.permanent = details.permanent;
    this.status = details.status;
    this.oauthError = details.oauthError;
    this.oauthErrorDescription = details.oauthErrorDescription;
    this.retryAfterMs = details.retryAfterMs;
  }

  /** Works across duplicate installs, where `instanceof` does not. */
  static isInstance(value: unknown): value is TokenRequestError {
    return (
      typeof value === 'object' &&
      value !== null &&
      errorMarker in value &&
      (value as { name?: unknown }).name === 'TokenRequestError'
    );
  }
}

/**
 * Whether a token-provider failure can never succeed on retry: a {@link TokenRequestError} with
 * `permanent: true` (an OAuth `invalid_client` / `unauthorized_client` / `unsupported_grant_type` /
 * `invalid_scope`, any HTTP 401, or a closed provider). Anything else (network, timeout, 5xx, 429,
 * unknown errors) is transient.
 * @example
 * ```ts
 * classify: (failure) =>
 *   failure.source === 'token' && isPermanentTokenError(failure.error) ? { class: 'permanent' } : undefined
 * ```
 */
export function isPermanentTokenError(error: unknown): boolean {
  return TokenRequestError.isInstance(error) && error.permanent;
}

/** Options of {@link oauthClientCredentials}. */
export interface OAuthClientCredentialsOptions {
  /** The token endpoint (not the issuer): `https://auth.example.com/oauth/token`. */
  readonly tokenEndpoint: string | URL;
  readonly clientId: string;
  /** Sent per `clientAuth`; never logged, never in an error. */
  readonly clientSecret: string;
  /** The `scope` parameter; an array is joined with spaces. @default none sent */
  readonly scope?: string | readonly string[];
  /** The `audience` parameter (Auth0, Okta-style APIs). @default none sent */
  readonly audience?: string;
  /** More token-request parameters (`resource`...). They cannot override `grant_type`/`scope`/`audience`. */
  readonly extraParameters?: Readonly<Record<string, string>>;
  /**
   * Client authentication: `'basic'` is `client_secret_basic` (HTTP Basic), `'post'` is
   * `client_secret_post` (in the form body).
   * @default 'basic'
   */
  readonly clientAuth?: 'basic' | 'post';
  /** Time base of `expiresAt` and of the request timeout. @default the system clock */
  readonly clock?: Clock;
  /** The `fetch` used for the request. @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** Per-request timeout (on `clock`); a timeout is a transient `WS_TOKEN_REQUEST_FAILED`. @default 10_000 */
  readonly timeoutMs?: number;
  /** Allow an `http:` token endpoint (tests on loopback). Never in production. @default false */
  readonly allowInsecureRequests?: boolean;
  /**
   * A cached token is reused until `expiresAt - min(earlyRefreshMs, lifetime / 2)`; after that
   * `getToken()` fetches a new one. The bridge's proactive refresh passes `forceRefresh: true`.
   * @default 60_000
   */
  readonly earlyRefreshMs?: number;
  /**
   * Lifetime assumed when the response has no `expires_in` (RFC 6749 makes it optional).
   * `Infinity` means the token never expires.
   * @default 3_600_000 (one hour)
   */
  readonly defaultLifetimeMs?: number;
  /** The provider's `name`, for logs. @default 'oauth-client-credentials' */
  readonly name?: string;
}

const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

interface CacheEntry {
  readonly token: Token;
  /** `clock.now()` when the request that produced the token was sent. */
  readonly issuedAt: number;
}

interface InFlight {
  readonly promise: Promise<Token>;
  readonly controller: AbortController;
}

/**
 * An OAuth 2.0 client-credentials token provider.
 *
 * - `getToken()` returns the cached token while it is fresh (see `earlyRefreshMs`), else requests one;
 *   concurrent callers share one in-flight request (single flight), `forceRefresh` included.
 * - `forceRefresh: true` drops the cached token first (after a 401 at the handshake, or for the
 *   bridge's proactive refresh). A caller's `signal` rejects that caller only.
 * - `expiresAt = clock.now() at the request's start + expires_in * 1000` (conservative: the server
 *   issued the token after that); no `expires_in` gives `defaultLifetimeMs`.
 * - `close()` aborts the in-flight request and refuses later calls (`WS_TOKEN_PROVIDER_CLOSED`).
 *
 * @throws {TypeError} at creation when an option is malformed (bad URL, `http:` without
 *   `allowInsecureRequests`, empty `clientId`, bad `timeoutMs`...).
 * @throws {TokenRequestError} from `getToken()`: `WS_TOKEN_REJECTED` for an OAuth error response (a 4xx
 *   with an OAuth `error` body, or a `WWW-Authenticate` challenge)
 *   (`permanent` for `invalid_client`/`unauthorized_client`/`unsupported_grant_type`/`invalid_scope` and any
 *   401), `WS_TOKEN_REQUEST_FAILED` for network errors, timeouts, 5xx/429, malformed responses (transient),
 *   `WS_TOKEN_PROVIDER_CLOSED` after `close()`.
 * @example
 * ```ts
 * const tokenProvider = oauthClientCredentials({
 *   tokenEndpoint: 'https://auth.example.com/oauth/token',
 *   clientId: process.env.CLIENT_ID!,
 *   clientSecret: process.env.CLIENT_SECRET!,
 *   scope: ['bridge:connect'],
 * });
 * const bridge = createBridge({ url: 'wss://api.example.com/ws', tokenProvider, handler });
 * ```
 */
export function oauthClientCredentials(options: OAuthClientCredentialsOptions): TokenProvider {
  const endpoint = parseEndpoint(options.tokenEndpoint, options.allowInsecureRequests === true);
  if (typeof options.clientId !== 'string' || options.clientId.length === 0) {
    throw new TypeError('[ws-bridge] oauthClientCredentials: clientId must be a non-empty string');
  }
  if (typeof options.clientSecret !== 'string') {
    throw new TypeError('[ws-bridge] oauthClientCredentials: clientSecret must be a string');
  }
  const clientAuthKind = options.clientAuth ?? 'basic';
  if (clientAuthKind !== 'basic' && clientAuthKind !== 'post') {
    throw new TypeError("[ws-bridge] oauthClientCredentials: clientAuth must be 'basic' or 'post'");
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  assertDuration('timeoutMs', timeoutMs, false);
  const earlyRefreshMs = options.earlyRefreshMs ?? 60_000;
  assertDuration('earlyRefreshMs', earlyRefreshMs, true);
  const defaultLifetimeMs = options.defaultLifetimeMs ?? 3_600_000;
  if (!(defaultLifetimeMs >= 0)) {
    throw new TypeError('[ws-bridge] oauthClientCredentials: defaultLifetimeMs must be >= 0');
  }
  const clock = options.clock ?? systemClock;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== 'function') {
    throw new TypeError('[ws-bridge] oauthClientCredentials: no fetch available; pass options.fetch');
  }

  const as: AuthorizationServer = { issuer: endpoint.origin, token_endpoint: endpoint.href };
  const client: Client = { client_id: options.clientId };
  const clientAuth: ClientAuth =
    clientAuthKind === 'post'
      ? ClientSecretPost(options.clientSecret)
      : ClientSecretBasic(options.clientSecret);
  const parameters = new URLSearchParams(options.extraParameters);
  parameters.delete('grant_type');
  if (options.scope !== undefined) {
    const scope = typeof options.scope === 'string' ? options.scope : options.scope.join(' ');
    if (scope.length > 0) parameters.set('scope', scope);
  }
  if (options.audience !== undefined) parameters.set('audience', options.audience);
  const where = `${endpoint.origin}${endpoint.pathname}`; // no userinfo, no query: nothing secret

  let cache: CacheEntry | undefined;
  let inFlight: InFlight | undefined;
  let closed = false;

  const closedError = (): TokenRequestError =>
    new TokenRequestError(TokenErrorCode.ProviderClosed, 'the OAuth token provider is closed', {
      reason: 'closed',
      permanent: true,
    });

  const isFresh = (entry: CacheEntry): boolean => {
    const lifetime = entry.token.expiresAt - entry.issuedAt;
    const margin = Math.min(earlyRefreshMs, lifetime / 2);
    return clock.now() < entry.token.expiresAt - margin;
  };

  const request = async (controller: AbortController, startedAt: number): Promise<Token> => {
    let response: Response;
    try {
      response = await clientCredentialsGrantRequest(as, client, clientAuth, parameters, {
        signal: controller.signal,
        [customFetch]: (url, init) => fetchImpl(url, init),
        [allowInsecureRequestsSymbol]: options.allowInsecureRequests === true,
      });
    } catch (error) {
      throw toTokenError(error, controller.signal, where, clock);
    }
    try {
      const body = await processClientCredentialsResponse(as, client, response);
      const expiresIn = body.expires_in;
      const expiresAt =
        expiresIn === undefined ? startedAt + defaultLifetimeMs : startedAt + expiresIn * 1000;
      return Object.freeze({ accessToken: body.access_token, expiresAt });
    } catch (error) {
      throw toTokenError(error, controller.signal, where, clock, response);
    }
  };

  const start = (): InFlight => {
    const controller = new AbortController();
    const startedAt = clock.now();
    const timer = clock.setTimeout(() => {
      controller.abort(
        new TokenRequestError(
          TokenErrorCode.RequestFailed,
          `token request to ${where} timed out after ${timeoutMs} ms`,
          { reason: 'timeout', permanent: false },
        ),
      );
    }, timeoutMs);
    const promise = request(controller, startedAt).then(
      (token) => {
        clock.clearTimeout(timer);
        if (inFlight?.controller === controller) {
          inFlight = undefined;
          if (!closed) cache = { token, issuedAt: startedAt };
        }
        return token;
      },
      (error: unknown) => {
        clock.clearTimeout(timer);
        if (inFlight?.controller === controller) inFlight = undefined;
        throw error;
      },
    );
    // Every caller awaits it, but a caller whose signal aborted no longer does: never unhandled.
    promise.catch(() => {});
    return { promise, controller };
  };

  return {
    name: options.name ?? 'oauth-client-credentials',
    getToken(getOptions) {
      if (closed) return Promise.reject(closedError());
      const signal = getOptions?.signal;
      if (signal?.aborted) return Promise.reject(abortedError(signal));
      if (getOptions?.forceRefresh === true) cache = undefined;
      if (cache !== undefined && isFresh(cache)) return Promise.resolve(cache.token);
      inFlight ??= start();
      return signal === undefined ? inFlight.promise : raceSignal(inFlight.promise, signal);
    },
    close() {
      if (closed) return;
      closed = true;
      cache = undefined;
      const current = inFlight;
      inFlight = undefined;
      current?.controller.abort(closedError());
    },
  };
}

function parseEndpoint(value: string | URL, allowInsecure: boolean): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError('[ws-bridge] oauthClientCredentials: tokenEndpoint is not a valid URL');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowInsecure)) {
    throw new TypeError(
      `[ws-bridge] oauthClientCredentials: tokenEndpoint must be https: (got ${url.protocol}; set allowInsecureRequests for http: test endpoints)`,
    );
  }
  return url;
}

function assertDuration(name: string, value: number, zeroAllowed: boolean): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (!zeroAllowed && value === 0)) {
    throw new TypeError(
      `[ws-bridge] oauthClientCredentials: ${name} must be a ${zeroAllowed ? 'non-negative' : 'positive'} number`,
    );
  }
}

function abortedError(signal: AbortSignal): TokenRequestError {
  return new TokenRequestError(TokenErrorCode.RequestFailed, 'the token request was aborted by the caller', {
    reason: 'aborted',
    permanent: false,
    cause: signal.reason,
  });
}

function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortedError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Retry-After in ms (delta-seconds or an HTTP date), for 429 and 503. */
function retryAfterOf(response: Response | undefined, clock: Clock): number | undefined {
  if (response === undefined || (response.status !== 429 && response.status !== 503)) return undefined;
  const header = response.headers.get('retry-after');
  if (header === null) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - clock.now());
}

function toTokenError(
  error: unknown,
  signal: AbortSignal,
  where: string,
  clock: Clock,
  response?: Response,
): TokenRequestError {
  // Our own aborts (timeout, close) first: whatever oauth4webapi or fetch made of them.
  if (signal.aborted && TokenRequestError.isInstance(signal.reason)) return signal.reason;
  if (error instanceof ResponseBodyError) {
    const permanent = error.status === 401 || PERMANENT_OAUTH_ERRORS.has(error.error);
    return new TokenRequestError(
      TokenErrorCode.Rejected,
      `token endpoint ${where} answered ${error.error} (HTTP ${error.status})`,
      {
        reason: 'oauth_error',
        permanent,
        status: error.status,
        oauthError: error.error,
        oauthErrorDescription: error.error_description,
        retryAfterMs: retryAfterOf(error.response, clock),
      },
    );
  }
  if (error instanceof WWWAuthenticateChallengeError) {
    const challengeError = error.cause
      .map((challenge) => challenge.parameters.error)
      .find((code): code is string => typeof code === 'string');
    const oauthError = challengeError ?? (error.status === 401 ? 'invalid_client' : undefined);
    const permanent =
      error.status === 401 || (oauthError !== undefined && PERMANENT_OAUTH_ERRORS.has(oauthError));
    return new TokenRequestError(
      TokenErrorCode.Rejected,
      `token endpoint ${where} answered ${oauthError ?? 'a WWW-Authenticate challenge'} (HTTP ${error.status})`,
      {
        reason: 'oauth_error',
        permanent,
        status: error.status,
        oauthError,
        oauthErrorDescription: error.cause
          .map((challenge) => challenge.parameters.error_description)
          .find((text): text is string => typeof text === 'string'),
        retryAfterMs: retryAfterOf(error.response, clock),
      },
    );
  }
  if (response !== undefined) {
    // A response that is neither a token nor an OAuth error. The library's error `cause` may hold the
    // response body (an access token!): it is not kept; its message (no values) is.
    const detail = error instanceof OperationProcessingError ? `: ${error.message}` : '';
    if (response.status !== 200) {
      return new TokenRequestError(
        TokenErrorCode.RequestFailed,
        `token endpoint ${where} answered HTTP ${response.status}`,
        {
          reason: 'http',
          permanent: response.status === 401,
          status: response.status,
          oauthError: response.status === 401 ? 'invalid_client' : undefined,
          retryAfterMs: retryAfterOf(response, clock),
        },
      );
    }
    return new TokenRequestError(
      TokenErrorCode.RequestFailed,
      `token endpoint ${where} sent an invalid token response${detail}`,
      { reason: 'invalid_response', permanent: false, status: response.status },
    );
  }
  // No response: fetch failed (refused, reset, DNS, TLS). Its cause (e.g. ECONNREFUSED) holds no secret.
  return new TokenRequestError(
    TokenErrorCode.RequestFailed,
    `token request to ${where} failed: network error`,
    {
      reason: 'network',
      permanent: false,
      cause: error,
    },
  );
}
