// The OAuth client-credentials provider against a real OAuth 2 token endpoint that nobody on this project
// wrote: `oauth2-mock-server` on 127.0.0.1, a random port. Its `beforeTokenSigning` / `beforeResponse`
// events shape the answers (short-lived tokens, a revoked client, an outage) and count the requests.
import { createServer, type Server, type Socket } from 'node:net';
import { OAuth2Server } from 'oauth2-mock-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  isPermanentTokenError,
  type OAuthClientCredentialsOptions,
  oauthClientCredentials,
  TokenRequestError,
} from './oauth';
import type { Clock } from './types';

const CLIENT_ID = 'bridge-agent';
const CLIENT_SECRET = 's3cr3t-do-not-log';

let server: OAuth2Server;
let tokenEndpoint: string;
let requests: { authorization: string | undefined; body: Record<string, unknown> }[] = [];
let serial = 0;

beforeAll(async () => {
  server = new OAuth2Server();
  await server.issuer.keys.generate('RS256');
  await server.start(undefined, '127.0.0.1');
  tokenEndpoint = `${server.issuer.url}/token`;
});

afterAll(async () => {
  await server.stop();
});

function listen(): void {
  requests = [];
  // Count every token request the server answers, and make each token unique (a `jti`): two JWTs signed
  // in the same second with the same claims are byte-identical otherwise.
  server.service.on('beforeTokenSigning', (token) => {
    serial += 1;
    token.payload.jti = `t${serial}`;
  });
  server.service.on('beforeResponse', (_response, req) => {
    requests.push({ authorization: req.headers.authorization, body: { ...req.body } });
  });
}

afterEach(() => {
  server.service.removeAllListeners();
});

function provider(overrides: Partial<OAuthClientCredentialsOptions> = {}) {
  return oauthClientCredentials({
    tokenEndpoint,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    allowInsecureRequests: true,
    ...overrides,
  });
}

/** A clock whose time only moves when the test says so (timers run on the real clock). */
function manualClock(start: number): Clock & { set(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    set: (ms) => {
      now = ms;
    },
    setTimeout: (callback, ms) => setTimeout(callback, ms),
    clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  };
}

async function rejection(promise: Promise<unknown>): Promise<TokenRequestError> {
  try {
    await promise;
  } catch (error) {
    expect(TokenRequestError.isInstance(error)).toBe(true);
    return error as TokenRequestError;
  }
  throw new Error('expected a rejection');
}

function expectNoSecret(error: Error): void {
  const text = `${error.message} ${String(error.stack)} ${JSON.stringify(error)}`;
  expect(text).not.toContain(CLIENT_SECRET);
}

