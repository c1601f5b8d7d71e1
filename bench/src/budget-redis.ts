/**
 * Benchmark 4: the Redis store with 64 calls in flight, against a raw EVALSHA of a minimal Lua token
 * bucket (the floor) and rate-limiter-flexible's RateLimiterRedis. Each contender has its own ioredis
 * client (same options), its own key prefix under one per-run namespace, and the same 64 logical keys
 * (one per in-flight loop). Contenders are interleaved round by round in rotated order; the median
 * round is reported. Every key of the run is deleted at the end.
 */
import { createBudget } from '@trestle/budget';
import { BUCKET_SCRIPT, redisStore } from '@trestle/budget/redis';
import { Redis, type RedisOptions } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { RLF_DURATION_SEC, RLF_POINTS, STEADY, TIERS } from './config';
import { FLOOR_SCRIPT } from './floor';
import { type ConcurrentResult, mad, median, runConcurrent } from './harness';

export const REDIS_IDS = {
  trestle: 'trestle-redis-consume',
  floor: 'floor-evalsha',
  rlf: 'rlf-redis-consume',
  scriptOnly: 'trestle-script-bare-evalsha',
} as const;

export interface RedisConfig {
  readonly url: string;
  readonly concurrency: number;
  readonly rounds: number;
  readonly opsPerRound: number;
  readonly warmupOps: number;
  /** Upper bound of one timed run, whatever the op count. */
  readonly runDeadlineMs: number;
  /** The trestle store's per-call deadline: generous, so the bench measures the store, not the fallback. */
  readonly trestleTimeoutMs: number;
}

export interface RedisRow {
  readonly id: string;
  readonly label: string;
  readonly opsPerSec: number;
  readonly minOpsPerSec: number;
  readonly maxOpsPerSec: number;
  readonly madPct: number;
  readonly samples: readonly number[];
  readonly ops: number;
  readonly allowed: number;
  /** Errors and degraded decisions: must be 0 for the row to mean anything. */
  readonly failed: number;
  /** Median Redis server CPU per operation (INFO cpu delta / ops), microseconds. */
  readonly redisCpuUsPerOp: number;
  /** Median CPU of this Node process per operation, microseconds. */
  readonly nodeCpuUsPerOp: number;
}

export type RedisOutcome =
  | {
      readonly skipped: false;
      readonly rows: RedisRow[];
      readonly serverVersion: string;
      readonly keysDeleted: number;
    }
  | { readonly skipped: true; readonly reason: string };

/** The same options for every client: no offline queue, no retries, fail fast, loopback only. */
const clientOptions = (): RedisOptions => ({
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  connectTimeout: 1_000,
  retryStrategy: () => null,
});

async function connect(url: string): Promise<Redis> {
  const client = new Redis(url, clientOptions());
  let lastError: unknown;
  client.on('error', (error: unknown) => {
    lastError = error;
  });
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    // ioredis rejects with "Connection is closed."; the 'error' event carries the cause (ECONNREFUSED...).
    throw lastError instanceof Error ? lastError : error;
  }
  return client;
}

interface RedisContender {
  readonly id: string;
  readonly label: string;
  readonly op: (key: string) => Promise<boolean | null>;
}

async function deleteRunKeys(admin: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  // Bounded: a run writes a few hundred keys at most.
  for (let i = 0; i < 10_000; i++) {
    const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
    if (keys.length > 0) deleted += await admin.unlink(...keys);
    cursor = next;
    if (cursor === '0') break;
  }
  return deleted;
}

