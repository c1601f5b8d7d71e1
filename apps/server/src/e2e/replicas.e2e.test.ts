/**
 * The server as a real process (issue 7): three replicas sharing one Redis (budgets and the session
 * directory). One tenant's clients, spread over all of them, share one bucket; a session resumed on
 * the wrong replica is pointed at the right one (`SESSION_ELSEWHERE`).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeProcesses,
  freePort,
  mintToken,
  pythonAvailable,
  REDIS_URL,
  RpcCallError,
  RpcClient,
  redisAvailable,
  removeTempDirs,
  type ServerProcess,
  startServerProcess,
  stopAll,
  survivors,
  tempDir,
  until,
} from './harness';

const hasPython = pythonAvailable();
const hasRedis = hasPython && (await redisAvailable());

/** The shared tier: capacity C, refill R per second. */
const C = 20;
const R = 10;
/**
 * `failClosed`: if Redis misses its deadline, deny rather than fall back to a bucket per process (the
 * default `local` policy would let each replica grant from its own bucket, which is not the shared
 * limit this test measures).
 */
const TIERS = { shared: { capacity: C, refillPerSec: R, maxDebt: 5, onStoreError: 'failClosed' } };
const CLIENTS_PER_REPLICA = 1;
const CALLS_PER_CLIENT = 50;
const SPREAD_MS = 2_000;

async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

