/**
 * Support for the end-to-end tests: the server as a real process (`node dist/main.js`), a real `ws`
 * JSON-RPC client, tokens minted with the server's own `signToken`, and process checks from outside the
 * server (`/proc`: its Python workers, their open files).
 *
 * Every server started here is tracked and killed by {@link stopAll} (and, as a last resort, when the
 * test process exits). Waits are bounded polls, never fixed sleeps.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { signToken } from '../index';
import { pythonExecutable } from '../testing-domain';

export { pythonAvailable, REDIS_URL, redisAvailable } from '../testing-domain';

/** The bin under test. */
export const SERVER_MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
/** The monorepo root (the README's start path runs `node apps/server/dist/main.js` from here). */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** The HS256 secret the test servers are started with (`TRESTLE_JWT_SECRET`), random per run. */
export const SECRET = randomBytes(36).toString('base64url');

/** Fails with a clear message when the server has not been built. */
export function requireBuilt(): void {
  if (!existsSync(SERVER_MAIN)) {
    throw new Error(
      `${SERVER_MAIN} does not exist: build first (pnpm turbo run build --filter @trestle/server...)`,
    );
  }
}

/** Mints a token with the server's own `signToken`. */
export function mintToken(
  tenant: string,
  tier: string,
  options: { ttlSeconds?: number; secret?: string | Uint8Array; now?: number } = {},
): Promise<string> {
  return signToken({
    tenant,
    tier,
    ttlSeconds: options.ttlSeconds ?? 3600,
    secret: options.secret ?? SECRET,
    ...(options.now !== undefined ? { now: options.now } : {}),
  });
}

/** Polls `predicate` every `intervalMs` until it holds; throws `message` after `timeoutMs`. */
export async function until<T>(
  predicate: () => T | undefined | false | Promise<T | undefined | false>,
  message: string,
  timeoutMs = 10_000,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${message}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A free TCP port on 127.0.0.1 (for replicas, whose public URL must be known before they start). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A temporary directory, removed by {@link removeTempDirs}. */
const tempDirs: string[] = [];
export function tempDir(prefix = 'trestle-e2e-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/**
 * Writes `e2e_helpers.py` into `dir` (put `dir` on `TRESTLE_PYTHONPATH`): a generator whose `finally`
 * leaves a marker file, and a sleep that says when it started.
 */
export function writeHelperModule(dir: string): void {
  writeFileSync(
    path.join(dir, 'e2e_helpers.py'),
    [
      'import time',
      '',
      'def counting(marker):',
      '    """0, 1, 2, ... forever; writes `marker` when closed (its finally runs)."""',
      '    i = 0',
      '    try:',
      '        while True:',
      '            yield i',
      '            i += 1',
      '    finally:',
      "        with open(marker, 'w') as f:",
      "            f.write('closed')",
      '',
      'def sleep_marked(marker, seconds):',
      '    """Writes `marker` (the call has started), sleeps, and returns."""',
      "    with open(marker, 'w') as f:",
      "        f.write('started')",
      '    time.sleep(seconds)',
      "    return 'slept'",
      '',
    ].join('\n'),
  );
}

// ---------------------------------------------------------------------------------------------------
// /proc: processes and open files, seen from outside the server.

/** `[state, ppid]` of a process, or `undefined` when it does not exist. */
function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '?', ppid: Number(fields[1]) };
  } catch {
    return undefined;
  }
}

/** Whether a process exists and is not a zombie. */
export function processAlive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** Live Python worker processes (`python -m trestle_bridge`) whose parent is `parentPid`. */
export function pythonWorkersOf(parentPid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const stat = procStat(pid);
    if (stat === undefined || stat.ppid !== parentPid || !processAlive(pid)) continue;
    if (cmdline(pid).includes('trestle_bridge')) pids.push(pid);
  }
  return pids;
}

/** The targets of a process's open file descriptors (`/proc/<pid>/fd/*`). */
export function openFiles(pid: number): string[] {
  const dir = `/proc/${pid}/fd`;
  let fds: string[];
  try {
    fds = readdirSync(dir);
  } catch {
    return [];
  }
  return fds.flatMap((fd) => {
    try {
      return [readlinkSync(path.join(dir, fd))];
    } catch {
      return [];
    }
  });
}

