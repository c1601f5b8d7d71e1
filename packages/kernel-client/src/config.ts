import { z } from 'zod';
import { parseEndpoint } from './endpoint';
import { KernelConfigError } from './errors';
import { methodNamePattern } from './request';
import type { KernelTelemetryCallback } from './telemetry';
import type { Clock, KernelCodec, KernelTransport } from './types';

/** The built-in codecs, by the name used in `<P>CODEC`. */
export type KernelCodecName = 'length-json' | 'lines';

/** `oneshot`: one connection per request (the seed's); `persistent`: one multiplexed connection. */
export type KernelMode = 'oneshot' | 'persistent';

/** Inclusive bounds of the numeric options (and their environment variables). */
export const kernelConfigBounds = Object.freeze({
  timeoutMs: Object.freeze({ min: 100, max: 30_000 }),
  maxInflight: Object.freeze({ min: 1, max: 256 }),
  retryAttempts: Object.freeze({ min: 0, max: 5 }),
  retryDelayMs: Object.freeze({ min: 10, max: 1_000 }),
  maxRetryDelayMs: Object.freeze({ min: 10, max: 30_000 }),
  maxResponseBytes: Object.freeze({ min: 1_024, max: 67_108_864 }),
  maxRequestBytes: Object.freeze({ min: 1_024, max: 67_108_864 }),
});

/** The defaults of {@link KernelClientOptions}. */
export const kernelConfigDefaults = Object.freeze({
  enabled: false,
  required: false,
  codec: 'length-json' as KernelCodecName,
  mode: 'oneshot' as KernelMode,
  timeoutMs: 5_000,
  maxInflight: 3,
  retryAttempts: 2,
  retryDelayMs: 100,
  maxResponseBytes: 65_536,
  maxRequestBytes: 65_536,
  idempotentMethods: Object.freeze(['PING', 'STATUS', 'VERSION']) as readonly string[],
});

/** Options of `KernelClient`. Every one is validated; an error names the option. */
export interface KernelClientOptions {
  /** Off: every call goes to the null transport (an echo with `mock: true`), whatever the endpoint. @default false */
  readonly enabled?: boolean;
  /**
   * Fail fast: `KernelClient.connect()` throws `KernelUnavailableError` when the daemon cannot be
   * reached, and a call whose result is `unavailable` rejects with it (except `KERNEL_CLOSED` after
   * `close()`). @default false
   */
  readonly required?: boolean;
  /**
   * `unix:///absolute/path` (fits `sun_path`) or a loopback `http://` base URL (host exactly `127.0.0.1`,
   * `[::1]` or `localhost`). No default: required when `enabled` and no `transport` is given; validated
   * whenever given.
   */
  readonly endpoint?: string;
  /** A transport plugin; takes precedence over `endpoint`. The client closes it on `close()`. */
  readonly transport?: KernelTransport;
  /** The codec of a `unix://` endpoint: a built-in name or a codec plugin. @default 'length-json' */
  readonly codec?: KernelCodecName | KernelCodec;
  /** The connection mode of a `unix://` endpoint. @default 'oneshot' */
  readonly mode?: KernelMode;
  /**
   * The whole-call deadline: waiting for a slot, connecting, every attempt, backoff and read. Integer
   * 100..30000. @default 5000
   */
  readonly timeoutMs?: number;
  /**
   * Sends in flight at once (the slot is held for the call, retries included). Integer 1..256: the
   * seed capped it at 10, but a persistent multiplexed connection (or HTTP keep-alive) makes concurrent
   * calls cheap, so the cap is wider. @default 3
   */
  readonly maxInflight?: number;
  /** Retries after the first attempt (connection failures of idempotent methods only). Integer 0..5. @default 2 */
  readonly retryAttempts?: number;
  /** The base of the exponential backoff (see `retryDelay`). Integer 10..1000. @default 100 */
  readonly retryDelayMs?: number;
  /** The cap of a backoff delay before jitter. Integer 10..30000, at least `retryDelayMs`. @default min(30 * retryDelayMs, 30000) */
  readonly maxRetryDelayMs?: number;
  /** The largest reply accepted, framing included, checked before allocating. Integer 1024..67108864. @default 65536 */
  readonly maxResponseBytes?: number;
  /** The largest request JSON sent. Integer 1024..67108864. @default 65536 */
  readonly maxRequestBytes?: number;
  /**
   * Methods safe to send twice, so retried after a connection failure. Others (`APPLY_POLICY`, unknown
   * methods) are retried only with `call(..., { idempotent: true })`. @default ['PING', 'STATUS', 'VERSION']
   */
  readonly idempotentMethods?: readonly string[];
  /** Time for deadlines and backoff. @default performance.now() and the global timers */
  readonly clock?: Clock;
  /** Jitter source, numbers in [0, 1). @default Math.random */
  readonly random?: () => number;
  /** Called with the telemetry event of every call; what it throws is ignored. */
  readonly onTelemetry?: KernelTelemetryCallback;
}

