/**
 * The server's Prometheus metrics on their own prom-client `Registry` (never the global one), so two
 * servers in one process (tests, embedding) do not mix their series.
 *
 * | metric | type | labels |
 * | --- | --- | --- |
 * | `trestle_sessions` | gauge | |
 * | `trestle_connections` | gauge | |
 * | `trestle_calls_total` | counter | `method`, `outcome` (`ok` or the error's `data.code`) |
 * | `trestle_call_duration_seconds` | histogram | `method` |
 * | `trestle_budget_decisions_total` | counter | `decision` (`allowed`, `denied`, `degraded`) |
 * | `trestle_worker_restarts_total` | counter | |
 * | `trestle_handles_discharged_total` | counter | `outcome` |
 * | `trestle_sessions_ended_total` | counter | `reason` |
 *
 * plus prom-client's default process metrics prefixed `trestle_` (`trestle_process_cpu_seconds_total`,
 * `trestle_nodejs_heap_size_used_bytes`, ...).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Metrics } from './contracts';

/** Buckets of `trestle_call_duration_seconds`: 0.5 ms to 30 s. */
export const CALL_DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** Options of {@link createMetrics}. */
export interface CreateMetricsOptions {
  /** Also collect prom-client's default process metrics (prefixed `trestle_`). @default true */
  readonly defaultMetrics?: boolean;
}

/** A fresh registry with every metric of the server. */
export function createMetrics(options: CreateMetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'trestle_' });
  const registers = [registry];
  return Object.freeze({
    registry,
    sessions: new Gauge({ name: 'trestle_sessions', help: 'Open sessions (all tenants).', registers }),
    connections: new Gauge({
      name: 'trestle_connections',
      help: 'Open authenticated WebSocket connections.',
      registers,
    }),
    calls: new Counter({
      name: 'trestle_calls_total',
      help: 'JSON-RPC calls by method and outcome (ok, or the error data.code).',
      labelNames: ['method', 'outcome'] as const,
      registers,
    }),
    callDuration: new Histogram({
      name: 'trestle_call_duration_seconds',
      help: 'JSON-RPC call duration by method, from receipt to reply, in seconds.',
      labelNames: ['method'] as const,
      buckets: [...CALL_DURATION_BUCKETS],
      registers,
    }),
    budgetDecisions: new Counter({
      name: 'trestle_budget_decisions_total',
      help: 'Budget decisions: allowed, denied, degraded.',
      labelNames: ['decision'] as const,
      registers,
    }),
    workerRestarts: new Counter({
      name: 'trestle_worker_restarts_total',
      help: 'Python worker restarts (crash, or kill after a cancel that did not yield).',
      registers,
    }),
    handlesDischarged: new Counter({
      name: 'trestle_handles_discharged_total',
      help: 'Handles discharged at session end, by outcome.',
      labelNames: ['outcome'] as const,
      registers,
    }),
    sessionsEnded: new Counter({
      name: 'trestle_sessions_ended_total',
      help: 'Sessions ended, by reason.',
      labelNames: ['reason'] as const,
      registers,
    }),
  });
}
