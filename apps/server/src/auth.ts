/**
 * Bearer JWT authentication at the WebSocket upgrade, with `jose`: an HS256 secret, a JWKS file of
 * public keys, or both (the token's `alg` picks). Claims: `sub` (the tenant), `tier` (a configured tier),
 * `exp` (required); `iss` / `aud` when configured. Every failure is a typed {@link AuthRefusal}.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import {
  type CryptoKey,
  createLocalJWKSet,
  decodeProtectedHeader,
  type JWTPayload,
  type JWTVerifyOptions,
  jwtVerify,
  SignJWT,
} from 'jose';
import { MIN_SECRET_BYTES } from './config';
import type { Principal, ServerConfig } from './contracts';

/** Stable codes of an upgrade refused by authentication. */
export type AuthRefusalCode =
  | 'AUTH_MISSING'
  | 'AUTH_MALFORMED'
  | 'AUTH_BAD_SIGNATURE'
  | 'AUTH_EXPIRED'
  | 'AUTH_FORBIDDEN';

/** Why an upgrade was refused: 401 (no usable token) or 403 (a valid token that grants nothing here). */
export interface AuthRefusal {
  readonly ok: false;
  readonly status: 401 | 403;
  readonly code: AuthRefusalCode;
  /** Human readable; safe to send (never echoes the token). */
  readonly message: string;
}

/** The outcome of {@link Authenticator.authenticate}. */
export type AuthResult = { readonly ok: true; readonly principal: Principal } | AuthRefusal;

/** Verifies bearer tokens. */
export interface Authenticator {
  /** Reads the token from `Authorization: Bearer <jwt>` or the `access_token` query parameter. */
  authenticate(request: IncomingMessage): Promise<AuthResult>;
  /** Verifies one compact JWT. */
  verify(token: string): Promise<AuthResult>;
  /**
   * The random HS256 secret generated because neither a secret nor a JWKS file was configured (dev
   * mode): mint a dev token with it. `undefined` when a secret or JWKS file is configured.
   */
  readonly devSecret: Uint8Array | undefined;
  /** The HS256 secret in use (configured or generated), if any: what `signToken` needs. */
  readonly secret: Uint8Array | undefined;
}

/** Tenants (`sub`): 1 to 128 characters of `A-Z a-z 0-9 . _ : @ -`. */
export const TENANT_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;

/** Asymmetric algorithms accepted from a JWKS file (HS256 only with the secret). */
export const JWKS_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

/** Tokens longer than this are refused as malformed before any parsing. */
export const MAX_TOKEN_LENGTH = 8192;

/** Leeway for `exp` / `nbf`, in seconds. */
export const CLOCK_TOLERANCE_SECONDS = 5;

const refuse = (status: 401 | 403, code: AuthRefusalCode, message: string): AuthRefusal =>
  Object.freeze({ ok: false, status, code, message });

/** Reads and checks a JWKS file; throws an `Error` naming the file. */
export function loadJwksFile(file: string): ReturnType<typeof createLocalJWKSet> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read the JWKS file ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return createLocalJWKSet(json as Parameters<typeof createLocalJWKSet>[0]);
  } catch (error) {
    throw new Error(`${file} is not a valid JWKS: ${(error as Error).message}`, { cause: error });
  }
}

/** The bearer token of an upgrade request, or a refusal (`AUTH_MISSING` / `AUTH_MALFORMED`). */
export function extractToken(request: IncomingMessage): string | AuthRefusal {
  const header = request.headers.authorization;
  let query: string | null = null;
  try {
    query = new URL(request.url ?? '/', 'http://localhost').searchParams.get('access_token');
  } catch {
    query = null;
  }
  let token: string | undefined;
  if (header !== undefined && header !== '') {
    const match = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(header);
    if (!match) return refuse(401, 'AUTH_MALFORMED', 'the Authorization header must be "Bearer <jwt>"');
    if (query !== null) {
      return refuse(
        401,
        'AUTH_MALFORMED',
        'give the token once: Authorization header or access_token, not both',
      );
    }
    token = match[1];
  } else if (query !== null) {
    token = query;
  }
  if (token === undefined || token === '') {
    return refuse(
      401,
      'AUTH_MISSING',
      'a bearer token is required (Authorization: Bearer <jwt>, or ?access_token=<jwt>)',
    );
  }
  if (token.length > MAX_TOKEN_LENGTH) {
    return refuse(401, 'AUTH_MALFORMED', `the token is longer than ${MAX_TOKEN_LENGTH} characters`);
  }
  return token;
}

