/**
 * Benchmark 10: `@trestle/kernel-client` over a Unix socket, against a raw hand-written length-prefixed
 * client (the floor) and vscode-jsonrpc, all in the same run. The daemons run in one child process
 * (kernel-daemon.ts): trestle's `createKernelServer` (which the floor talks to as well) and a
 * vscode-jsonrpc server.
 *
 * - [10A] persistent connection, 1 call in flight: p50/p99 latency and calls/s.
 * - [10B] persistent connection, 64 calls in flight: calls/s and p50/p99 latency.
 *   Targets: trestle >= 0.85x the floor at 1 and 64 in flight, and >= 3x vscode-jsonrpc at 64 in flight.
 * - [10C] one request per connection (the seed's mode), 1 and 64 in flight: trestle against a raw
 *   oneshot floor (connect, write one frame, read one frame, close). No target (reported).
 *
 * Each call is `ECHO {n}` and every reply is checked (`n` comes back). Interleaved rounds in rotated
 * order after a warmup round; calls/s = median round, p50/p99 = median over rounds of each round's
 * percentile. Every loop is bounded in count and time; the clients are closed and the daemon child is
 * stopped by its PID in `finally`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMessageConnection, SocketMessageReader, SocketMessageWriter } from 'vscode-jsonrpc/node';
import { median } from './harness';
import { latencyTable, percentile, runLatencyRound } from './latency';
import { ratioText, readVersion, table } from './report';

export const KERNEL_CONFIG = {
  rounds: 5,
  persistent: { 1: 10_000, 64: 60_000 },
  oneshot: { 1: 2_000, 64: 6_000 },
  /** A round not finished after this fails its contender. */
  roundDeadlineMs: 20_000,
  startTimeoutMs: 10_000,
} as const;

export const KERNEL_TARGETS = { vsFloor: 0.85, vsJsonRpcAt64: 3 } as const;

interface Caller {
  call(n: number): Promise<number>;
  close(): Promise<void> | void;
}

interface Contender {
  readonly id: string;
  readonly label: string;
  readonly open: (path: { trestle: string; jsonrpc: string }) => Promise<Caller>;
}

export interface KernelRow {
  readonly id: string;
  readonly label: string;
  readonly inflight: number;
  readonly callsPerSec: number;
  readonly minCallsPerSec: number;
  readonly maxCallsPerSec: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly calls: number;
  readonly bad: number;
}

export interface KernelComparison {
  readonly scenario: string;
  readonly subject: string;
  readonly peer: string;
  readonly metric: 'calls/s';
  readonly ratio: number;
  readonly target?: number;
  readonly pass?: boolean;
}

export type KernelClientOutcome =
  | { readonly skipped: true; readonly reason: string }
  | {
      readonly skipped: false;
      readonly config: typeof KERNEL_CONFIG;
      readonly versions: Record<string, string>;
      readonly rows: readonly KernelRow[];
      readonly comparisons: readonly KernelComparison[];
    };

const encodeFrame = (value: unknown): Buffer => {
  const json = JSON.stringify(value);
  const length = Buffer.byteLength(json);
  const frame = Buffer.allocUnsafe(4 + length);
  frame.writeUInt32BE(length, 0);
  frame.write(json, 4);
  return frame;
};

/** The floor: a minimal persistent, id-multiplexed length-prefixed JSON client, no limits, no deadline. */
async function floorPersistent(path: string): Promise<Caller> {
  const socket = net.createConnection(path);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const pending = new Map<number, (reply: { n: number }) => void>();
  let buffer: Buffer = Buffer.alloc(0);
  let nextId = 0;
  socket.on('data', (chunk: Buffer) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    let offset = 0;
    while (buffer.length - offset >= 4) {
      const length = buffer.readUInt32BE(offset);
      if (buffer.length - offset - 4 < length) break;
      const reply = JSON.parse(buffer.toString('utf8', offset + 4, offset + 4 + length)) as {
        id: number;
        n: number;
      };
      offset += 4 + length;
      const resolve = pending.get(reply.id);
      pending.delete(reply.id);
      resolve?.(reply);
    }
    buffer = offset === buffer.length ? Buffer.alloc(0) : buffer.subarray(offset);
  });
  return {
    call: (n) =>
      new Promise((resolve) => {
        const id = ++nextId;
        pending.set(id, (reply) => resolve(reply.n));
        socket.write(encodeFrame({ method: 'ECHO', params: { n }, timestamp: Date.now() / 1000, id }));
      }),
    close: () => void socket.destroy(),
  };
}

