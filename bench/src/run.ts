/**
 * `pnpm bench`: runs every benchmark, prints the tables (ops/s and ratios against the peers measured
 * in the same run) and writes bench/results/latest.json (plus a timestamped copy, git-ignored).
 * Bounded: every loop is bounded in count and time, and a watchdog aborts the run past 420 s.
 * `BENCH_ONLY=refstore pnpm bench` runs section [6] alone (tables only, no JSON written); likewise
 * `BENCH_ONLY=session` ([7]), `BENCH_ONLY=python` ([8], the Python bridge) and `BENCH_ONLY=ws` ([9], the
 * WebSocket bridge), `BENCH_ONLY=kernel` ([10], the kernel client) and `BENCH_ONLY=server` ([11], the
 * reference server end to end).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { KernelClientOutcome } from './kernel-client';
import type { PythonBridgeOutcome } from './python-bridge';
import type { RefStoreOutcome } from './ref-store';
import { type Comparison, type Report, readVersion, type ThroughputSection } from './report';
import type { ServerBenchOutcome } from './server';
import type { WsBridgeOutcome } from './ws-bridge';

const benchDir = fileURLToPath(new URL('..', import.meta.url));
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));
const budgetDist = fileURLToPath(new URL('../node_modules/@trestle/budget/dist/index.js', import.meta.url));

const WATCHDOG_MS = 420_000;
const MEMORY_OPTIONS = { rounds: 10, sampleMs: 100, warmupMs: 300, maxOpsPerSample: 5_000_000 } as const;
/**
 * 100,000 keys: contenders measured alone, in 2 counterbalanced passes; each pass warms up for 1.2 s
 * (past rate-limiter-flexible's 1 s window, so its records have expired and been re-created once:
 * steady state) then takes 5 samples of ~200 ms (one full window).
 */
const ISOLATED_OPTIONS = { isolated: true, passes: 2, rounds: 10, warmupMs: 1_200, sampleMs: 200 } as const;
const REDIS_CONFIG = {
  url: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
  concurrency: 64,
  rounds: 5,
  opsPerRound: 8_000,
  warmupOps: 2_000,
  runDeadlineMs: 15_000,
  trestleTimeoutMs: 1_000,
} as const;
const FOOTPRINT_TARGET_BYTES = 150;

function ensureBudgetBuilt(): void {
  if (existsSync(budgetDist)) return;
  console.log('@trestle/budget has no dist/: building it (pnpm --filter @trestle/budget run build) ...');
  execFileSync('pnpm', ['--filter', '@trestle/budget', 'run', 'build'], { cwd: repoRoot, stdio: 'inherit' });
}

function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, stdio: 'pipe' });
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages/budget/src'], {
      cwd: repoRoot,
      stdio: 'pipe',
    });
    return `${head.toString().trim()}${dirty.toString().trim() ? ' (packages/budget/src modified)' : ''}`;
  } catch {
    return 'unknown';
  }
}

function machineInfo(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    loadAverageAtStart: os.loadavg().map((load) => Number(load.toFixed(2))),
    gitCommit: gitCommit(),
    budgetDistBuiltAt: existsSync(budgetDist) ? statSync(budgetDist).mtime.toISOString() : null,
    versions: {
      '@trestle/budget': readVersion('@trestle/budget'),
      'rate-limiter-flexible': readVersion('rate-limiter-flexible'),
      ioredis: readVersion('ioredis'),
      pythonia: readVersion('pythonia'),
      'python-shell': readVersion('python-shell'),
      '@trestle/python-adapter': readVersion('@trestle/python-adapter'),
      ws: readVersion('ws'),
      'reconnecting-websocket': readVersion('reconnecting-websocket'),
      '@trestle/ws-bridge': readVersion('@trestle/ws-bridge'),
      '@trestle/kernel-client': readVersion('@trestle/kernel-client'),
      'vscode-jsonrpc': readVersion('vscode-jsonrpc'),
    },
  };
}

const fmtBytes = (bytes: number): string => bytes.toFixed(1);

