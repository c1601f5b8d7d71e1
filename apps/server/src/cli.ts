/**
 * The `trestle-server` command line, as functions (main.ts only wires them to the real app and the
 * process): `serve` (the default) and `token`.
 */
import { isIP } from 'node:net';
import { DEV_TOKEN, signDevToken, signToken, TENANT_PATTERN } from './auth';
import {
  ConfigError,
  DEFAULT_SERVER_TIERS,
  loadConfig,
  loadTiersFile,
  MIN_SECRET_BYTES,
  parseFlags,
  serveUsage,
} from './config';
import type { App, AppDependencies, Logger, ServerConfig } from './contracts';
import { createLogger } from './log';
import { type RunningServer, startServer } from './server';
import { installSignalHandlers, type SignalProcess } from './shutdown';

/** Where the CLI writes, and what it reads. */
export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** @default process.cwd() */
  readonly cwd?: string;
  /** Human-readable output (the token of `token`, `--help`). */
  readonly stdout: { write(text: string): unknown };
  /** Human-readable start-up lines and errors (the JSON logs go to the logger). */
  readonly stderr: { write(text: string): unknown };
  /** The domain; main.ts passes the real `createApp`. */
  readonly createApp: (deps: AppDependencies) => App | Promise<App>;
  /** @default createLogger(config.logLevel) */
  readonly logger?: Logger;
  /** Install SIGTERM/SIGINT handlers on this process. `false`: none. @default process */
  readonly signals?: SignalProcess | false;
}

/** The outcome of {@link runCli}: an exit code, or a running server (serve). */
export type CliResult =
  | { readonly exitCode: number }
  | { readonly server: RunningServer; readonly devToken?: string };

/** The usage text of `trestle-server token`. */
export function tokenUsage(): string {
  return [
    'usage: trestle-server token --sub <tenant> --tier <tier> [--ttl 1h] [--secret <s>]',
    '                            [--issuer <iss>] [--audience <aud>] [--tiers-file <file>]',
    '',
    'Mints an HS256 bearer token and prints it (only the token) on stdout.',
    '  --sub         the tenant (1 to 128 characters of A-Z a-z 0-9 . _ : @ -)',
    '  --tier        a tier of the server (default tiers: free, basic, premium, unlimited)',
    '  --ttl         lifetime: seconds (3600) or 30s, 15m, 12h, 7d (default 1h)',
    `  --secret      the server's secret, at least ${MIN_SECRET_BYTES} bytes (default: TRESTLE_JWT_SECRET)`,
    '  --issuer      iss claim (default: TRESTLE_JWT_ISSUER)',
    '  --audience    aud claim (default: TRESTLE_JWT_AUDIENCE)',
    '  --tiers-file  the tiers the tier is checked against (default: TRESTLE_TIERS_FILE)',
  ].join('\n');
}

/**
 * A lifetime in seconds from `3600`, `30s`, `15m`, `12h` or `7d` (at most 366 days).
 * @throws ConfigError naming `setting`.
 */
export function parseTtl(value: string, setting = '--ttl'): number {
  const match = /^(\d+)\s*([smhd]?)$/i.exec(value.trim());
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[
    (match?.[2] ?? '').toLowerCase() as '' | 's' | 'm' | 'h' | 'd'
  ];
  const seconds = match ? Number(match[1]) * unit : Number.NaN;
  if (!Number.isSafeInteger(seconds) || seconds <= 0 || seconds > 366 * 86_400) {
    throw new ConfigError(
      setting,
      'expected a lifetime like 3600, 30s, 15m, 12h or 7d (at most 366 days)',
      value,
    );
  }
  return seconds;
}

/**
 * `trestle-server token ...`: validates the flags and returns the token.
 * @throws ConfigError naming the flag (or `TRESTLE_JWT_SECRET`).
 */
export async function tokenCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  cwd: string = process.cwd(),
): Promise<string> {
  const flags = parseFlags(argv, {
    sub: { type: 'string' },
    tier: { type: 'string' },
    ttl: { type: 'string' },
    secret: { type: 'string' },
    issuer: { type: 'string' },
    audience: { type: 'string' },
    'tiers-file': { type: 'string' },
  });
  const flag = (name: string): string | undefined => {
    const value = flags[name];
    return typeof value === 'string' ? value : undefined;
  };
  const envValue = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const sub = flag('sub');
  if (sub === undefined) throw new ConfigError('--sub', 'is required: the tenant the token is for');
  if (!TENANT_PATTERN.test(sub)) {
    throw new ConfigError('--sub', 'expected 1 to 128 characters of A-Z a-z 0-9 . _ : @ -', sub);
  }
  const tiersPath = flag('tiers-file') ?? envValue('TRESTLE_TIERS_FILE');
  const tiers =
    tiersPath === undefined
      ? DEFAULT_SERVER_TIERS
      : loadTiersFile(
          tiersPath,
          flag('tiers-file') === undefined ? 'TRESTLE_TIERS_FILE' : '--tiers-file',
          cwd,
        );
  const tier = flag('tier');
  if (tier === undefined) {
    throw new ConfigError('--tier', `is required: one of ${Object.keys(tiers).join(', ')}`);
  }
  if (!Object.hasOwn(tiers, tier)) {
    throw new ConfigError('--tier', `is not a tier of the server (${Object.keys(tiers).join(', ')})`, tier);
  }
  const ttl = flag('ttl');
  const ttlSeconds = ttl === undefined ? 3600 : parseTtl(ttl);
  const secretFlag = flag('secret');
  const secret = secretFlag ?? envValue('TRESTLE_JWT_SECRET');
  const secretSetting = secretFlag === undefined ? 'TRESTLE_JWT_SECRET' : '--secret';
  if (secret === undefined) {
    throw new ConfigError(
      '--secret',
      "no secret: pass --secret or set TRESTLE_JWT_SECRET to the server's secret (a server started without one makes a random secret and prints its own dev token)",
    );
  }
  const bytes = Buffer.byteLength(secret, 'utf8');
  if (bytes < MIN_SECRET_BYTES) {
    throw new ConfigError(
      secretSetting,
      `must be at least ${MIN_SECRET_BYTES} bytes, got ${bytes}`,
      undefined,
      {
        secret: true,
      },
    );
  }
  return signToken({
    tenant: sub,
    tier,
    ttlSeconds,
    secret,
    issuer: flag('issuer') ?? envValue('TRESTLE_JWT_ISSUER'),
    audience: flag('audience') ?? envValue('TRESTLE_JWT_AUDIENCE'),
  });
}