describe('oauthClientCredentials against oauth2-mock-server', () => {
  it('fetches a token with client_secret_basic and caches it', async () => {
    listen();
    const tokens = provider({ scope: ['bridge:connect', 'bridge:send'], audience: 'wss://api.test' });
    const first = await tokens.getToken();
    expect(first.accessToken.split('.')).toHaveLength(3); // a JWT signed by the mock server
    const second = await tokens.getToken();
    expect(second).toBe(first);
    expect(requests).toHaveLength(1);
    const request = requests[0]!;
    expect(request.body.grant_type).toBe('client_credentials');
    expect(request.body.scope).toBe('bridge:connect bridge:send');
    expect(request.body.audience).toBe('wss://api.test');
    expect(request.body.client_secret).toBeUndefined();
    // RFC 6749 2.3.1: id and secret are form-urlencoded before the Basic encoding.
    const basic = Buffer.from(request.authorization!.replace(/^Basic /, ''), 'base64').toString();
    expect(basic.split(':').map(decodeURIComponent)).toEqual([CLIENT_ID, CLIENT_SECRET]);
    await tokens.close?.();
  });

  it("sends the credentials in the body with clientAuth: 'post'", async () => {
    listen();
    const tokens = provider({ clientAuth: 'post' });
    await tokens.getToken();
    expect(requests).toHaveLength(1);
    expect(requests[0]!.authorization).toBeUndefined();
    expect(requests[0]!.body.client_id).toBe(CLIENT_ID);
    expect(requests[0]!.body.client_secret).toBe(CLIENT_SECRET);
  });

  it('10 concurrent getToken() calls make one HTTP request', async () => {
    listen();
    const tokens = provider();
    const results = await Promise.all(Array.from({ length: 10 }, () => tokens.getToken()));
    expect(requests).toHaveLength(1);
    for (const token of results) expect(token).toBe(results[0]);
    // forceRefresh callers that arrive together share one request too.
    const forced = await Promise.all(
      Array.from({ length: 5 }, () => tokens.getToken({ forceRefresh: true })),
    );
    expect(requests).toHaveLength(2);
    for (const token of forced) expect(token).toBe(forced[0]);
  });

  it('forceRefresh drops the cached token and fetches a new one', async () => {
    listen();
    const tokens = provider();
    const first = await tokens.getToken();
    const refreshed = await tokens.getToken({ forceRefresh: true });
    expect(requests).toHaveLength(2);
    expect(refreshed.accessToken).not.toBe(first.accessToken);
    expect(await tokens.getToken()).toBe(refreshed);
    expect(requests).toHaveLength(2);
  });

  it('expiresAt = clock.now() + expires_in * 1000 on an injected clock; reuse ends before expiry', async () => {
    listen();
    server.service.on('beforeResponse', (response) => {
      if (typeof response.body === 'object') response.body.expires_in = 2;
    });
    const clock = manualClock(1_000_000);
    const tokens = provider({ clock }); // earlyRefreshMs 60 s, clamped to half the 2 s lifetime
    const first = await tokens.getToken();
    expect(first.expiresAt).toBe(1_002_000);
    clock.set(1_000_999);
    expect(await tokens.getToken()).toBe(first);
    expect(requests).toHaveLength(1);
    clock.set(1_001_000);
    const second = await tokens.getToken();
    expect(second).not.toBe(first);
    expect(second.expiresAt).toBe(1_003_000);
    expect(requests).toHaveLength(2);
  });

  it('earlyRefreshMs: 0 reuses the token until its very expiry', async () => {
    listen();
    server.service.on('beforeResponse', (response) => {
      if (typeof response.body === 'object') response.body.expires_in = 2;
    });
    const clock = manualClock(5_000);
    const tokens = provider({ clock, earlyRefreshMs: 0 });
    const first = await tokens.getToken();
    clock.set(6_999);
    expect(await tokens.getToken()).toBe(first);
    clock.set(7_000);
    expect(await tokens.getToken()).not.toBe(first);
    expect(requests).toHaveLength(2);
  });

  it('no expires_in: the token lives defaultLifetimeMs', async () => {
    listen();
    server.service.on('beforeResponse', (response) => {
      if (typeof response.body === 'object') delete response.body.expires_in;
    });
    const clock = manualClock(0);
    expect((await provider({ clock }).getToken()).expiresAt).toBe(3_600_000);
    expect((await provider({ clock, defaultLifetimeMs: 90_000 }).getToken()).expiresAt).toBe(90_000);
    expect(
      (await provider({ clock, defaultLifetimeMs: Number.POSITIVE_INFINITY }).getToken()).expiresAt,
    ).toBe(Number.POSITIVE_INFINITY);
  });

  it('a short-lived token (expires_in: 1) is renewed on the real clock', async () => {
    listen();
    server.service.on('beforeResponse', (response) => {
      if (typeof response.body === 'object') response.body.expires_in = 1;
    });
    const tokens = provider();
    const before = Date.now();
    const first = await tokens.getToken();
    expect(first.expiresAt).toBeGreaterThanOrEqual(before + 1000);
    expect(first.expiresAt).toBeLessThanOrEqual(Date.now() + 1000);
    await new Promise((resolve) => setTimeout(resolve, 600)); // past half the lifetime
    const second = await tokens.getToken();
    expect(second.accessToken).not.toBe(first.accessToken);
    expect(requests).toHaveLength(2);
  });

  it('a revoked client (401 invalid_client) is a permanent typed error', async () => {
    listen();
    server.service.on('beforeResponse', (response) => {
      response.statusCode = 401;
      response.body = { error: 'invalid_client', error_description: 'client revoked' };
    });
    const error = await rejection(provider().getToken());
    expect(error.code).toBe('WS_TOKEN_REJECTED');
    expect(error.reason).toBe('oauth_error');
    expect(error.oauthError).toBe('invalid_client');
    expect(error.oauthErrorDescription).toBe('client revoked');
    expect(error.status).toBe(401);
    expect(error.permanent).toBe(true);
    expect(isPermanentTokenError(error)).toBe(true);
    expect(Symbol.for('trestle.ws-bridge.error') in error).toBe(true);
    expectNoSecret(error);
  });

  it.each([
    [400, 'unauthorized_client', true],
    [400, 'invalid_scope', true],
    [400, 'invalid_request', false],
  ])('HTTP %i %s: permanent = %s', async (status, code, permanent) => {
    listen();
    server.service.once('beforeResponse', (response) => {
      response.statusCode = status;
      response.body = { error: code };
    });
    const tokens = provider();
    const error = await rejection(tokens.getToken());
    expect(error.code).toBe('WS_TOKEN_REJECTED');
    expect(error.oauthError).toBe(code);
    expect(error.status).toBe(status);
    expect(isPermanentTokenError(error)).toBe(permanent);
    // A failure is not cached: the next call asks again (and the server now answers).
    expect((await tokens.getToken()).accessToken).toBeTruthy();
    expect(requests).toHaveLength(2);
  });

  it('a 5xx outage is a transient request failure, and the next call succeeds', async () => {
    listen();
    server.service.once('beforeResponse', (response) => {
      response.statusCode = 503;
      response.body = { error: 'temporarily_unavailable' };
    });
    const tokens = provider();
    const error = await rejection(tokens.getToken());
    expect(error).toMatchObject({
      code: 'WS_TOKEN_REQUEST_FAILED',
      reason: 'http',
      status: 503,
      permanent: false,
    });
    expect((await tokens.getToken()).accessToken).toBeTruthy();
    expect(requests).toHaveLength(2);
  });

  it('a 401 with a WWW-Authenticate challenge is permanent; a 429 carries Retry-After', async () => {
    const challenge = oauthClientCredentials({
      tokenEndpoint: 'https://auth.invalid/token',
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      fetch: async () =>
        new Response('', {
          status: 401,
          headers: { 'www-authenticate': 'Basic realm="token", error="invalid_client"' },
        }),
    });
    const unauthorized = await rejection(challenge.getToken());
    expect(unauthorized).toMatchObject({ status: 401, oauthError: 'invalid_client', permanent: true });

    const limited = oauthClientCredentials({
      tokenEndpoint: 'https://auth.invalid/token',
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      fetch: async () =>
        new Response('<html>slow down</html>', { status: 429, headers: { 'retry-after': '7' } }),
    });
    const tooMany = await rejection(limited.getToken());
    expect(tooMany).toMatchObject({
      code: 'WS_TOKEN_REQUEST_FAILED',
      reason: 'http',
      status: 429,
      retryAfterMs: 7000,
      permanent: false,
    });
  });

  it('a 200 that is not a token response is a transient error that leaks no token', async () => {
    listen();
    server.service.once('beforeResponse', (response) => {
      if (typeof response.body === 'object') response.body.token_type = 42;
    });
    const error = await rejection(provider().getToken());
    expect(error).toMatchObject({
      code: 'WS_TOKEN_REQUEST_FAILED',
      reason: 'invalid_response',
      permanent: false,
    });
    expect(error.cause).toBeUndefined();
    expectNoSecret(error);
  });
});

