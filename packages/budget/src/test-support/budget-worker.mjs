// One process of the distributed harness (`redis.distributed.test.ts`), started with `fork`.
//
// Plain ESM on purpose: a child process cannot use vitest's TypeScript transform, so it imports the
// BUILT package (`dist/`, built by `tsup` before the tests run). The parent checks that `dist/` exists.
//
// argv[2] is a JSON config:
//   mode        'budget' (createBudget + redisStore, server clock) | 'naive' (GET/compute/SET, caller clock)
//   url         Redis URL;  prefix: key prefix (cleaned by the test);  key: the one bucket everybody hammers
//   loops       concurrent async callers in this process
//   skewMs      added to this process's clock (`performance.now()` for the budget, `Date.now()` for naive)
//   maxPerLoop  safety bound on calls per caller;  timeoutMs: the store's per-call deadline
//
// Protocol (IPC): child -> {type:'ready'}; parent -> {type:'go', durationMs}; child -> {type:'result', ...};
// on failure child -> {type:'error', message}. Every caller stops by itself: at the deadline (the child's
// own timer), after `maxPerLoop` calls, and at a hard stop 5 s past the deadline.
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';

const config = JSON.parse(process.argv[2] ?? '{}');
const { mode, url, prefix, key, loops, skewMs, maxPerLoop, timeoutMs } = config;

/** The free tier, for the naive limiter (the budget uses its own DEFAULT_TIERS.free). */
const CAPACITY = 1000;
const REFILL_PER_MS = 10 / 1000;

const send = (message) =>
  new Promise((resolve) => {
    process.send(message, () => resolve());
  });

/** Redis server time in milliseconds (microsecond resolution), the clock the Lua script uses. */
async function serverMs(client) {
  const [seconds, micros] = await client.time();
  return Number(seconds) * 1000 + Number(micros) / 1000;
}

/** The BUILT budget: createBudget + redisStore on the server clock, this process's clock skewed. */
async function budgetLimiter() {
  const { createBudget } = await import(new URL('../../dist/index.js', import.meta.url).href);
  const { redisStore } = await import(new URL('../../dist/redis.js', import.meta.url).href);
  const clock = {
    now: () => performance.now() + skewMs,
    setTimeout: (callback, ms) => setTimeout(callback, ms),
    clearTimeout: (handle) => clearTimeout(handle),
  };
  const store = redisStore({ url, prefix, timeSource: 'server', timeoutMs, clock });
  const budget = createBudget({ store, clock });
  // Connects and loads the script without touching the measured bucket (peek never writes).
  await budget.peek(`${key}:warmup`, 'free');
  return {
    consume: async () => (await budget.consume(key, 'free', 1)).kind,
    dispose: () => budget.dispose(),
  };
}

/**
 * The negative control: what a naive Redis rate limiter looks like. Read the state, refill with this
 * process's own (skewed) wall clock, write it back. No WATCH, no Lua: concurrent callers read the same
 * state and each grant from it (lost updates), and skewed clocks refill on every hand-over between a
 * process that is ahead and one that is behind.
 */
async function naiveLimiter() {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  const stateKey = `${prefix}naive:${key}`;
  await client.ping();
  return {
    consume: async () => {
      const raw = await client.get(stateKey);
      const now = Date.now() + skewMs;
      const state = raw ? JSON.parse(raw) : { tokens: CAPACITY, ts: now };
      const tokens = Math.min(CAPACITY, state.tokens + Math.max(0, now - state.ts) * REFILL_PER_MS);
      const ok = tokens >= 1;
      await client.set(stateKey, JSON.stringify({ tokens: ok ? tokens - 1 : tokens, ts: now }), 'PX', 60_000);
      return ok ? 'allowed' : 'denied';
    },
    dispose: async () => {
      client.disconnect();
    },
  };
}

async function run(limiter, timeClient, durationMs) {
  const counts = { allowed: 0, denied: 0, degraded: 0, errors: 0, calls: 0 };
  let lastError;
  let stop = false;
  let hitMax = 0;
  let firstAfter;

  // Server time before any call of this process: every call of this process executes after it.
  const firstBefore = await serverMs(timeClient);
  const hardStop = performance.now() + durationMs + 5_000;

  const once = async () => {
    try {
      const kind = await limiter.consume();
      counts[kind] = (counts[kind] ?? 0) + 1;
    } catch (error) {
      counts.errors++;
      lastError = error instanceof Error ? error.message : String(error);
    }
    counts.calls++;
    // Server time after this process's first call returned: the first call executed before it.
    firstAfter ??= serverMs(timeClient);
  };

  const caller = async () => {
    let n = 0;
    while (!stop && n < maxPerLoop && performance.now() < hardStop) {
      await once();
      n++;
    }
    if (n >= maxPerLoop) hitMax++;
    // One last call, issued after `lastBefore` was read: so some call executes after `lastBefore`.
    await once();
  };

  const callers = Array.from({ length: loops }, caller);
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  const lastBefore = await serverMs(timeClient);
  stop = true;
  await Promise.all(callers);
  // Server time after every call of this process returned.
  const lastAfter = await serverMs(timeClient);
  return { ...counts, hitMax, lastError, firstBefore, firstAfter: await firstAfter, lastBefore, lastAfter };
}

async function main() {
  const timeClient = new Redis(url, { maxRetriesPerRequest: 1 });
  timeClient.on('error', () => undefined);
  const limiter = mode === 'naive' ? await naiveLimiter() : await budgetLimiter();
  await serverMs(timeClient);
  const go = new Promise((resolve) => {
    process.on('message', (message) => {
      if (message && message.type === 'go') resolve(message.durationMs);
    });
  });
  await send({ type: 'ready', pid: process.pid });
  const durationMs = await go;
  const result = await run(limiter, timeClient, durationMs);
  await limiter.dispose();
  timeClient.disconnect();
  await send({ type: 'result', pid: process.pid, skewMs, loops, ...result });
}

main().then(
  () => process.exit(0),
  async (error) => {
    await send({ type: 'error', message: error instanceof Error ? error.stack : String(error) }).catch(
      () => {},
    );
    process.exit(1);
  },
);
