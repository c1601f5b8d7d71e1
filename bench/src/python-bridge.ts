/**
 * Benchmark 8: calling Python from Node. `@trestle/python-adapter` against the peers a user would pick
 * instead, all in the same run, each with one Python child process:
 *
 * - floor: a minimal hand-written newline-delimited JSON RPC over pipes (bench/python/bench_rpc.py run
 *   with `python3 -u -c`): nothing can be much faster.
 * - pythonia (JSPyBridge) and python-shell (json mode, the same bench_rpc.py).
 * - trestle: loaded dynamically (python-bridge-trestle.ts); `trestle: skipped (<reason>)` until it is built.
 *
 * Scenarios: [8A] sequential `math.sqrt(16)` (median / p99 latency), [8B] 100 calls in flight
 * (throughput), [8C] a method call on a Python-side object (`re.compile('\\d+')` once, then
 * `pattern.sub('#', 'a1b22c333')`), [8D] a list of 100,000 floats returned (bench_fixtures.floats).
 * Contenders are interleaved: every round measures each one in rotated order. Every loop is bounded in
 * count and time; every child is stopped by its PID at the end (try/finally).
 *
 * Placement: on a small VM a sequential round trip costs either a same-CPU handoff (~20 us) or the
 * wake-up of the other, idle vCPU (~80-100 us), depending on where the scheduler happens to put each
 * process; that lottery, not the library, would decide [8A] and [8C]. So the latency scenarios [8A]
 * and [8C] run with this process and all its descendants pinned to one CPU (bench_affinity.py), which
 * leaves the bridges' own cost; [8A] is repeated unpinned for information. [8B] and [8D] run unpinned
 * (they use both cores: Node encodes/parses while Python works).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { collect, median } from './harness';
import {
  BENCH_PYTHON_DIR,
  type BridgeClient,
  RPC_SCRIPT,
  SUB_EXPECTED,
  startFloor,
  startPythonia,
  startPythonShell,
  withTimeout,
} from './python-bridge-clients';
import { formatOps, ratioText, readVersion, table } from './report';

export const PYTHON_BRIDGE_CONFIG = {
  /** Interleaved rounds per scenario (each contender measured once per round, rotated order). */
  rounds: 5,
  /** [8A] and [8C]: sequential calls. */
  sequential: { warmupCalls: 300, warmupMs: 300, callsPerRound: 2_000, msPerRound: 400 },
  /** [8B]: batches of `concurrency` calls issued at once and awaited with Promise.all. */
  inFlight: { concurrency: 100, warmupBatches: 5, warmupMs: 300, batchesPerRound: 200, msPerRound: 400 },
  /** [8D]: `floats(n)` returned as a JS array. */
  bigList: { n: 100_000, warmupCalls: 2, warmupMs: 1_000, callsPerRound: 6, msPerRound: 600 },
  /** Start-up (spawn, imports, pattern compiled) and check calls of one contender. */
  startTimeoutMs: 20_000,
  /** A chunk that has not finished this long after its own time bound fails its contender. */
  chunkSlackMs: 10_000,
} as const;

export const PYTHON_BRIDGE_TARGETS = {
  /** trestle median latency / floor median latency ([8A], [8C], [8D]). */
  latencyVsFloor: 1.3,
  /** trestle median latency / pythonia median latency ([8A], [8C], [8D]). */
  latencyVsPythonia: 0.6,
  /** trestle calls/s / pythonia calls/s ([8B]). */
  throughputVsPythonia: 2,
  /** trestle calls/s / floor calls/s ([8B]). */
  throughputVsFloor: 1,
} as const;

const IDS = { floor: 'floor', pythonia: 'pythonia', shell: 'python-shell', trestle: 'trestle' } as const;

export interface LatencyRow {
  readonly id: string;
  readonly label: string;
  readonly calls: number;
  readonly medianUs: number;
  readonly p99Us: number;
  readonly meanUs: number;
  readonly minUs: number;
  readonly maxUs: number;
  /** Calls / time spent in the sequential loops. */
  readonly opsPerSec: number;
  /** Median latency of each round. */
  readonly roundMediansUs: readonly number[];
}