// ---------------------------------------------------------------------------------------------------
// The server process.

/** One pino JSON log line of the server (stdout). */
export type LogLine = Record<string, unknown> & { msg?: string };

/** Options of {@link startServerProcess}. */
export interface ServerProcessOptions {
  /** Added to the base environment (PATH, HOME, the test secret, the interpreter, port 0). */
  readonly env?: Record<string, string>;
  /** Flags after `dist/main.js --port <port>`. */
  readonly args?: readonly string[];
  /** `--port`. @default 0 (any free port) */
  readonly port?: number;
  /** No environment beyond PATH and HOME, no flags, run from the repo root: the README's start path. */
  readonly bare?: boolean;
  /** How long to wait for the banner. @default 20_000 */
  readonly startTimeoutMs?: number;
}

/** A running `node dist/main.js`. */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** `ws://127.0.0.1:<port>/rpc`, from the banner on stderr. */
  readonly url: string;
  /** `http://127.0.0.1:<port>`. */
  readonly httpUrl: string;
  /** Everything written on stderr so far. */
  stderr(): string;
  /** The JSON log lines written on stdout so far (non-JSON lines are kept as `{ msg }`). */
  readonly logs: LogLine[];
  /** Resolves once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The exit, once it happened. */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Every Python worker (child of the server) seen so far, live or not: call {@link noteWorkers} to update. */
  readonly workers: Set<number>;
  /** Records the server's current Python workers (from `/proc`) and returns them. */
  noteWorkers(): number[];
  /** Resolves with the first log line matching `predicate` (polls, bounded). */
  waitForLog(predicate: (line: LogLine) => boolean, message: string, timeoutMs?: number): Promise<LogLine>;
  /** GET on the HTTP side. */
  get(pathname: string): Promise<{ status: number; text: string }>;
  /**
   * Sends `signal` (default SIGTERM) after noting the workers, waits for the exit (SIGKILL after
   * `timeoutMs`), and returns the exit. Idempotent.
   */
  stop(
    signal?: NodeJS.Signals,
    timeoutMs?: number,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ServerProcess>();
let exitHookInstalled = false;

/** Base environment of a test server: what finding the interpreter needs, nothing of the server's. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'LANG', 'TMPDIR']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/**
 * Starts `node dist/main.js` (`--port 0` unless `bare`) and resolves once its banner names the URL.
 * @throws when the process exits or stays silent before that (with its stderr).
 */
export async function startServerProcess(options: ServerProcessOptions = {}): Promise<ServerProcess> {
  requireBuilt();
  const python = pythonExecutable();
  const env = options.bare
    ? baseEnv()
    : {
        ...baseEnv(),
        TRESTLE_JWT_SECRET: SECRET,
        ...(python !== undefined ? { TRESTLE_PYTHON: python } : {}),
        ...options.env,
      };
  const args = options.bare
    ? [path.relative(REPO_ROOT, SERVER_MAIN)]
    : [SERVER_MAIN, '--port', String(options.port ?? 0), ...(options.args ?? [])];
  const child = spawn(process.execPath, args, {
    cwd: options.bare ? REPO_ROOT : path.dirname(SERVER_MAIN),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const server of running) {
        try {
          server.child.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
  let stderr = '';
  let partial = '';
  const logs: LogLine[] = [];
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
  });
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line });
      }
    }
  });

  const workers = new Set<number>();
  const noteWorkers = (): number[] => {
    if (child.pid === undefined || exitInfo !== undefined) return [];
    const now = pythonWorkersOf(child.pid);
    for (const pid of now) workers.add(pid);
    return now;
  };
  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;

  const timeoutMs = options.startTimeoutMs ?? 20_000;
  let url: string;
  try {
    url = await until(
      () => {
        if (exitInfo !== undefined) {
          throw new Error(`the server exited (${JSON.stringify(exitInfo)}) before listening:\n${stderr}`);
        }
        return /listening on (ws:\/\/\S+) \(replica /.exec(stderr)?.[1];
      },
      'the server banner',
      timeoutMs,
    );
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`${(error as Error).message}\nstderr: ${stderr}`, { cause: error });
  }
  const httpUrl = url.replace(/^ws:/, 'http:').replace(/\/rpc$/, '');
  const server: ServerProcess = {
    child,
    pid: child.pid as number,
    url,
    httpUrl,
    stderr: () => stderr,
    logs,
    exited,
    exit: () => exitInfo,
    workers,
    noteWorkers,
    waitForLog(predicate, message, waitMs = 10_000) {
      return until(() => logs.find(predicate), message, waitMs);
    },
    async get(pathname) {
      const response = await fetch(`${httpUrl}${pathname}`, { signal: AbortSignal.timeout(10_000) });
      return { status: response.status, text: await response.text() };
    },
    stop(signal = 'SIGTERM', waitMs = 20_000) {
      stopping ??= (async () => {
        if (exitInfo === undefined) {
          noteWorkers();
          child.kill(signal);
          const timer = setTimeout(() => child.kill('SIGKILL'), waitMs);
          try {
            await exited;
          } finally {
            clearTimeout(timer);
          }
        }
        running.delete(server);
        return exitInfo as { code: number | null; signal: NodeJS.Signals | null };
      })();
      return stopping;
    },
  };
  running.add(server);
  return server;
}

