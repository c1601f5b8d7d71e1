import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type ServerApp } from './app';
import { memoryDirectory } from './directory';
import { redisDirectory } from './directory-redis';
import {
  call,
  callError,
  captureLogger,
  eventually,
  FakeConnection,
  manualClock,
  pythonAvailable,
  REDIS_URL,
  redisAvailable,
  testConfig,
  testMetrics,
} from './testing-domain';

const hasRedis = await redisAvailable();
const hasPython = pythonAvailable();
/** Every key of this file lives under this prefix, and is deleted afterwards. */
const PREFIX = `trestle-test:directory:${process.pid}:${randomBytes(4).toString('hex')}:`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('memory directory', () => {
  it('registers, looks up and forgets local sessions', async () => {
    const directory = memoryDirectory({ replica: 'r1', url: 'ws://r1/rpc' });
    await directory.register('s1', 'acme');
    expect(await directory.lookup('s1')).toEqual({ replica: 'r1', url: 'ws://r1/rpc', tenant: 'acme' });
    await directory.unregister('s1');
    expect(await directory.lookup('s1')).toBeUndefined();
    expect(await directory.ping()).toBe(true);
    await directory.close();
  });
});

describe.runIf(hasRedis)('redis directory (real Redis)', () => {
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    const keys = await redis.keys(`${PREFIX}*`);
    if (keys.length > 0) await redis.del(...keys);
    expect(await redis.keys(`${PREFIX}*`)).toEqual([]);
    await redis.quit();
  });

  it('writes entries with a lease, renews them all with one timer, deletes them at the end', async () => {
    const clock = manualClock();
    const directory = redisDirectory({
      redisUrl: REDIS_URL,
      prefix: `${PREFIX}unit:`,
      replica: 'r1',
      publicUrl: 'ws://r1/rpc',
      leaseMs: 3_000,
      clock,
    });
    expect(directory.timerArmed).toBe(false);
    await directory.register('s1', 'acme');
    await directory.register('s2', 'globex');
    expect(directory.timerArmed).toBe(true);
    expect(JSON.parse((await redis.get(directory.key('s1'))) as string)).toEqual({
      replica: 'r1',
      url: 'ws://r1/rpc',
      tenant: 'acme',
    });
    expect(await directory.lookup('s2')).toEqual({ replica: 'r1', url: 'ws://r1/rpc', tenant: 'globex' });
    const ttl = await redis.pttl(directory.key('s1'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3_000);
    await sleep(300);
    const before = await redis.pttl(directory.key('s2'));
    expect(before).toBeLessThanOrEqual(2_700);
    clock.advance(1_000); // lease / 3: the one timer renews every lease
    await eventually(async () => (await redis.pttl(directory.key('s2'))) > before + 200);
    expect(await redis.pttl(directory.key('s1'))).toBeGreaterThan(2_700);
    expect(directory.timerArmed).toBe(true);
    await directory.unregister('s1');
    expect(await redis.exists(directory.key('s1'))).toBe(0);
    await redis.set(directory.key('bad'), 'not json');
    expect(await directory.lookup('bad')).toBeUndefined();
    expect(await directory.lookup('never')).toBeUndefined();
    expect(await directory.ping()).toBe(true);
    await directory.close();
    expect(await redis.exists(directory.key('s2'))).toBe(0);
    expect(directory.timerArmed).toBe(false);
  });

  it('lets entries of a replica that stopped renewing expire with their lease', async () => {
    const clock = manualClock();
    const directory = redisDirectory({
      redis,
      prefix: `${PREFIX}expire:`,
      replica: 'r9',
      publicUrl: 'ws://r9/rpc',
      leaseMs: 150,
      clock,
    });
    await directory.register('s1', 'acme');
    expect(await directory.lookup('s1')).toBeDefined();
    await sleep(250); // the manual clock never fires the renewal: as if the replica died
    expect(await directory.lookup('s1')).toBeUndefined();
    await directory.close();
  });

  describe.runIf(hasPython)('two replicas on one Redis', () => {
    let one: ServerApp;
    let two: ServerApp;

    const replica = (id: string, url: string) =>
      createApp({
        config: testConfig({
          redisUrl: REDIS_URL,
          redisPrefix: `${PREFIX}app:`,
          replicaId: id,
          tiers: { slow: { capacity: 3, refillPerSec: 0.01 }, free: { capacity: 100, refillPerSec: 2 } },
        }),
        metrics: testMetrics(),
        logger: captureLogger().logger,
        publicUrl: url,
      });

    beforeAll(async () => {
      one = replica('r1', 'ws://r1.example:8765/rpc');
      two = replica('r2', 'ws://r2.example:8765/rpc');
      expect((await one.ready()).ok).toBe(true);
      expect((await two.ready()).ok).toBe(true);
    });

    afterAll(async () => {
      await one?.shutdown(2_000);
      await two?.shutdown(2_000);
    });

    it('answers SESSION_ELSEWHERE with the owner replica and its URL', async () => {
      const conn = new FakeConnection('acme');
      const opened = await call<{ sessionId: string; resumeToken: string }>(one, conn, 'session.open');
      const elsewhere = await callError(two, new FakeConnection('acme'), 'session.resume', opened);
      expect(elsewhere.code).toBe('SESSION_ELSEWHERE');
      expect(elsewhere.data).toEqual({ replica: 'r1', url: 'ws://r1.example:8765/rpc' });
      const foreign = await callError(two, new FakeConnection('globex'), 'session.resume', opened);
      expect(foreign.code).toBe('SESSION_FORBIDDEN');
      await call(one, conn, 'session.end');
      const gone = await callError(two, new FakeConnection('acme'), 'session.resume', opened);
      expect(gone.code).toBe('SESSION_NOT_FOUND');
    });

    it('shares a tenant budget across replicas', async () => {
      const a = new FakeConnection('shared-co', 'slow');
      const b = new FakeConnection('shared-co', 'slow');
      await call(one, a, 'session.open');
      await call(two, b, 'session.open');
      // capacity 3, and each call costs 1 + floor(python_wall_ms / 100) >= 1: spend it on replica one.
      let allowed = 0;
      for (let i = 0; i < 3; i++) {
        const outcome = await call(one, a, 'py.call', { module: 'math', fn: 'sqrt', args: [4] }).then(
          () => 'ok',
          (error: { code: string }) => error.code,
        );
        if (outcome !== 'ok') {
          expect(outcome).toBe('BUDGET_EXCEEDED');
          break;
        }
        allowed++;
      }
      expect(allowed).toBeGreaterThanOrEqual(1);
      // Replica two sees the same (empty) bucket.
      const denied = await callError(two, b, 'py.call', { module: 'math', fn: 'sqrt', args: [4] });
      expect(denied.code).toBe('BUDGET_EXCEEDED');
      expect(denied.data).toMatchObject({ tier: 'slow' });
      expect(Number(denied.data?.retryAfterMs)).toBeGreaterThan(50_000);
      await call(one, a, 'session.end');
      await call(two, b, 'session.end');
    });
  });
});