export async function runRedisBench(config: RedisConfig): Promise<RedisOutcome> {
  const { hostname } = new URL(config.url);
  if (hostname !== '127.0.0.1' && hostname !== 'localhost' && hostname !== '::1') {
    return { skipped: true, reason: `refusing non-loopback Redis ${config.url}` };
  }
  let admin: Redis;
  try {
    admin = await connect(config.url);
  } catch (error) {
    return {
      skipped: true,
      reason: `Redis not reachable at ${config.url}: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
  const clients: Redis[] = [];
  const namespace = `trestle-bench:${process.pid}-${Date.now().toString(36)}:`;
  let outcome: RedisOutcome;
  try {
    outcome = await measure(admin, clients, namespace, config);
  } catch (error) {
    const reason = `Redis benchmark failed: ${error instanceof Error ? error.message : String(error)}`;
    outcome = { skipped: true, reason };
  }
  const keysDeleted = await deleteRunKeys(admin, `${namespace}*`).catch(() => -1);
  await Promise.all([...clients, admin].map((client) => client.quit().catch(() => undefined)));
  return outcome.skipped ? outcome : { ...outcome, keysDeleted };
}

async function measure(
  admin: Redis,
  clients: Redis[],
  namespace: string,
  config: RedisConfig,
): Promise<RedisOutcome> {
  const info = await admin.info('server');
  const serverVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  const [trestleClient, floorClient, rlfClient, scriptClient] = await Promise.all([
    connect(config.url),
    connect(config.url),
    connect(config.url),
    connect(config.url),
  ]);
  clients.push(trestleClient, floorClient, rlfClient, scriptClient);

  const budget = createBudget({
    store: redisStore({
      redis: trestleClient,
      prefix: `${namespace}trestle:`,
      timeoutMs: config.trestleTimeoutMs,
    }),
    tiers: TIERS,
  });
  const trestle: RedisContender = {
    id: REDIS_IDS.trestle,
    label: 'trestle redisStore consume (server time)',
    op: async (key) => {
      const decision = await budget.consume(key, 'steady', 1);
      return decision.kind === 'degraded' ? null : decision.allowed;
    },
  };

  const capacity = String(STEADY.capacity);
  const refillPerMs = String(STEADY.refillPerSec / 1000);
  const keyCache = (prefix: string, wrap: (key: string) => string) => {
    const cache = new Map<string, string>();
    return (key: string): string => {
      let redisKey = cache.get(key);
      if (redisKey === undefined) {
        redisKey = `${prefix}${wrap(key)}`;
        cache.set(key, redisKey);
      }
      return redisKey;
    };
  };

  const floorSha = String(await floorClient.script('LOAD', FLOOR_SCRIPT));
  const floorKey = keyCache(`${namespace}floor:`, (key) => key);
  const floor: RedisContender = {
    id: REDIS_IDS.floor,
    label: 'floor raw EVALSHA Lua bucket',
    op: async (key) => {
      const reply = (await floorClient.evalsha(
        floorSha,
        1,
        floorKey(key),
        capacity,
        refillPerMs,
        Date.now(),
        1,
      )) as [number, string];
      return reply[0] === 1;
    },
  };

  const limiter = new RateLimiterRedis({
    storeClient: rlfClient,
    points: RLF_POINTS,
    duration: RLF_DURATION_SEC,
    keyPrefix: `${namespace}rlf`,
  });
  const rlf: RedisContender = {
    id: REDIS_IDS.rlf,
    label: 'rate-limiter-flexible RateLimiterRedis',
    op: (key) =>
      limiter.consume(key, 1).then(
        () => true,
        // A RateLimiterRes rejection is a denial; an Error is a store failure.
        (reason: unknown) => (reason instanceof Error ? null : false),
      ),
  };

  // Diagnostic: trestle's own Lua script through a bare EVALSHA (no createBudget, no deadline timer),
  // with the same arguments the store sends. Separates the script's cost from the client-side layer.
  const scriptSha = String(await scriptClient.script('LOAD', BUCKET_SCRIPT));
  const scriptKey = keyCache(`${namespace}script:`, (key) => `{${key}}`);
  const scriptOnly: RedisContender = {
    id: REDIS_IDS.scriptOnly,
    label: 'diagnostic: trestle BUCKET_SCRIPT, bare EVALSHA',
    op: async (key) => {
      const bucket = scriptKey(key);
      const reply = (await scriptClient.evalsha(
        scriptSha,
        2,
        bucket,
        `${bucket}:r`,
        // ARGV as BUCKET_SCRIPT documents it: op, capacity, refillPerMs, amount, deadline ('' = none).
        'take',
        capacity,
        refillPerMs,
        '1',
        '',
      )) as [number, string];
      return reply[0] === 1;
    },
  };

  const contenders = [trestle, floor, rlf, scriptOnly];
  const keys = Array.from({ length: config.concurrency }, (_, i) => `k${i}`);
  for (const contender of contenders) {
    await runConcurrent(contender.op, keys, config.warmupOps, config.concurrency, config.runDeadlineMs);
  }
  const results = new Map<RedisContender, CpuRun[]>(contenders.map((c) => [c, []]));
  for (let round = 0; round < config.rounds; round++) {
    for (let i = 0; i < contenders.length; i++) {
      const contender = contenders[(i + round) % contenders.length]!;
      const redisCpu0 = await redisCpuSeconds(admin);
      const nodeCpu0 = process.cpuUsage();
      const result = await runConcurrent(
        contender.op,
        keys,
        config.opsPerRound,
        config.concurrency,
        config.runDeadlineMs,
      );
      const nodeCpu = process.cpuUsage(nodeCpu0);
      const redisCpu = (await redisCpuSeconds(admin)) - redisCpu0;
      results.get(contender)!.push({
        ...result,
        redisCpuUsPerOp: (redisCpu * 1e6) / result.ops,
        nodeCpuUsPerOp: (nodeCpu.user + nodeCpu.system) / result.ops,
      });
    }
  }
  await budget.dispose();
  const rows = contenders.map((contender): RedisRow => {
    const runs = results.get(contender)!;
    const samples = runs.map((run) => run.opsPerSec);
    const m = median(samples);
    return {
      id: contender.id,
      label: contender.label,
      opsPerSec: m,
      minOpsPerSec: Math.min(...samples),
      maxOpsPerSec: Math.max(...samples),
      madPct: m > 0 ? mad(samples) / m : 0,
      samples,
      ops: runs.reduce((sum, run) => sum + run.ops, 0),
      allowed: runs.reduce((sum, run) => sum + run.allowed, 0),
      failed: runs.reduce((sum, run) => sum + run.failed, 0),
      redisCpuUsPerOp: median(runs.map((run) => run.redisCpuUsPerOp)),
      nodeCpuUsPerOp: median(runs.map((run) => run.nodeCpuUsPerOp)),
    };
  });
  return { skipped: false, rows, serverVersion, keysDeleted: 0 };
}

interface CpuRun extends ConcurrentResult {
  readonly redisCpuUsPerOp: number;
  readonly nodeCpuUsPerOp: number;
}

/** The Redis server's CPU time (user + sys, all threads), from INFO cpu. */
async function redisCpuSeconds(admin: Redis): Promise<number> {
  const info = await admin.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? Number.NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}