export interface ThroughputRow {
  readonly id: string;
  readonly label: string;
  readonly calls: number;
  /** Median over rounds of calls/s. */
  readonly callsPerSec: number;
  /** Total calls / total time. */
  readonly aggregateCallsPerSec: number;
  readonly minCallsPerSec: number;
  readonly maxCallsPerSec: number;
  readonly samples: readonly number[];
  /** Median time of one batch of `concurrency` calls. */
  readonly medianBatchUs: number;
}

export interface BridgeComparison {
  readonly metric: 'median latency' | 'p99 latency' | 'throughput';
  readonly subject: string;
  readonly peer: string;
  /** subject / peer: a latency ratio (lower is better) or a throughput ratio (higher is better). */
  readonly ratio: number;
  readonly target?: { readonly op: '<=' | '>='; readonly value: number };
  readonly pass?: boolean;
}

/** `one CPU`: this process and its Python children pinned to one CPU; `unpinned`: the OS places them. */
export type Placement = 'one CPU' | 'unpinned';

export type BridgeScenario =
  | {
      readonly id: string;
      readonly kind: 'latency';
      readonly placement: Placement;
      readonly title: string;
      readonly notes: readonly string[];
      readonly rows: readonly LatencyRow[];
      readonly comparisons: readonly BridgeComparison[];
    }
  | {
      readonly id: string;
      readonly kind: 'throughput';
      readonly placement: Placement;
      readonly title: string;
      readonly notes: readonly string[];
      readonly rows: readonly ThroughputRow[];
      readonly comparisons: readonly BridgeComparison[];
    };

export interface ContenderStatus {
  readonly id: string;
  readonly label: string;
  /** measured: every scenario; failed: broke during a scenario; excluded/skipped: never started. */
  status: 'measured' | 'failed' | 'excluded' | 'skipped';
  reason?: string;
  /** Spawn until ready, modules imported and the pattern compiled, plus the check calls. */
  startupMs?: number;
  pids: readonly number[];
}

export type PythonBridgeOutcome =
  | { readonly skipped: true; readonly reason: string }
  | {
      readonly skipped: false;
      readonly python: { readonly version: string; readonly executable: string };
      /** The CPU the latency scenarios were pinned to, or why they were not. */
      readonly pinning: { readonly cpu: number } | { readonly unavailable: string };
      readonly versions: Record<string, string>;
      readonly config: typeof PYTHON_BRIDGE_CONFIG;
      readonly targets: typeof PYTHON_BRIDGE_TARGETS;
      readonly contenders: readonly ContenderStatus[];
      readonly scenarios: readonly BridgeScenario[];
      readonly durationSec: number;
    };

interface Entry {
  readonly client: BridgeClient;
  readonly status: ContenderStatus;
}

// ---- statistics and formatting ----

/** Nearest-rank percentile of an ascending array. */
const percentile = (sorted: readonly number[], p: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;

const fmtLatency = (us: number): string => {
  if (!Number.isFinite(us)) return 'n/a';
  if (us >= 10_000) return `${(us / 1000).toFixed(1)} ms`;
  if (us >= 1_000) return `${(us / 1000).toFixed(2)} ms`;
  return `${us.toFixed(1)} us`;
};

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const settle = (): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, typeof globalThis.gc === 'function' ? 25 : 0));

const rotate = <T>(items: readonly T[], by: number): T[] =>
  items.map((_, i) => items[(i + by) % items.length]!);

// ---- bounded loops ----

interface SequentialChunk {
  readonly latenciesUs: number[];
  readonly ms: number;
}

/** Up to `maxCalls` sequential calls, stopping once `maxMs` has passed. Checks every result. */
async function sequential(
  op: () => Promise<unknown>,
  check: (value: unknown) => boolean,
  maxCalls: number,
  maxMs: number,
): Promise<SequentialChunk> {
  const latenciesUs: number[] = [];
  const start = performance.now();
  const deadline = start + maxMs;
  for (let i = 0; i < maxCalls; i++) {
    const t0 = performance.now();
    const value = await op();
    const t1 = performance.now();
    latenciesUs.push((t1 - t0) * 1000);
    if (!check(value)) throw new Error(`unexpected result ${JSON.stringify(value)?.slice(0, 80)}`);
    if (t1 >= deadline) break;
  }
  return { latenciesUs, ms: performance.now() - start };
}

