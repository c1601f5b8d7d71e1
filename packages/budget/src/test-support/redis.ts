import { Redis } from 'ioredis';

/** Where the tests find Redis. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Whether Redis answers. In CI (`CI=true`) a missing Redis is a failure, not a skip: the caller
 * throws. On a developer machine the suite is skipped with a printed reason.
 */
export async function redisAvailable(): Promise<boolean> {
  const client = new Redis(REDIS_URL, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export const hasRedis = await redisAvailable();
if (!hasRedis) {
  if (process.env.CI) throw new Error(`Redis is required in CI but did not answer at ${REDIS_URL}`);
  console.warn(`[budget tests] skipping Redis suites: no Redis at ${REDIS_URL}`);
}

/** A fresh key prefix per test file, and a cleanup that deletes everything under it. */
export function testPrefix(name: string): string {
  return `trestle-test:${name}:${process.pid}:${Date.now().toString(36)}:`;
}

export async function deleteByPrefix(prefix: string): Promise<void> {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}