/** {@link KernelClientOptions} validated, defaults applied. */
export interface KernelConfig {
  readonly enabled: boolean;
  readonly required: boolean;
  readonly endpoint: string | undefined;
  readonly transport: KernelTransport | undefined;
  readonly codec: KernelCodecName | KernelCodec;
  readonly mode: KernelMode;
  readonly timeoutMs: number;
  readonly maxInflight: number;
  readonly retryAttempts: number;
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly maxResponseBytes: number;
  readonly maxRequestBytes: number;
  readonly idempotentMethods: readonly string[];
  readonly clock: Clock | undefined;
  readonly random: (() => number) | undefined;
  readonly onTelemetry: KernelTelemetryCallback | undefined;
}

const isFunction = (value: unknown) => typeof value === 'function';
const hasMethods = (value: unknown, names: readonly string[]) =>
  typeof value === 'object' &&
  value !== null &&
  names.every((name) => typeof (value as Record<string, unknown>)[name] === 'function');

const boundedInt = (key: keyof typeof kernelConfigBounds) =>
  z.number().int().min(kernelConfigBounds[key].min).max(kernelConfigBounds[key].max);

/**
 * The zod schema of {@link KernelClientOptions} (strict: an unknown option is an error). Prefer
 * {@link resolveKernelConfig}, which phrases errors as `KernelConfigError` naming the option.
 */
export const kernelClientOptionsSchema = z.strictObject({
  enabled: z.boolean().default(kernelConfigDefaults.enabled),
  required: z.boolean().default(kernelConfigDefaults.required),
  endpoint: z.string().optional(),
  transport: z
    .custom<KernelTransport>(
      (value) =>
        hasMethods(value, ['send', 'isAvailable', 'close']) &&
        typeof (value as KernelTransport).name === 'string' &&
        typeof (value as KernelTransport).endpoint === 'string',
    )
    .optional(),
  codec: z
    .union([
      z.enum(['length-json', 'lines']),
      z.custom<KernelCodec>(
        (value) =>
          hasMethods(value, ['encodeRequest', 'encodeReply', 'requestDecoder', 'replyDecoder']) &&
          typeof (value as KernelCodec).name === 'string',
      ),
    ])
    .default(kernelConfigDefaults.codec),
  mode: z.enum(['oneshot', 'persistent']).default(kernelConfigDefaults.mode),
  timeoutMs: boundedInt('timeoutMs').default(kernelConfigDefaults.timeoutMs),
  maxInflight: boundedInt('maxInflight').default(kernelConfigDefaults.maxInflight),
  retryAttempts: boundedInt('retryAttempts').default(kernelConfigDefaults.retryAttempts),
  retryDelayMs: boundedInt('retryDelayMs').default(kernelConfigDefaults.retryDelayMs),
  maxRetryDelayMs: boundedInt('maxRetryDelayMs').optional(),
  maxResponseBytes: boundedInt('maxResponseBytes').default(kernelConfigDefaults.maxResponseBytes),
  maxRequestBytes: boundedInt('maxRequestBytes').default(kernelConfigDefaults.maxRequestBytes),
  idempotentMethods: z
    .array(z.string().regex(methodNamePattern))
    .readonly()
    .default(kernelConfigDefaults.idempotentMethods),
  clock: z.custom<Clock>((value) => hasMethods(value, ['now', 'setTimeout', 'clearTimeout'])).optional(),
  random: z.custom<() => number>(isFunction).optional(),
  onTelemetry: z.custom<KernelTelemetryCallback>(isFunction).optional(),
});

type OptionKey = keyof KernelClientOptions;

/** What a valid value of each option looks like, for messages. */
const expectations: Record<OptionKey, string> = {
  enabled: 'must be a boolean',
  required: 'must be a boolean',
  endpoint: 'must be a string',
  transport: 'must be a KernelTransport (name, endpoint, send, isAvailable, close)',
  codec: 'must be "length-json", "lines" or a KernelCodec',
  mode: 'must be "oneshot" or "persistent"',
  timeoutMs: between('timeoutMs'),
  maxInflight: between('maxInflight'),
  retryAttempts: between('retryAttempts'),
  retryDelayMs: between('retryDelayMs'),
  maxRetryDelayMs: between('maxRetryDelayMs'),
  maxResponseBytes: between('maxResponseBytes'),
  maxRequestBytes: between('maxRequestBytes'),
  idempotentMethods: `must be an array of method names matching ${methodNamePattern}`,
  clock: 'must be a Clock (now, setTimeout, clearTimeout)',
  random: 'must be a function returning numbers in [0, 1)',
  onTelemetry: 'must be a function',
};

