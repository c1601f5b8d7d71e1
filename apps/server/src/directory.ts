/**
 * The session directory: where a session lives (which replica, at which URL). A replica registers the
 * sessions it owns; `session.resume` of an id that is not local asks the directory, and a session that
 * lives elsewhere is answered `SESSION_ELSEWHERE` with `{ replica, url }`.
 *
 * `memoryDirectory()` (the default, one process) and `redisDirectory()` (`directory-redis.ts`, replicas
 * sharing a Redis) implement the same interface.
 */

/** What the directory knows about a session. */
export interface DirectoryEntry {
  readonly replica: string;
  /** The public URL of the replica that owns it. */
  readonly url: string;
  readonly tenant: string;
}

/** The plugin interface. */
export interface SessionDirectory {
  readonly name: string;
  /** Records that this replica owns `sessionId` (kept alive until `unregister`). */
  register(sessionId: string, tenant: string): Promise<void>;
  /** Forgets `sessionId` (the session ended). Idempotent. */
  unregister(sessionId: string): Promise<void>;
  /** Where `sessionId` lives, or `undefined` when no replica owns it. */
  lookup(sessionId: string): Promise<DirectoryEntry | undefined>;
  /** Whether the backing store answers (for `/readyz`). Never rejects. */
  ping(): Promise<boolean>;
  /** Stops renewing, forgets this replica's sessions, closes connections. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link memoryDirectory}. */
export interface MemoryDirectoryOptions {
  readonly replica: string;
  readonly url: string;
}

/** A directory in this process: every session it knows is local. */
export function memoryDirectory(options: MemoryDirectoryOptions): SessionDirectory {
  const entries = new Map<string, DirectoryEntry>();
  return {
    name: 'memory',
    async register(sessionId, tenant) {
      entries.set(sessionId, { replica: options.replica, url: options.url, tenant });
    },
    async unregister(sessionId) {
      entries.delete(sessionId);
    },
    async lookup(sessionId) {
      return entries.get(sessionId);
    },
    async ping() {
      return true;
    },
    async close() {
      entries.clear();
    },
  };
}
