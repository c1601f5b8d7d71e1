/**
 * The `trestle-repl` command line: flags → a backend → the REPL. Exit codes: 0 success, 1 an
 * evaluation failed (script mode), 2 bad usage, 3 the backend could not start (no Python, server
 * unreachable, token refused), 130 interrupted (script mode).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { Backend } from './backend';
import { embeddedBackend } from './embedded-backend';
import { messageOf } from './errors';
import { remoteBackend } from './remote-backend';
import { runRepl } from './repl';
import { wantsColor } from './style';

/** The process the CLI runs in (injected by main.ts and tests). */
export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean | undefined };
  readonly stdout: NodeJS.WritableStream & { readonly isTTY?: boolean | undefined };
  readonly stderr: NodeJS.WritableStream & { readonly isTTY?: boolean | undefined };
  /** Builds the backend (tests substitute one). @default embedded or remote from the flags */
  readonly createBackend?: (options: CliOptions) => Backend;
}

/** What the flags say. */
export interface CliOptions {
  readonly mode: 'embedded' | 'remote';
  readonly url?: string | undefined;
  readonly token?: string | undefined;
  readonly tier?: string | undefined;
  readonly python?: string | undefined;
  readonly eval?: string | undefined;
  readonly history: string | undefined;
  readonly color: boolean;
  readonly report: boolean;
  readonly connectTimeoutMs: number;
}

/** A usage error (exit code 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const USAGE = `usage: trestle-repl [--embedded] [--tier <tier>] [--python <path>]
       trestle-repl --url ws://host:port/rpc --token <jwt>
       ... [--eval <code>] [--no-history] [--no-color] [--report]

Modes
  --embedded              Python and the bridge in this process (the default without --url)
  --url <ws-url>          remote: the Trestle server's JSON-RPC endpoint (ws://127.0.0.1:8765/rpc)
  --token <jwt>           the bearer token for --url (default: TRESTLE_TOKEN)
  --tier <tier>           embedded: the session's budget tier (free, basic, premium, unlimited; default free)
  --python <path>         embedded: the interpreter (default: TRESTLE_PYTHON, VIRTUAL_ENV, python3)
  --connect-timeout-ms n  remote: how long to wait for the first session (default 15000)

Scripts
  -e, --eval <code>       run <code> and exit (values of expressions are printed)
  (stdin not a terminal)  run the lines read from stdin, one statement after the other
  --report                in a script, print the session report on stderr at the end
  exit codes: 0 ok, 1 an evaluation failed, 2 bad usage, 3 could not start, 130 interrupted

Other
  --no-history            do not read or write the history file
                          (default ~/.trestle_repl_history; TRESTLE_REPL_HISTORY moves it)
  --no-color              no colours (also NO_COLOR, or output that is not a terminal)
  -h, --help              this text
`;

/** Parses the flags. @throws UsageError */
export function parseCli(argv: readonly string[], env: CliIo['env']): CliOptions | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        embedded: { type: 'boolean' },
        url: { type: 'string' },
        token: { type: 'string' },
        tier: { type: 'string' },
        python: { type: 'string' },
        eval: { type: 'string', short: 'e' },
        'no-history': { type: 'boolean' },
        'no-color': { type: 'boolean' },
        report: { type: 'boolean' },
        'connect-timeout-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError(messageOf(error));
  }
  if (values.help === true) return 'help';
  const url = values.url as string | undefined;
  if (url !== undefined && values.embedded === true) {
    throw new UsageError('--embedded and --url exclude each other');
  }
  const mode = url === undefined ? 'embedded' : 'remote';
  const token = (values.token as string | undefined) ?? nonEmpty(env.TRESTLE_TOKEN);
  if (mode === 'remote') {
    if (!/^wss?:\/\//.test(url ?? ''))
      throw new UsageError(`--url must be a ws:// or wss:// URL, got ${url}`);
    if (token === undefined || token === '')
      throw new UsageError('--url needs --token <jwt> (or TRESTLE_TOKEN)');
    for (const flag of ['tier', 'python'] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} applies to embedded mode only`);
    }
  }
  const timeoutText = values['connect-timeout-ms'] as string | undefined;
  const connectTimeoutMs = timeoutText === undefined ? 15_000 : Number(timeoutText);
  if (!Number.isInteger(connectTimeoutMs) || connectTimeoutMs <= 0) {
    throw new UsageError(`--connect-timeout-ms must be a positive integer, got ${timeoutText}`);
  }
  // An empty TRESTLE_REPL_HISTORY turns the history off, like NODE_REPL_HISTORY for node's REPL.
  const history =
    values['no-history'] === true || env.TRESTLE_REPL_HISTORY === ''
      ? undefined
      : (env.TRESTLE_REPL_HISTORY ?? join(env.HOME ?? homedir(), '.trestle_repl_history'));
  return {
    mode,
    url,
    token,
    tier: values.tier as string | undefined,
    python: values.python as string | undefined,
    eval: values.eval as string | undefined,
    history,
    color: values['no-color'] !== true,
    report: values.report === true,
    connectTimeoutMs,
  };
}

const nonEmpty = (value: string | undefined) => (value === undefined || value === '' ? undefined : value);

/** The backend the flags ask for. */
export function backendFor(options: CliOptions): Backend {
  if (options.mode === 'remote') {
    return remoteBackend({
      url: options.url as string,
      token: options.token as string,
      connectTimeoutMs: options.connectTimeoutMs,
    });
  }
  return embeddedBackend({
    ...(options.tier !== undefined ? { tier: options.tier } : {}),
    ...(options.python !== undefined ? { python: options.python } : {}),
  });
}

/** Runs the CLI; resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let options: CliOptions | 'help';
  try {
    options = parseCli(argv, io.env);
  } catch (error) {
    io.stderr.write(`trestle-repl: ${messageOf(error)}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  const backend = (io.createBackend ?? backendFor)(options);
  try {
    await backend.start();
  } catch (error) {
    io.stderr.write(
      `trestle-repl: could not start (${backend.description}): ${messageOf(error).replace(/^\[[a-z-]+\] /, '')}\n`,
    );
    await backend.close().catch(() => undefined);
    return 3;
  }
  const interactive = options.eval === undefined && io.stdin.isTTY === true;
  const colors = wantsColor(io.stdout, io.env, !options.color);
  const errorColors = wantsColor(io.stderr, io.env, !options.color);
  if (interactive) {
    return runRepl({
      backend,
      output: io.stdout,
      errorOutput: io.stderr,
      colors,
      errorColors,
      source: {
        kind: 'terminal',
        input: io.stdin,
        terminal: io.stdout.isTTY === true,
        historyPath: options.history,
      },
    });
  }
  const lines =
    options.eval !== undefined
      ? arrayLines(options.eval.split(/\r?\n/))
      : createInterface({ input: io.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  return runRepl({
    backend,
    output: io.stdout,
    errorOutput: io.stderr,
    colors,
    errorColors,
    source: { kind: 'script', lines, report: options.report },
  });
}

async function* arrayLines(lines: readonly string[]): AsyncGenerator<string> {
  yield* lines;
}