describe('oauthClientCredentials: unreachable and silent endpoints', () => {
  let silent: Server;
  let silentPort = 0;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    // Accepts TCP connections and never answers: a frozen token endpoint.
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    silentPort = typeof address === 'object' && address !== null ? address.port : 0;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('an unreachable endpoint is a transient network error, well within the timeout', async () => {
    // A port that was free a moment ago: nothing listens on it.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const address = probe.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const started = Date.now();
    const error = await rejection(
      provider({ tokenEndpoint: `http://127.0.0.1:${port}/token`, timeoutMs: 2_000 }).getToken(),
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error).toMatchObject({ code: 'WS_TOKEN_REQUEST_FAILED', reason: 'network', permanent: false });
    expect(isPermanentTokenError(error)).toBe(false);
    expectNoSecret(error);
  });

  it('a silent endpoint is a transient timeout after timeoutMs', async () => {
    const started = Date.now();
    const error = await rejection(
      provider({ tokenEndpoint: `http://127.0.0.1:${silentPort}/token`, timeoutMs: 300 }).getToken(),
    );
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2_000);
    expect(error).toMatchObject({ code: 'WS_TOKEN_REQUEST_FAILED', reason: 'timeout', permanent: false });
  });

  it('close() aborts the in-flight request and refuses later calls', async () => {
    const tokens = provider({ tokenEndpoint: `http://127.0.0.1:${silentPort}/token`, timeoutMs: 10_000 });
    const pending = rejection(tokens.getToken());
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await tokens.close?.();
    const error = await pending;
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error).toMatchObject({ code: 'WS_TOKEN_PROVIDER_CLOSED', reason: 'closed' });
    expect((await rejection(tokens.getToken())).code).toBe('WS_TOKEN_PROVIDER_CLOSED');
  });

  it("a caller's signal rejects that caller only; the shared request goes on", async () => {
    const tokens = provider({ tokenEndpoint: `http://127.0.0.1:${silentPort}/token`, timeoutMs: 400 });
    const controller = new AbortController();
    const aborted = rejection(tokens.getToken({ signal: controller.signal }));
    const other = rejection(tokens.getToken());
    controller.abort();
    expect(await aborted).toMatchObject({ reason: 'aborted', permanent: false });
    expect(await other).toMatchObject({ reason: 'timeout' });
    const already = rejection(tokens.getToken({ signal: AbortSignal.abort() }));
    expect((await already).reason).toBe('aborted');
  });
});

describe('oauthClientCredentials: options', () => {
  it('refuses an http: endpoint unless allowInsecureRequests, and malformed options', () => {
    const base = { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET };
    expect(() => oauthClientCredentials({ ...base, tokenEndpoint: 'http://127.0.0.1:1/token' })).toThrow(
      TypeError,
    );
    expect(() => oauthClientCredentials({ ...base, tokenEndpoint: 'not a url' })).toThrow(TypeError);
    expect(() =>
      oauthClientCredentials({ ...base, tokenEndpoint: 'https://a.test/t', clientId: '' }),
    ).toThrow(TypeError);
    expect(() =>
      oauthClientCredentials({ ...base, tokenEndpoint: 'https://a.test/t', timeoutMs: 0 }),
    ).toThrow(TypeError);
    expect(oauthClientCredentials({ ...base, tokenEndpoint: new URL('https://a.test/t') }).name).toBe(
      'oauth-client-credentials',
    );
  });

  it('isPermanentTokenError is false for anything that is not a permanent TokenRequestError', () => {
    expect(isPermanentTokenError(new Error('invalid_client'))).toBe(false);
    expect(isPermanentTokenError({ permanent: true })).toBe(false);
    expect(isPermanentTokenError(undefined)).toBe(false);
  });
});
