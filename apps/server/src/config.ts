/**
 * The server's configuration from command-line flags and environment variables. Every setting has one
 * flag and one variable; a flag wins over the variable; an empty variable counts as unset. Every value is
 * validated (zod) and a bad one is a {@link ConfigError} that names the setting as the user wrote it
 * (`--port` or `TRESTLE_PORT`) and the value.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { delimiter, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { TierSpec } from '@trestle/budget';
import { z } from 'zod';
import type { ServerConfig } from './contracts';

/** A setting has a bad value, or the command line is wrong. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
  /** The setting as the user wrote it: `--port`, `TRESTLE_PORT`. */
  readonly setting: string;
  /** The offending value (`undefined` for secrets and for flags given without one). */
  readonly value: string | undefined;
  constructor(
    setting: string,
    reason: string,
    value?: string,
    options?: { secret?: boolean; cause?: unknown },
  ) {
    const shown = value === undefined || options?.secret ? '' : `, got ${JSON.stringify(value)}`;
    super(
      `${setting}: ${reason}${shown}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.setting = setting;
    this.value = options?.secret ? undefined : value;
  }
}

/** The tier table when no tiers file is given. `null` is unlimited (never denied, still metered). */
export const DEFAULT_SERVER_TIERS: Readonly<Record<string, TierSpec | null>> = Object.freeze({
  free: Object.freeze({ capacity: 100, refillPerSec: 2, maxDebt: 100 }),
  basic: Object.freeze({ capacity: 1_000, refillPerSec: 20, maxDebt: 1_000 }),
  premium: Object.freeze({ capacity: 10_000, refillPerSec: 200, maxDebt: 10_000 }),
  unlimited: null,
});

/** The shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: at least the hash size). */
export const MIN_SECRET_BYTES = 32;

/** Log levels of `--log-level` / `TRESTLE_LOG_LEVEL`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** One setting: its flag (without `--`) and its environment variable. */
interface SettingName {
  readonly flag: string;
  readonly env: string;
  readonly boolean?: boolean;
}

/** Every setting, by the key `loadConfig` reads it under. The README's configuration table mirrors this. */
export const SETTINGS = {
  host: { flag: 'host', env: 'TRESTLE_HOST' },
  port: { flag: 'port', env: 'TRESTLE_PORT' },
  publicUrl: { flag: 'public-url', env: 'TRESTLE_PUBLIC_URL' },
  replicaId: { flag: 'replica-id', env: 'TRESTLE_REPLICA_ID' },
  jwtSecret: { flag: 'jwt-secret', env: 'TRESTLE_JWT_SECRET' },
  jwksFile: { flag: 'jwks-file', env: 'TRESTLE_JWKS_FILE' },
  jwtIssuer: { flag: 'jwt-issuer', env: 'TRESTLE_JWT_ISSUER' },
  jwtAudience: { flag: 'jwt-audience', env: 'TRESTLE_JWT_AUDIENCE' },
  maxMessageBytes: { flag: 'max-message-bytes', env: 'TRESTLE_MAX_MESSAGE_BYTES' },
  redisUrl: { flag: 'redis-url', env: 'REDIS_URL' },
  redisPrefix: { flag: 'redis-prefix', env: 'TRESTLE_REDIS_PREFIX' },
  tiersFile: { flag: 'tiers-file', env: 'TRESTLE_TIERS_FILE' },
  endOnBudget: { flag: 'end-on-budget', env: 'TRESTLE_END_ON_BUDGET', boolean: true },
  resumeGraceMs: { flag: 'resume-grace-ms', env: 'TRESTLE_RESUME_GRACE_MS' },
  idleTimeoutMs: { flag: 'idle-timeout-ms', env: 'TRESTLE_IDLE_TIMEOUT_MS' },
  drainMs: { flag: 'drain-ms', env: 'TRESTLE_DRAIN_MS' },
  python: { flag: 'python', env: 'TRESTLE_PYTHON' },
  workersPerTenant: { flag: 'workers-per-tenant', env: 'TRESTLE_WORKERS_PER_TENANT' },
  allowModules: { flag: 'allow-modules', env: 'TRESTLE_ALLOW_MODULES' },
  rlimitAsBytes: { flag: 'rlimit-as-bytes', env: 'TRESTLE_RLIMIT_AS_BYTES' },
  rlimitCpuSeconds: { flag: 'rlimit-cpu-seconds', env: 'TRESTLE_RLIMIT_CPU_SECONDS' },
  callTimeoutMs: { flag: 'call-timeout-ms', env: 'TRESTLE_CALL_TIMEOUT_MS' },
  pythonPath: { flag: 'pythonpath', env: 'TRESTLE_PYTHONPATH' },
  tenantIdleMs: { flag: 'tenant-idle-ms', env: 'TRESTLE_TENANT_IDLE_MS' },
  maxSessions: { flag: 'max-sessions', env: 'TRESTLE_MAX_SESSIONS' },
  directoryLeaseMs: { flag: 'directory-lease-ms', env: 'TRESTLE_DIRECTORY_LEASE_MS' },
  adminSocket: { flag: 'admin-socket', env: 'TRESTLE_ADMIN_SOCKET' },
  logLevel: { flag: 'log-level', env: 'TRESTLE_LOG_LEVEL' },
} as const satisfies Record<string, SettingName>;

type SettingKey = keyof typeof SETTINGS;

/** What {@link loadConfig} reads. */
export interface LoadConfigOptions {
  /** Flags only (no subcommand): `['--port', '0']`. @default [] */
  readonly argv?: readonly string[];
  /** @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Relative paths (tiers file, JWKS file, admin socket, PYTHONPATH entries) resolve against it. @default process.cwd() */
  readonly cwd?: string;
}

/** The `parseArgs` option table of the serve flags (for `--help` and tests). */
export function serveFlagOptions(): Record<string, { type: 'string' | 'boolean' }> {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const name of Object.values(SETTINGS) as SettingName[]) {
    options[name.flag] = { type: name.boolean ? 'boolean' : 'string' };
  }
  return options;
}

/**
 * Parses `argv` with `node:util` `parseArgs` (strict) and turns its errors into {@link ConfigError}s that
 * name the flag.
 */
export function parseFlags(
  argv: readonly string[],
  options: Record<string, { type: 'string' | 'boolean'; short?: string }>,
): Record<string, string | boolean | undefined> {
  try {
    const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
    return values as Record<string, string | boolean | undefined>;
  } catch (error) {
    const code = (error as { code?: string }).code;
    const message = error instanceof Error ? error.message : String(error);
    const flag = /'(-{1,2}[^' =]+)/.exec(message)?.[1];
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')
      throw new ConfigError(flag ?? 'argv', 'unknown flag (see --help)', undefined, { cause: error });
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const positional = /'([^']*)'/.exec(message)?.[1];
      throw new ConfigError('argv', 'unexpected argument (flags only; see --help)', positional, {
        cause: error,
      });
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const boolean = message.includes('does not take an argument');
      throw new ConfigError(
        flag ?? 'argv',
        boolean ? 'is a switch and takes no value' : 'needs a value (--flag value or --flag=value)',
        undefined,
        { cause: error },
      );
    }
    throw new ConfigError('argv', message, undefined, { cause: error });
  }
}

/** A raw value and the name it came under. */
interface Raw {
  readonly value: string;
  readonly setting: string;
}

/** Formats zod's first issue for a ConfigError. */
function reasonOf(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid value';
  const path = issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : '';
  return `${path}${issue.message.replace(/^Invalid input: /, '')}`;
}

function check<T>(schema: z.ZodType<T>, raw: Raw, secret = false): T {
  const result = schema.safeParse(raw.value);
  if (result.success) return result.data;
  throw new ConfigError(raw.setting, reasonOf(result.error), raw.value, { secret });
}

const integer = (min: number, max: number) => {
  const reason = `expected an integer from ${min} to ${max}`;
  return z
    .string()
    .trim()
    .regex(/^[+-]?\d+$/, { error: reason })
    .transform(Number)
    .pipe(z.number().int().min(min, { error: reason }).max(max, { error: reason }));
};

const nonEmpty = (what: string, max = 1024) =>
  z
    .string()
    .trim()
    .min(1, { error: `expected ${what}` })
    .max(max, { error: `expected ${what} of at most ${max} characters` });

const urlWith = (protocols: readonly string[]) => {
  const reason = `expected a ${protocols.map((p) => `${p}//`).join(' or ')} URL`;
  return z
    .string()
    .trim()
    .refine(
      (value) => {
        try {
          return protocols.includes(new URL(value).protocol);
        } catch {
          return false;
        }
      },
      { error: reason },
    );
};

const booleanValue = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['1', 'true', 'yes', 'on', '0', 'false', 'no', 'off'], { error: 'expected true or false' }))
  .transform((value) => value === '1' || value === 'true' || value === 'yes' || value === 'on');

const hostName =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const hostValue = z
  .string()
  .trim()
  .refine((value) => isIP(value) !== 0 || hostName.test(value), {
    error: 'expected a host name or an IP address (IPv6 without brackets)',
  });

const replicaIdValue = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9._:-]{1,128}$/, { error: 'expected 1 to 128 characters of A-Z a-z 0-9 . _ : -' });

const moduleName = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const allowModulesValue = z
  .string()
  .trim()
  .transform((value, ctx) => {
    if (value === '*') return null;
    const names = value
      .split(',')
      .map((name) => name.trim())
      .filter((name) => name.length > 0);
    const bad = names.find((name) => !moduleName.test(name));
    if (names.length === 0 || bad !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message:
          bad === undefined
            ? 'expected a comma-separated list of module names, or * for every module'
            : `"${bad}" is not a module name (expected a comma-separated list like json,math,os.path, or *)`,
      });
      return z.NEVER;
    }
    return [...new Set(names)] as readonly string[];
  });

const tierName = /^[A-Za-z0-9._-]{1,64}$/;
const positiveFinite = (field: string) =>
  z.number({ error: `${field} must be a number` }).positive({ error: `${field} must be > 0` });
const tierSpecSchema = z
  .strictObject({
    capacity: positiveFinite('capacity'),
    refillPerSec: positiveFinite('refillPerSec'),
    maxDebt: z
      .number({ error: 'maxDebt must be a number' })
      .min(0, { error: 'maxDebt must be >= 0' })
      .optional(),
    onStoreError: z
      .enum(['failOpen', 'failClosed', 'local'], {
        error: 'onStoreError must be failOpen, failClosed or local',
      })
      .optional(),
  })
  .nullable();
const tierTableSchema = z
  .record(
    z.string().regex(tierName, { error: 'tier names are 1 to 64 characters of A-Z a-z 0-9 . _ -' }),
    tierSpecSchema,
  )
  .refine((table) => Object.keys(table).length > 0, { error: 'expected at least one tier' });

/**
 * Reads a tiers file: JSON `{ "<name>": { capacity, refillPerSec, maxDebt?, onStoreError? } | null }`
 * (`null`: unlimited). The file's table replaces the default one.
 * @param setting how the user named the file (`--tiers-file` / `TRESTLE_TIERS_FILE`), for errors.
 * @throws ConfigError naming `setting`, the file and the bad field.
 */
export function loadTiersFile(
  path: string,
  setting: string,
  cwd: string = process.cwd(),
): Readonly<Record<string, TierSpec | null>> {
  return loadTiers({ value: path, setting }, cwd);
}

function loadTiers(raw: Raw, cwd: string): Readonly<Record<string, TierSpec | null>> {
  const file = resolve(cwd, raw.value);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(raw.setting, `cannot read ${file}: ${(error as Error).message}`, undefined, {
      cause: error,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(raw.setting, `${file} is not JSON: ${(error as Error).message}`, undefined, {
      cause: error,
    });
  }
  const result = tierTableSchema.safeParse(json);
  if (!result.success) {
    throw new ConfigError(
      raw.setting,
      `${file}: ${reasonOf(result.error)} (expected {"name": {"capacity", "refillPerSec", "maxDebt"?, "onStoreError"?} or null})`,
    );
  }
  const table: Record<string, TierSpec | null> = Object.create(null);
  for (const [name, spec] of Object.entries(result.data)) {
    table[name] = spec === null ? null : Object.freeze({ ...spec });
  }
  return Object.freeze(table);
}

function checkJwksFile(raw: Raw, cwd: string): string {
  const file = resolve(cwd, raw.value);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError(
      raw.setting,
      `cannot read a JSON file at ${file}: ${(error as Error).message}`,
      undefined,
      {
        cause: error,
      },
    );
  }
  const keys = (json as { keys?: unknown } | null)?.keys;
  if (
    !Array.isArray(keys) ||
    keys.length === 0 ||
    !keys.every((key) => typeof key === 'object' && key !== null)
  ) {
    throw new ConfigError(raw.setting, `${file} is not a JWKS: expected {"keys": [ ...public JWKs ]}`);
  }
  if (keys.some((key) => 'd' in key || (key as { kty?: unknown }).kty === 'oct')) {
    throw new ConfigError(
      raw.setting,
      `${file} holds a private or symmetric key: a JWKS file must hold public keys only (use TRESTLE_JWT_SECRET for HS256)`,
    );
  }
  return file;
}

function maxSocketPathBytes(): number {
  return process.platform === 'linux' || process.platform === 'android' ? 107 : 103;
}

/**
 * Builds the {@link ServerConfig} from flags (`argv`, no subcommand) and environment.
 *
 * | setting | flag | variable | default |
 * | --- | --- | --- | --- |
 * | host | `--host` | `TRESTLE_HOST` | `127.0.0.1` |
 * | port | `--port` | `TRESTLE_PORT` | `8765` (`0`: any free port) |
 * | publicUrl | `--public-url` | `TRESTLE_PUBLIC_URL` | `ws://<host>:<port>/rpc` |
 * | replicaId | `--replica-id` | `TRESTLE_REPLICA_ID` | `<hostname>-<pid>` |
 * | auth.secret | `--jwt-secret` | `TRESTLE_JWT_SECRET` | none (≥ 32 bytes; prefer the variable) |
 * | auth.jwksFile | `--jwks-file` | `TRESTLE_JWKS_FILE` | none |
 * | auth.issuer / audience | `--jwt-issuer` / `--jwt-audience` | `TRESTLE_JWT_ISSUER` / `TRESTLE_JWT_AUDIENCE` | unchecked |
 * | maxMessageBytes | `--max-message-bytes` | `TRESTLE_MAX_MESSAGE_BYTES` | 1 MiB (256 B .. 64 MiB) |
 * | redisUrl | `--redis-url` | `REDIS_URL` | none (memory) |
 * | redisPrefix | `--redis-prefix` | `TRESTLE_REDIS_PREFIX` | `trestle:` |
 * | tiers | `--tiers-file` | `TRESTLE_TIERS_FILE` | {@link DEFAULT_SERVER_TIERS} (the file replaces the table) |
 * | endOnBudgetExhausted | `--end-on-budget` (switch) | `TRESTLE_END_ON_BUDGET` | false |
 * | resumeGraceMs | `--resume-grace-ms` | `TRESTLE_RESUME_GRACE_MS` | 30000 |
 * | idleTimeoutMs | `--idle-timeout-ms` | `TRESTLE_IDLE_TIMEOUT_MS` | 900000 |
 * | drainMs | `--drain-ms` | `TRESTLE_DRAIN_MS` | 10000 |
 * | python.executable | `--python` | `TRESTLE_PYTHON` | python-adapter's resolution |
 * | python.workersPerTenant | `--workers-per-tenant` | `TRESTLE_WORKERS_PER_TENANT` | 1 |
 * | python.allowModules | `--allow-modules` | `TRESTLE_ALLOW_MODULES` | every module (`*`) |
 * | python.rlimits | `--rlimit-as-bytes`, `--rlimit-cpu-seconds` | `TRESTLE_RLIMIT_AS_BYTES`, `TRESTLE_RLIMIT_CPU_SECONDS` | none |
 * | python.callTimeoutMs | `--call-timeout-ms` | `TRESTLE_CALL_TIMEOUT_MS` | 30000 |
 * | python.pythonPath | `--pythonpath` | `TRESTLE_PYTHONPATH` | none (`:`-separated) |
 * | tenantIdleMs | `--tenant-idle-ms` | `TRESTLE_TENANT_IDLE_MS` | 60000 |
 * | maxSessions | `--max-sessions` | `TRESTLE_MAX_SESSIONS` | 10000 |
 * | directoryLeaseMs | `--directory-lease-ms` | `TRESTLE_DIRECTORY_LEASE_MS` | 15000 |
 * | adminSocket | `--admin-socket` | `TRESTLE_ADMIN_SOCKET` | none |
 * | logLevel | `--log-level` | `TRESTLE_LOG_LEVEL` | `info` |
 *
 * @throws ConfigError naming the setting (`--port` or `TRESTLE_PORT`) and the value (never a secret's).
 */
export function loadConfig(options: LoadConfigOptions = {}): ServerConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const flags = parseFlags(options.argv ?? [], serveFlagOptions());

  const raw = (key: SettingKey): Raw | undefined => {
    const name: SettingName = SETTINGS[key];
    const flag = flags[name.flag];
    if (typeof flag === 'string') return { value: flag, setting: `--${name.flag}` };
    if (flag === true) return { value: 'true', setting: `--${name.flag}` };
    const value = env[name.env];
    if (value !== undefined && value !== '') return { value, setting: name.env };
    return undefined;
  };
  const read = <T>(key: SettingKey, schema: z.ZodType<T>, fallback: T): T => {
    const given = raw(key);
    return given === undefined ? fallback : check(schema, given);
  };
  const readOptional = <T>(key: SettingKey, schema: z.ZodType<T>): T | undefined => {
    const given = raw(key);
    return given === undefined ? undefined : check(schema, given);
  };
  const ms = (key: SettingKey, fallback: number, min = 0, max = 86_400_000) =>
    read(key, integer(min, max), fallback);

  const secretRaw = raw('jwtSecret');
  let secret: Uint8Array | undefined;
  if (secretRaw !== undefined) {
    const bytes = new TextEncoder().encode(secretRaw.value);
    if (bytes.byteLength < MIN_SECRET_BYTES) {
      throw new ConfigError(
        secretRaw.setting,
        `must be at least ${MIN_SECRET_BYTES} bytes for HS256, got ${bytes.byteLength} (make one: openssl rand -base64 48)`,
        undefined,
        { secret: true },
      );
    }
    secret = bytes;
  }
  const jwksRaw = raw('jwksFile');
  const tiersRaw = raw('tiersFile');

  const adminRaw = raw('adminSocket');
  let adminSocket: string | undefined;
  if (adminRaw !== undefined) {
    adminSocket = resolve(cwd, check(nonEmpty('a socket path'), adminRaw));
    const bytes = Buffer.byteLength(adminSocket);
    if (bytes > maxSocketPathBytes()) {
      throw new ConfigError(
        adminRaw.setting,
        `the socket path is ${bytes} bytes, more than the ${maxSocketPathBytes()} that fit sun_path`,
        adminSocket,
      );
    }
  }

  const pythonPathRaw = raw('pythonPath');
  const pythonPath =
    pythonPathRaw === undefined
      ? []
      : pythonPathRaw.value
          .split(delimiter)
          .map((entry) => entry.trim())
          .filter((entry) => entry.length > 0)
          .map((entry) => resolve(cwd, entry));

  const addressSpaceBytes = readOptional('rlimitAsBytes', integer(16 * 1024 * 1024, Number.MAX_SAFE_INTEGER));
  const cpuSeconds = readOptional('rlimitCpuSeconds', integer(1, 31_536_000));

  const config: ServerConfig = {
    host: read('host', hostValue, '127.0.0.1'),
    port: read('port', integer(0, 65_535), 8765),
    publicUrl: readOptional('publicUrl', urlWith(['ws:', 'wss:'])),
    replicaId: read(
      'replicaId',
      replicaIdValue,
      `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9._:-]/g, '_'),
    ),
    auth: Object.freeze({
      secret,
      jwksFile: jwksRaw === undefined ? undefined : checkJwksFile(jwksRaw, cwd),
      issuer: readOptional('jwtIssuer', nonEmpty('an issuer')),
      audience: readOptional('jwtAudience', nonEmpty('an audience')),
    }),
    maxMessageBytes: read('maxMessageBytes', integer(256, 64 * 1024 * 1024), 1024 * 1024),
    redisUrl: readOptional('redisUrl', urlWith(['redis:', 'rediss:'])),
    redisPrefix: read(
      'redisPrefix',
      z.string().regex(/^[A-Za-z0-9._:{}-]{0,64}$/, {
        error: 'expected up to 64 characters of A-Z a-z 0-9 . _ : { } -',
      }),
      'trestle:',
    ),
    tiers: tiersRaw === undefined ? DEFAULT_SERVER_TIERS : loadTiers(tiersRaw, cwd),
    endOnBudgetExhausted: read('endOnBudget', booleanValue, false),
    resumeGraceMs: ms('resumeGraceMs', 30_000),
    idleTimeoutMs: ms('idleTimeoutMs', 900_000, 1_000),
    drainMs: ms('drainMs', 10_000, 0, 3_600_000),
    python: Object.freeze({
      executable: readOptional('python', nonEmpty('an interpreter path or command')),
      workersPerTenant: read('workersPerTenant', integer(1, 64), 1),
      allowModules: read('allowModules', allowModulesValue, null),
      rlimits: Object.freeze({
        ...(addressSpaceBytes === undefined ? {} : { addressSpaceBytes }),
        ...(cpuSeconds === undefined ? {} : { cpuSeconds }),
      }),
      callTimeoutMs: ms('callTimeoutMs', 30_000, 1, 3_600_000),
      pythonPath: Object.freeze(pythonPath),
    }),
    tenantIdleMs: ms('tenantIdleMs', 60_000),
    maxSessions: read('maxSessions', integer(1, 1_000_000), 10_000),
    directoryLeaseMs: ms('directoryLeaseMs', 15_000, 1_000, 3_600_000),
    adminSocket,
    logLevel: read(
      'logLevel',
      z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }),
      'info',
    ),
  };
  return Object.freeze(config);
}

/** `--help` text of `trestle-server [serve]`. */
export function serveUsage(): string {
  const lines = Object.values(SETTINGS).map((name: SettingName) => {
    const flag = `--${name.flag}${name.boolean ? '' : ' <value>'}`;
    return `  ${flag.padEnd(32)} ${name.env}`;
  });
  return [
    'usage: trestle-server [serve] [flags]',
    '       trestle-server token --sub <tenant> --tier <tier> [--ttl 1h] [--secret <s>]',
    '',
    'flags (each also read from its environment variable; a flag wins):',
    ...lines,
    '  --help                           this text',
  ].join('\n');
}
