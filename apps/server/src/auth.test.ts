import { mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator, extractToken, signDevToken, signToken } from './auth';
import { DEFAULT_SERVER_TIERS } from './config';
import {
  connect,
  refused,
  startTestServer,
  TEST_SECRET,
  type TestServer,
  testConfig,
} from './test-support/protocol-harness';

const secret = new TextEncoder().encode(TEST_SECRET);
const now = () => Math.floor(Date.now() / 1000);

function hs256(claims: Record<string, unknown>, key: Uint8Array = secret, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(key);
}

describe('refusals at the upgrade, over a real socket', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.server.close());

  it('missing token: 401 AUTH_MISSING, WWW-Authenticate Bearer, JSON body, Connection: close', async () => {
    const response = await refused(connect(t.server.url, undefined));
    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer realm="trestle"');
    expect(response.headers['content-type']).toContain('application/json');
    expect(response.headers.connection).toBe('close');
    expect(JSON.parse(response.body)).toEqual({
      error: 'AUTH_MISSING',
      message: expect.stringContaining('bearer token'),
    });
  });

  it('malformed token: 401 AUTH_MALFORMED with error="invalid_token"', async () => {
    const response = await refused(connect(t.server.url, 'not-a-jwt'));
    expect(response.status).toBe(401);
    expect(JSON.parse(response.body).error).toBe('AUTH_MALFORMED');
    expect(response.headers['www-authenticate']).toMatch(
      /^Bearer realm="trestle", error="invalid_token", error_description="[^"]+"$/,
    );
  });

  it('wrong signature: 401 AUTH_BAD_SIGNATURE', async () => {
    const token = await hs256(
      { sub: 'acme', tier: 'free', exp: now() + 60 },
      new TextEncoder().encode('another-secret-0123456789abcdef-xyz'),
    );
    const response = await refused(connect(t.server.url, token));
    expect(response.status).toBe(401);
    expect(JSON.parse(response.body).error).toBe('AUTH_BAD_SIGNATURE');
  });

  it('expired: 401 AUTH_EXPIRED', async () => {
    const token = await hs256({ sub: 'acme', tier: 'free', exp: now() - 60 });
    const response = await refused(connect(t.server.url, token));
    expect(response.status).toBe(401);
    expect(JSON.parse(response.body)).toEqual({ error: 'AUTH_EXPIRED', message: 'the token has expired' });
  });

  it('unknown tier, missing tier, missing exp, bad sub: 403 AUTH_FORBIDDEN', async () => {
    for (const claims of [
      { sub: 'acme', tier: 'gold', exp: now() + 60 },
      { sub: 'acme', exp: now() + 60 },
      { sub: 'acme', tier: 'free' },
      { sub: 'a b', tier: 'free', exp: now() + 60 },
      { sub: 'x'.repeat(129), tier: 'free', exp: now() + 60 },
      { tier: 'free', exp: now() + 60 },
      { sub: 'acme', tier: 'toString', exp: now() + 60 },
    ]) {
      const response = await refused(connect(t.server.url, await hs256(claims)));
      expect(response.status, JSON.stringify(claims)).toBe(403);
      expect(JSON.parse(response.body).error).toBe('AUTH_FORBIDDEN');
    }
  });

  it('a token with alg none or another HMAC is malformed (algorithms are pinned)', async () => {
    const payload = Buffer.from(JSON.stringify({ sub: 'acme', tier: 'free', exp: now() + 60 })).toString(
      'base64url',
    );
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`;
    expect(JSON.parse((await refused(connect(t.server.url, none))).body).error).toBe('AUTH_MALFORMED');
    const hs512 = await hs256({ sub: 'acme', tier: 'free', exp: now() + 60 }, secret, 'HS512');
    expect(JSON.parse((await refused(connect(t.server.url, hs512))).body).error).toBe('AUTH_MALFORMED');
  });

  it('a valid token connects and the App sees the principal (header and access_token query)', async () => {
    const token = await t.token({ tenant: 'acme', tier: 'premium' });
    for (const query of [false, true]) {
      const client = await connect(t.server.url, token, { query });
      const reply = await client.request('whoami', {});
      expect(reply.result).toMatchObject({ tenant: 'acme', tier: 'premium' });
      const seen = t.app.connections.at(-1);
      expect(seen?.principal).toEqual({ tenant: 'acme', tier: 'premium', expiresAt: expect.any(Number) });
      expect(seen?.principal.expiresAt).toBeGreaterThan(now());
      expect(seen?.remoteAddress).toBe('127.0.0.1');
      await client.close();
    }
  });

  it('upgrades elsewhere than /rpc are 404', async () => {
    const response = await refused(connect(t.server.url.replace('/rpc', '/other'), await t.token()));
    expect(response.status).toBe(404);
  });
});

describe('issuer and audience, when configured', () => {
  it('accepts matching claims and refuses others with 403', async () => {
    const t = await startTestServer(testConfig(['--jwt-issuer', 'https://idp', '--jwt-audience', 'trestle']));
    try {
      const good = await signToken({
        tenant: 'acme',
        tier: 'free',
        ttlSeconds: 60,
        secret,
        issuer: 'https://idp',
        audience: 'trestle',
      });
      const client = await connect(t.server.url, good);
      expect((await client.request('whoami', {})).result).toMatchObject({ tenant: 'acme' });
      await client.close();
      for (const [issuer, audience] of [
        ['https://other', 'trestle'],
        ['https://idp', 'other'],
        [undefined, 'trestle'],
      ]) {
        const token = await signToken({
          tenant: 'acme',
          tier: 'free',
          ttlSeconds: 60,
          secret,
          issuer,
          audience,
        });
        const response = await refused(connect(t.server.url, token));
        expect(response.status).toBe(403);
        expect(JSON.parse(response.body).error).toBe('AUTH_FORBIDDEN');
      }
    } finally {
      await t.server.close();
    }
  });
});

describe('a JWKS file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trestle-jwks-'));

  it('verifies RS256 and ES256 tokens signed by the matching private keys, over a real socket', async () => {
    const rsa = await generateKeyPair('RS256');
    const ec = await generateKeyPair('ES256');
    const other = await generateKeyPair('ES256');
    const file = join(dir, 'jwks.json');
    writeFileSync(
      file,
      JSON.stringify({
        keys: [
          { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
          { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256' },
          { ...(await exportJWK(other.publicKey)), kid: 'ec-2', alg: 'ES256' },
        ],
      }),
    );
    const config = testConfig(['--jwks-file', file], { TRESTLE_JWT_SECRET: '' });
    const t = await startTestServer(config);
    try {
      expect(t.server.authenticator.devSecret).toBeUndefined();
      const claims = { sub: 'tenant-jwks', tier: 'basic' };
      const rsToken = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' })
        .setExpirationTime('5m')
        .sign(rsa.privateKey);
      const client = await connect(t.server.url, rsToken);
      expect((await client.request('whoami', {})).result).toMatchObject({
        tenant: 'tenant-jwks',
        tier: 'basic',
      });
      await client.close();

      // No kid: two ES256 keys match, each is tried.
      const esToken = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256' })
        .setExpirationTime('5m')
        .sign(ec.privateKey);
      const esClient = await connect(t.server.url, esToken);
      expect((await esClient.request('whoami', {})).result).toMatchObject({ tenant: 'tenant-jwks' });
      await esClient.close();

      const stranger = await generateKeyPair('ES256');
      const forged = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: 'ec-1' })
        .setExpirationTime('5m')
        .sign(stranger.privateKey);
      const response = await refused(connect(t.server.url, forged));
      expect(response.status).toBe(401);
      expect(JSON.parse(response.body).error).toBe('AUTH_BAD_SIGNATURE');

      const unknownKid = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: 'nope' })
        .setExpirationTime('5m')
        .sign(ec.privateKey);
      expect(JSON.parse((await refused(connect(t.server.url, unknownKid))).body).error).toBe(
        'AUTH_BAD_SIGNATURE',
      );

      // HS256 is not accepted when only a JWKS is configured.
      const hs = await signToken({ tenant: 'acme', tier: 'free', ttlSeconds: 60, secret });
      expect(JSON.parse((await refused(connect(t.server.url, hs))).body).error).toBe('AUTH_MALFORMED');
    } finally {
      await t.server.close();
    }
  });
});

describe('extractToken', () => {
  const request = (url: string, authorization?: string) =>
    ({ url, headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage;

  it('reads the Bearer header (any case) or access_token, and refuses both at once or another scheme', () => {
    expect(extractToken(request('/rpc', 'Bearer abc'))).toBe('abc');
    expect(extractToken(request('/rpc', 'bearer abc'))).toBe('abc');
    expect(extractToken(request('/rpc?access_token=xyz'))).toBe('xyz');
    expect(extractToken(request('/rpc?access_token=xyz', 'Bearer abc'))).toMatchObject({
      code: 'AUTH_MALFORMED',
    });
    expect(extractToken(request('/rpc', 'Basic dXNlcjpwYXNz'))).toMatchObject({
      status: 401,
      code: 'AUTH_MALFORMED',
    });
    expect(extractToken(request('/rpc'))).toMatchObject({ status: 401, code: 'AUTH_MISSING' });
    expect(extractToken(request('/rpc?access_token='))).toMatchObject({ code: 'AUTH_MISSING' });
    expect(extractToken(request('/rpc', `Bearer ${'a'.repeat(9000)}`))).toMatchObject({
      code: 'AUTH_MALFORMED',
    });
  });
});

describe('signToken and the dev secret', () => {
  it('mints a token with sub, tier, iat, exp, iss and aud that jose verifies with the same secret', async () => {
    const token = await signToken({
      tenant: 'acme',
      tier: 'basic',
      ttlSeconds: 120,
      secret: TEST_SECRET,
      issuer: 'i',
      audience: 'a',
      now: 1_000,
    });
    const { payload, protectedHeader } = await jwtVerify(token, secret, { currentDate: new Date(1_010_000) });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload).toEqual({ sub: 'acme', tier: 'basic', iat: 1000, exp: 1120, iss: 'i', aud: 'a' });
  });

  it('refuses bad input', async () => {
    await expect(signToken({ tenant: 'a b', tier: 'free', ttlSeconds: 1, secret })).rejects.toThrow(
      RangeError,
    );
    await expect(signToken({ tenant: 'a', tier: 'free', ttlSeconds: 0, secret })).rejects.toThrow(
      'ttlSeconds',
    );
    await expect(signToken({ tenant: 'a', tier: 'free', ttlSeconds: 1, secret: 'short' })).rejects.toThrow(
      '32 bytes',
    );
  });

  it('generates a 32-byte dev secret when neither a secret nor a JWKS file is configured', async () => {
    const auth = { secret: undefined, jwksFile: undefined, issuer: undefined, audience: undefined };
    const authenticator = createAuthenticator(auth, DEFAULT_SERVER_TIERS);
    expect(authenticator.devSecret?.byteLength).toBe(32);
    const dev = await signDevToken(authenticator.devSecret!, { tiers: DEFAULT_SERVER_TIERS, auth });
    expect(dev).toMatchObject({ tenant: 'dev', tier: 'free', ttlSeconds: 43_200 });
    expect(await authenticator.verify(dev.token)).toEqual({
      ok: true,
      principal: { tenant: 'dev', tier: 'free', expiresAt: expect.any(Number) },
    });
    const configured = createAuthenticator({ ...auth, secret }, DEFAULT_SERVER_TIERS);
    expect(configured.devSecret).toBeUndefined();
    expect((await configured.verify(dev.token)).ok).toBe(false);
  });
});