/** Maps a jose error to a refusal. */
export function refusalFromJoseError(error: unknown): AuthRefusal {
  const code = (error as { code?: unknown } | null)?.code;
  const claim = (error as { claim?: unknown } | null)?.claim;
  switch (code) {
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return refuse(401, 'AUTH_BAD_SIGNATURE', 'the token signature does not verify');
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return refuse(401, 'AUTH_BAD_SIGNATURE', 'no key of the JWKS matches the token (kid / alg)');
    case 'ERR_JWT_EXPIRED':
      return refuse(401, 'AUTH_EXPIRED', 'the token has expired');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return refuse(401, 'AUTH_MALFORMED', 'the token algorithm is not accepted by this server');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'nbf') return refuse(401, 'AUTH_EXPIRED', 'the token is not valid yet (nbf)');
      if (claim === 'iat') return refuse(401, 'AUTH_MALFORMED', 'the token iat claim is in the future');
      if (claim === 'iss') return refuse(403, 'AUTH_FORBIDDEN', 'the token issuer (iss) is not accepted');
      if (claim === 'aud')
        return refuse(403, 'AUTH_FORBIDDEN', 'the token audience (aud) is not this server');
      return refuse(
        403,
        'AUTH_FORBIDDEN',
        typeof claim === 'string' && claim !== 'unspecified'
          ? `the token ${claim} claim is missing or invalid`
          : 'the token claims are invalid',
      );
    default:
      return refuse(401, 'AUTH_MALFORMED', 'the token is not a valid JWT');
  }
}

function principalFrom(payload: JWTPayload, tiers: ServerConfig['tiers']): Principal | AuthRefusal {
  const { sub, tier, exp } = payload as JWTPayload & { tier?: unknown };
  if (typeof sub !== 'string' || !TENANT_PATTERN.test(sub)) {
    return refuse(
      403,
      'AUTH_FORBIDDEN',
      'the token sub (tenant) must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ -',
    );
  }
  if (typeof tier !== 'string' || !Object.hasOwn(tiers, tier)) {
    return refuse(
      403,
      'AUTH_FORBIDDEN',
      typeof tier === 'string'
        ? `the token tier "${tier.slice(0, 64)}" is not a tier of this server (${Object.keys(tiers).join(', ')})`
        : 'the token has no tier claim',
    );
  }
  if (typeof exp !== 'number')
    return refuse(403, 'AUTH_FORBIDDEN', 'the token exp claim is missing or invalid');
  return Object.freeze({ tenant: sub, tier, expiresAt: exp });
}

/** Options of {@link createAuthenticator} besides the config. */
export interface AuthenticatorOptions {
  /** Source of the dev secret. @default crypto.randomBytes */
  readonly randomBytes?: (size: number) => Uint8Array;
}

/**
 * An authenticator for `auth` (from `ServerConfig`) and the configured `tiers`. With neither a secret
 * nor a JWKS file, it generates a random 32-byte HS256 secret ({@link Authenticator.devSecret}).
 * @throws Error when the JWKS file cannot be read or is not a JWKS.
 */
