/**
 * The Redis session directory: `<prefix>session:<id>` = JSON `{ replica, url, tenant }`, written with a
 * lease (`SET ... PX leaseMs`). The owner renews the leases of all its sessions with ONE timer per
 * process, every `leaseMs / 3`, in one pipeline; a session's key is deleted when it ends. A replica that
 * dies stops renewing, and its entries expire within a lease.
 */
import type { Clock } from '@trestle/bridge';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './contracts';
import type { DirectoryEntry, SessionDirectory } from './directory';

/** Options of {@link redisDirectory}. */
export interface RedisDirectoryOptions {
  /** A client to use (not closed by the directory), or `redisUrl` to create one. */
  readonly redis?: Redis;
  readonly redisUrl?: string;
  readonly redisOptions?: RedisOptions;
  /** Key prefix, e.g. `trestle:` → `trestle:session:<id>`. */
  readonly prefix: string;
  /** This replica's id and public URL (what other replicas tell clients). */
  readonly replica: string;
  readonly publicUrl: string;
  /** Lease of each entry; renewed every `leaseMs / 3`. */
  readonly leaseMs: number;
  readonly clock: Clock;
  readonly logger?: Logger;
}

/** The Redis directory, with its client and the renewal step (for tests). */
export interface RedisSessionDirectory extends SessionDirectory {
  readonly client: Redis;
  /** The key of a session. */
  key(sessionId: string): string;
  /** Renews every lease now (what the timer does). */
  renew(): Promise<void>;
  /** Sessions this replica holds leases for. */
  readonly owned: number;
  /** Whether the renewal timer is armed. */
  readonly timerArmed: boolean;
}

/** Creates the Redis directory (connects at once, in the background). */
export function redisDirectory(options: RedisDirectoryOptions): RedisSessionDirectory {
  if (!options.redis && !options.redisUrl) throw new TypeError('redisDirectory needs `redis` or `redisUrl`');
  if (!(Number.isFinite(options.leaseMs) && options.leaseMs >= 30)) {
    throw new RangeError(`directory leaseMs must be a number >= 30, got ${options.leaseMs}`);
  }
  const owns = options.redis === undefined;
  const client =
    options.redis ??
    new Redis(options.redisUrl as string, {
      maxRetriesPerRequest: 1,
      commandTimeout: 2_000,
      connectTimeout: 5_000,
      ...options.redisOptions,
    });
  let lastError = '';
  if (owns) {
    client.on('error', (error: Error) => {
      // ioredis reconnects by itself; say it once per distinct failure, not per retry.
      if (error.message === lastError) return;
      lastError = error.message;
      options.logger?.warn({ err: error.message }, 'session directory: redis error');
    });
    client.on('ready', () => {
      lastError = '';
    });
  }
  const { clock, leaseMs, prefix } = options;
  const owned = new Map<string, string>();
  const key = (sessionId: string) => `${prefix}session:${sessionId}`;
  let timer: unknown;
  let closed = false;
  let renewing: Promise<void> | undefined;

  const arm = () => {
    if (timer !== undefined || closed || owned.size === 0) return;
    timer = clock.setTimeout(
      () => {
        timer = undefined;
        void renew().finally(arm);
      },
      Math.max(10, Math.floor(leaseMs / 3)),
    );
  };

  const renew = (): Promise<void> => {
    if (renewing) return renewing;
    if (owned.size === 0 || closed) return Promise.resolve();
    const pipeline = client.pipeline();
    for (const [sessionId, value] of owned) pipeline.set(key(sessionId), value, 'PX', leaseMs);
    renewing = pipeline
      .exec()
      .then((results) => {
        const failed = (results ?? []).filter(([error]) => error !== null).length;
        if (failed > 0) options.logger?.warn({ failed }, 'session directory: some lease renewals failed');
      })
      .catch((error: unknown) => {
        options.logger?.warn(
          { err: error instanceof Error ? error.message : String(error), sessions: owned.size },
          'session directory: lease renewal failed',
        );
      })
      .finally(() => {
        renewing = undefined;
      });
    return renewing;
  };

  return {
    name: 'redis',
    client,
    key,
    renew,
    get owned() {
      return owned.size;
    },
    get timerArmed() {
      return timer !== undefined;
    },
    async register(sessionId, tenant) {
      if (closed) return;
      const entry: DirectoryEntry = { replica: options.replica, url: options.publicUrl, tenant };
      const value = JSON.stringify(entry);
      owned.set(sessionId, value);
      arm();
      await client.set(key(sessionId), value, 'PX', leaseMs);
    },
    async unregister(sessionId) {
      if (!owned.delete(sessionId)) return;
      if (owned.size === 0 && timer !== undefined) {
        clock.clearTimeout(timer);
        timer = undefined;
      }
      await client.del(key(sessionId));
    },
    async lookup(sessionId) {
      const raw = await client.get(key(sessionId));
      return raw === null ? undefined : parseEntry(raw);
    },
    async ping() {
      try {
        return (await client.ping()) === 'PONG';
      } catch {
        return false;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      const ids = [...owned.keys()];
      owned.clear();
      try {
        if (ids.length > 0) await client.del(...ids.map(key));
      } catch (error) {
        options.logger?.warn(
          { err: error instanceof Error ? error.message : String(error) },
          'session directory: could not delete entries at close (they expire with their lease)',
        );
      }
      if (owns) {
        try {
          await client.quit();
        } catch {
          client.disconnect();
        }
      }
    },
  };
}

function parseEntry(raw: string): DirectoryEntry | undefined {
  try {
    const value = JSON.parse(raw) as Partial<DirectoryEntry> | null;
    if (
      value !== null &&
      typeof value === 'object' &&
      typeof value.replica === 'string' &&
      typeof value.url === 'string' &&
      typeof value.tenant === 'string'
    ) {
      return { replica: value.replica, url: value.url, tenant: value.tenant };
    }
  } catch {
    // a malformed entry is no entry
  }
  return undefined;
}
