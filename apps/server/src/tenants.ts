/**
 * Tenants: each has its own `createPython()` (its own worker processes and its own ref registry, so it
 * never sees another tenant's objects), started lazily on first use and closed when the tenant has had
 * no session for `tenantIdleMs`.
 *
 * Policy (`allowModules`, `tier`) starts from the config and can be changed per tenant at run time
 * (admin `APPLY_POLICY`). A module allowlist is a setting of the worker processes, so a change applies
 * to workers started afterwards: the tenant's Python is restarted at once when the tenant has no
 * session, else the change is pending and applies at the tenant's next start (after its last session
 * ended and the Python closed). The server's own check (`moduleAllowed`, used by `py.dir`) applies the
 * new list at once.
 */
import { delimiter } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Clock } from '@trestle/bridge';
import { createPython, type Python, type PythonOptions } from '@trestle/python-adapter';
import type { Ref, SessionManagerEventMap } from '@trestle/ref-registry';
import type { Logger, Metrics, ServerConfig } from './contracts';

/** The server's helper module in every tenant's workers (never callable by clients). */
export const SUPPORT_MODULE = 'trestle_server_support';
/** The directory holding it (`apps/server/python`: one level above both `src/` and `dist/`). */
export const SUPPORT_DIR = fileURLToPath(new URL('../python', import.meta.url));

/** A tenant's policy. `tier` overrides the tier of the tenant's tokens when set. */
export interface TenantPolicy {
  readonly allowModules: readonly string[] | null;
  readonly tier: string | undefined;
}

/** What `applyPolicy` did. */
export interface PolicyChange {
  readonly allowModules?: readonly string[] | null;
  readonly tier?: string;
}

export type RefSessionReleased = SessionManagerEventMap['session-released'];

/** One tenant. */
export class Tenant {
  readonly name: string;
  policy: TenantPolicy;
  /** Server sessions of this tenant (open or in their resume grace). */
  readonly sessions = new Set<string>();
  /** `module.type` → whether the type has a callable `close` (see resources.ts). */
  readonly closableTypes = new Map<string, Promise<boolean>>();
  /** Whether `policy.allowModules` differs from what the running workers were started with. */
  restartPending = false;
  /** @internal */
  python: Python | undefined;
  /** @internal */
  closing: Promise<void> | undefined;
  /** @internal */
  idleTimer: unknown;
  /** @internal worker restarts already counted in the metrics */
  restartsSeen = 0;

  constructor(name: string, policy: TenantPolicy) {
    this.name = name;
    this.policy = policy;
  }

  /** Whether `module` (or a dotted parent) is allowed by the current policy. */
  moduleAllowed(module: string): boolean {
    const allow = this.policy.allowModules;
    if (allow === null) return true;
    let name = module;
    for (;;) {
      if (allow.includes(name)) return true;
      const dot = name.lastIndexOf('.');
      if (dot === -1) return false;
      name = name.slice(0, dot);
    }
  }
}

/** Options of {@link Tenants}. */
export interface TenantsOptions {
  readonly config: ServerConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** A ref session of this tenant was released (by the server, or by the adapter: a worker died). */
  readonly onRefSessionReleased?: (tenant: Tenant, event: RefSessionReleased) => void;
  /** A ref of this tenant was evicted (TTL, LRU): the object is gone in Python. */
  readonly onRefEvicted?: (tenant: Tenant, ref: Ref) => void;
  /** Extra options of every tenant's `createPython` (tests). */
  readonly pythonOptions?: Partial<PythonOptions>;
}

/** Every tenant of this process. */
export class Tenants {
  readonly #options: TenantsOptions;
  readonly #tenants = new Map<string, Tenant>();
  #closed = false;

  constructor(options: TenantsOptions) {
    this.#options = options;
  }

  /** The tenant record (created with the config's policy on first use). */
  get(name: string): Tenant {
    let tenant = this.#tenants.get(name);
    if (tenant === undefined) {
      tenant = new Tenant(name, {
        allowModules: this.#options.config.python.allowModules,
        tier: undefined,
      });
      this.#tenants.set(name, tenant);
    }
    return tenant;
  }

  /** The tenant record if it exists. */
  peek(name: string): Tenant | undefined {
    return this.#tenants.get(name);
  }