export function createAuthenticator(
  auth: ServerConfig['auth'],
  tiers: ServerConfig['tiers'],
  options: AuthenticatorOptions = {},
): Authenticator {
  const devSecret =
    auth.secret === undefined && auth.jwksFile === undefined
      ? (options.randomBytes ?? randomBytes)(MIN_SECRET_BYTES)
      : undefined;
  const secret = auth.secret ?? devSecret;
  const jwks = auth.jwksFile === undefined ? undefined : loadJwksFile(auth.jwksFile);
  const common: JWTVerifyOptions = {
    requiredClaims: ['exp', 'sub'],
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    ...(auth.issuer === undefined ? {} : { issuer: auth.issuer }),
    ...(auth.audience === undefined ? {} : { audience: auth.audience }),
  };

  async function verifyWithJwks(token: string): Promise<JWTPayload> {
    if (!jwks) throw Object.assign(new Error('no JWKS'), { code: 'ERR_JOSE_ALG_NOT_ALLOWED' });
    const options = { ...common, algorithms: [...JWKS_ALGORITHMS] };
    try {
      return (await jwtVerify(token, jwks, options)).payload;
    } catch (error) {
      // Several keys match (no kid): try each, as jose documents.
      if ((error as { code?: unknown }).code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw error;
      let last: unknown = error;
      for await (const key of error as AsyncIterable<CryptoKey>) {
        try {
          return (await jwtVerify(token, key, options)).payload;
        } catch (inner) {
          last = inner;
          if ((inner as { code?: unknown }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw inner;
        }
      }
      throw last;
    }
  }

  async function verify(token: string): Promise<AuthResult> {
    let payload: JWTPayload;
    try {
      const { alg } = decodeProtectedHeader(token);
      if (alg === 'HS256' && secret !== undefined) {
        payload = (await jwtVerify(token, secret, { ...common, algorithms: ['HS256'] })).payload;
      } else {
        payload = await verifyWithJwks(token);
      }
    } catch (error) {
      return refusalFromJoseError(error);
    }
    const principal = principalFrom(payload, tiers);
    return 'ok' in principal ? principal : { ok: true, principal };
  }

  return {
    devSecret,
    secret,
    verify,
    async authenticate(request) {
      const token = extractToken(request);
      if (typeof token !== 'string') return token;
      return verify(token);
    },
  };
}

/** What {@link signToken} mints. */
export interface SignTokenOptions {
  /** The tenant (`sub`). */
  readonly tenant: string;
  readonly tier: string;
  /** Lifetime in seconds (> 0). */
  readonly ttlSeconds: number;
  /** HS256 secret, at least 32 bytes (a string is UTF-8 encoded). */
  readonly secret: Uint8Array | string;
  readonly issuer?: string | undefined;
  readonly audience?: string | undefined;
  /** Epoch seconds of `iat`. @default now */
  readonly now?: number;
}

/**
 * Mints an HS256 bearer token: `{ sub: tenant, tier, iat, exp, iss?, aud? }`.
 * @throws RangeError for a tenant outside {@link TENANT_PATTERN}, an empty tier, a ttl ≤ 0 or a short secret.
 */
export async function signToken(options: SignTokenOptions): Promise<string> {
  const { tenant, tier, ttlSeconds, issuer, audience } = options;
  if (!TENANT_PATTERN.test(tenant)) {
    throw new RangeError(
      `tenant must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ -, got ${JSON.stringify(tenant)}`,
    );
  }
  if (typeof tier !== 'string' || tier.length === 0) throw new RangeError('tier must be a non-empty string');
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    throw new RangeError(`ttlSeconds must be a number > 0, got ${String(ttlSeconds)}`);
  }
  const secret =
    typeof options.secret === 'string' ? new TextEncoder().encode(options.secret) : options.secret;
  if (secret.byteLength < MIN_SECRET_BYTES) {
    throw new RangeError(`the secret must be at least ${MIN_SECRET_BYTES} bytes, got ${secret.byteLength}`);
  }
  const now = Math.floor(options.now ?? Date.now() / 1000);
  let jwt = new SignJWT({ tier })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(tenant)
    .setIssuedAt(now)
    .setExpirationTime(now + Math.ceil(ttlSeconds));
  if (issuer !== undefined) jwt = jwt.setIssuer(issuer);
  if (audience !== undefined) jwt = jwt.setAudience(audience);
  return jwt.sign(secret);
}

/** The dev token's tenant, tier and lifetime. */
export const DEV_TOKEN = Object.freeze({ tenant: 'dev', tier: 'free', ttlSeconds: 12 * 3600 });

/** Mints the dev token printed at start (tier `free`, or the first configured tier when there is no `free`). */
export function signDevToken(
  secret: Uint8Array,
  config: Pick<ServerConfig, 'tiers' | 'auth'>,
): Promise<{ token: string; tenant: string; tier: string; ttlSeconds: number }> {
  const tier = Object.hasOwn(config.tiers, DEV_TOKEN.tier)
    ? DEV_TOKEN.tier
    : (Object.keys(config.tiers)[0] ?? 'free');
  return signToken({
    tenant: DEV_TOKEN.tenant,
    tier,
    ttlSeconds: DEV_TOKEN.ttlSeconds,
    secret,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
  }).then((token) => ({ token, tenant: DEV_TOKEN.tenant, tier, ttlSeconds: DEV_TOKEN.ttlSeconds }));
}