async function main(): Promise<void> {
  const started = performance.now();
  const watchdog = setTimeout(() => {
    console.error(`bench: exceeded ${WATCHDOG_MS / 1000} s, aborting`);
    process.exit(2);
  }, WATCHDOG_MS);
  watchdog.unref();

  const only = process.env.BENCH_ONLY;
  if (only) {
    const sections: Record<string, () => Promise<{ misses: string[] }>> = {
      refstore: async () => (await import('./ref-store')).runRefStoreSection(),
      session: async () => (await import('./session-context')).runSessionContextSection(),
      python: async () => (await import('./python-bridge')).runPythonBridgeSection(),
      ws: async () => (await import('./ws-bridge')).runWsBridgeSection(),
      kernel: async () => (await import('./kernel-client')).runKernelClientSection(),
      server: async () => (await import('./server')).runServerSection(),
    };
    const section = sections[only];
    if (!section) {
      console.error(`bench: unknown BENCH_ONLY=${only} (known: ${Object.keys(sections).join(', ')})`);
      process.exit(2);
    }
    const machine = machineInfo();
    console.log(
      `trestle bench ${only} only: node ${machine.node}, ${machine.cpuModel}, ${machine.cores} cores, ${machine.date}`,
    );
    const { misses } = await section();
    console.log(
      `\nsummary: ${misses.length === 0 ? 'every target met' : `${misses.length} target(s) missed`}`,
    );
    for (const miss of misses) console.log(`  MISS ${miss}`);
    console.log('(BENCH_ONLY: bench/results/latest.json not written)');
    clearTimeout(watchdog);
    return;
  }

  ensureBudgetBuilt();
  // Imported after the build check: these modules import @trestle/budget (dist/).
  const { MANY_KEYS, REFILLING, STEADY, shuffledKeys } = await import('./config');
  const { MEMORY_IDS, memoryContenders } = await import('./budget-memory');
  const { FOOTPRINT_SUBJECTS, runFootprint } = await import('./footprint');
  const { REDIS_IDS, runRedisBench } = await import('./budget-redis');
  const { runHandlePoolBench } = await import('./handle-pool');
  const { measureThroughput } = await import('./harness');
  const { compare, comparisonLines, formatOps, pct, table, throughputText } = await import('./report');

  if (typeof globalThis.gc !== 'function') {
    console.log(
      'note: run with --expose-gc (pnpm bench does) for GC between samples and the bytes/key figures',
    );
  }
  const machine = machineInfo();
  console.log(
    `trestle bench: node ${machine.node}, ${machine.cpuModel}, ${machine.cores} cores, ${machine.date}, ` +
      `load ${(machine.loadAverageAtStart as number[]).join(' ')}`,
  );

  // ---- 3. bytes per key (child processes, clean heaps: run first) ----
  const footprintResults = await runFootprint();
  const footprintRows = footprintResults.flatMap((result) => ('row' in result ? [result.row] : []));
  const footprintErrors = footprintResults.flatMap((result) => ('error' in result ? [result] : []));
  const byteRatio = (subject: string, peer: string, peerName: string, target?: number): Comparison => {
    const a = footprintRows.find((row) => row.id === subject);
    const b = footprintRows.find((row) => row.id === peer);
    const ratio = a && b ? b.storeBytesPerKey / a.storeBytesPerKey : Number.NaN;
    return {
      kind: 'bytes',
      subject,
      peer,
      peerName,
      ratio,
      ...(target ? { target, pass: ratio >= target } : {}),
    };
  };
  const trestleBytes = footprintRows.find((row) => row.id === 'trestle-memory');
  const footprintComparisons: Comparison[] = [
    byteRatio('trestle-memory', 'rlf-memory', 'smaller than RLF'),
    byteRatio('trestle-memory', 'floor-map', 'smaller than floor'),
  ];

  // ---- 1 & 2. memory store throughput ----
  const hot = ['hot-key'];
  const many = shuffledKeys(MANY_KEYS);
  const scenarios = [
    {
      id: '1a',
      keys: hot,
      tier: 'steady' as const,
      title: '[1a] memory store, ONE hot key, cost 1, tier "steady"',
      targets: { rlf: 3, floor: 0.5 },
    },
    {
      id: '1b',
      keys: hot,
      tier: 'refilling' as const,
      title: '[1b] memory store, ONE hot key, cost 1, tier "refilling"',
      targets: { rlf: 3, floor: 0.5 },
    },
    {
      id: '2a',
      keys: many,
      tier: 'steady' as const,
      title: `[2a] memory store, ${MANY_KEYS.toLocaleString('en-US')} keys (fixed random permutation, round robin), tier "steady"`,
      targets: { rlf: 2, floor: 0.5 },
    },
    {
      id: '2b',
      keys: many,
      tier: 'refilling' as const,
      title: `[2b] memory store, ${MANY_KEYS.toLocaleString('en-US')} keys (fixed random permutation, round robin), tier "refilling"`,
      targets: { rlf: 2, floor: 0.5 },
    },
  ];
  const tierNote = {
    steady: `tier steady = capacity ${STEADY.capacity.toExponential()}, refill ${STEADY.refillPerSec}/s: buckets stay stored (never refill to full), every call allowed`,
    refilling: `tier refilling = capacity ${REFILLING.capacity.toExponential()}, refill ${REFILLING.refillPerSec.toExponential()}/s: bucket is full again at every call (trestle renews it in place), every call allowed`,
  };
  const memorySections: ThroughputSection[] = [];
  for (const scenario of scenarios) {
    // One hot key: interleaved rounds. 100,000 keys: each contender measured alone (isolated), in
    // counterbalanced passes, so no store is timed next to another's 100,000 keys, timers and garbage.
    const isolated = scenario.keys.length > 1;
    const rows = await measureThroughput(memoryContenders(scenario.keys, scenario.tier), {
      ...MEMORY_OPTIONS,
      ...(isolated ? ISOLATED_OPTIONS : {}),
    });
    const comparisons = [
      compare('sync', rows, MEMORY_IDS.trestleSync, MEMORY_IDS.floorSync, 'floor', scenario.targets.floor),
      // The target is what a user picks: trestle's memory-store fast path (consumeSync) against
      // RLF's only API. Awaited against awaited is shown too; even the awaited no-op floor is only
      // about 3x RLF, so a 3x target there would measure the event loop, not the limiter.
      compare('mixed', rows, MEMORY_IDS.trestleSync, MEMORY_IDS.rlf, 'RLF', scenario.targets.rlf),
      compare('await', rows, MEMORY_IDS.trestleAsync, MEMORY_IDS.rlf, 'RLF'),
      compare('await', rows, MEMORY_IDS.trestleAsync, MEMORY_IDS.floorAsync, 'floor'),
    ];
    const section: ThroughputSection = {
      id: scenario.id,
      title: scenario.title,
      notes: [
        tierNote[scenario.tier],
        `RLF: RateLimiterMemory points 1e12, duration 1 s; ${
          isolated
            ? `each contender alone, ${ISOLATED_OPTIONS.passes} passes (A..E, E..A) of ${ISOLATED_OPTIONS.warmupMs} ms warmup + ${ISOLATED_OPTIONS.rounds / ISOLATED_OPTIONS.passes} samples of ~${ISOLATED_OPTIONS.sampleMs} ms; ops/s = aggregate (total ops / total time)`
            : `${MEMORY_OPTIONS.rounds} interleaved rounds of ~${MEMORY_OPTIONS.sampleMs} ms; ops/s = median round`
        }`,
      ],
      rows,
      comparisons,
    };
    memorySections.push(section);
    console.log(throughputText(section));
  }

  // ---- 3. print ----
  console.log(
    `\n[3] bytes per key at ${MANY_KEYS.toLocaleString('en-US')} keys (heapUsed + external after gc(); one child process each)`,
  );
  console.log(
    '  store = delta after inserting, key strings allocated before the baseline; +keys = including them',
  );
  console.log(
    table(
      ['subject', 'store B/key', '+keys B/key', 'heap', 'external (arrayBuffers)', 'held', 'target'],
      footprintRows.map((row) => [
        row.label,
        fmtBytes(row.storeBytesPerKey),
        fmtBytes(row.withKeyStringsBytesPerKey),
        fmtBytes(row.heapBytesPerKey),
        `${fmtBytes(row.externalBytesPerKey)} (${fmtBytes(row.arrayBuffersBytesPerKey)})`,
        String(row.held),
        row.id.startsWith('trestle')
          ? `<= ${FOOTPRINT_TARGET_BYTES} ${row.storeBytesPerKey <= FOOTPRINT_TARGET_BYTES ? 'ok' : 'MISS'}`
          : '',
      ]),
      [1, 2, 3, 4, 5],
    ),
  );
  for (const error of footprintErrors) console.log(`  ${error.id}: FAILED ${error.error}`);
  const footprintLabels = new Map<string, string>(FOOTPRINT_SUBJECTS.map((s) => [s.id, s.label]));
  console.log(comparisonLines(footprintComparisons, footprintLabels));

  // ---- 4. Redis ----
  const redis = await runRedisBench(REDIS_CONFIG);
  let redisReport: Report['redis'];
  if (redis.skipped) {
    console.log(`\n[4] Redis rows SKIPPED: ${redis.reason}`);
    redisReport = redis;
  } else {
    const title =
      `[4] Redis store (server ${redis.serverVersion}, ${REDIS_CONFIG.url}), ${REDIS_CONFIG.concurrency} calls in flight, ` +
      `${REDIS_CONFIG.concurrency} keys (one per loop), ${REDIS_CONFIG.rounds} rotated rounds x ${REDIS_CONFIG.opsPerRound} ops, median`;
    const comparisons = [
      compare('concurrent', redis.rows, REDIS_IDS.trestle, REDIS_IDS.floor, 'floor', 0.9),
      compare('concurrent', redis.rows, REDIS_IDS.trestle, REDIS_IDS.rlf, 'RLF', 1, true),
      compare('concurrent', redis.rows, REDIS_IDS.trestle, REDIS_IDS.scriptOnly, 'bare script (info)'),
      compare('concurrent', redis.rows, REDIS_IDS.scriptOnly, REDIS_IDS.floor, 'floor (info)'),
    ];
    redisReport = {
      skipped: false,
      title,
      serverVersion: redis.serverVersion,
      keysDeleted: redis.keysDeleted,
      rows: redis.rows,
      comparisons,
    };
    console.log(`\n${title}`);
    console.log(
      `  trestle: tier steady via createBudget, timeoutMs ${REDIS_CONFIG.trestleTimeoutMs}; floor: caller time; ` +
        `RLF: points 1e12, duration 1 s; one ioredis client each, same options; keys deleted after: ${redis.keysDeleted}`,
    );
    console.log(
      '  CPU/op: Redis server (INFO cpu delta, includes any other client of this server) and this process, per call',
    );
    console.log(
      table(
        ['contender', 'median', 'MAD', 'range over rounds', 'ops', 'failed', 'redis CPU/op', 'node CPU/op'],
        redis.rows.map((row) => [
          row.label,
          formatOps(row.opsPerSec),
          pct(row.madPct),
          `${formatOps(row.minOpsPerSec)} .. ${formatOps(row.maxOpsPerSec)}`,
          String(row.ops),
          String(row.failed),
          `${row.redisCpuUsPerOp.toFixed(1)} us`,
          `${row.nodeCpuUsPerOp.toFixed(1)} us`,
        ]),
        [1, 2, 4, 5, 6, 7],
      ),
    );
    console.log(comparisonLines(comparisons, new Map(redis.rows.map((row) => [row.id, row.label]))));
  }

  // ---- 5. handle-pool (optional) ----
  const pool = await runHandlePoolBench(MEMORY_OPTIONS);
  let poolReport: Report['handlePool'];
  if (pool.skipped) {
    console.log(`\n[5] handle-pool SKIPPED: ${pool.reason}`);
    poolReport = pool;
  } else {
    const comparisons = [
      compare('sync', pool.rows, 'handle-pool-track-forget', 'floor-map-set-delete', 'floor'),
      compare('mixed', pool.rows, 'handle-pool-track-discharge', 'floor-map-set-delete', 'floor'),
    ];
    poolReport = { skipped: false, rows: pool.rows, comparisons };
    console.log(
      throughputText({
        id: '5',
        title: '[5] handle-pool: track + settle cycle (one live handle at a time; no targets)',
        notes: ['ok = forget() returned true / discharge() outcome was "discharged"'],
        okHeader: 'ok',
        rows: pool.rows,
        comparisons,
      }),
    );
  }

  // ---- 6. ref store vs lru-cache ----
  const { runRefStoreSection } = await import('./ref-store');
  const refStore = await runRefStoreSection();

  // ---- 7. session scope overhead ----
  const { runSessionContextSection } = await import('./session-context');
  const sessionScope = await runSessionContextSection();

  // ---- 8. python bridge: @trestle/python-adapter vs a raw pipe floor, pythonia, python-shell ----
  const { runPythonBridgeSection } = await import('./python-bridge');
  const pythonBridge = await runPythonBridgeSection();

  // ---- 9. ws bridge: @trestle/ws-bridge vs raw ws and reconnecting-websocket ----
  const { runWsBridgeSection } = await import('./ws-bridge');
  const wsBridge = await runWsBridgeSection();

  // ---- 10. kernel client: @trestle/kernel-client vs a raw length-prefixed floor and vscode-jsonrpc ----
  const { runKernelClientSection } = await import('./kernel-client');
  const kernelClient = await runKernelClientSection();

  // ---- 11. reference server: py.call through apps/server vs python-adapter direct; memory per session ----
  const { runServerSection } = await import('./server');
  const server = await runServerSection();

  // ---- summary + JSON ----
  const misses: string[] = [];
  for (const section of memorySections) {
    const labels = new Map(section.rows.map((row) => [row.id, row.label]));
    for (const c of section.comparisons) {
      if (c.pass === false) {
        misses.push(
          `[${section.id}] ${labels.get(c.subject)} = ${c.ratio.toFixed(2)}x ${c.peerName} (target >= ${c.target}x)`,
        );
      }
    }
  }
  if (trestleBytes && trestleBytes.storeBytesPerKey > FOOTPRINT_TARGET_BYTES) {
    misses.push(
      `[3] trestle ${trestleBytes.storeBytesPerKey.toFixed(1)} B/key (target <= ${FOOTPRINT_TARGET_BYTES})`,
    );
  }
  if (!redisReport.skipped) {
    for (const c of redisReport.comparisons) {
      if (c.pass === false) {
        misses.push(
          `[4] trestle redis = ${c.ratio.toFixed(2)}x ${c.peerName} (target ${c.strict ? '>' : '>='} ${c.target}x)`,
        );
      }
    }
    for (const row of redisReport.rows) {
      if (row.failed > 0)
        misses.push(`[4] ${row.label}: ${row.failed} failed/degraded calls (the row is not valid)`);
    }
  }
  misses.push(
    ...refStore.misses,
    ...sessionScope.misses,
    ...pythonBridge.misses,
    ...wsBridge.misses,
    ...kernelClient.misses,
    ...server.misses,
  );
  const durationSec = Number(((performance.now() - started) / 1000).toFixed(1));
  console.log(`\nsummary: ${misses.length === 0 ? 'every target met' : `${misses.length} target(s) missed`}`);
  for (const miss of misses) console.log(`  MISS ${miss}`);

  const report: Report & {
    refStore: RefStoreOutcome;
    sessionScope: typeof sessionScope.outcome;
    pythonBridge: PythonBridgeOutcome;
    wsBridge: WsBridgeOutcome;
    kernelClient: KernelClientOutcome;
    server: ServerBenchOutcome;
  } = {
    machine: { ...machine, loadAverageAtEnd: os.loadavg().map((load) => Number(load.toFixed(2))) },
    config: {
      memory: MEMORY_OPTIONS,
      memoryManyKeys: { ...MEMORY_OPTIONS, ...ISOLATED_OPTIONS },
      redis: REDIS_CONFIG,
      tiers: { steady: STEADY, refilling: REFILLING },
    },
    memory: memorySections,
    footprint: {
      rows: footprintRows,
      errors: footprintErrors,
      targetBytesPerKey: FOOTPRINT_TARGET_BYTES,
      comparisons: footprintComparisons,
    },
    redis: redisReport,
    handlePool: poolReport,
    refStore: refStore.outcome,
    sessionScope: sessionScope.outcome,
    pythonBridge: pythonBridge.outcome,
    wsBridge: wsBridge.outcome,
    kernelClient: kernelClient.outcome,
    server: server.outcome,
    misses,
    durationSec,
  };
  mkdirSync(resultsDir, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(`${resultsDir}latest.json`, json);
  writeFileSync(`${resultsDir}run-${String(machine.date).replace(/[:.]/g, '-')}.json`, json);
  console.log(
    `\nwrote ${fileURLToPath(new URL('../results/latest.json', import.meta.url)).replace(benchDir, 'bench/')} in ${durationSec} s`,
  );
  clearTimeout(watchdog);
}

await main();
// RLF's unref'd expiry timers and closed Redis sockets need nothing more: exit promptly.
process.exit(0);
