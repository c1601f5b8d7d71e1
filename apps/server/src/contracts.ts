/**
 * The seams of the server: what the protocol layer (HTTP, WebSocket, JSON-RPC, auth, config, metrics,
 * CLI) gives the domain (sessions, tenants, Python, metering, streams, admin), and what it expects back.
 */
import type { TierSpec } from '@trestle/budget';
import type { Logger as PinoLogger } from 'pino';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { z } from 'zod';

/** Who is on the other end of a connection, from a verified bearer JWT. */
export interface Principal {
  /** The tenant: the token's `sub`. */
  readonly tenant: string;
  /** The tier the token grants (a configured tier name). */
  readonly tier: string;
  /** When the token expires, epoch seconds. */
  readonly expiresAt: number;
}

/** One authenticated WebSocket connection, as the domain sees it. */
export interface RpcConnection {
  readonly id: string;
  readonly principal: Principal;
  readonly remoteAddress: string;
  /** Aborted when the connection closes. */
  readonly signal: AbortSignal;
  /** Sends a JSON-RPC notification. False when the connection is closed. */
  notify(method: string, params: unknown): boolean;
  /** Bytes queued on the socket and not yet sent (`ws.bufferedAmount`), for backpressure. */
  readonly bufferedAmount: number;
  close(code?: number, reason?: string): void;
}

/** What a method handler gets besides its params. */
export interface RpcContext {
  readonly connection: RpcConnection;
  /** The JSON-RPC id of the request. */
  readonly requestId: string | number;
  /** Aborted by `rpc.cancel { id }` for this request, or when the connection closes. */
  readonly signal: AbortSignal;
}

/**
 * A failure a handler reports to the client: `error.code` is `rpcCode` (-32000 unless given),
 * `error.message` is `message`, `error.data` is `{ code, ...data }`.
 */
export class RpcMethodError extends Error {
  override readonly name = 'RpcMethodError';
  readonly code: string;
  readonly data: Record<string, unknown> | undefined;
  readonly rpcCode: number;
  constructor(code: string, message: string, data?: Record<string, unknown>, rpcCode = -32000) {
    super(message);
    this.code = code;
    this.data = data;
    this.rpcCode = rpcCode;
  }
}

/** A JSON-RPC method: its params schema (zod; a failure is -32602 naming the field) and its handler. */
export interface MethodSpec<P = unknown> {
  readonly params: z.ZodType<P>;
  /** The result is sent as `result`; a thrown `RpcMethodError` as `error`; anything else as `INTERNAL`. */
  handler(params: P, context: RpcContext): Promise<unknown> | unknown;
}

/** The method table. Names are the JSON-RPC method names (`py.call`). */
export type MethodTable = Readonly<Record<string, MethodSpec<never>>>;

/** The metrics every part records into (one prom-client registry per server instance). */
export interface Metrics {
  readonly registry: Registry;
  /** Open sessions (all tenants). */
  readonly sessions: Gauge<never>;
  /** Open WebSocket connections. */
  readonly connections: Gauge<never>;
  /** RPC calls by method and outcome (`ok`, or the error's data.code). */
  readonly calls: Counter<'method' | 'outcome'>;
  /** RPC call duration by method, seconds. */
  readonly callDuration: Histogram<'method'>;
  /** Budget decisions: `allowed`, `denied`, `degraded`. */
  readonly budgetDecisions: Counter<'decision'>;
  /** Python worker restarts (crash or kill after a cancel that did not yield). */
  readonly workerRestarts: Counter<never>;
  /** Handles discharged at session end, by outcome (`discharged`, `failed`, `timeout`, ...). */
  readonly handlesDischarged: Counter<'outcome'>;
  /** Sessions ended, by reason. */
  readonly sessionsEnded: Counter<'reason'>;
}

export type Logger = PinoLogger;

