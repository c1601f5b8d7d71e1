// The bridge with `oauthClientCredentials` against a real OAuth 2 token endpoint nobody on this project
// wrote (`oauth2-mock-server` on 127.0.0.1) issuing short-lived tokens, and a real `ws` server that
// accepts only tokens the endpoint issued and that have not expired (each upgrade's token is recorded in
// `server.upgrades`). Waits are promises resolved by bridge events, bounded by a timeout.
import { OAuth2Server } from 'oauth2-mock-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBridge } from './bridge';
import { type BridgeError, PermanentError } from './errors';
import { oauthClientCredentials, TokenRequestError } from './oauth';
import { CountingMetrics, nextEvent, trackingClock, within } from './test-support/bridge-harness';
import { startWsServer, type TestWsServer } from './test-support/ws-server';
import type { BridgeEvents, Token, TokenProvider } from './types';

const CLIENT_ID = 'bridge-agent';
const CLIENT_SECRET = 's3cr3t-do-not-log';
const LIFETIME_S = 2;

let oauth: OAuth2Server;
let tokenEndpoint: string;
let serial = 0;

beforeAll(async () => {
  oauth = new OAuth2Server();
  await oauth.issuer.keys.generate('RS256');
  await oauth.start(undefined, '127.0.0.1');
  tokenEndpoint = `${oauth.issuer.url}/token`;
});

afterAll(async () => {
  await oauth.stop();
});

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const task of cleanup.splice(0).reverse()) await task();
  oauth.service.removeAllListeners();
});

/** What the token endpoint did: every request's answer, and the tokens it issued (with their expiry). */
interface Endpoint {
  readonly answers: number[];
  readonly issued: Map<string, number>;
  /** From now on, answer 401 `invalid_client` (the client was revoked). */
  revoke(): void;
  readonly revoked: boolean;
}

/** Short-lived (`expires_in: 2`), unique tokens; records what was issued and answered. */
function shortLivedTokens(): Endpoint {
  const answers: number[] = [];
  const issued = new Map<string, number>();
  let revoked = false;
  oauth.service.on('beforeTokenSigning', (token) => {
    serial += 1;
    token.payload.jti = `t${serial}`; // unique even when signed in the same second
  });
  oauth.service.on('beforeResponse', (response) => {
    if (revoked) {
      response.statusCode = 401;
      response.body = { error: 'invalid_client', error_description: 'client revoked' };
    } else if (typeof response.body === 'object') {
      response.body.expires_in = LIFETIME_S;
      const token = response.body.access_token;
      if (typeof token === 'string') issued.set(token, Date.now() + LIFETIME_S * 1000);
    }
    answers.push(response.statusCode);
  });
  return {
    answers,
    issued,
    revoke: () => {
      revoked = true;
    },
    get revoked() {
      return revoked;
    },
  };
}

/** A pass-through that records the tokens the provider hands to the bridge (as the bridge sees them). */
function recording(provider: TokenProvider): TokenProvider & { tokens: Token[] } {
  const tokens: Token[] = [];
  return {
    name: provider.name,
    tokens,
    getToken: async (options) => {
      const token = await provider.getToken(options);
      tokens.push(token);
      return token;
    },
    close: () => provider.close?.(),
  };
}

/** A `ws` server that accepts only unexpired tokens the endpoint issued (and none once revoked). */
async function resourceServer(endpoint: Endpoint): Promise<TestWsServer> {
  const server = await startWsServer({
    expectToken: (token) => {
      if (token === undefined || endpoint.revoked) return false;
      const expiry = endpoint.issued.get(token);
      return expiry !== undefined && Date.now() < expiry;
    },
  });
  cleanup.push(() => server.close());
  return server;
}

function provider() {
  const tokens = oauthClientCredentials({
    tokenEndpoint,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    allowInsecureRequests: true,
    timeoutMs: 2_000,
  });
  cleanup.push(async () => tokens.close?.());
  return recording(tokens);
}