  all(): Tenant[] {
    return [...this.#tenants.values()];
  }

  /** Tenants whose Python is running. */
  get running(): number {
    let n = 0;
    for (const tenant of this.#tenants.values()) if (tenant.python !== undefined) n++;
    return n;
  }

  /**
   * The tenant's Python (started on first use).
   * @throws Error when the tenants are closed.
   */
  python(tenant: Tenant): Python {
    if (this.#closed) throw Object.assign(new Error('the server is shutting down'), { code: 'PY_CLOSED' });
    if (tenant.python !== undefined) return tenant.python;
    const python = this.#create(tenant);
    tenant.python = python;
    tenant.restartPending = false;
    tenant.closableTypes.clear();
    return python;
  }

  /** A session of `tenant` started (or was resumed): the idle close is off. */
  attach(tenant: Tenant, sessionId: string): void {
    tenant.sessions.add(sessionId);
    if (tenant.idleTimer !== undefined) {
      this.#options.clock.clearTimeout(tenant.idleTimer);
      tenant.idleTimer = undefined;
    }
  }

  /** A session of `tenant` ended. With none left, a pending policy restarts the Python now, else the idle close is armed. */
  detach(tenant: Tenant, sessionId: string): void {
    tenant.sessions.delete(sessionId);
    if (tenant.sessions.size > 0 || this.#closed) return;
    if (tenant.restartPending) {
      void this.#stop(tenant, 'policy changed');
      return;
    }
    if (tenant.python === undefined || tenant.idleTimer !== undefined) return;
    tenant.idleTimer = this.#options.clock.setTimeout(() => {
      tenant.idleTimer = undefined;
      if (tenant.sessions.size === 0) void this.#stop(tenant, 'idle');
    }, this.#options.config.tenantIdleMs);
  }

  /**
   * Changes a tenant's policy. A new module list restarts the tenant's Python now when it has no
   * session (`restarted`), else it applies at the next start (`pending`).
   */
  async applyPolicy(
    name: string,
    change: PolicyChange,
  ): Promise<{ readonly restarted: boolean; readonly pending: boolean }> {
    const tenant = this.get(name);
    tenant.policy = {
      allowModules: change.allowModules !== undefined ? change.allowModules : tenant.policy.allowModules,
      tier: change.tier ?? tenant.policy.tier,
    };
    if (change.allowModules === undefined || tenant.python === undefined)
      return { restarted: false, pending: false };
    if (tenant.sessions.size === 0) {
      await this.#stop(tenant, 'policy changed');
      return { restarted: true, pending: false };
    }
    tenant.restartPending = true;
    return { restarted: false, pending: true };
  }

  /** Closes every tenant's Python (queued calls fail, in-flight ones get `graceMs`). Idempotent. */
  async close(graceMs = 5_000): Promise<void> {
    this.#closed = true;
    await Promise.all(this.all().map((tenant) => this.#stop(tenant, 'shutdown', graceMs)));
  }

  /** Pids of every running worker of every tenant (for tests and status). */
  workerPids(): number[] {
    const pids: number[] = [];
    for (const tenant of this.#tenants.values()) {
      for (const worker of tenant.python?.stats().workers ?? []) {
        if (worker.pid !== undefined) pids.push(worker.pid);
      }
    }
    return pids;
  }

  async #stop(tenant: Tenant, why: string, graceMs = 5_000): Promise<void> {
    if (tenant.idleTimer !== undefined) {
      this.#options.clock.clearTimeout(tenant.idleTimer);
      tenant.idleTimer = undefined;
    }
    const python = tenant.python;
    if (python === undefined) {
      await tenant.closing;
      return;
    }
    tenant.python = undefined;
    tenant.closableTypes.clear();
    tenant.restartsSeen = 0;
    this.#options.logger.info({ tenant: tenant.name, why }, 'closing tenant python');
    const closing = python.close(graceMs).catch((error: unknown) => {
      this.#options.logger.warn(
        { tenant: tenant.name, err: error instanceof Error ? error.message : String(error) },
        'tenant python did not close cleanly',
      );
    });
    tenant.closing = closing;
    await closing;
  }

  #create(tenant: Tenant): Python {
    const { config, logger, metrics } = this.#options;
    const log = logger.child({ tenant: tenant.name, component: 'python' });
    const allow = tenant.policy.allowModules;
    const rlimits = config.python.rlimits;
    const hasRlimits = rlimits.addressSpaceBytes !== undefined || rlimits.cpuSeconds !== undefined;
    const syncRestarts = () => {
      const python = tenant.python;
      if (python === undefined) return;
      let total = 0;
      for (const worker of python.stats().workers) total += worker.restarts;
      if (total > tenant.restartsSeen) {
        metrics.workerRestarts.inc(total - tenant.restartsSeen);
        tenant.restartsSeen = total;
      }
    };
    const python = createPython({
      ...(config.python.executable !== undefined ? { python: config.python.executable } : {}),
      size: config.python.workersPerTenant,
      timeoutMs: config.python.callTimeoutMs,
      ...(allow !== null ? { allowModules: [...allow, SUPPORT_MODULE] } : {}),
      ...(hasRlimits ? { rlimits } : {}),
      env: { PYTHONPATH: [SUPPORT_DIR, ...config.python.pythonPath].join(delimiter) },
      logger: {
        debug: (message, fields) => log.debug(fields ?? {}, message),
        info: (message, fields) => log.info(fields ?? {}, message),
        warn: (message, fields) => {
          log.warn(fields ?? {}, message);
          syncRestarts();
        },
        error: (message, fields) => {
          log.error(fields ?? {}, message);
          syncRestarts();
        },
      },
      onOutput: (entry) =>
        log.info({ worker: entry.workerId, pid: entry.pid, stream: entry.stream }, entry.line),
      ...this.#options.pythonOptions,
    });
    const onReleased = this.#options.onRefSessionReleased;
    if (onReleased) python.sessions.on('session-released', (event) => onReleased(tenant, event));
    const onEvicted = this.#options.onRefEvicted;
    if (onEvicted) python.sessions.on('ref-evicted', (event) => onEvicted(tenant, event.ref));
    return python;
  }
}