/** The whole server configuration, validated (config.ts builds it from flags and environment). */
export interface ServerConfig {
  /** @default '127.0.0.1' (`--host`, `TRESTLE_HOST`) */
  readonly host: string;
  /** 0 picks a free port. @default 8765 (`--port`, `TRESTLE_PORT`) */
  readonly port: number;
  /** The URL clients use to reach this replica (told to clients resuming elsewhere). @default `ws://<host>:<port>/rpc` (`TRESTLE_PUBLIC_URL`) */
  readonly publicUrl: string | undefined;
  /** @default `<hostname>-<pid>` (`TRESTLE_REPLICA_ID`) */
  readonly replicaId: string;
  readonly auth: {
    /** HS256 secret (`TRESTLE_JWT_SECRET`, at least 32 bytes). Absent with no JWKS file: a random dev secret. */
    readonly secret: Uint8Array | undefined;
    /** A JWKS JSON file of public keys (`TRESTLE_JWKS_FILE`). */
    readonly jwksFile: string | undefined;
    readonly issuer: string | undefined;
    readonly audience: string | undefined;
  };
  /** Largest inbound WebSocket message. @default 1 MiB (`TRESTLE_MAX_MESSAGE_BYTES`) */
  readonly maxMessageBytes: number;
  /** Redis for shared budgets and the session directory (`REDIS_URL`). */
  readonly redisUrl: string | undefined;
  /** @default 'trestle:' (`TRESTLE_REDIS_PREFIX`) */
  readonly redisPrefix: string;
  /**
   * Tier specs by name (`TRESTLE_TIERS_FILE`, JSON); `null` is an unlimited tier (never denied, still
   * metered), as in `@trestle/budget`'s `TierTable`. @default free, basic, premium, unlimited (see README)
   */
  readonly tiers: Readonly<Record<string, TierSpec | null>>;
  /** A denied call ends the session (reason `budget`). @default false (`TRESTLE_END_ON_BUDGET`) */
  readonly endOnBudgetExhausted: boolean;
  /** How long a disconnected session waits for its client to resume. @default 30_000 (`TRESTLE_RESUME_GRACE_MS`) */
  readonly resumeGraceMs: number;
  /** @default 900_000 (`TRESTLE_IDLE_TIMEOUT_MS`) */
  readonly idleTimeoutMs: number;
  /** How long SIGTERM waits for in-flight calls. @default 10_000 (`TRESTLE_DRAIN_MS`) */
  readonly drainMs: number;
  readonly python: {
    /** The interpreter (`TRESTLE_PYTHON`). @default python-adapter's resolution */
    readonly executable: string | undefined;
    /** Worker processes per tenant. @default 1 (`TRESTLE_WORKERS_PER_TENANT`) */
    readonly workersPerTenant: number;
    /** Module allowlist; `null` = every module (`TRESTLE_ALLOW_MODULES`, comma-separated, `*` for all). */
    readonly allowModules: readonly string[] | null;
    /** `resource` limits per worker (`TRESTLE_RLIMIT_AS_BYTES`, `TRESTLE_RLIMIT_CPU_SECONDS`). */
    readonly rlimits: { readonly addressSpaceBytes?: number; readonly cpuSeconds?: number };
    /** Default and maximum per-call deadline. @default 30_000 (`TRESTLE_CALL_TIMEOUT_MS`) */
    readonly callTimeoutMs: number;
    /** Extra directories on the workers' PYTHONPATH (`TRESTLE_PYTHONPATH`). */
    readonly pythonPath: readonly string[];
  };
  /** A tenant's Python stops after this long without sessions. @default 60_000 (`TRESTLE_TENANT_IDLE_MS`) */
  readonly tenantIdleMs: number;
  /** @default 10_000 (`TRESTLE_MAX_SESSIONS`) */
  readonly maxSessions: number;
  /** Session directory lease (Redis). @default 15_000 (`TRESTLE_DIRECTORY_LEASE_MS`) */
  readonly directoryLeaseMs: number;
  /** Unix socket of the admin (kernel) protocol (`TRESTLE_ADMIN_SOCKET`). @default none */
  readonly adminSocket: string | undefined;
  /** @default 'info' (`TRESTLE_LOG_LEVEL`) */
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/** What the domain gets to build itself. */
export interface AppDependencies {
  readonly config: ServerConfig;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** The URL clients reach this replica at (`publicUrl` or the listening address). */
  readonly publicUrl: string;
}

/** The domain: sessions, tenants, Python, metering, streams, admin. Built by `createApp` (app.ts). */
export interface App {
  readonly methods: MethodTable;
  /** A connection was authenticated and opened. */
  onConnection(connection: RpcConnection): void;
  /** The connection closed (the resume grace starts for its session). */
  onDisconnect(connection: RpcConnection): void;
  /** For `/readyz`. Never rejects. */
  ready(): Promise<{ readonly ok: boolean; readonly detail: Record<string, unknown> }>;
  /**
   * SIGTERM: refuse new calls (`SERVER_DRAINING`), wait for in-flight ones up to `deadlineMs`, end every
   * session with reason `shutdown` (each report logged), close Pythons, Redis and the admin socket.
   */
  shutdown(deadlineMs: number): Promise<void>;
}
