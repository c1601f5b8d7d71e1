/**
 * Test support for the domain's tests (not shipped: only tests import it). Fake connections, a
 * config, metrics on a fresh registry, a capturing logger, a manual clock, and the availability
 * checks of python3 and Redis (missing: fail under CI, else skip with a printed reason).
 */
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { z } from 'zod';
import type { App, Logger, Metrics, Principal, RpcConnection, RpcContext, ServerConfig } from './contracts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The server config with test-friendly values. */
export function testConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  const base: ServerConfig = {
    host: '127.0.0.1',
    port: 0,
    publicUrl: undefined,
    replicaId: 'test-replica',
    auth: { secret: undefined, jwksFile: undefined, issuer: undefined, audience: undefined },
    maxMessageBytes: 1024 * 1024,
    redisUrl: undefined,
    redisPrefix: 'trestle:',
    tiers: {
      free: { capacity: 100, refillPerSec: 2, maxDebt: 100 },
      basic: { capacity: 1_000, refillPerSec: 20 },
      premium: { capacity: 10_000, refillPerSec: 200 },
      tiny: { capacity: 2, refillPerSec: 0.5, maxDebt: 10 },
    },
    endOnBudgetExhausted: false,
    resumeGraceMs: 30_000,
    idleTimeoutMs: 900_000,
    drainMs: 10_000,
    python: {
      executable: pythonExecutable(),
      workersPerTenant: 1,
      allowModules: null,
      rlimits: {},
      callTimeoutMs: 30_000,
      pythonPath: [],
    },
    tenantIdleMs: 60_000,
    maxSessions: 10_000,
    directoryLeaseMs: 15_000,
    adminSocket: undefined,
    logLevel: 'silent',
  };
  return {
    ...base,
    ...overrides,
    python: { ...base.python, ...overrides.python },
  };
}

/** The metrics on a fresh registry. */
export function testMetrics(): Metrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    sessions: new Gauge({ name: 'trestle_sessions', help: 'open sessions', registers }),
    connections: new Gauge({ name: 'trestle_connections', help: 'connections', registers }),
    calls: new Counter({
      name: 'trestle_calls_total',
      help: 'calls',
      labelNames: ['method', 'outcome'],
      registers,
    }),
    callDuration: new Histogram({
      name: 'trestle_call_duration_seconds',
      help: 'call duration',
      labelNames: ['method'],
      registers,
    }),
    budgetDecisions: new Counter({
      name: 'trestle_budget_decisions_total',
      help: 'budget decisions',
      labelNames: ['decision'],
      registers,
    }),
    workerRestarts: new Counter({ name: 'trestle_worker_restarts_total', help: 'restarts', registers }),
    handlesDischarged: new Counter({
      name: 'trestle_handles_discharged_total',
      help: 'handles discharged',
      labelNames: ['outcome'],
      registers,
    }),
    sessionsEnded: new Counter({
      name: 'trestle_sessions_ended_total',
      help: 'sessions ended',
      labelNames: ['reason'],
      registers,
    }),
  };
}

/** A metric's value for some labels (0 when absent). */
export async function metricValue(
  metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> },
  labels: Record<string, string> = {},
): Promise<number> {
  const { values } = await metric.get();
  const found = values.find((entry) =>
    Object.entries(labels).every(([key, value]) => String(entry.labels[key]) === value),
  );
  return found?.value ?? 0;
}

/** A pino logger whose JSON lines are kept in `lines`. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

let connectionCounter = 0;

/** A fake authenticated connection that records its notifications. */
export class FakeConnection implements RpcConnection {
  readonly id: string;
  readonly principal: Principal;
  readonly remoteAddress = '127.0.0.1';
  readonly notifications: { method: string; params: Record<string, unknown> }[] = [];
  bufferedAmount = 0;
  readonly #controller = new AbortController();
  #waiters: (() => void)[] = [];

  constructor(tenant: string, tier = 'free') {
    this.id = `c${++connectionCounter}`;
    this.principal = { tenant, tier, expiresAt: Math.floor(Date.now() / 1000) + 3600 };
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  notify(method: string, params: unknown): boolean {
    if (this.#controller.signal.aborted) return false;
    this.notifications.push({ method, params: params as Record<string, unknown> });
    for (const waiter of this.#waiters.splice(0)) waiter();
    return true;
  }

  close(): void {
    this.#controller.abort();
  }

  /** Notifications of one method. */
  of(method: string): Record<string, unknown>[] {
    return this.notifications.filter((entry) => entry.method === method).map((entry) => entry.params);
  }

  /** Resolves when `predicate` holds over the notifications (checked at each new one). */
  async until(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error('timed out waiting for notifications');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/**
 * Calls a method as the protocol layer does: params validated by the method's schema (a failure
 * throws the zod error), then the handler with a context.
 */
export async function call<T = Record<string, unknown>>(
  app: App,
  connection: RpcConnection,
  method: string,
  params: unknown = {},
  signal?: AbortSignal,
): Promise<T> {
  const spec = app.methods[method];
  if (spec === undefined) throw new Error(`no method ${method}`);
  const parsed = (spec.params as z.ZodType).parse(params) as never;
  const context: RpcContext = {
    connection,
    requestId: Math.floor(Math.random() * 1e9),
    signal: signal ? AbortSignal.any([signal, connection.signal]) : connection.signal,
  };
  return (await spec.handler(parsed, context)) as T;
}

/** Calls a method that must fail; returns the error (code, data). */
export async function callError(
  app: App,
  connection: RpcConnection,
  method: string,
  params: unknown = {},
): Promise<{ code: string; message: string; data: Record<string, unknown> | undefined; rpcCode: number }> {
  try {
    await call(app, connection, method, params);
  } catch (error) {
    return error as {
      code: string;
      message: string;
      data: Record<string, unknown> | undefined;
      rpcCode: number;
    };
  }
  throw new Error(`${method} did not fail`);
}

export { type ManualClock, manualClock } from '@trestle/ws-bridge/testing';

/** Lets pending promise jobs and I/O callbacks run. */
export const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Waits (really) until `predicate` holds. */
export async function eventually(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

let interpreter: string | undefined;

/**
 * The interpreter's real path (`sys.executable`): tests spawn it directly, so a version manager's
 * shim (pyenv: ~0.4 s per start) does not slow every worker start. `undefined` when it does not run.
 */
export function pythonExecutable(): string | undefined {
  if (interpreter !== undefined) return interpreter || undefined;
  const command = process.env.TRESTLE_PYTHON ?? 'python3';
  const result = spawnSync(command, ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
  interpreter = result.status === 0 ? result.stdout.trim() || command : '';
  return interpreter || undefined;
}

/** Whether python3 runs; missing under CI throws, else a reason is printed. */
export function pythonAvailable(): boolean {
  const ok = pythonExecutable() !== undefined;
  if (!ok) unavailable(`python3 (${process.env.TRESTLE_PYTHON ?? 'python3'}) is not available`);
  return ok;
}

/** Whether Redis answers at `REDIS_URL`; missing under CI throws, else a reason is printed. */
export async function redisAvailable(): Promise<boolean> {
  const client = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: 1_000,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const ok = (await client.ping()) === 'PONG';
    return ok;
  } catch (error) {
    unavailable(
      `Redis is not available at ${REDIS_URL}: ${error instanceof Error ? error.message : String(error)}`,
    );
    return false;
  } finally {
    client.disconnect();
  }
}

function unavailable(reason: string): void {
  if (process.env.CI) throw new Error(`${reason} (required under CI)`);
  console.warn(`skipping: ${reason}`);
}

/** Whether a process is alive. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
