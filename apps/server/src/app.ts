/**
 * The domain of the server: `createApp(deps)` builds sessions, tenants (Python), metering, streams,
 * the session directory and the admin socket, and returns the method table the protocol layer serves.
 */

import { type Clock, systemClock } from '@trestle/bridge';
import { type Budget, createBudget } from '@trestle/budget';
import { redisStore } from '@trestle/budget/redis';
import type { KernelServer } from '@trestle/kernel-client/server';
import { createPython, type PythonOptions } from '@trestle/python-adapter';
import { type AdminContext, startAdmin } from './admin';
import type { App, AppDependencies, MethodSpec, MethodTable, RpcConnection, RpcContext } from './contracts';
import { RpcMethodError } from './contracts';
import { memoryDirectory, type SessionDirectory } from './directory';
import { redisDirectory } from './directory-redis';
import { toRpcError } from './domain-errors';
import { followSignal } from './follow-signal';
import { infoMethods } from './methods/info';
import { pyMethods } from './methods/py';
import { sessionMethods } from './methods/session';
import type { Domain } from './methods/shared';
import { streamMethods } from './methods/stream';
import { Resources } from './resources';
import { type SerializedEndReport, SessionService } from './sessions';
import { Streams } from './streams';
import { Tenants } from './tenants';

/** Options of {@link createApp} beyond its dependencies (tests, embedding). */
export interface AppOptions {
  /** Time and timers of sessions (idle sweep, resume grace), the budget, the directory renewals. @default systemClock */
  readonly clock?: Clock;
  /** Extra options of every tenant's `createPython` (tests). */
  readonly pythonOptions?: Partial<PythonOptions>;
  /** A session directory to use instead of the one the config selects (not closed by the app). */
  readonly directory?: SessionDirectory;
  /** A budget to use instead of the one the config selects (not disposed by the app). */
  readonly budget?: Budget;
  /** The admin socket path, overriding `config.adminSocket`. */
  readonly adminSocket?: string;
  /** Per-handle discharge deadline at a session's end. @default 5_000 */
  readonly drainTimeoutMs?: number;
  /** How long a session's end waits for its calls in flight. @default 5_000 */
  readonly endGraceMs?: number;
}

/** The app, with its parts exposed for tests and the admin. */
export interface ServerApp extends App {
  readonly sessions: SessionService;
  readonly tenants: Tenants;
  readonly streams: Streams;
  readonly budget: Budget;
  readonly directory: SessionDirectory;
  /** Resolves with the admin server once it listens (`undefined` without an admin socket); never rejects. */
  readonly admin: Promise<KernelServer | undefined>;
  /** Whether `shutdown` has started. */
  readonly draining: boolean;
  /** Calls running now. */
  readonly inflight: number;
  /** Calls handled since the start. */
  readonly calls: number;
}

interface Call {
  readonly controller: AbortController;
}

/**
 * Builds the domain. Starts nothing heavy: a tenant's Python starts with its first session; the admin
 * socket (when configured) starts listening in the background (`app.admin`).
 */