interface InFlightChunk {
  readonly calls: number;
  readonly ms: number;
  readonly batchUs: number[];
}

/** Batches of `concurrency` calls at once (Promise.all), up to `maxBatches` or `maxMs`. */
async function inFlight(
  op: () => Promise<unknown>,
  check: (value: unknown) => boolean,
  concurrency: number,
  maxBatches: number,
  maxMs: number,
): Promise<InFlightChunk> {
  const batchUs: number[] = [];
  let calls = 0;
  const start = performance.now();
  const deadline = start + maxMs;
  for (let b = 0; b < maxBatches && performance.now() < deadline; b++) {
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: concurrency }, op));
    batchUs.push((performance.now() - t0) * 1000);
    calls += concurrency;
    if (!check(results[0]) || !check(results[concurrency - 1])) {
      throw new Error(`unexpected result ${JSON.stringify(results[0])?.slice(0, 80)}`);
    }
  }
  return { calls, ms: performance.now() - start, batchUs };
}

/**
 * Runs one scenario over the live contenders: a warmup each, then `rounds` interleaved rounds in
 * rotated order, a GC (with --expose-gc) and a short settle before each timed chunk. A contender
 * whose chunk throws or hangs is marked failed, closed (its child stopped) and dropped.
 */
async function interleaved<T>(
  live: Entry[],
  scenarioId: string,
  warm: (client: BridgeClient) => Promise<unknown>,
  chunk: (client: BridgeClient) => Promise<T>,
  limitMs: number,
): Promise<Map<string, T[]>> {
  const out = new Map<string, T[]>();
  const fail = async (entry: Entry, error: unknown) => {
    entry.status.status = 'failed';
    entry.status.reason = `[${scenarioId}] ${error instanceof Error ? error.message : String(error)}`;
    console.log(`  ${entry.status.label}: FAILED ${entry.status.reason} (dropped)`);
    live.splice(live.indexOf(entry), 1);
    out.delete(entry.status.id);
    await entry.client.close();
  };
  for (const entry of [...live]) {
    out.set(entry.status.id, []);
    try {
      await withTimeout(warm(entry.client), limitMs, `${entry.status.id} warmup`);
    } catch (error) {
      await fail(entry, error);
    }
  }
  for (let round = 0; round < PYTHON_BRIDGE_CONFIG.rounds; round++) {
    for (const entry of rotate([...live], round)) {
      await yieldToEventLoop();
      collect();
      await settle();
      try {
        out.get(entry.status.id)!.push(await withTimeout(chunk(entry.client), limitMs, entry.status.id));
      } catch (error) {
        await fail(entry, error);
      }
    }
  }
  return out;
}

function latencyRow(entry: Entry, chunks: readonly SequentialChunk[]): LatencyRow {
  const all = chunks.flatMap((c) => c.latenciesUs).sort((a, b) => a - b);
  const ms = chunks.reduce((sum, c) => sum + c.ms, 0);
  return {
    id: entry.status.id,
    label: entry.status.label,
    calls: all.length,
    medianUs: median(all),
    p99Us: percentile(all, 0.99),
    meanUs: all.reduce((sum, v) => sum + v, 0) / all.length,
    minUs: all[0]!,
    maxUs: all[all.length - 1]!,
    opsPerSec: (all.length / ms) * 1000,
    roundMediansUs: chunks.map((c) => median(c.latenciesUs)),
  };
}