/** The oneshot floor: connect, write one frame, read one frame, close. */
function floorOneshot(path: string): Caller {
  return {
    call: (n) =>
      new Promise((resolve, reject) => {
        const socket = net.createConnection(path);
        let buffer: Buffer = Buffer.alloc(0);
        socket.on('connect', () =>
          socket.write(encodeFrame({ method: 'ECHO', params: { n }, timestamp: Date.now() / 1000 })),
        );
        socket.on('data', (chunk: Buffer) => {
          buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
          if (buffer.length < 4) return;
          const length = buffer.readUInt32BE(0);
          if (buffer.length < 4 + length) return;
          socket.destroy();
          resolve((JSON.parse(buffer.toString('utf8', 4, 4 + length)) as { n: number }).n);
        });
        socket.on('error', reject);
      }),
    close: () => undefined,
  };
}

async function jsonRpc(path: string): Promise<Caller> {
  const socket = net.createConnection(path);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const connection = createMessageConnection(
    new SocketMessageReader(socket),
    new SocketMessageWriter(socket),
  );
  connection.listen();
  return {
    call: async (n) => ((await connection.sendRequest('echo', { n })) as { n: number }).n,
    close: () => {
      connection.dispose();
      socket.destroy();
    },
  };
}

type KernelModule = typeof import('@trestle/kernel-client');

function trestleCaller(kernel: KernelModule, path: string, mode: 'persistent' | 'oneshot'): Caller {
  const client = new kernel.KernelClient({
    enabled: true,
    endpoint: `unix://${path}`,
    mode,
    maxInflight: 64,
    timeoutMs: 30_000,
    retryAttempts: 0,
  });
  return {
    call: async (n) => {
      const result = await client.call('ECHO', { n });
      if (!result.success) throw new Error(`${result.status} ${result.errorCode}: ${result.reason}`);
      return (result.payload as { n: number }).n;
    },
    close: () => client.close(),
  };
}

