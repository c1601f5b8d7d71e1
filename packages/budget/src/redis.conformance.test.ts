import { afterAll, describe } from 'vitest';
import { redisStore } from './redis';
import { deleteByPrefix, hasRedis, REDIS_URL, testPrefix } from './test-support/redis';
import { testBudgetStore } from './testing';

const prefix = testPrefix('conformance');

describe.skipIf(!hasRedis)('redis store', () => {
  afterAll(() => deleteByPrefix(prefix));
  testBudgetStore(
    'redis',
    () => redisStore({ url: REDIS_URL, prefix, timeSource: 'caller', timeoutMs: 2_000 }),
    {
      seeds: [1, 2, 3, 4, 5, 6],
    },
  );
});