export function createApp(deps: AppDependencies, options: AppOptions = {}): ServerApp {
  const { config, metrics, logger } = deps;
  const clock = options.clock ?? systemClock;
  const startedAt = clock.now();
  const replica = config.replicaId;

  // With Redis, budgets live in Redis (replicas share them); the store connects now, in the background.
  const store =
    config.redisUrl && !options.budget
      ? redisStore({ url: config.redisUrl, prefix: `${config.redisPrefix}budget:`, timeoutMs: 200 })
      : undefined;
  const budgetReady = store
    ? store.ready(5_000).then(
        () => true,
        (error: unknown) => {
          logger.warn(
            { err: error instanceof Error ? error.message : String(error) },
            "budget store: redis not ready (each tier's onStoreError policy decides its calls)",
          );
          return false;
        },
      )
    : Promise.resolve(true);
  const budget = options.budget ?? createBudget({ tiers: config.tiers, clock, ...(store ? { store } : {}) });
  const directory =
    options.directory ??
    (config.redisUrl
      ? redisDirectory({
          redisUrl: config.redisUrl,
          prefix: config.redisPrefix,
          replica,
          publicUrl: deps.publicUrl,
          leaseMs: config.directoryLeaseMs,
          clock,
          logger,
        })
      : memoryDirectory({ replica, url: deps.publicUrl }));

  let sessions: SessionService | undefined;
  const tenants = new Tenants({
    config,
    logger,
    metrics,
    clock,
    onRefSessionReleased: (tenant, event) => sessions?.refSessionReleased(tenant, event),
    onRefEvicted: (tenant, ref) => sessions?.refEvicted(tenant, ref),
    ...(options.pythonOptions ? { pythonOptions: options.pythonOptions } : {}),
  });
  sessions = new SessionService({
    config,
    metrics,
    logger,
    clock,
    budget,
    tenants,
    directory,
    replica,
    ...(options.drainTimeoutMs !== undefined ? { drainTimeoutMs: options.drainTimeoutMs } : {}),
    ...(options.endGraceMs !== undefined ? { endGraceMs: options.endGraceMs } : {}),
  });
  const resources = new Resources({ logger, metrics, checkTimeoutMs: config.python.callTimeoutMs });
  const streams = new Streams({
    sessions,
    resources,
    logger,
    clock,
    callTimeoutMs: config.python.callTimeoutMs,
  });
  const domain: Domain = { config, logger, clock, budget, sessions, tenants, resources, streams };

  // In-flight calls: counted for the drain, abortable at its deadline.
  const inflight = new Set<Call>();
  let idle: (() => void) | undefined;
  let calls = 0;
  let draining = false;

  const guard = (name: string, spec: MethodSpec<never>): MethodSpec<never> => ({
    params: spec.params,
    handler: async (params: never, context: RpcContext) => {
      if (draining) throw new RpcMethodError('SERVER_DRAINING', 'the server is shutting down');
      calls++;
      const call: Call = { controller: new AbortController() };
      inflight.add(call);
      const unfollow = followSignal(call.controller, context.signal);
      const signal = call.controller.signal;
      try {
        return await spec.handler(params, { ...context, signal });
      } catch (error) {
        const { error: rpc, internal } = toRpcError(error);
        if (internal) logger.error({ err: error, method: name }, 'method failed');
        throw rpc;
      } finally {
        unfollow();
        inflight.delete(call);
        if (inflight.size === 0) idle?.();
      }
    },
  });

  const table: Record<string, MethodSpec<never>> = {};
  for (const group of [
    sessionMethods(domain),
    pyMethods(domain),
    streamMethods(domain),
    infoMethods(domain),
  ]) {
    for (const [name, spec] of Object.entries(group)) table[name] = guard(name, spec);
  }
  const methods: MethodTable = Object.freeze(table);

  const adminContext: AdminContext = {
    replica,
    sessions,
    tenants,
    tiers: () => [...budget.tiers.keys()],
    status: () => ({ calls, draining, uptimeMs: clock.now() - startedAt }),
    logger,
  };
  const adminSocket = options.adminSocket ?? config.adminSocket;
  const admin: Promise<KernelServer | undefined> =
    adminSocket === undefined
      ? Promise.resolve(undefined)
      : startAdmin(adminSocket, adminContext).catch((error: unknown) => {
          logger.error(
            { socket: adminSocket, err: error instanceof Error ? error.message : String(error) },
            'admin socket failed to start',
          );
          return undefined;
        });

  // Readiness: Python must start (checked once, then cached while it passes), Redis must answer.
  let pythonCheck: { ok: boolean; at: number; detail: Record<string, unknown> } | undefined;
  let pythonChecking: Promise<void> | undefined;
  const checkPython = async (): Promise<void> => {
    const python = createPython({
      ...(config.python.executable !== undefined ? { python: config.python.executable } : {}),
      logger: { info: () => {}, warn: () => {}, error: () => {} },
      onOutput: () => {},
    });
    try {
      const report = await python.doctor([]);
      pythonCheck = {
        ok: report.ok && report.error === undefined,
        at: clock.now(),
        detail: {
          ok: report.ok,
          interpreter: report.interpreter.command,
          ...(report.version ? { version: report.version } : {}),
          ...(report.error ? { error: report.error } : {}),
        },
      };
    } finally {
      await python.close(1_000).catch(() => undefined);
    }
  };

  let shuttingDown: Promise<void> | undefined;

  const app: ServerApp = {
    methods,
    sessions,
    tenants,
    streams,
    budget,
    directory,
    admin,
    get draining() {
      return draining;
    },
    get inflight() {
      return inflight.size;
    },
    get calls() {
      return calls;
    },

    onConnection(connection: RpcConnection) {
      sessions?.connected(connection);
    },

    onDisconnect(connection: RpcConnection) {
      sessions?.disconnected(connection);
    },

    async ready() {
      try {
        const detail: Record<string, unknown> = {
          replica,
          draining,
          sessions: sessions?.size ?? 0,
          tenants: tenants.running,
        };
        if (draining) return { ok: false, detail };
        if (pythonCheck === undefined || (!pythonCheck.ok && clock.now() - pythonCheck.at > 5_000)) {
          pythonChecking ??= checkPython().finally(() => {
            pythonChecking = undefined;
          });
          await pythonChecking;
        }
        detail.python = pythonCheck?.detail ?? { ok: false };
        let ok = pythonCheck?.ok === true;
        if (config.redisUrl) {
          const [redis, budgetStore] = await Promise.all([directory.ping(), budgetReady]);
          detail.redis = redis ? 'ok' : 'unavailable';
          detail.budgetStore = budgetStore ? 'ok' : 'unavailable';
          ok &&= redis && budgetStore;
        }
        return { ok, detail };
      } catch (error) {
        return { ok: false, detail: { error: error instanceof Error ? error.message : String(error) } };
      }
    },

    shutdown(deadlineMs: number) {
      shuttingDown ??= (async () => {
        draining = true;
        logger.info({ inflight: inflight.size, deadlineMs }, 'draining');
        if (inflight.size > 0) {
          const drained = await new Promise<boolean>((resolve) => {
            const timer = clock.setTimeout(() => resolve(false), Math.max(0, deadlineMs));
            idle = () => {
              clock.clearTimeout(timer);
              resolve(true);
            };
          });
          idle = undefined;
          if (!drained) {
            logger.warn({ inflight: inflight.size }, 'drain deadline passed: aborting the calls in flight');
            for (const call of inflight) call.controller.abort(new Error('the server is shutting down'));
          }
        }
        await streams.closeAll();
        const reports: SerializedEndReport[] = await (sessions as SessionService).shutdown();
        logger.info({ sessions: reports.length }, 'every session ended');
        await tenants.close(Math.min(5_000, Math.max(0, deadlineMs)));
        if (!options.directory) await directory.close();
        if (!options.budget) await budget.dispose().catch(() => undefined);
        const server = await admin;
        await server?.close();
        logger.info('domain stopped');
      })();
      return shuttingDown;
    },
  };
  return app;
}