function throughputRow(entry: Entry, chunks: readonly InFlightChunk[]): ThroughputRow {
  const samples = chunks.map((c) => (c.calls / c.ms) * 1000);
  const calls = chunks.reduce((sum, c) => sum + c.calls, 0);
  const ms = chunks.reduce((sum, c) => sum + c.ms, 0);
  return {
    id: entry.status.id,
    label: entry.status.label,
    calls,
    callsPerSec: median(samples),
    aggregateCallsPerSec: (calls / ms) * 1000,
    minCallsPerSec: Math.min(...samples),
    maxCallsPerSec: Math.max(...samples),
    samples,
    medianBatchUs: median(chunks.flatMap((c) => c.batchUs)),
  };
}

// ---- comparisons ----

function latencyComparisons(
  rows: readonly LatencyRow[],
  withP99: boolean,
  withTargets: boolean,
): BridgeComparison[] {
  const byId = new Map(rows.map((row) => [row.id, row]));
  const cmp = (
    metric: 'median latency' | 'p99 latency',
    subject: string,
    peer: string,
    target?: number,
  ): BridgeComparison => {
    const a = byId.get(subject);
    const b = byId.get(peer);
    const pick = (row: LatencyRow) => (metric === 'median latency' ? row.medianUs : row.p99Us);
    const ratio = a && b && pick(b) > 0 ? pick(a) / pick(b) : Number.NaN;
    if (target === undefined || !Number.isFinite(ratio)) {
      return {
        metric,
        subject,
        peer,
        ratio,
        ...(target === undefined ? {} : { target: { op: '<=', value: target } }),
      };
    }
    return { metric, subject, peer, ratio, target: { op: '<=', value: target }, pass: ratio <= target };
  };
  return [
    cmp(
      'median latency',
      IDS.trestle,
      IDS.floor,
      withTargets ? PYTHON_BRIDGE_TARGETS.latencyVsFloor : undefined,
    ),
    cmp(
      'median latency',
      IDS.trestle,
      IDS.pythonia,
      withTargets ? PYTHON_BRIDGE_TARGETS.latencyVsPythonia : undefined,
    ),
    cmp('median latency', IDS.trestle, IDS.shell),
    ...(withP99
      ? [cmp('p99 latency', IDS.trestle, IDS.floor), cmp('p99 latency', IDS.trestle, IDS.pythonia)]
      : []),
    cmp('median latency', IDS.pythonia, IDS.floor),
    cmp('median latency', IDS.shell, IDS.floor),
  ];
}

function throughputComparisons(rows: readonly ThroughputRow[]): BridgeComparison[] {
  const byId = new Map(rows.map((row) => [row.id, row]));
  const cmp = (subject: string, peer: string, target?: number): BridgeComparison => {
    const a = byId.get(subject);
    const b = byId.get(peer);
    const ratio = a && b && b.callsPerSec > 0 ? a.callsPerSec / b.callsPerSec : Number.NaN;
    const metric = 'throughput' as const;
    if (target === undefined) return { metric, subject, peer, ratio };
    if (!Number.isFinite(ratio)) return { metric, subject, peer, ratio, target: { op: '>=', value: target } };
    return { metric, subject, peer, ratio, target: { op: '>=', value: target }, pass: ratio >= target };
  };
  return [
    cmp(IDS.trestle, IDS.pythonia, PYTHON_BRIDGE_TARGETS.throughputVsPythonia),
    cmp(IDS.trestle, IDS.floor, PYTHON_BRIDGE_TARGETS.throughputVsFloor),
    cmp(IDS.trestle, IDS.shell),
    cmp(IDS.pythonia, IDS.floor),
    cmp(IDS.shell, IDS.floor),
  ];
}

function comparisonText(comparisons: readonly BridgeComparison[], labels: Map<string, string>): string {
  const short = (id: string) => (labels.has(id) ? id : `${id} (not measured)`);
  return table(
    ['compare', 'subject / peer', 'ratio', 'target', ''],
    comparisons.map((c) => [
      c.metric,
      `${short(c.subject)} / ${short(c.peer)}`,
      ratioText(c.ratio),
      c.target ? `${c.target.op} ${c.target.value}x` : '',
      c.pass === undefined ? '' : c.pass ? 'ok' : 'MISS',
    ]),
    [2],
  );
}