describe.runIf(hasRedis)('replicas with one Redis (3 server processes)', () => {
  const prefix = `trestle-e2e-${randomBytes(6).toString('hex')}:`;
  const replicas: { id: string; publicUrl: string; server: ServerProcess }[] = [];
  const clients: RpcClient[] = [];
  let redis: Redis;

  beforeAll(async () => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    const dir = tempDir();
    const tiersFile = path.join(dir, 'tiers.json');
    writeFileSync(tiersFile, JSON.stringify(TIERS));
    const started = await Promise.all(
      ['r1', 'r2', 'r3'].map(async (id) => {
        // The public URL names the port, so the port is chosen before the start.
        const port = await freePort();
        const publicUrl = `ws://127.0.0.1:${port}/rpc`;
        const server = await startServerProcess({
          port,
          env: {
            REDIS_URL,
            TRESTLE_REDIS_PREFIX: prefix,
            TRESTLE_REPLICA_ID: id,
            TRESTLE_PUBLIC_URL: publicUrl,
            TRESTLE_TIERS_FILE: tiersFile,
          },
        });
        return { id, publicUrl, server };
      }),
    );
    replicas.push(...started);
    // Ready: Python starts, Redis and the budget store answer.
    for (const { server } of replicas) {
      await until(
        async () => (await server.get('/readyz')).status === 200,
        `${server.url} ready`,
        15_000,
        100,
      );
    }
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await stopAll();
    if (redis) {
      await deleteKeys(redis, prefix).catch(() => 0);
      redis.disconnect();
    }
    removeTempDirs();
  });

  it('shares one tenant bucket across replicas: granted calls <= C + R x elapsed seconds', async () => {
    const token = await mintToken('shared-co', 'shared');
    const group: RpcClient[] = [];
    for (const { server } of replicas) {
      for (let i = 0; i < CLIENTS_PER_REPLICA; i++) {
        const client = await RpcClient.connect(server.url, token);
        clients.push(client);
        group.push(client);
        await client.call('session.open', {});
      }
    }

    // Each client spreads its calls evenly over ~2 s (one at a time); all clients run at once.
    let granted = 0;
    let denied = 0;
    const unexpected: string[] = [];
    const retryTimes: number[] = [];
    const startedAt = performance.now();
    await Promise.all(
      group.map(async (client) => {
        for (let i = 0; i < CALLS_PER_CLIENT; i++) {
          const due = startedAt + (i * SPREAD_MS) / CALLS_PER_CLIENT;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          const reply = await client.request('py.call', { module: 'math', fn: 'sqrt', args: [i] });
          if (!reply.error) granted++;
          else if (reply.error.data?.code === 'BUDGET_EXCEEDED') {
            denied++;
            retryTimes.push(new RpcCallError('py.call', reply.error).data.retryAfterMs as number);
          } else unexpected.push(JSON.stringify(reply.error));
        }
      }),
    );
    const elapsedSeconds = (performance.now() - startedAt) / 1000;

    expect(unexpected).toEqual([]);
    expect(granted + denied).toBe(replicas.length * CLIENTS_PER_REPLICA * CALLS_PER_CLIENT);
    // The bound. Every granted call first reserves 1 unit, which needs at least 1 unit in the bucket,
    // and is never refunded (a call settles at 1 + floor(ms / 100) >= 1). The bucket (fresh: a unique
    // key prefix) starts at C and earns R per second, so granted <= C + R x elapsed. The debt allowed
    // by maxDebt (settling beyond the balance, down to -maxDebt) only lowers the balance: it never
    // lets a reserve through, so it adds nothing to the bound. `elapsed` is measured by the client,
    // from before the first request to after the last reply: it covers the bucket's time.
    expect(granted).toBeLessThanOrEqual(Math.floor(C + R * elapsedSeconds + 1e-9));
    expect(granted).toBeGreaterThan(0);
    expect(denied).toBeGreaterThan(0);
    expect(retryTimes.every((ms) => ms > 0)).toBe(true);
    // Each replica served its client (no replica refused everything because it had its own view).
    for (const client of group) {
      const info = await client.call<{ calls: { metered?: number; denied?: number } }>('session.info', {});
      expect((info.calls.metered ?? 0) + (info.calls.denied ?? 0)).toBeGreaterThanOrEqual(CALLS_PER_CLIENT);
    }
    const [first] = group;
    const budget = await first?.call<{ remaining: number; capacity: number }>('budget.get', {});
    expect(budget?.capacity).toBe(C);
    expect(budget?.remaining).toBeLessThan(C);
    // One bucket for the tenant, in Redis.
    expect(await redis.exists(`${prefix}budget:{shared-co}`)).toBe(1);
    for (const client of group) await client.call('session.end', {});
  });

  it('answers SESSION_ELSEWHERE naming the replica that holds the session, which then resumes it', async () => {
    const [home, other] = replicas;
    if (!home || !other) throw new Error('replicas missing');
    const token = await mintToken('roaming-co', 'shared');
    const first = await RpcClient.connect(home.server.url, token);
    clients.push(first);
    const session = await first.call<{ sessionId: string; resumeToken: string; replica: string }>(
      'session.open',
      {},
    );
    expect(session.replica).toBe('r1');
    const entry = JSON.parse((await redis.get(`${prefix}session:${session.sessionId}`)) ?? 'null');
    expect(entry).toEqual({ replica: 'r1', url: home.publicUrl, tenant: 'roaming-co' });
    await first.close();
    const credentials = { sessionId: session.sessionId, resumeToken: session.resumeToken };

    const wrong = await RpcClient.connect(other.server.url, token);
    clients.push(wrong);
    const elsewhere = await wrong.error('session.resume', credentials);
    expect(elsewhere.code).toBe('SESSION_ELSEWHERE');
    expect(elsewhere.data).toMatchObject({ replica: 'r1', url: home.publicUrl });
    // Another tenant learns nothing about where it lives.
    const stranger = await RpcClient.connect(other.server.url, await mintToken('stranger-co', 'shared'));
    clients.push(stranger);
    expect((await stranger.error('session.resume', credentials)).code).toBe('SESSION_FORBIDDEN');

    // Following the redirect works.
    const right = await RpcClient.connect(elsewhere.data.url as string, token);
    clients.push(right);
    expect(await right.call('session.resume', credentials)).toMatchObject({
      sessionId: session.sessionId,
      replica: 'r1',
    });
    expect(await right.call('session.info', {})).toMatchObject({ tenant: 'roaming-co' });
    await right.call('session.end', {});
    expect(await redis.exists(`${prefix}session:${session.sessionId}`)).toBe(0);
  });

  it('stops every replica on SIGTERM with exit code 0, no Python left, and no session key left in Redis', async () => {
    await Promise.all(clients.map((client) => client.close()));
    const workers = replicas.flatMap(({ server }) => server.noteWorkers());
    expect(workers.length).toBeGreaterThanOrEqual(replicas.length);
    const exits = await Promise.all(replicas.map(({ server }) => server.stop('SIGTERM')));
    expect(exits).toEqual(replicas.map(() => ({ code: 0, signal: null })));
    const left = await survivors(replicas.flatMap(({ server }) => [...server.workers]));
    expect(left, describeProcesses(left)).toEqual([]);
    const [, sessionKeys] = await redis.scan('0', 'MATCH', `${prefix}session:*`, 'COUNT', 10_000);
    expect(sessionKeys).toEqual([]);
    // What remains is budget state; the test removes it.
    await deleteKeys(redis, prefix);
    const [, rest] = await redis.scan('0', 'MATCH', `${prefix}*`, 'COUNT', 10_000);
    expect(rest).toEqual([]);
  });
});
