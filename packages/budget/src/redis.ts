import { createHash } from 'node:crypto';
import type { Redis, RedisOptions } from 'ioredis';
import { type Clock, systemClock } from './clock';
import { BudgetError, BudgetErrorCode } from './errors';
import type { BudgetStore, DebitResult, SettleResult, TakeResult } from './store';
import { DeadlineQueue } from './stores/deadline-queue';
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
   * How long a call made before the first connection outcome (cold start: loading ioredis, TCP, the
   * ready check) may wait for it. The store starts connecting when created; `await store.ready()` at
   * startup so the first calls do not come back degraded.
   * @default timeoutMs
   */
  readonly connectTimeoutMs?: number;
  /**
   * Where bucket time comes from. `'server'` uses the Redis server clock (`TIME`), so replicas with
   * skewed clocks agree; `'caller'` uses the `now` passed by the budget (for tests with a manual clock;
   * keys then expire after a day of real time instead of when they are full).
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
  /**
   * Resolves when the first connection attempt has an outcome.
   * @default timeoutMs 5_000
   * @throws BudgetError `BUDGET_STORE_TIMEOUT` when there is none within `timeoutMs`.
   */
  ready(timeoutMs?: number): Promise<void>;
  /** Closes a client the store created (at once, without waiting for Redis); idempotent. */
  dispose(): Promise<void>;
}

/** `[ok, tokens, serverNowMs, status?, a?, b?]`: see `BUCKET_SCRIPT`. */
type Reply = [number, string, number, string?, string?, string?];

/** Replies kept to estimate the offset between this process's clock and the Redis clock. */
const OFFSET_WINDOW = 32;
type ScriptClient = Pick<Redis, 'evalsha' | 'eval' | 'del' | 'quit'> & { disconnect?: () => void };

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

const toTake = (reply: Reply): TakeResult => ({ ok: reply[0] === 1, tokens: Number(reply[1]) });
const toTokens = (reply: Reply): number => Number(reply[1]);
const toDebit = (reply: Reply): DebitResult => ({
  tokens: Number(reply[1]),
  charged: Number(reply[4]),
  unpaid: Number(reply[5]),
});
const toSettle = (reply: Reply): SettleResult => ({
  status: reply[3] === 'settled' ? 'settled' : 'unknown',
  tokens: Number(reply[1]),
  refunded: Number(reply[4]),
  extraCharged: Number(reply[5]),
});

