import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBudget } from './budget';
import { redisStore } from './redis';
import { hasRedis } from './test-support/redis';
import {
  freePort,
  hasRedisServer,
  type OwnedRedisServer,
  startRedisServer,
} from './test-support/redis-server';

// A server of our own: SCRIPT FLUSH and key inspection touch nobody else.
describe.skipIf(!hasRedis || !hasRedisServer)('redisStore on a Redis of its own', () => {
  let server: OwnedRedisServer;
  let inspector: Redis;

  beforeAll(async () => {
    server = await startRedisServer(await freePort());
    inspector = new Redis(server.url);
  });
  afterAll(async () => {
    inspector?.disconnect();
    await server?.kill();
  });

  it('loads its script by itself (NOSCRIPT falls back to EVAL), also after SCRIPT FLUSH', async () => {
    const store = redisStore({ url: server.url, prefix: 'p:' });
    await store.ready();
    const budget = createBudget({ store });
    expect((await budget.consume('a', 'free')).kind).toBe('allowed');
    await inspector.script('FLUSH');
    expect((await budget.consume('a', 'free')).kind).toBe('allowed');
    expect(await budget.peek('a', 'free')).toBeCloseTo(998, 0);
    await budget.dispose();
  });

  it('keeps one hash-tagged key per bucket that expires when the bucket is full again', async () => {
    const store = redisStore({ url: server.url, prefix: 'tags:' });
    await store.ready();
    const budget = createBudget({ store });
    await budget.consume('user:42', 'free', 5);
    expect(await inspector.keys('tags:*')).toEqual(['tags:{user:42}']);
    // 5 tokens at 10/s: full again in 500 ms.
    const ttl = await inspector.pttl('tags:{user:42}');
    expect(ttl).toBeGreaterThan(400);
    expect(ttl).toBeLessThanOrEqual(500);
    const { reservation } = await budget.reserve('user:42', 'free', 10, 5_000);
    expect((await inspector.keys('tags:*')).sort()).toEqual(['tags:{user:42}', 'tags:{user:42}:r']);
    await budget.settle(reservation!.id, 10);
    expect(await inspector.hlen('tags:{user:42}:r')).toBe(0);
    await budget.dispose();
  });

  it('disposes without waiting for Redis and refuses calls afterwards, as degraded decisions', async () => {
    const store = redisStore({ url: server.url, prefix: 'd:' });
    await store.ready();
    const budget = createBudget({
      store,
      tiers: { strict: { capacity: 5, refillPerSec: 1, onStoreError: 'failClosed' } },
    });
    await budget.dispose();
    const decision = await budget.consume('x', 'strict');
    expect(decision).toMatchObject({ kind: 'degraded', allowed: false });
  });
});