/** Stops every server still running (SIGTERM, then SIGKILL after `timeoutMs`). For `afterAll`. */
export async function stopAll(timeoutMs = 20_000): Promise<void> {
  await Promise.all([...running].map((server) => server.stop('SIGTERM', timeoutMs)));
}

/**
 * Waits (bounded) until none of `pids` is alive, and returns the ones still alive at the deadline
 * (an empty list: no orphan).
 */
export async function survivors(pids: Iterable<number>, timeoutMs = 5_000): Promise<number[]> {
  const list = [...pids];
  try {
    await until(() => list.every((pid) => !processAlive(pid)), 'python workers to exit', timeoutMs);
  } catch {
    // reported below
  }
  return list.filter(processAlive);
}

/** `pid: command line (ppid)` of each process, for assertion messages. */
export function describeProcesses(pids: readonly number[]): string {
  return pids.map((pid) => `${pid}: ${cmdline(pid)} (ppid ${procStat(pid)?.ppid})`).join('\n');
}

// ---------------------------------------------------------------------------------------------------
// The JSON-RPC client.

/** A JSON-RPC error as the client sees it. */
export interface RpcErrorObject {
  readonly code: number;
  readonly message: string;
  readonly data?: { readonly code: string; readonly [key: string]: unknown };
}

/** A response or notification. */
export interface Message {
  readonly jsonrpc: '2.0';
  readonly id?: string | number | null;
  readonly result?: unknown;
  readonly error?: RpcErrorObject;
  readonly method?: string;
  readonly params?: Record<string, unknown>;
}

/** A failed call: `code` is `error.data.code`. */
export class RpcCallError extends Error {
  readonly code: string;
  readonly rpcCode: number;
  readonly data: Record<string, unknown>;
  constructor(method: string, error: RpcErrorObject) {
    super(`${method} failed: ${error.data?.code ?? error.code} ${error.message}`);
    this.code = error.data?.code ?? String(error.code);
    this.rpcCode = error.code;
    this.data = error.data ?? { code: String(error.code) };
  }
}

/** An upgrade the server refused. */
export interface Refusal {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: { error?: string; message?: string };
}

let nextId = 1;