/** The bridge, token endpoint and resource server of the revoked-client tests. */
async function revocationSetup() {
  const endpoint = shortLivedTokens();
  const server = await resourceServer(endpoint);
  const tokenProvider = provider();
  const metrics = new CountingMetrics();
  const clock = trackingClock();
  const bridge = createBridge({
    url: server.url(),
    tokenProvider,
    metrics,
    clock,
    refreshBufferMs: 500,
    refreshJitter: 0,
    retry: { minBackoffMs: 20, jitter: 0 },
    connectTimeoutMs: 1_000,
    heartbeat: { intervalMs: 200, timeoutMs: 200 },
  });
  cleanup.push(() => bridge.close());
  return { endpoint, server, metrics, clock, bridge };
}

describe('bridge + oauthClientCredentials + oauth2-mock-server (short-lived tokens)', () => {
  it('refreshes proactively before expiry and switches the connection to the new token (make-before-break)', async () => {
    const endpoint = shortLivedTokens();
    const server = await resourceServer(endpoint);
    const closes = new Map<number, Promise<{ code: number; reason: string }>>();
    const opened = new Map<number, number>();
    server.onConnection(({ id, socket }) => {
      opened.set(id, Date.now());
      closes.set(
        id,
        new Promise((resolve) => {
          socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
        }),
      );
    });
    const tokenProvider = provider();
    const metrics = new CountingMetrics();
    const bridge = createBridge({
      url: server.url(),
      tokenProvider,
      metrics,
      refreshBufferMs: 500, // refresh ~1.5 s into a 2 s token
      refreshJitter: 0,
      retry: { minBackoffMs: 20, jitter: 0 },
      connectTimeoutMs: 1_000,
      closeTimeoutMs: 500,
      heartbeat: { intervalMs: 200, timeoutMs: 200 },
    });
    cleanup.push(() => bridge.close());
    const disconnects: BridgeEvents['disconnect'][] = [];
    bridge.on('disconnect', (event) => disconnects.push(event));

    const firstConnect = nextEvent(bridge, 'connect');
    const running = bridge.run();
    await firstConnect;
    const first = tokenProvider.tokens[0] as Token;
    expect(server.upgrades).toHaveLength(1);
    expect(server.upgrades[0]).toMatchObject({ status: 101, token: first.accessToken });

    const refreshed = nextEvent(bridge, 'token-refresh', 3_000);
    const switched = nextEvent(bridge, 'connect', 4_000);
    const refresh = await refreshed;
    const refreshedAt = Date.now();
    // The refresh came before the old token expired, and brought a token that lives longer.
    expect(refreshedAt).toBeLessThan(first.expiresAt);
    expect(refresh.mode).toBe('reconnect');
    expect(refresh.expiresAt).toBeGreaterThan(first.expiresAt);
    // Written during the switch: queued, then delivered once, on the new connection.
    expect(bridge.send('during switch').status).toBe('queued');

    await switched;
    const second = tokenProvider.tokens[1] as Token;
    expect(second.accessToken).not.toBe(first.accessToken);
    expect(second.expiresAt).toBe(refresh.expiresAt);
    expect(server.upgrades.map((u) => [u.status, u.token])).toEqual([
      [101, first.accessToken],
      [101, second.accessToken],
    ]);
    const newId = server.upgrades[1]?.connectionId as number;
    const oldId = server.upgrades[0]?.connectionId as number;
    // The server saw the new token's connection open while the old token was still valid.
    expect(opened.get(newId)).toBeLessThan(first.expiresAt);

    // Make-before-break: the old connection is closed by the bridge with 1000 after the switch.
    const oldClosed = closes.get(oldId) as Promise<{ code: number; reason: string }>;
    expect(await within(oldClosed, 2_000, 'old connection close')).toEqual({
      code: 1000,
      reason: 'token refresh',
    });
    expect(server.connections().map((c) => c.id)).toEqual([newId]);
    const during = server.messages.filter((m) => m.text === 'during switch');
    expect(during.map((m) => m.connectionId)).toEqual([newId]);

    expect(disconnects).toEqual([]); // the switch is not a disconnect
    expect(endpoint.answers).toEqual([200, 200]);
    expect(metrics).toMatchObject({
      connections: 2,
      disconnects: { transient: 0, permanent: 0 },
      tokenRefreshes: 1,
      reconnectAttempts: 0,
    });
    await bridge.close();
    await expect(within(running, 2_000, 'run()')).resolves.toBeUndefined();
  });

  it('a revoked client (401 invalid_client) stops the bridge with PermanentError after a forced reconnect', async () => {
    const { endpoint, server, metrics, clock, bridge } = await revocationSetup();
    const retries: BridgeEvents['retry'][] = [];
    bridge.on('retry', (retry) => retries.push(retry));

    const connected = nextEvent(bridge, 'connect');
    const outcome = bridge.run().then(
      () => undefined,
      (error: unknown) => error,
    );
    await connected;
    expect(endpoint.answers).toEqual([200]);

    // Revoked: the token endpoint answers 401 invalid_client from now on, and the resource server
    // rejects the client's tokens. Then the connection is dropped (no close frame).
    endpoint.revoke();
    const lost = nextEvent(bridge, 'disconnect');
    server.terminateAll();
    expect((await lost).class).toBe('transient');

    const error = await within(outcome, 5_000, 'run()');
    expect(PermanentError.isInstance(error)).toBe(true);
    const permanent = error as PermanentError;
    expect(permanent.code).toBe('WS_TOKEN_FAILED');
    // The cause chain leads to the token endpoint's answer; the secret is nowhere in it.
    let cause: unknown = permanent;
    while (cause !== undefined && !TokenRequestError.isInstance(cause))
      cause = (cause as { cause?: unknown }).cause;
    expect(cause).toMatchObject({ oauthError: 'invalid_client', status: 401, permanent: true });
    expect(`${permanent.message} ${String((cause as Error).message)}`).not.toContain(CLIENT_SECRET);

    // The reconnect with the cached (now rejected) token got a 401 at the upgrade; the forced refresh
    // then asked the endpoint once, got invalid_client, and the bridge stopped.
    expect(server.upgrades.map((u) => u.status)).toEqual([101, 401]);
    expect(endpoint.answers).toEqual([200, 401]);
    expect(retries.map((r) => [r.class, (r.error as BridgeError).code])).toEqual([
      ['transient', 'WS_CONNECTION_LOST'],
      ['transient', 'WS_UNAUTHORIZED'],
    ]);
    expect(bridge.state).toBe('failed');
    // No further connection attempt: nothing is scheduled, and nothing new reached either server.
    expect(clock.pending).toBe(0);
    expect(bridge.send('after')).toEqual({ status: 'rejected', reason: 'permanent_failure' });
    expect(server.stats().attempted).toBe(2);
    expect(endpoint.answers).toHaveLength(2);
    expect(metrics).toMatchObject({
      connections: 1,
      disconnects: { transient: 1, permanent: 0 },
      tokenRefreshes: 1,
      reconnectAttempts: 2,
    });
  });

  it('a revoked client seen at the next token fetch (close 4401 forces it) stops the bridge without another upgrade', async () => {
    const { endpoint, server, metrics, clock, bridge } = await revocationSetup();

    const connected = nextEvent(bridge, 'connect');
    const outcome = bridge.run().then(
      () => undefined,
      (error: unknown) => error,
    );
    await connected;
    endpoint.revoke();
    const lost = nextEvent(bridge, 'disconnect');
    const retried = nextEvent(bridge, 'retry');
    server.closeAll(4401, 'token revoked'); // like HTTP 401: reconnect with a forced token refresh
    const disconnect = await lost;
    expect(disconnect.class).toBe('transient');
    expect((disconnect.error as BridgeError).failure).toMatchObject({ source: 'close', code: 4401 });
    // 4401 is "like HTTP 401": an immediate retry (delay 0) whose token fetch is forced.
    expect(await retried).toMatchObject({ class: 'transient', delayMs: 0 });

    const error = await within(outcome, 5_000, 'run()');
    expect(PermanentError.isInstance(error)).toBe(true);
    expect((error as PermanentError).code).toBe('WS_TOKEN_FAILED');
    expect(endpoint.answers).toEqual([200, 401]);
    expect(server.upgrades.map((u) => u.status)).toEqual([101]); // no upgrade after the revocation
    expect(bridge.state).toBe('failed');
    expect(clock.pending).toBe(0);
    expect(metrics).toMatchObject({ connections: 1, tokenRefreshes: 1, reconnectAttempts: 1 });
  });
});