function scenarioText(scenario: BridgeScenario): string {
  const labels = new Map<string, string>(scenario.rows.map((row) => [row.id, row.label]));
  const body =
    scenario.kind === 'latency'
      ? table(
          ['contender', 'median', 'p99', 'min .. max', 'ops/s', 'calls'],
          scenario.rows.map((row) => [
            row.label,
            fmtLatency(row.medianUs),
            fmtLatency(row.p99Us),
            `${fmtLatency(row.minUs)} .. ${fmtLatency(row.maxUs)}`,
            formatOps(row.opsPerSec),
            String(row.calls),
          ]),
          [1, 2, 3, 4, 5],
        )
      : table(
          ['contender', 'calls/s', 'range of rounds', 'aggregate', 'per batch', 'calls'],
          scenario.rows.map((row) => [
            row.label,
            formatOps(row.callsPerSec),
            `${formatOps(row.minCallsPerSec)} .. ${formatOps(row.maxCallsPerSec)}`,
            formatOps(row.aggregateCallsPerSec),
            fmtLatency(row.medianBatchUs),
            String(row.calls),
          ]),
          [1, 2, 3, 4, 5],
        );
  return [
    `\n${scenario.title}`,
    ...scenario.notes.map((note) => `  ${note}`),
    body,
    comparisonText(scenario.comparisons, labels),
  ].join('\n');
}

// ---- the section ----

function pythonInfo(): { version: string; executable: string } {
  const out = execFileSync(
    'python3',
    ['-c', 'import sys; print(sys.version.split()[0]); print(sys.executable)'],
    { stdio: 'pipe', timeout: 15_000 },
  );
  const [version = 'unknown', executable = 'unknown'] = out.toString().trim().split('\n');
  return { version, executable };
}

const AFFINITY_SCRIPT = join(BENCH_PYTHON_DIR, 'bench_affinity.py');

/** This process's allowed CPUs (Linux), via bench_affinity.py. */
function currentCpus(): number[] {
  const out = execFileSync('python3', [AFFINITY_SCRIPT, 'get', String(process.pid)], {
    stdio: 'pipe',
    timeout: 15_000,
  });
  return out
    .toString()
    .trim()
    .split(',')
    .map((cpu) => Number(cpu));
}

/** Restricts every thread of this process and of all its descendants (the Python children) to `cpus`. */
function setCpus(cpus: readonly number[]): void {
  execFileSync('python3', [AFFINITY_SCRIPT, 'set', cpus.join(','), String(process.pid)], {
    stdio: 'pipe',
    timeout: 15_000,
  });
}

/** Checks a freshly started client outside any timed loop. Throws with a reason. */
async function checkClient(client: BridgeClient, n: number): Promise<void> {
  const root = await client.sqrt();
  if (root !== 4) throw new Error(`math.sqrt(16) returned ${JSON.stringify(root)}`);
  const sub = await client.sub();
  if (sub !== SUB_EXPECTED) throw new Error(`pattern.sub returned ${JSON.stringify(sub)}`);
  const list = await client.floats(n);
  if (!Array.isArray(list) || list.length !== n || list[n - 1] !== (n - 1) * 0.5) {
    throw new Error(
      `floats(${n}) returned ${Array.isArray(list) ? `an array of ${list.length}` : typeof list}, not ${n} floats`,
    );
  }
}

