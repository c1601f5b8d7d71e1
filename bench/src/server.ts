/**
 * Benchmark 11: the reference server (`apps/server`) end to end. No targets: ratios are reported, and
 * only a failure to run is a miss.
 *
 * - [11A] / [11B]: `py.call math.sqrt [16]` through the server (JSON-RPC 2.0 over one WebSocket, one
 *   session, tier unlimited: metered but never denied) against the same call made directly through
 *   `createPython()` of `@trestle/python-adapter` in the bench process (size 1, like the server's one
 *   worker per tenant), at 1 and at 64 calls in flight. Interleaved rounds in rotated order after a
 *   warmup round; calls/s = median round; p50/p99 = median over rounds of each round's percentile.
 *   Ratios server/direct: calls/s (below 1: the server is slower), p50 and p99 (above 1: slower).
 * - [11C] (run first, on the fresh server): memory per idle session: N authenticated connections
 *   without a session, then one session opened on each. At each step, after a full GC in the server
 *   and a settle: the server's RSS (`VmRSS` of `/proc/<pid>/status`), its V8 heap in use (its own
 *   `/metrics`, `trestle_nodejs_heap_size_used_bytes`) and the tenant's Python worker's RSS. Per
 *   connection = step 1 delta / N; per session = step 2 delta / N.
 *
 * The server is the built `apps/server/dist/main.js`, started as a child process on `--port 0` with a
 * known HS256 secret and a tiers file holding one unlimited tier; tokens are signed here (node:crypto).
 * It runs with `--expose-gc --import server-gc.mjs`: a SIGUSR2 handler that runs `gc()`, used by [11C]
 * only (no cost otherwise).
 * Every loop is bounded in count and time; the clients are closed and the server (and any Python worker
 * it leaves behind) is stopped by PID in `finally`.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { median } from './harness';
import { latencyTable, percentile, runLatencyRound } from './latency';
import { ratioText, readVersion, table } from './report';

export const SERVER_CONFIG = {
  rounds: 5,
  /** Calls per round, per contender. */
  calls: { 1: 2_000, 64: 8_000 },
  /** Idle sessions (one per connection) for [11C]. */
  idleSessions: 500,
  /** Connections opened (or sessions opened) at once while building [11C]. */
  openBatch: 50,
  /** Wait after each [11C] step before reading memory. */
  settleMs: 2_000,
  /** Memory readings per step (median), this far apart. */
  readings: 5,
  readingGapMs: 200,
  roundDeadlineMs: 30_000,
  startTimeoutMs: 20_000,
  callTimeoutMs: 15_000,
  stopTimeoutMs: 15_000,
} as const;

const serverMain = fileURLToPath(new URL('../../apps/server/dist/main.js', import.meta.url));
const gcPreload = fileURLToPath(new URL('./server-gc.mjs', import.meta.url));
const serverPackage = fileURLToPath(new URL('../../apps/server/package.json', import.meta.url));
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const TIER = 'bench-unlimited';

export interface ServerRow {
  readonly id: 'server' | 'direct';
  readonly label: string;
  readonly inflight: number;
  readonly callsPerSec: number;
  readonly minCallsPerSec: number;
  readonly maxCallsPerSec: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly calls: number;
  /** Replies that were not 4. */
  readonly bad: number;
}

export interface ServerComparison {
  readonly scenario: string;
  readonly inflight: number;
  readonly metric: 'calls/s' | 'p50' | 'p99';
  /** server / direct. */
  readonly ratio: number;
  /** server - direct, microseconds (latency metrics only). */
  readonly addedUs?: number;
}

export interface MemoryStep {
  readonly serverRssKiB: number;
  readonly serverHeapUsedBytes: number;
  readonly workerRssKiB: number;
}

export interface ServerMemory {
  readonly sessions: number;
  readonly baseline: MemoryStep;
  readonly connected: MemoryStep;
  readonly withSessions: MemoryStep;
  readonly serverRssPerConnectionKiB: number;
  readonly serverRssPerSessionKiB: number;
  readonly serverRssPerConnectionAndSessionKiB: number;
  readonly serverHeapPerConnectionBytes: number;
  readonly serverHeapPerSessionBytes: number;
  readonly workerRssPerSessionKiB: number;
}