/** What {@link startupBanner} prints. */
export interface BannerInfo {
  readonly url: string;
  readonly httpUrl: string;
  readonly replicaId: string;
  readonly devToken?:
    | { readonly token: string; readonly tenant: string; readonly tier: string; readonly ttlSeconds: number }
    | undefined;
  readonly warnings?: readonly string[];
}

/** The human-readable lines printed on stderr at start. */
export function startupBanner(info: BannerInfo): string {
  const lines = [
    `trestle-server listening on ${info.url} (replica ${info.replicaId})`,
    `  health: ${info.httpUrl}/healthz   ready: ${info.httpUrl}/readyz   metrics: ${info.httpUrl}/metrics`,
  ];
  if (info.devToken) {
    const hours = Math.round(info.devToken.ttlSeconds / 360) / 10;
    lines.push(
      `  dev token (tenant ${info.devToken.tenant}, tier ${info.devToken.tier}, valid ${hours} h; no TRESTLE_JWT_SECRET was set, so the secret is random and changes at every start):`,
      `    ${info.devToken.token}`,
      `  attach the REPL: npm run repl -- --url ${info.url} --token ${info.devToken.token}`,
    );
  } else {
    lines.push(
      `  attach the REPL: npm run repl -- --url ${info.url} --token <token>`,
      '  (mint a token: trestle-server token --sub <tenant> --tier free, with TRESTLE_JWT_SECRET set)',
    );
  }
  for (const warning of info.warnings ?? []) lines.push(`  warning: ${warning}`);
  return `${lines.join('\n')}\n`;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** Start-up warnings for a risky configuration. */
export function configWarnings(config: ServerConfig): string[] {
  const warnings: string[] = [];
  if (config.python.allowModules === null && !isLoopback(config.host)) {
    warnings.push(
      `every Python module is allowed and the server listens on ${config.host}: set --allow-modules / TRESTLE_ALLOW_MODULES`,
    );
  }
  if (config.auth.secret === undefined && config.auth.jwksFile === undefined && !isLoopback(config.host)) {
    warnings.push(`dev mode (random secret) on a non-loopback host ${config.host}: set TRESTLE_JWT_SECRET`);
  }
  return warnings;
}

/**
 * Runs the command line (`argv` without `node` and the script). Never throws: a configuration error
 * prints its message and gives exit code 2; a start-up failure exit code 1.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<CliResult> {
  const [first, ...rest] = argv;
  const command = first !== undefined && !first.startsWith('-') ? first : 'serve';
  const args = first !== undefined && !first.startsWith('-') ? rest : argv;
  const error = (text: string, exitCode: number): CliResult => {
    io.stderr.write(`trestle-server: ${text}\n`);
    return { exitCode };
  };

  if (command === 'help' || args.includes('--help') || args.includes('-h')) {
    io.stdout.write(`${command === 'token' ? tokenUsage() : serveUsage()}\n`);
    return { exitCode: 0 };
  }
  if (command === 'token') {
    try {
      io.stdout.write(`${await tokenCommand(args, io.env, io.cwd)}\n`);
      return { exitCode: 0 };
    } catch (caught) {
      return error(caught instanceof Error ? caught.message : String(caught), 2);
    }
  }
  if (command !== 'serve') return error(`unknown command "${command}" (serve, token, help)`, 2);

  let config: ServerConfig;
  try {
    config = loadConfig({ argv: args, env: io.env, cwd: io.cwd });
  } catch (caught) {
    if (caught instanceof ConfigError) return error(caught.message, 2);
    throw caught;
  }
  const logger = io.logger ?? createLogger(config.logLevel);
  let server: RunningServer;
  try {
    server = await startServer(config, { createApp: io.createApp, logger });
  } catch (caught) {
    logger.fatal({ err: caught }, 'start-up failed');
    return error(caught instanceof Error ? caught.message : String(caught), 1);
  }
  const devSecret = server.authenticator.devSecret;
  const devToken = devSecret ? await signDevToken(devSecret, config) : undefined;
  io.stderr.write(
    startupBanner({
      url: server.url,
      httpUrl: server.httpUrl,
      replicaId: config.replicaId,
      devToken,
      warnings: configWarnings(config),
    }),
  );
  if (devToken)
    logger.info(
      { tenant: DEV_TOKEN.tenant, tier: devToken.tier },
      'dev mode: random secret, dev token printed on stderr',
    );
  if (io.signals !== false) installSignalHandlers(server, { ...(io.signals ? { process: io.signals } : {}) });
  return devToken ? { server, devToken: devToken.token } : { server };
}