async function startDaemon(): Promise<{
  child: ChildProcess;
  paths: { trestle: string; jsonrpc: string };
  directory: string;
}> {
  // Short directory: sun_path is 108 bytes.
  const directory = mkdtempSync(join(tmpdir(), 'tkb-'));
  const script = fileURLToPath(new URL('./kernel-daemon.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, directory], {
    stdio: ['pipe', 'pipe', 'inherit'],
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  });
  const paths = await new Promise<{ trestle: string; jsonrpc: string }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('daemon did not start in time')),
      KERNEL_CONFIG.startTimeoutMs,
    );
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split('\n')[0];
      if (output.includes('\n') && line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as { trestle: string; jsonrpc: string });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited with ${code}`));
    });
  });
  return { child, paths, directory };
}

async function measure(
  contenders: readonly Contender[],
  paths: { trestle: string; jsonrpc: string },
  inflight: number,
  calls: number,
): Promise<KernelRow[]> {
  const callers = new Map<string, Caller>();
  const perRound = new Map<string, { rps: number[]; p50: number[]; p99: number[]; bad: number }>();
  try {
    for (const contender of contenders) {
      callers.set(contender.id, await contender.open(paths));
      perRound.set(contender.id, { rps: [], p50: [], p99: [], bad: 0 });
    }
    for (let round = -1; round < KERNEL_CONFIG.rounds; round++) {
      const order = contenders.map(
        (_, i) => contenders[(i + Math.max(0, round)) % contenders.length] as Contender,
      );
      for (const contender of order) {
        const caller = callers.get(contender.id) as Caller;
        const result = await runLatencyRound(
          async (i) => (await caller.call(i)) === i,
          calls,
          inflight,
          KERNEL_CONFIG.roundDeadlineMs,
        );
        if (round < 0) continue; // warmup
        const sorted = result.latencies.sort();
        const stats = perRound.get(contender.id) as {
          rps: number[];
          p50: number[];
          p99: number[];
          bad: number;
        };
        stats.rps.push(result.callsPerSec);
        stats.p50.push(percentile(sorted, 0.5));
        stats.p99.push(percentile(sorted, 0.99));
        stats.bad += result.bad;
      }
    }
  } finally {
    for (const caller of callers.values()) await caller.close();
  }
  return contenders.map((contender) => {
    const stats = perRound.get(contender.id) as {
      rps: number[];
      p50: number[];
      p99: number[];
      bad: number;
    };
    return {
      id: contender.id,
      label: contender.label,
      inflight,
      callsPerSec: median(stats.rps),
      minCallsPerSec: Math.min(...stats.rps),
      maxCallsPerSec: Math.max(...stats.rps),
      p50Us: median(stats.p50),
      p99Us: median(stats.p99),
      calls: calls * KERNEL_CONFIG.rounds,
      bad: stats.bad,
    };
  });
}

const ratio = (rows: readonly KernelRow[], subject: string, peer: string, inflight: number): number => {
  const a = rows.find((row) => row.id === subject && row.inflight === inflight);
  const b = rows.find((row) => row.id === peer && row.inflight === inflight);
  return a && b && b.callsPerSec > 0 ? a.callsPerSec / b.callsPerSec : Number.NaN;
};

/** Runs section [10], prints its tables, and returns the outcome (for the JSON) and its missed targets. */
export async function runKernelClientSection(): Promise<{ outcome: KernelClientOutcome; misses: string[] }> {
  console.log(
    '\n[10] kernel client over a Unix socket: @trestle/kernel-client vs a raw floor and vscode-jsonrpc',
  );
  let kernel: KernelModule;
  try {
    kernel = await import('@trestle/kernel-client');
  } catch (error) {
    const reason = `@trestle/kernel-client is not built (${String(error)})`;
    console.log(`  SKIPPED: ${reason}`);
    return { outcome: { skipped: true, reason }, misses: [`[10] skipped: ${reason}`] };
  }
  const persistent: Contender[] = [
    { id: 'floor', label: 'raw length-prefixed client (floor)', open: (p) => floorPersistent(p.trestle) },
    {
      id: 'jsonrpc',
      label: `vscode-jsonrpc ${readVersion('vscode-jsonrpc')}`,
      open: (p) => jsonRpc(p.jsonrpc),
    },
    {
      id: 'trestle',
      label: 'trestle KernelClient (persistent)',
      open: async (p) => trestleCaller(kernel, p.trestle, 'persistent'),
    },
  ];
  const oneshot: Contender[] = [
    { id: 'floor-oneshot', label: 'raw oneshot client (floor)', open: async (p) => floorOneshot(p.trestle) },
    {
      id: 'trestle-oneshot',
      label: 'trestle KernelClient (oneshot)',
      open: async (p) => trestleCaller(kernel, p.trestle, 'oneshot'),
    },
  ];
  const daemon = await startDaemon();
  const rows: KernelRow[] = [];
  const misses: string[] = [];
  try {
    for (const inflight of [1, 64] as const)
      rows.push(...(await measure(persistent, daemon.paths, inflight, KERNEL_CONFIG.persistent[inflight])));
    for (const inflight of [1, 64] as const)
      rows.push(...(await measure(oneshot, daemon.paths, inflight, KERNEL_CONFIG.oneshot[inflight])));
  } finally {
    daemon.child.stdin?.end();
    const exited = new Promise((resolve) => daemon.child.once('exit', resolve));
    const timer = setTimeout(() => daemon.child.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(timer);
    rmSync(daemon.directory, { recursive: true, force: true });
  }
  const comparisons: KernelComparison[] = [];
  const add = (scenario: string, subject: string, peer: string, inflight: number, target?: number) => {
    const r = ratio(rows, subject, peer, inflight);
    comparisons.push({
      scenario,
      subject,
      peer,
      metric: 'calls/s',
      ratio: r,
      ...(target === undefined ? {} : { target, pass: r >= target }),
    });
  };
  add('10A', 'trestle', 'floor', 1, KERNEL_TARGETS.vsFloor);
  add('10A', 'trestle', 'jsonrpc', 1);
  add('10B', 'trestle', 'floor', 64, KERNEL_TARGETS.vsFloor);
  add('10B', 'trestle', 'jsonrpc', 64, KERNEL_TARGETS.vsJsonRpcAt64);
  add('10C', 'trestle-oneshot', 'floor-oneshot', 1);
  add('10C', 'trestle-oneshot', 'floor-oneshot', 64);

  console.log(
    `  ECHO {n} round trips; ${KERNEL_CONFIG.rounds} interleaved rounds after a warmup; calls/s = median round, ` +
      'p50/p99 = median of the rounds; floor and trestle talk to the same createKernelServer daemon (child process)',
  );
  console.log(latencyTable(rows, 1));
  const labels = new Map(rows.map((row) => [row.id, row.label]));
  console.log(
    table(
      ['scenario', 'subject vs peer', 'ratio', 'target', ''],
      comparisons.map((c) => [
        c.scenario,
        `${labels.get(c.subject)}  vs  ${labels.get(c.peer)}`,
        ratioText(c.ratio),
        c.target === undefined ? '' : `>= ${c.target}x`,
        c.pass === undefined ? '' : c.pass ? 'ok' : 'MISS',
      ]),
      [2],
    ),
  );
  for (const c of comparisons) {
    if (c.pass === false)
      misses.push(
        `[${c.scenario}] ${labels.get(c.subject)} = ${c.ratio.toFixed(2)}x ${labels.get(c.peer)} (target >= ${c.target}x)`,
      );
  }
  for (const row of rows) if (row.bad > 0) misses.push(`[10] ${row.label}: ${row.bad} wrong replies`);
  return {
    outcome: {
      skipped: false,
      config: KERNEL_CONFIG,
      versions: {
        '@trestle/kernel-client': readVersion('@trestle/kernel-client'),
        'vscode-jsonrpc': readVersion('vscode-jsonrpc'),
      },
      rows,
      comparisons,
    },
    misses,
  };
}