/** Environment variables (after the prefix) of each option read from the environment. */
const envSuffixes = {
  enabled: 'ENABLED',
  required: 'REQUIRED',
  endpoint: 'ENDPOINT',
  timeoutMs: 'TIMEOUT_MS',
  maxInflight: 'MAX_INFLIGHT',
  retryAttempts: 'RETRY_ATTEMPTS',
  retryDelayMs: 'RETRY_DELAY_MS',
  mode: 'MODE',
  codec: 'CODEC',
  maxResponseBytes: 'MAX_RESPONSE_BYTES',
  maxRequestBytes: 'MAX_REQUEST_BYTES',
} as const satisfies Partial<Record<OptionKey, string>>;

type EnvKey = keyof typeof envSuffixes;

const envExpectations: Partial<Record<OptionKey, string>> = {
  enabled: 'must be true/false, 1/0 or yes/no',
  required: 'must be true/false, 1/0 or yes/no',
  codec: 'must be "length-json" or "lines"',
};

function between(key: keyof typeof kernelConfigBounds): string {
  const { min, max } = kernelConfigBounds[key];
  return `must be an integer between ${min} and ${max}`;
}

function shownValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

/** Where each option came from: its name in errors, and the raw text when it came from the environment. */
interface Provenance {
  readonly name: (key: OptionKey) => string;
  readonly raw?: (key: OptionKey) => string | undefined;
}

/**
 * Validates options and applies defaults.
 * @throws KernelConfigError naming the option (or the environment variable it came from) and the value:
 *   a value of the wrong type or out of bounds, an unknown option, an invalid endpoint, or `enabled`
 *   without `endpoint` or `transport`.
 * @example
 * ```ts
 * resolveKernelConfig({ enabled: true, endpoint: 'unix:///run/kernel.sock' }).timeoutMs; // 5000
 * resolveKernelConfig({ timeoutMs: 50 }); // throws KernelConfigError: timeoutMs: must be an integer between 100 and 30000 (got 50)
 * ```
 */
export function resolveKernelConfig(options: KernelClientOptions = {}): KernelConfig {
  return resolve(options, { name: (key) => key });
}

function resolve(options: unknown, from: Provenance): KernelConfig {
  const parsed = kernelClientOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue?.code === 'unrecognized_keys') {
      const key = issue.keys[0] ?? '?';
      throw new KernelConfigError(key, 'is not an option of KernelClient');
    }
    if (!isPlainOptions(options))
      throw new KernelConfigError('options', `must be an object (got ${shownValue(options)})`);
    const key = (issue?.path[0] ?? 'options') as OptionKey;
    const raw = from.raw?.(key);
    const value = raw ?? (options as Record<string, unknown>)[key];
    const expected = (raw !== undefined ? envExpectations[key] : undefined) ?? expectations[key];
    throw new KernelConfigError(from.name(key), `${expected ?? 'is invalid'} (got ${shownValue(value)})`);
  }
  const config = parsed.data;
  const maxRetryDelayMs =
    config.maxRetryDelayMs ?? Math.min(30 * config.retryDelayMs, kernelConfigBounds.maxRetryDelayMs.max);
  if (maxRetryDelayMs < config.retryDelayMs)
    throw new KernelConfigError(
      from.name('maxRetryDelayMs'),
      `must be at least retryDelayMs (${config.retryDelayMs}) (got ${maxRetryDelayMs})`,
    );
  if (config.endpoint !== undefined) parseEndpoint(config.endpoint, from.name('endpoint'));
  if (config.enabled && config.endpoint === undefined && config.transport === undefined)
    throw new KernelConfigError(
      from.name('endpoint'),
      'is required when the client is enabled (unix:///absolute/path or a loopback http:// URL), unless a transport is given',
    );
  return Object.freeze({
    enabled: config.enabled,
    required: config.required,
    endpoint: config.endpoint,
    transport: config.transport,
    codec: config.codec,
    mode: config.mode,
    timeoutMs: config.timeoutMs,
    maxInflight: config.maxInflight,
    retryAttempts: config.retryAttempts,
    retryDelayMs: config.retryDelayMs,
    maxRetryDelayMs,
    maxResponseBytes: config.maxResponseBytes,
    maxRequestBytes: config.maxRequestBytes,
    idempotentMethods: Object.freeze([...config.idempotentMethods]),
    clock: config.clock,
    random: config.random,
    onTelemetry: config.onTelemetry,
  });
}