/** A `ws` JSON-RPC client. */
export class RpcClient {
  readonly ws: WebSocket;
  /** Notifications received, in order. */
  readonly notifications: Message[] = [];
  /** Responses with `id: null` (errors about messages the server could not read), in order. */
  readonly orphans: Message[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #closeInfo: { code: number; reason: string } | undefined;
  readonly #pending = new Map<
    string,
    { resolve: (message: Message) => void; reject: (error: Error) => void }
  >();

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => {
        this.#closeInfo = { code, reason: reason.toString('utf8') };
        for (const waiter of this.#pending.values()) {
          waiter.reject(new Error(`the connection closed (${code}) before the reply`));
        }
        this.#pending.clear();
        resolve(this.#closeInfo);
      });
    });
    ws.on('error', () => undefined);
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as Message;
      if (message.id === undefined) {
        this.notifications.push(message);
        return;
      }
      if (message.id === null) {
        this.orphans.push(message);
        return;
      }
      const key = `${typeof message.id}:${message.id}`;
      const waiter = this.#pending.get(key);
      if (waiter) {
        this.#pending.delete(key);
        waiter.resolve(message);
      }
    });
  }

  /** Connects with `Authorization: Bearer <token>`. Rejects with a {@link Refusal} when refused. */
  static connect(
    url: string,
    token: string | undefined,
    options: { headers?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<RpcClient> {
    const headers = {
      ...(token !== undefined ? { Authorization: `Bearer ${token}` } : {}),
      ...options.headers,
    };
    const ws = new WebSocket(url, { headers, handshakeTimeout: options.timeoutMs ?? 10_000 });
    return new Promise((resolve, reject) => {
      const client = new RpcClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
      ws.once('unexpected-response', (_request, response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        response.on('end', () => {
          let body: Refusal['body'] = {};
          try {
            body = JSON.parse(text) as Refusal['body'];
          } catch {
            body = { message: text };
          }
          const refusal: Refusal = { status: response.statusCode ?? 0, headers: response.headers, body };
          reject(Object.assign(new Error(`upgrade refused: ${refusal.status} ${text}`), refusal));
          ws.terminate();
        });
      });
    });
  }

  /** Expects the upgrade to be refused and returns the refusal. */
  static async refusal(
    url: string,
    token: string | undefined,
    headers?: Record<string, string>,
  ): Promise<Refusal> {
    let client: RpcClient;
    try {
      client = await RpcClient.connect(url, token, headers ? { headers } : {});
    } catch (error) {
      if (typeof (error as Partial<Refusal>).status === 'number') return error as Refusal;
      throw error;
    }
    await client.close();
    throw new Error('expected the upgrade to be refused, but it was accepted');
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  closeInfo(): { code: number; reason: string } | undefined {
    return this.#closeInfo;
  }

  /** Sends raw text. */
  sendRaw(text: string): void {
    this.ws.send(text);
  }

  /** Sends a request; resolves with the response message (bounded by `timeoutMs`). */
  request(
    method: string,
    params?: unknown,
    options: { timeoutMs?: number; id?: string | number } = {},
  ): Promise<Message> {
    const id = options.id ?? nextId++;
    const text = JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });
    return this.requestRaw(id, text, options.timeoutMs, method);
  }

  /** Sends `text` as is and resolves with the response to `id` (bounded by `timeoutMs`). */
  requestRaw(id: string | number, text: string, timeoutMs = 15_000, label = String(id)): Promise<Message> {
    const key = `${typeof id}:${id}`;
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(key);
        reject(new Error(`${label}: no reply in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(key, {
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.ws.send(text);
    });
  }

  /** A request that must succeed: its result. @throws RpcCallError */
  async call<T = Record<string, unknown>>(method: string, params?: unknown, timeoutMs?: number): Promise<T> {
    const message = await this.request(method, params, timeoutMs === undefined ? {} : { timeoutMs });
    if (message.error) throw new RpcCallError(method, message.error);
    return message.result as T;
  }

  /** A request that must fail: its error. */
  async error(method: string, params?: unknown, timeoutMs?: number): Promise<RpcCallError> {
    const message = await this.request(method, params, timeoutMs === undefined ? {} : { timeoutMs });
    if (!message.error)
      throw new Error(`${method} succeeded but was expected to fail: ${JSON.stringify(message)}`);
    return new RpcCallError(method, message.error);
  }

  /** Sends a notification. */
  notify(method: string, params?: unknown): void {
    this.ws.send(JSON.stringify({ jsonrpc: '2.0', method, ...(params === undefined ? {} : { params }) }));
  }

  /** Notifications of one method. */
  of(method: string): Record<string, unknown>[] {
    return this.notifications.filter((n) => n.method === method).map((n) => n.params ?? {});
  }

  /** Waits (bounded) until `predicate` holds over the notifications received. */
  waitFor(predicate: () => boolean, message: string, timeoutMs = 10_000): Promise<true> {
    return until(() => predicate() || undefined, message, timeoutMs, 10);
  }

  /** Closes the socket and waits for the close. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    else this.ws.close();
    const timer = setTimeout(() => this.ws.terminate(), 2_000);
    await this.closed;
    clearTimeout(timer);
  }
}

/** A ref as the wire carries it. */
export type WireRef = { readonly __type__: 'ref'; readonly [key: string]: unknown };