export type ServerBenchOutcome =
  | { readonly skipped: true; readonly reason: string }
  | {
      readonly skipped: false;
      readonly config: typeof SERVER_CONFIG;
      readonly versions: Record<string, string>;
      readonly loadAverage: { readonly start: number[]; readonly end: number[] };
      readonly rows: readonly ServerRow[];
      readonly comparisons: readonly ServerComparison[];
      readonly memory: ServerMemory | { readonly error: string };
    };

// ---------------------------------------------------------------------------------------------------
// Helpers

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const base64url = (value: string | Buffer): string => Buffer.from(value).toString('base64url');

/** An HS256 JWT `{ sub, tier, iat, exp }`, as the server's `trestle-server token` mints it. */
function signToken(secret: string, sub: string, tier: string, ttlSeconds = 3_600): string {
  const now = Math.floor(Date.now() / 1000);
  const head = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = base64url(JSON.stringify({ sub, tier, iat: now, exp: now + ttlSeconds }));
  const signature = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${signature}`;
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** `VmRSS` of a process in KiB (Linux), `NaN` when it cannot be read. */
function rssKiB(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** PIDs of the live (not zombie) children of `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so parse after the last ')'.
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state !== 'Z' && Number(ppid) === pid) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------
// A minimal JSON-RPC 2.0 client over `ws`

interface RpcReply {
  readonly id: number;
  readonly result?: unknown;
  readonly error?: { readonly code: number; readonly message: string; readonly data?: { code?: string } };
}

class RpcClient {
  readonly #ws: WebSocket;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (e: Error) => void }>();
  #nextId = 0;
  #closed: Error | undefined;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data) => {
      const reply = JSON.parse(String(data)) as RpcReply;
      if (typeof reply.id !== 'number') return; // notifications: not used here
      const entry = this.#pending.get(reply.id);
      if (!entry) return;
      this.#pending.delete(reply.id);
      if (reply.error) {
        const code = reply.error.data?.code ?? String(reply.error.code);
        entry.reject(new Error(`${code}: ${reply.error.message}`));
      } else entry.resolve(reply.result);
    });
    ws.on('close', (code, reason) => {
      this.#closed = new Error(`the connection closed (${code} ${String(reason)})`);
      for (const entry of this.#pending.values()) entry.reject(this.#closed);
      this.#pending.clear();
    });
    ws.on('error', () => undefined); // 'close' follows
  }

  static open(url: string, token: string, timeoutMs: number): Promise<RpcClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        headers: { Authorization: `Bearer ${token}` },
        perMessageDeflate: false,
      });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`connect: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(new RpcClient(ws));
      });
      ws.once('unexpected-response', (_request, response) => {
        clearTimeout(timer);
        reject(new Error(`upgrade refused: HTTP ${response.statusCode}`));
        ws.terminate();
      });
      ws.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  call(method: string, params?: unknown): Promise<unknown> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  close(): Promise<void> {
    if (this.#ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#ws.terminate();
        resolve();
      }, 2_000);
      this.#ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.#ws.close(1000);
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// The server child

interface ServerChild {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly url: string;
  readonly httpUrl: string;
  readonly secret: string;
  readonly directory: string;
  /** What the server wrote on stderr (the banner, errors). */
  stderr(): string;
}

async function startServer(): Promise<ServerChild> {
  const directory = mkdtempSync(join(tmpdir(), 'trestle-bench-server-'));
  const tiersFile = join(directory, 'tiers.json');
  writeFileSync(tiersFile, `${JSON.stringify({ [TIER]: null })}\n`);
  const secret = randomBytes(32).toString('base64url');
  const child = spawn(
    process.execPath,
    [
      '--expose-gc',
      '--import',
      gcPreload,
      serverMain,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--tiers-file',
      tiersFile,
      '--log-level',
      'warn',
    ],
    {
      cwd: repoRoot,
      env: { ...process.env, TRESTLE_JWT_SECRET: secret, PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  let stdout = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    if (stderr.length < 64_000) stderr += chunk.toString();
  });
  // JSON logs (warn and above): kept for a failure message, otherwise dropped.
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout = (stdout + chunk.toString()).slice(-8_000);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('the server did not start (no pid)');
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the server did not listen in ${SERVER_CONFIG.startTimeoutMs} ms`)),
        SERVER_CONFIG.startTimeoutMs,
      );
      const poll = setInterval(() => {
        const match = /listening on (ws:\/\/\S+)/.exec(stderr);
        if (match?.[1]) {
          clearTimeout(timer);
          clearInterval(poll);
          resolve(match[1]);
        }
      }, 20);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        clearInterval(poll);
        reject(new Error(`the server exited (${code ?? signal}): ${stderr.trim()} ${stdout.trim()}`));
      });
    });
    const httpUrl = url.replace(/^ws:/, 'http:').replace(/\/rpc$/, '');
    return { child, pid, url, httpUrl, secret, directory, stderr: () => stderr };
  } catch (error) {
    await stopServer({ child, pid, directory }, []);
    throw error;
  }
}

