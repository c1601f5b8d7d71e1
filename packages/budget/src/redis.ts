import { createHash } from 'node:crypto';
import type { Redis, RedisOptions } from 'ioredis';
import { type Clock, systemClock } from './clock';
import { BudgetError, BudgetErrorCode } from './errors';
import type { BudgetStore, DebitResult, SettleResult, TakeResult } from './store';
import { BUCKET_SCRIPT } from './stores/redis-script';
import type { BucketLimits } from './tiers';

export { BUCKET_SCRIPT } from './stores/redis-script';

/** Options of {@link redisStore}. Give either a client (`redis`) or a `url`. */
export interface RedisStoreOptions {
  /**
   * An ioredis client (or Cluster). For a hard deadline to mean anything it should be created with
   * `enableOfflineQueue: false`; `redisStore({ url })` does that for you.
   */
  readonly redis?: Pick<Redis, 'evalsha' | 'eval' | 'del' | 'quit'>;
  /** Creates a client with `enableOfflineQueue: false` and no per-request retries (ioredis is loaded lazily). */
  readonly url?: string;
  /** Extra ioredis options when `url` is used. */
  readonly redisOptions?: RedisOptions;
  /**
   * Key prefix. Keys are `<prefix>{<key>}` (hash-tagged, cluster-safe) and `<prefix>{<key>}:r`.
   * @default 'trestle:budget:'
   */
  readonly prefix?: string;
  /**
   * Hard deadline per call; past it the call fails with `BUDGET_STORE_TIMEOUT` and the tier's
   * `onStoreError` policy decides.
   * @default 50
   */
  readonly timeoutMs?: number;
  /**
   * Where bucket time comes from. `'server'` uses the Redis server clock (`TIME`), so replicas with
   * skewed clocks agree; `'caller'` uses the `now` passed by the budget (for tests with a manual clock).
   * @default 'server'
   */
  readonly timeSource?: 'server' | 'caller';
  /**
   * Timers for the deadline.
   * @default systemClock
   */
  readonly clock?: Clock;
}

/** The Redis store: atomic, replica-safe, bounded in time. */
export interface RedisBudgetStore extends BudgetStore {
  readonly synchronous: false;
  readonly prefix: string;
  take(key: string, limits: BucketLimits, cost: number, now: number): Promise<TakeResult>;
  dispose(): Promise<void>;
}

type Reply = [number, string, string, string, string];
type ScriptClient = Pick<Redis, 'evalsha' | 'eval' | 'del' | 'quit'>;

/**
 * Creates a budget store on Redis: one atomic Lua script per operation on one hash-tagged key,
 * the Redis server clock, `PEXPIRE` = time to full, EVALSHA with a NOSCRIPT fallback, a hard
 * deadline per call and no offline queue.
 *
 * @example
 * ```ts
 * import { createBudget } from '@trestle/budget';
 * import { redisStore } from '@trestle/budget/redis';
 * const budget = createBudget({ store: redisStore({ url: 'redis://127.0.0.1:6379' }) });
 * ```
 * @throws BudgetError `BUDGET_INVALID_ARGUMENT` when neither `redis` nor `url` is given.
 */
export function redisStore(options: RedisStoreOptions): RedisBudgetStore {
  return new RedisStore(options);
}

const SHA = createHash('sha1').update(BUCKET_SCRIPT).digest('hex');

class RedisStore implements RedisBudgetStore {
  readonly name = 'redis';
  readonly contractVersion = 1 as const;
  readonly synchronous = false as const;
  readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly serverTime: boolean;
  private readonly clock: Clock;
  private client: ScriptClient | undefined;
  private connecting: Promise<ScriptClient> | undefined;
  private readonly owned: boolean;
  private readonly url: string | undefined;
  private readonly redisOptions: RedisOptions | undefined;