function isPlainOptions(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Where {@link kernelConfigFromEnv} reads. */
export interface KernelEnvOptions {
  /** The environment. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The prefix of every variable (`HEIDI_KERNEL_` reads the seed's variables). @default 'KERNEL_' */
  readonly prefix?: string;
  /** Options that win over the environment (errors about them name the option). @default {} */
  readonly overrides?: KernelClientOptions;
}

const booleanWords: Readonly<Record<string, boolean>> = {
  true: true,
  '1': true,
  yes: true,
  false: false,
  '0': false,
  no: false,
};

const booleanKeys = new Set<EnvKey>(['enabled', 'required']);
const stringKeys = new Set<EnvKey>(['endpoint', 'mode', 'codec']);

/**
 * Reads the options set in the environment (an empty or blank variable counts as unset), converting
 * booleans and integers. Bounds are checked later by the schema, with the same provenance.
 */
function readEnv({ env = process.env, prefix = 'KERNEL_' }: Omit<KernelEnvOptions, 'overrides'>): {
  readonly options: Partial<Record<EnvKey, unknown>>;
  readonly raw: Partial<Record<EnvKey, string>>;
} {
  const options: Partial<Record<EnvKey, unknown>> = {};
  const raw: Partial<Record<EnvKey, string>> = {};
  for (const [key, suffix] of Object.entries(envSuffixes) as [EnvKey, string][]) {
    const text = env[`${prefix}${suffix}`];
    if (text === undefined || text.trim() === '') continue;
    raw[key] = text;
    const trimmed = text.trim();
    if (booleanKeys.has(key)) {
      const value = booleanWords[trimmed.toLowerCase()];
      if (value === undefined)
        throw new KernelConfigError(
          `${prefix}${suffix}`,
          `${envExpectations[key]} (got ${JSON.stringify(text)})`,
        );
      options[key] = value;
    } else if (stringKeys.has(key)) {
      options[key] = key === 'endpoint' ? trimmed : trimmed.toLowerCase();
    } else {
      // Not an integer: handed over as text, so the schema refuses it with the variable's bounds.
      options[key] = /^[+-]?\d+$/.test(trimmed) ? Number(trimmed) : text;
    }
  }
  return { options, raw };
}

/**
 * Reads the client's configuration from environment variables `<prefix>ENABLED`, `REQUIRED`
 * (true/false/1/0/yes/no, any case), `ENDPOINT`, `TIMEOUT_MS`, `MAX_INFLIGHT`, `RETRY_ATTEMPTS`,
 * `RETRY_DELAY_MS` (the seed's), and `MODE` (oneshot|persistent), `CODEC` (length-json|lines),
 * `MAX_RESPONSE_BYTES`, `MAX_REQUEST_BYTES`. Unset or blank variables take the defaults of
 * {@link KernelClientOptions}; `overrides` (programmatic options) win over the environment.
 * @throws KernelConfigError naming the variable for a value from the environment, e.g.
 *   `HEIDI_KERNEL_TIMEOUT_MS: must be an integer between 100 and 30000 (got "50")`, `<prefix>ENDPOINT`
 *   when enabled without an endpoint, or the option for a value from `overrides`.
 * @example
 * ```ts
 * const config = kernelConfigFromEnv({ prefix: 'HEIDI_KERNEL_' });
 * if (config.enabled) console.log(config.endpoint);
 * ```
 */
export function kernelConfigFromEnv(options: KernelEnvOptions = {}): KernelConfig {
  const prefix = options.prefix ?? 'KERNEL_';
  const read = readEnv({ ...options, prefix });
  const overrides: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options.overrides ?? {}))
    if (value !== undefined) overrides[key] = value;
  const overridden = new Set(Object.keys(overrides));
  return resolve({ ...read.options, ...overrides }, envProvenance(prefix, read.raw, overridden));
}

function envProvenance(
  prefix: string,
  raw: Partial<Record<EnvKey, string>>,
  overridden: ReadonlySet<string>,
) {
  const fromEnv = (key: OptionKey): key is EnvKey => key in envSuffixes && !overridden.has(key);
  return {
    name: (key: OptionKey) => (fromEnv(key) ? `${prefix}${envSuffixes[key]}` : key),
    raw: (key: OptionKey) => (fromEnv(key) ? raw[key] : undefined),
  } satisfies Provenance;
}