/** SIGTERM (graceful drain), SIGKILL after the deadline; then any Python worker left, by PID. */
async function stopServer(
  server: { child: ChildProcess; pid: number; directory: string },
  workers: readonly number[],
): Promise<void> {
  const known = new Set([...workers, ...childrenOf(server.pid)]);
  if (server.child.exitCode === null && server.child.signalCode === null) {
    const exited = new Promise((resolve) => server.child.once('exit', resolve));
    try {
      process.kill(server.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      console.log(
        `  server ${server.pid} still running ${SERVER_CONFIG.stopTimeoutMs} ms after SIGTERM: SIGKILL`,
      );
      try {
        process.kill(server.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }, SERVER_CONFIG.stopTimeoutMs);
    await exited;
    clearTimeout(timer);
  }
  for (const pid of known) {
    if (!isAlive(pid)) continue;
    await sleep(500);
    if (!isAlive(pid)) continue;
    console.log(`  python worker ${pid} still running after the server stopped: SIGKILL`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  rmSync(server.directory, { recursive: true, force: true });
}

/** `trestle_nodejs_heap_size_used_bytes` from the server's `/metrics`. */
async function serverHeapUsed(httpUrl: string): Promise<number> {
  const response = await withDeadline(fetch(`${httpUrl}/metrics`), 5_000, 'GET /metrics');
  const text = await response.text();
  const match = /^trestle_nodejs_heap_size_used_bytes(?:\{[^}]*\})?\s+([0-9.e+]+)/m.exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

// ---------------------------------------------------------------------------------------------------
// Throughput and latency

interface Caller {
  sqrt(): Promise<unknown>;
}

interface Contender {
  readonly id: 'server' | 'direct';
  readonly label: string;
  readonly caller: Caller;
}

async function measure(contenders: readonly Contender[], inflight: 1 | 64): Promise<ServerRow[]> {
  const calls = SERVER_CONFIG.calls[inflight];
  const stats = new Map(
    contenders.map((c) => [c.id, { rps: [] as number[], p50: [] as number[], p99: [] as number[], bad: 0 }]),
  );
  for (let round = -1; round < SERVER_CONFIG.rounds; round++) {
    const order = contenders.map(
      (_, i) => contenders[(i + Math.max(0, round)) % contenders.length] as Contender,
    );
    for (const contender of order) {
      const result = await runLatencyRound(
        async () => (await contender.caller.sqrt()) === 4,
        round < 0 ? Math.ceil(calls / 2) : calls,
        inflight,
        SERVER_CONFIG.roundDeadlineMs,
      );
      if (round < 0) continue; // warmup
      const sorted = result.latencies.sort();
      const entry = stats.get(contender.id);
      if (!entry) continue;
      entry.rps.push(result.callsPerSec);
      entry.p50.push(percentile(sorted, 0.5));
      entry.p99.push(percentile(sorted, 0.99));
      entry.bad += result.bad;
    }
  }
  return contenders.map((contender) => {
    const entry = stats.get(contender.id) ?? { rps: [], p50: [], p99: [], bad: 0 };
    return {
      id: contender.id,
      label: contender.label,
      inflight,
      callsPerSec: median(entry.rps),
      minCallsPerSec: Math.min(...entry.rps),
      maxCallsPerSec: Math.max(...entry.rps),
      p50Us: median(entry.p50),
      p99Us: median(entry.p99),
      calls: calls * SERVER_CONFIG.rounds,
      bad: entry.bad,
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// Memory per idle session

async function readStep(server: ServerChild, workerPid: number | undefined): Promise<MemoryStep> {
  await sleep(SERVER_CONFIG.settleMs);
  const rss: number[] = [];
  const heap: number[] = [];
  const worker: number[] = [];
  for (let i = 0; i < SERVER_CONFIG.readings; i++) {
    process.kill(server.pid, 'SIGUSR2'); // a full GC in the server (server-gc.mjs)
    await sleep(SERVER_CONFIG.readingGapMs);
    rss.push(rssKiB(server.pid));
    heap.push(await serverHeapUsed(server.httpUrl));
    worker.push(workerPid === undefined ? Number.NaN : rssKiB(workerPid));
  }
  return { serverRssKiB: median(rss), serverHeapUsedBytes: median(heap), workerRssKiB: median(worker) };
}

async function inBatches<T>(count: number, batch: number, make: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let start = 0; start < count; start += batch) {
    const size = Math.min(batch, count - start);
    out.push(...(await Promise.all(Array.from({ length: size }, (_, j) => make(start + j)))));
  }
  return out;
}

async function measureMemory(server: ServerChild, workers: Set<number>): Promise<ServerMemory> {
  const n = SERVER_CONFIG.idleSessions;
  const token = signToken(server.secret, 'bench-idle', TIER);
  const clients: RpcClient[] = [];
  try {
    // The tenant's Python starts with its first session: open one first, so the worker's start is in the baseline.
    const before = new Set(childrenOf(server.pid));
    const first = await RpcClient.open(server.url, token, SERVER_CONFIG.callTimeoutMs);
    clients.push(first);
    await withDeadline(first.call('session.open', {}), SERVER_CONFIG.callTimeoutMs, 'session.open');
    const workerPid = childrenOf(server.pid).find((pid) => !before.has(pid));
    if (workerPid !== undefined) workers.add(workerPid);
    const baseline = await readStep(server, workerPid);

    const opened = await inBatches(n, SERVER_CONFIG.openBatch, () =>
      RpcClient.open(server.url, token, SERVER_CONFIG.callTimeoutMs),
    );
    clients.push(...opened);
    const connected = await readStep(server, workerPid);

    await inBatches(n, SERVER_CONFIG.openBatch, (i) =>
      withDeadline(
        (opened[i] as RpcClient).call('session.open', {}),
        SERVER_CONFIG.callTimeoutMs,
        'session.open',
      ),
    );
    const withSessions = await readStep(server, workerPid);

    // End the sessions now (not after the resume grace, in the middle of whatever runs next).
    await inBatches(n, SERVER_CONFIG.openBatch, (i) =>
      withDeadline(
        (opened[i] as RpcClient).call('session.end', {}),
        SERVER_CONFIG.callTimeoutMs,
        'session.end',
      ),
    );
    await withDeadline(first.call('session.end', {}), SERVER_CONFIG.callTimeoutMs, 'session.end');

    return {
      sessions: n,
      baseline,
      connected,
      withSessions,
      serverRssPerConnectionKiB: (connected.serverRssKiB - baseline.serverRssKiB) / n,
      serverRssPerSessionKiB: (withSessions.serverRssKiB - connected.serverRssKiB) / n,
      serverRssPerConnectionAndSessionKiB: (withSessions.serverRssKiB - baseline.serverRssKiB) / n,
      serverHeapPerConnectionBytes: (connected.serverHeapUsedBytes - baseline.serverHeapUsedBytes) / n,
      serverHeapPerSessionBytes: (withSessions.serverHeapUsedBytes - connected.serverHeapUsedBytes) / n,
      workerRssPerSessionKiB: (withSessions.workerRssKiB - connected.workerRssKiB) / n,
    };
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
}

// ---------------------------------------------------------------------------------------------------
// The section

type PythonModule = typeof import('@trestle/python-adapter');
type Python = ReturnType<PythonModule['createPython']>;

const ratioOf = (rows: readonly ServerRow[], inflight: number, pick: (row: ServerRow) => number): number => {
  const server = rows.find((row) => row.id === 'server' && row.inflight === inflight);
  const direct = rows.find((row) => row.id === 'direct' && row.inflight === inflight);
  return server && direct && pick(direct) > 0 ? pick(server) / pick(direct) : Number.NaN;
};

/** Runs section [11], prints its tables, and returns the outcome (for the JSON) and its misses. */
export async function runServerSection(): Promise<{ outcome: ServerBenchOutcome; misses: string[] }> {
  console.log(
    '\n[11] reference server end to end: py.call math.sqrt through apps/server vs python-adapter direct',
  );
  const skip = (reason: string) => {
    console.log(`  SKIPPED: ${reason}`);
    return { outcome: { skipped: true as const, reason }, misses: [`[11] skipped: ${reason}`] };
  };
  if (!existsSync(serverMain)) {
    return skip(
      'apps/server/dist/main.js does not exist (build it: pnpm turbo run build --filter @trestle/server...)',
    );
  }
  let adapter: PythonModule;
  try {
    adapter = await import('@trestle/python-adapter');
  } catch (error) {
    return skip(`@trestle/python-adapter is not built (${String(error)})`);
  }
  const loadStart = os.loadavg().map((load) => Number(load.toFixed(2)));
  const misses: string[] = [];
  const rows: ServerRow[] = [];
  let memory: ServerMemory | { error: string } = { error: 'not run' };
  let server: ServerChild | undefined;
  let client: RpcClient | undefined;
  let direct: Python | undefined;
  const workers = new Set<number>();
  try {
    server = await startServer();
  } catch (error) {
    misses.push(`[11] the server did not start: ${(error as Error).message}`);
  }
  try {
    if (server) {
      // [11C] first, on the fresh server: its heap has not grown yet, so RSS follows what sessions take.
      try {
        memory = await measureMemory(server, workers);
      } catch (error) {
        memory = { error: (error as Error).message };
        misses.push(`[11C] memory run failed: ${(error as Error).message}`);
      }
      try {
        direct = adapter.createPython({ size: 1 });
        await withDeadline(direct.ready(), SERVER_CONFIG.startTimeoutMs, 'direct python ready()');
        client = await RpcClient.open(
          server.url,
          signToken(server.secret, 'bench', TIER),
          SERVER_CONFIG.callTimeoutMs,
        );
        const before = new Set(childrenOf(server.pid));
        await withDeadline(client.call('session.open', {}), SERVER_CONFIG.startTimeoutMs, 'session.open');
        for (const pid of childrenOf(server.pid)) if (!before.has(pid)) workers.add(pid);
        const rpc = client;
        const py = direct;
        const params = { module: 'math', fn: 'sqrt', args: [16] };
        const contenders: Contender[] = [
          {
            id: 'server',
            label: 'server: py.call over ws (JSON-RPC)',
            caller: { sqrt: async () => ((await rpc.call('py.call', params)) as { value: unknown }).value },
          },
          {
            id: 'direct',
            label: 'direct: python-adapter call()',
            caller: { sqrt: () => py.call('math', 'sqrt', [16]) },
          },
        ];
        for (const inflight of [1, 64] as const) rows.push(...(await measure(contenders, inflight)));
        await withDeadline(client.call('session.end', {}), SERVER_CONFIG.callTimeoutMs, 'session.end');
      } catch (error) {
        misses.push(`[11] throughput run failed: ${(error as Error).message}`);
      }
    }
  } finally {
    await client?.close();
    if (direct) await withDeadline(direct.close(), 10_000, 'direct python close()').catch(() => undefined);
    if (server) await stopServer(server, [...workers]);
  }
  const loadEnd = os.loadavg().map((load) => Number(load.toFixed(2)));

  const comparisons: ServerComparison[] = [];
  for (const inflight of [1, 64] as const) {
    const scenario = inflight === 1 ? '11A' : '11B';
    const server = rows.find((row) => row.id === 'server' && row.inflight === inflight);
    const directRow = rows.find((row) => row.id === 'direct' && row.inflight === inflight);
    comparisons.push(
      { scenario, inflight, metric: 'calls/s', ratio: ratioOf(rows, inflight, (row) => row.callsPerSec) },
      {
        scenario,
        inflight,
        metric: 'p50',
        ratio: ratioOf(rows, inflight, (row) => row.p50Us),
        ...(server && directRow ? { addedUs: server.p50Us - directRow.p50Us } : {}),
      },
      {
        scenario,
        inflight,
        metric: 'p99',
        ratio: ratioOf(rows, inflight, (row) => row.p99Us),
        ...(server && directRow ? { addedUs: server.p99Us - directRow.p99Us } : {}),
      },
    );
  }

  console.log(
    `  one session, tier unlimited (metered, never denied); ${SERVER_CONFIG.rounds} interleaved rounds after a warmup; ` +
      'calls/s = median round, p50/p99 = median of the rounds; direct = createPython({ size: 1 }) in the bench process',
  );
  console.log(
    `  load average: ${loadStart.join(' ')} at start, ${loadEnd.join(' ')} at end (2 cores shared)`,
  );
  if (rows.length > 0) {
    console.log(latencyTable(rows, 0));
    console.log(
      table(
        ['scenario', 'in flight', 'metric', 'server / direct', 'server - direct'],
        comparisons.map((c) => [
          c.scenario,
          String(c.inflight),
          c.metric,
          ratioText(c.ratio),
          c.addedUs === undefined ? '' : `${c.addedUs >= 0 ? '+' : ''}${c.addedUs.toFixed(0)} us`,
        ]),
        [1, 3, 4],
      ),
    );
  }
  if ('error' in memory) {
    console.log(`  [11C] memory per idle session: FAILED ${memory.error}`);
  } else {
    const m = memory;
    const kib = (value: number) => (Number.isFinite(value) ? `${value.toFixed(1)} KiB` : 'n/a');
    const mib = (value: number) => (Number.isFinite(value) ? `${(value / 1024).toFixed(1)} MiB` : 'n/a');
    console.log(
      `  [11C] memory per idle session: ${m.sessions} connections, then one session on each; ` +
        `median of ${SERVER_CONFIG.readings} readings after a ${SERVER_CONFIG.settleMs} ms settle (a full GC in the server before each reading)`,
    );
    console.log(
      table(
        ['step', 'server RSS', 'server heap used', 'python worker RSS'],
        [
          [
            '1 session (worker started)',
            mib(m.baseline.serverRssKiB),
            mib(m.baseline.serverHeapUsedBytes / 1024),
            mib(m.baseline.workerRssKiB),
          ],
          [
            `+ ${m.sessions} connections`,
            mib(m.connected.serverRssKiB),
            mib(m.connected.serverHeapUsedBytes / 1024),
            mib(m.connected.workerRssKiB),
          ],
          [
            `+ ${m.sessions} sessions`,
            mib(m.withSessions.serverRssKiB),
            mib(m.withSessions.serverHeapUsedBytes / 1024),
            mib(m.withSessions.workerRssKiB),
          ],
        ],
        [1, 2, 3],
      ),
    );
    console.log(
      table(
        ['per', 'server RSS', 'server heap used', 'python worker RSS'],
        [
          [
            'connection (no session)',
            kib(m.serverRssPerConnectionKiB),
            kib(m.serverHeapPerConnectionBytes / 1024),
            '',
          ],
          [
            'session (on its connection)',
            kib(m.serverRssPerSessionKiB),
            kib(m.serverHeapPerSessionBytes / 1024),
            kib(m.workerRssPerSessionKiB),
          ],
          [
            'connection + session',
            kib(m.serverRssPerConnectionAndSessionKiB),
            kib((m.serverHeapPerConnectionBytes + m.serverHeapPerSessionBytes) / 1024),
            kib(m.workerRssPerSessionKiB),
          ],
        ],
        [1, 2, 3],
      ),
    );
  }
  for (const row of rows) if (row.bad > 0) misses.push(`[11] ${row.label}: ${row.bad} wrong replies`);
  if (rows.length === 0 && misses.length === 0) misses.push('[11] no rows');
  return {
    outcome: {
      skipped: false,
      config: SERVER_CONFIG,
      versions: {
        '@trestle/server': (() => {
          try {
            return (
              (JSON.parse(readFileSync(serverPackage, 'utf8')) as { version?: string }).version ?? 'unknown'
            );
          } catch {
            return 'unknown';
          }
        })(),
        '@trestle/python-adapter': readVersion('@trestle/python-adapter'),
        ws: readVersion('ws'),
      },
      loadAverage: { start: loadStart, end: loadEnd },
      rows,
      comparisons,
      memory,
    },
    misses,
  };
}