/** Runs section [8], prints its tables, and returns the outcome (for the JSON) and its missed targets. */
export async function runPythonBridgeSection(): Promise<{ outcome: PythonBridgeOutcome; misses: string[] }> {
  const started = performance.now();
  const cfg = PYTHON_BRIDGE_CONFIG;
  const misses: string[] = [];
  let python: { version: string; executable: string };
  let rpcSource: string;
  try {
    python = pythonInfo();
    rpcSource = readFileSync(join(BENCH_PYTHON_DIR, RPC_SCRIPT), 'utf8');
  } catch (error) {
    const outcome = { skipped: true as const, reason: `python3 is not usable: ${String(error)}` };
    console.log(`\n[8] python bridge SKIPPED: ${outcome.reason}`);
    return { outcome, misses };
  }
  const versions = {
    pythonia: readVersion('pythonia'),
    'python-shell': readVersion('python-shell'),
    '@trestle/python-adapter': readVersion('@trestle/python-adapter'),
  };
  console.log(
    `\n[8] python bridge: Python ${python.version} (${python.executable}), one child process per contender; ` +
      `pythonia ${versions.pythonia}, python-shell ${versions['python-shell']}`,
  );

  const starters: { id: string; label: string; start: () => Promise<BridgeClient> }[] = [
    { id: IDS.floor, label: 'floor (raw NDJSON over pipes)', start: () => startFloor(rpcSource) },
    { id: IDS.pythonia, label: 'pythonia (JSPyBridge)', start: startPythonia },
    { id: IDS.shell, label: 'python-shell (json mode)', start: startPythonShell },
    {
      id: IDS.trestle,
      label: 'trestle (@trestle/python-adapter, size 1)',
      start: async () => (await import('./python-bridge-trestle')).startTrestle(),
    },
  ];
  const contenders: ContenderStatus[] = [];
  const live: Entry[] = [];
  const all: Entry[] = [];
  const scenarios: BridgeScenario[] = [];
  // Placement: the latency scenarios are pinned to one CPU when this process may use several (Linux).
  const originalCpus = ((): number[] | string => {
    if (process.platform !== 'linux') return 'not Linux';
    try {
      const cpus = currentCpus();
      return cpus.length > 1 ? cpus : `only CPU ${cpus.join(',')} is allowed: nothing to pin`;
    } catch (error) {
      return `bench_affinity.py failed: ${String(error)}`;
    }
  })();
  const pinning: { cpu: number } | { unavailable: string } =
    typeof originalCpus === 'string' ? { unavailable: originalCpus } : { cpu: Math.min(...originalCpus) };
  let pinned = false;
  try {
    // ---- start and check each contender (sequentially: start-up times are not disturbed) ----
    for (const starter of starters) {
      const status: ContenderStatus = { id: starter.id, label: starter.label, status: 'measured', pids: [] };
      contenders.push(status);
      const t0 = performance.now();
      let client: BridgeClient | undefined;
      let gaveUp = false;
      try {
        const starting = starter.start();
        // If the start times out, whatever it started is closed when it resolves after all.
        starting.then(
          (late) => {
            if (gaveUp && late !== client) void late.close();
          },
          () => undefined,
        );
        const c = await withTimeout(starting, cfg.startTimeoutMs, `${starter.id} start`);
        client = c;
        all.push({ client: c, status });
        status.pids = c.pids;
        await withTimeout(checkClient(c, cfg.bigList.n), cfg.startTimeoutMs, `${starter.id} check`);
        status.startupMs = performance.now() - t0;
        live.push({ client: c, status });
      } catch (error) {
        gaveUp = true;
        const reason = error instanceof Error ? error.message : String(error);
        status.status = starter.id === IDS.trestle ? 'skipped' : 'excluded';
        status.reason = reason;
        console.log(`  ${starter.id}: ${status.status} (${reason})`);
        await client?.close();
      }
    }
    console.log(
      table(
        ['contender', 'start-up', 'pids', 'status'],
        contenders.map((c) => [
          c.label,
          c.startupMs === undefined ? '' : `${c.startupMs.toFixed(0)} ms`,
          c.pids.join(' '),
          c.status === 'measured' ? 'ok' : c.status,
        ]),
        [1],
      ),
    );
    console.log(
      '  start-up = spawn until modules imported and re.compile done, plus check calls (sqrt, sub, floats)',
    );
    const trestleNote = live.some((e) => e.status.id === IDS.trestle)
      ? []
      : ['trestle not measured: its ratios are n/a and its targets are not evaluated'];
    const rounds = `${cfg.rounds} interleaved rounds (rotated order)`;

    const place = (placement: Placement): Placement => {
      if (typeof originalCpus === 'string') return 'unpinned';
      pinned = true; // (restored in finally even if this throws half-way)
      setCpus(placement === 'one CPU' ? [Math.min(...originalCpus)] : originalCpus);
      pinned = placement === 'one CPU';
      return placement;
    };
    const placementNote = (placement: Placement): string =>
      placement === 'one CPU'
        ? `placement: this process and every Python child pinned to CPU ${'cpu' in pinning ? pinning.cpu : '?'} ` +
          '(a round trip is a same-CPU handoff; see the unpinned repeat of [8A])'
        : 'unavailable' in pinning
          ? `placement: unpinned (pinning unavailable: ${pinning.unavailable}); sequential latency then includes cross-CPU wake-ups`
          : 'placement: unpinned (the OS places Node and the Python children on the 2+ CPUs)';

    const s = cfg.sequential;
    const sqrtCheck = (v: unknown) => v === 4;
    const latencyTargetsNote = `targets: trestle median <= ${PYTHON_BRIDGE_TARGETS.latencyVsFloor}x floor, <= ${PYTHON_BRIDGE_TARGETS.latencyVsPythonia}x pythonia`;
    const report = (scenario: BridgeScenario) => {
      scenarios.push(scenario);
      console.log(scenarioText(scenario));
    };

    // ---- [8A] sequential math.sqrt(16), pinned ----
    const sqrtLatency = async (id: string, placement: Placement, title: string, targets: boolean) => {
      const chunks = await interleaved(
        live,
        id,
        (c) => sequential(() => c.sqrt(), sqrtCheck, s.warmupCalls, s.warmupMs),
        (c) => sequential(() => c.sqrt(), sqrtCheck, s.callsPerRound, s.msPerRound),
        s.msPerRound + cfg.chunkSlackMs,
      );
      const rows = live.map((e) => latencyRow(e, chunks.get(e.status.id)!));
      report({
        id,
        kind: 'latency',
        placement,
        title,
        notes: [
          `${rounds} of up to ${s.callsPerRound} calls / ${s.msPerRound} ms each, after ${s.warmupCalls} warmup calls; ` +
            'median and p99 over all calls; ops/s = calls / time in the loop',
          placementNote(placement),
          ...(targets ? [latencyTargetsNote, ...trestleNote] : ['information only: no targets']),
        ],
        rows,
        comparisons: latencyComparisons(rows, true, targets),
      });
    };
    const pinnedA = place('one CPU');
    await sqrtLatency('8A', pinnedA, '[8A] sequential math.sqrt(16) round trip: latency per call', true);
    if (pinnedA === 'one CPU') {
      await sqrtLatency(
        '8A-unpinned',
        place('unpinned'),
        "[8A'] the same, unpinned (information: on a VM, mostly the cost of waking the other vCPU)",
        false,
      );
    }

    // ---- [8B] 100 calls in flight, unpinned ----
    const f = cfg.inFlight;
    const placementB = place('unpinned');
    const b = await interleaved(
      live,
      '8B',
      (c) => inFlight(() => c.sqrt(), sqrtCheck, f.concurrency, f.warmupBatches, f.warmupMs),
      (c) => inFlight(() => c.sqrt(), sqrtCheck, f.concurrency, f.batchesPerRound, f.msPerRound),
      f.msPerRound + cfg.chunkSlackMs,
    );
    const bRows = live.map((e) => throughputRow(e, b.get(e.status.id)!));
    report({
      id: '8B',
      kind: 'throughput',
      placement: placementB,
      title: `[8B] ${f.concurrency} math.sqrt(16) calls in flight: throughput`,
      notes: [
        `batches of ${f.concurrency} concurrent calls awaited with Promise.all, ${rounds} of up to ` +
          `${f.batchesPerRound} batches / ${f.msPerRound} ms each; calls/s = median round`,
        placementNote(placementB),
        `targets: trestle >= ${PYTHON_BRIDGE_TARGETS.throughputVsPythonia}x pythonia, >= ${PYTHON_BRIDGE_TARGETS.throughputVsFloor}x floor`,
        ...trestleNote,
      ],
      rows: bRows,
      comparisons: throughputComparisons(bRows),
    });

    // ---- [8C] method call on a Python-side object, pinned ----
    const subCheck = (v: unknown) => v === SUB_EXPECTED;
    const placementC = place('one CPU');
    const c = await interleaved(
      live,
      '8C',
      (cl) => sequential(() => cl.sub(), subCheck, s.warmupCalls, s.warmupMs),
      (cl) => sequential(() => cl.sub(), subCheck, s.callsPerRound, s.msPerRound),
      s.msPerRound + cfg.chunkSlackMs,
    );
    const cRows = live.map((e) => latencyRow(e, c.get(e.status.id)!));
    report({
      id: '8C',
      kind: 'latency',
      placement: placementC,
      title: "[8C] method call on a ref: pattern.sub('#', 'a1b22c333') on re.compile('\\\\d+') made once",
      notes: [
        'floor and python-shell keep the pattern in a Python-side dict and call it by id; pythonia calls its proxy; ' +
          'trestle calls py.method(ref, ...)',
        `${rounds} of up to ${s.callsPerRound} calls / ${s.msPerRound} ms each, after ${s.warmupCalls} warmup calls`,
        placementNote(placementC),
        latencyTargetsNote,
        ...trestleNote,
      ],
      rows: cRows,
      comparisons: latencyComparisons(cRows, true, true),
    });

    // ---- [8D] 100,000 floats returned, unpinned ----
    const l = cfg.bigList;
    const listCheck = (v: unknown) => Array.isArray(v) && v.length === l.n;
    const placementD = place('unpinned');
    const d = await interleaved(
      live,
      '8D',
      (cl) => sequential(() => cl.floats(l.n), listCheck, l.warmupCalls, l.warmupMs),
      (cl) => sequential(() => cl.floats(l.n), listCheck, l.callsPerRound, l.msPerRound),
      l.msPerRound + cfg.chunkSlackMs,
    );
    const dRows = live.map((e) => latencyRow(e, d.get(e.status.id)!));
    report({
      id: '8D',
      kind: 'latency',
      placement: placementD,
      title: `[8D] a list of ${l.n.toLocaleString('en-US')} floats returned (bench_fixtures.floats(${l.n}))`,
      notes: [
        `${rounds} of up to ${l.callsPerRound} calls / ${l.msPerRound} ms each, after ${l.warmupCalls} warmup calls; ` +
          'the result must be a JS array of n numbers',
        'pythonia returns a list as a proxy: `await (await fixtures.floats(n)).valueOf()` (2 round trips, its idiom)',
        placementNote(placementD),
        latencyTargetsNote,
        ...trestleNote,
      ],
      rows: dRows,
      comparisons: latencyComparisons(dRows, false, true),
    });
  } finally {
    // Never leave this process pinned (the full run goes on), then stop every child by its PID
    // (also after an error): each client's close() does.
    if (pinned && typeof originalCpus !== 'string') {
      try {
        setCpus(originalCpus);
      } catch (error) {
        console.log(`  could not restore the CPU affinity: ${String(error)}`);
      }
    }
    for (const entry of all) await entry.client.close();
  }

  for (const scenario of scenarios) {
    for (const cmp of scenario.comparisons) {
      if (cmp.pass === false) {
        misses.push(
          `[${scenario.id}] ${cmp.subject} ${cmp.metric} = ${cmp.ratio.toFixed(2)}x ${cmp.peer} (target ${cmp.target!.op} ${cmp.target!.value}x)`,
        );
      }
    }
  }
  for (const status of contenders) {
    if (status.status === 'failed') misses.push(`[8] ${status.label} failed: ${status.reason}`);
  }
  const durationSec = Number(((performance.now() - started) / 1000).toFixed(1));
  console.log(
    `  [8] took ${durationSec} s; stopped child pids: ${all.flatMap((e) => e.client.pids).join(' ')}`,
  );
  return {
    outcome: {
      skipped: false,
      python,
      pinning,
      versions,
      config: cfg,
      targets: PYTHON_BRIDGE_TARGETS,
      contenders,
      scenarios,
      durationSec,
    },
    misses,
  };
}