  constructor(options: RedisStoreOptions) {
    if (!options.redis && !options.url) {
      throw new BudgetError(BudgetErrorCode.InvalidArgument, 'redisStore needs `redis` (a client) or `url`');
    }
    const timeoutMs = options.timeoutMs ?? 50;
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      throw new BudgetError(BudgetErrorCode.InvalidArgument, `timeoutMs must be > 0, got ${timeoutMs}`);
    }
    this.client = options.redis;
    this.owned = !options.redis;
    this.url = options.url;
    this.redisOptions = options.redisOptions;
    this.prefix = options.prefix ?? 'trestle:budget:';
    this.timeoutMs = timeoutMs;
    this.serverTime = (options.timeSource ?? 'server') === 'server';
    this.clock = options.clock ?? systemClock;
  }

  async take(key: string, limits: BucketLimits, cost: number, now: number): Promise<TakeResult> {
    const reply = await this.run(key, 'take', limits, cost, now, '', 0);
    return { ok: reply[0] === 1, tokens: Number(reply[1]) };
  }

  async reserve(
    key: string,
    limits: BucketLimits,
    amount: number,
    id: string,
    leaseMs: number,
    now: number,
  ): Promise<TakeResult> {
    const reply = await this.run(key, 'reserve', limits, amount, now, id, leaseMs);
    return { ok: reply[0] === 1, tokens: Number(reply[1]) };
  }

  async settle(
    key: string,
    limits: BucketLimits,
    id: string,
    used: number,
    now: number,
  ): Promise<SettleResult> {
    const reply = await this.run(key, 'settle', limits, used, now, id, 0);
    return {
      status: reply[4] === 'settled' ? 'settled' : 'unknown',
      tokens: Number(reply[1]),
      refunded: Number(reply[2]),
      extraCharged: Number(reply[3]),
    };
  }

  async debit(key: string, limits: BucketLimits, amount: number, now: number): Promise<DebitResult> {
    const reply = await this.run(key, 'debit', limits, amount, now, '', 0);
    return { tokens: Number(reply[1]), charged: Number(reply[2]), unpaid: Number(reply[3]) };
  }

  async rescale(key: string, limits: BucketLimits, now: number): Promise<number> {
    return Number((await this.run(key, 'rescale', limits, 0, now, '', 0))[1]);
  }

  async peek(key: string, limits: BucketLimits, now: number): Promise<number> {
    return Number((await this.run(key, 'peek', limits, 0, now, '', 0))[1]);
  }

  async delete(key: string): Promise<void> {
    const client = await this.connect();
    const bucket = `${this.prefix}{${key}}`;
    await this.deadline(client.del(bucket, `${bucket}:r`), 'delete', key);
  }

  async dispose(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.connecting = undefined;
    if (this.owned && client) await client.quit().catch(() => undefined);
  }

  private async run(
    key: string,
    op: string,
    limits: BucketLimits,
    amount: number,
    now: number,
    id: string,
    leaseMs: number,
  ): Promise<Reply> {
    const client = this.client ?? (await this.deadline(this.connect(), op, key));
    const bucket = `${this.prefix}{${key}}`;
    const args = [
      op,
      String(limits.capacity),
      String(limits.refillPerMs),
      String(limits.maxDebt),
      String(amount),
      this.serverTime ? '' : String(now),
      id,
      String(leaseMs),
    ];
    const call = client.evalsha(SHA, 2, bucket, `${bucket}:r`, ...args).catch((error: unknown) => {
      if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
        return client.eval(BUCKET_SCRIPT, 2, bucket, `${bucket}:r`, ...args);
      }
      throw error;
    });
    return (await this.deadline(call, op, key)) as Reply;
  }

  private deadline<T>(promise: Promise<T>, op: string, key: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        reject(
          new BudgetError(
            BudgetErrorCode.StoreTimeout,
            `store "redis" did not answer ${op} for key "${key}" within ${this.timeoutMs} ms`,
          ),
        );
      }, this.timeoutMs);
      promise.then(
        (value) => {
          this.clock.clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          this.clock.clearTimeout(timer);
          reject(
            BudgetError.isInstance(error)
              ? error
              : new BudgetError(
                  BudgetErrorCode.StoreUnavailable,
                  `store "redis" failed ${op} for key "${key}": ${error instanceof Error ? error.message : String(error)}`,
                  { cause: error },
                ),
          );
        },
      );
    });
  }

  private connect(): Promise<ScriptClient> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= import('ioredis').then((module) => {
      const RedisClient = module.Redis;
      const client = new RedisClient(this.url!, {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        connectTimeout: 1_000,
        retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
        ...this.redisOptions,
      });
      // Errors surface per call (and as degraded decisions); keep the emitter from crashing the process.
      client.on('error', () => undefined);
      // Without an offline queue, commands sent before 'ready' fail: wait for the first outcome.
      return new Promise<ScriptClient>((resolve) => {
        const settle = () => {
          this.client = client;
          resolve(client);
        };
        client.once('ready', settle);
        client.once('error', settle);
      });
    });
    return this.connecting;
  }
}