class RedisStore implements RedisBudgetStore {
  readonly name = 'redis';
  readonly contractVersion = 1 as const;
  readonly synchronous = false as const;
  readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly serverTime: boolean;
  private created: ScriptClient | undefined;
  private disposed = false;
  /** Recent `serverNow - sentAt` samples; their minimum bounds the true offset from above. */
  private readonly offsets: number[] = [];
  private offsetCount = 0;
  private offset: number | undefined;
  private readonly deadlines: DeadlineQueue;
  /** `[capacity, refillPerMs, maxDebt]` as strings, per (interned) limits object. */
  private readonly limitArgs = new WeakMap<BucketLimits, readonly [string, string, string]>();
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
    this.connectTimeoutMs = options.connectTimeoutMs ?? timeoutMs;
    this.serverTime = (options.timeSource ?? 'server') === 'server';
    this.clock = options.clock ?? systemClock;
    this.deadlines = new DeadlineQueue(this.clock, timeoutMs);
    // Start connecting now, so that the first call does not pay for loading ioredis and the handshake.
    if (this.owned) this.connect().catch(() => undefined);
  }

  async ready(timeoutMs = 5_000): Promise<void> {
    if (this.client) return;
    await this.deadline(this.connect(), 'ready', '', timeoutMs);
  }

  take(key: string, limits: BucketLimits, cost: number, now: number): Promise<TakeResult> {
    return this.run(key, 'take', limits, cost, now, '', 0, toTake);
  }

  reserve(
    key: string,
    limits: BucketLimits,
    amount: number,
    id: string,
    leaseMs: number,
    now: number,
  ): Promise<TakeResult> {
    return this.run(key, 'reserve', limits, amount, now, id, leaseMs, toTake);
  }

  settle(key: string, limits: BucketLimits, id: string, used: number, now: number): Promise<SettleResult> {
    return this.run(key, 'settle', limits, used, now, id, 0, toSettle);
  }

  debit(key: string, limits: BucketLimits, amount: number, now: number): Promise<DebitResult> {
    return this.run(key, 'debit', limits, amount, now, '', 0, toDebit);
  }

  rescale(key: string, limits: BucketLimits, now: number): Promise<number> {
    return this.run(key, 'rescale', limits, 0, now, '', 0, toTokens);
  }

  peek(key: string, limits: BucketLimits, now: number): Promise<number> {
    return this.run(key, 'peek', limits, 0, now, '', 0, toTokens);
  }

  async delete(key: string): Promise<void> {
    const client = await this.connected('delete', key);
    const bucket = `${this.prefix}{${key}}`;
    await this.deadline(client.del(bucket, `${bucket}:r`), 'delete', key, this.timeoutMs);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    this.client = undefined;
    const created = this.created;
    this.created = undefined;
    // Never wait on Redis here (it may be frozen): drop the connection and stop reconnecting.
    created?.disconnect?.();
  }

  /** The client, waiting (bounded) for the first connection outcome. */
  private connected(op: string, key: string): Promise<ScriptClient> {
    if (this.disposed) {
      return Promise.reject(new BudgetError(BudgetErrorCode.StoreUnavailable, 'store "redis" was disposed'));
    }
    if (this.client) return Promise.resolve(this.client);
    return this.deadline(this.connect(), op, key, this.connectTimeoutMs);
  }

  /**
   * One script call: a single promise (no async layers), one shared deadline timer, the reply mapped
   * by `map` before resolving.
   */
  private run<T>(
    key: string,
    op: string,
    limits: BucketLimits,
    amount: number,
    now: number,
    id: string,
    leaseMs: number,
    map: (reply: Reply) => T,
  ): Promise<T> {
    const client = this.client;
    if (!client) {
      return this.connected(op, key).then(() => this.run(key, op, limits, amount, now, id, leaseMs, map));
    }
    const bucket = `${this.prefix}{${key}}`;
    let limitArgs = this.limitArgs.get(limits);
    if (!limitArgs) {
      limitArgs = [String(limits.capacity), String(limits.refillPerMs), String(limits.maxDebt)];
      this.limitArgs.set(limits, limitArgs);
    }
    const sentAt = this.clock.now();
    // With the server clock, tell the script when we stop waiting (in server time, estimated no
    // earlier than the truth), so a call that runs after we reported a timeout charges nothing.
    const deadline =
      this.serverTime && this.offset !== undefined ? String(sentAt + this.timeoutMs + this.offset) : '';
    // Fewer arguments are measurably cheaper for Redis: trailing ones are sent only when used.
    const args: (string | number)[] = [
      SHA,
      2,
      bucket,
      `${bucket}:r`,
      op,
      limitArgs[0],
      limitArgs[1],
      String(amount),
      deadline,
    ];
    const nowArg = this.serverTime ? '' : String(now);
    if (op === 'take' || op === 'peek' || op === 'rescale') {
      if (nowArg !== '') args.push(nowArg);
    } else {
      args.push(nowArg, limitArgs[2]);
      if (id !== '') args.push(id, String(leaseMs));
    }
    return new Promise<T>((resolve, reject) => {
      const done = this.deadlines.add(() =>
        reject(
          new BudgetError(
            BudgetErrorCode.StoreTimeout,
            `store "redis" did not answer ${op} for key "${key}" within ${this.timeoutMs} ms`,
          ),
        ),
      );
      const fail = (error: unknown) => {
        done();
        reject(this.unavailable(error, op, key));
      };
      const succeed = (value: unknown) => {
        done();
        const reply = value as Reply;
        if (this.serverTime) this.observe(reply[2] - sentAt);
        if (reply[3] === 'late') {
          reject(
            new BudgetError(
              BudgetErrorCode.StoreTimeout,
              `store "redis" ran ${op} for key "${key}" after its ${this.timeoutMs} ms deadline; nothing was changed`,
            ),
          );
        } else {
          resolve(map(reply));
        }
      };
      (client.evalsha as (...args: (string | number)[]) => Promise<unknown>)(...args).then(
        succeed,
        (error) => {
          if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
            args[0] = BUCKET_SCRIPT;
            (client.eval as (...args: (string | number)[]) => Promise<unknown>)(...args).then(succeed, fail);
          } else {
            fail(error);
          }
        },
      );
    });
  }

  private unavailable(error: unknown, op: string, key: string): BudgetError {
    return BudgetError.isInstance(error)
      ? error
      : new BudgetError(
          BudgetErrorCode.StoreUnavailable,
          `store "redis" failed ${op} for key "${key}": ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
  }

  private observe(sample: number): void {
    if (!Number.isFinite(sample)) return;
    const ring = this.offsets;
    const index = this.offsetCount++ % OFFSET_WINDOW;
    const dropped = ring[index];
    ring[index] = sample;
    if (this.offset === undefined || sample <= this.offset) {
      this.offset = sample;
    } else if (dropped === this.offset) {
      // The minimum left the window: find the new one (rare).
      let min = sample;
      for (const value of ring) if (value < min) min = value;
      this.offset = min;
    }
  }

  private deadline<T>(promise: Promise<T>, op: string, key: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        reject(
          new BudgetError(
            BudgetErrorCode.StoreTimeout,
            `store "redis" did not answer ${op} for key "${key}" within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      promise.then(
        (value) => {
          this.clock.clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          this.clock.clearTimeout(timer);
          reject(this.unavailable(error, op, key));
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
      if (this.disposed) {
        client.disconnect();
        throw new BudgetError(BudgetErrorCode.StoreUnavailable, 'store "redis" was disposed');
      }
      this.created = client;
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
