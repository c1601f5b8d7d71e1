/**
 * `@trestle/ws-bridge/prometheus`: the bridge's {@link Metrics} on `prom-client` (an optional peer
 * dependency: install it yourself).
 */

import type { OpenMetricsContentType, PrometheusContentType, Registry } from 'prom-client';
import { Counter, Gauge, register as globalRegistry, Histogram } from 'prom-client';
import type { FailureClass, Metrics } from './types';

/** A prom-client registry of either exposition format. */
export type PrometheusRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>;

/** Options of {@link prometheusMetrics}. */
export interface PrometheusMetricsOptions {
  /** Where the metrics are registered. @default prom-client's global `register` */
  readonly registry?: PrometheusRegistry;
  /** Prefix of every metric name. @default 'trestle_ws_' */
  readonly prefix?: string;
  /**
   * Constant labels on every series (e.g. `{ bridge: 'orders' }`): how two bridges share a registry
   * without mixing their series. `class` is reserved (`disconnects_total`).
   * @default {}
   */
  readonly labels?: Readonly<Record<string, string>>;
  /** Buckets of `connect_seconds`, in seconds. @default [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] */
  readonly connectBuckets?: readonly number[];
}

/** The bridge's metrics, all methods present, plus the registry they are in. */
export interface PrometheusMetrics extends Metrics {
  incReconnectAttempts(): void;
  observeConnectMs(ms: number): void;
  readonly registry: PrometheusRegistry;
}

const DEFAULT_BUCKETS: readonly number[] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const METRIC_PREFIX = /^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/;

/**
 * Prometheus metrics for a bridge. Series (with `prefix` `trestle_ws_`):
 *
 * | metric | type | meaning |
 * | --- | --- | --- |
 * | `trestle_ws_connections_total` | counter | connections opened |
 * | `trestle_ws_disconnects_total{class}` | counter | connections lost, `class` = `transient` / `permanent` |
 * | `trestle_ws_token_refreshes_total` | counter | token refresh cycles started |
 * | `trestle_ws_reconnect_attempts_total` | counter | reconnect attempts |
 * | `trestle_ws_connection_status` | gauge | 1 connected, 0 not |
 * | `trestle_ws_connect_seconds` | histogram | time to open a connection (dial to open) |
 *
 * Safe to call more than once on one registry: metrics already registered under these names are reused
 * (so a second bridge with the same `labels` adds to the same series, and the gauge shows whichever
 * bridge wrote last: give each bridge its own `labels`, e.g. `{ bridge: 'orders' }`).
 *
 * @throws {TypeError} when `prefix` or a label name is invalid, a label is named `class`, or a metric of
 *   that name is already registered with another type or other label names.
 * @example
 * ```ts
 * import { Registry } from 'prom-client';
 * import { prometheusMetrics } from '@trestle/ws-bridge/prometheus';
 *
 * const registry = new Registry();
 * const bridge = createBridge({ ..., metrics: prometheusMetrics({ registry, labels: { bridge: 'orders' } }) });
 * // GET /metrics: res.end(await registry.metrics())
 * ```
 */
export function prometheusMetrics(options: PrometheusMetricsOptions = {}): PrometheusMetrics {
  const registry = options.registry ?? globalRegistry;
  const prefix = options.prefix ?? 'trestle_ws_';
  if (!METRIC_PREFIX.test(prefix)) {
    throw new TypeError(`[ws-bridge] prometheusMetrics: invalid metric prefix ${JSON.stringify(prefix)}`);
  }
  const labels: Record<string, string> = { ...options.labels };
  const labelNames = Object.keys(labels);
  for (const name of labelNames) {
    if (!LABEL_NAME.test(name) || name.startsWith('__') || name === 'class') {
      throw new TypeError(
        `[ws-bridge] prometheusMetrics: invalid or reserved label name ${JSON.stringify(name)}`,
      );
    }
    if (typeof labels[name] !== 'string') {
      throw new TypeError(`[ws-bridge] prometheusMetrics: label ${JSON.stringify(name)} must be a string`);
    }
  }
  const registers = [registry];

  const existing = (name: string, kind: string, names: readonly string[]): unknown => {
    const metric = registry.getSingleMetric(name);
    if (metric === undefined) return undefined;
    if (!isKind(metric, kind)) {
      throw new TypeError(
        `[ws-bridge] prometheusMetrics: ${name} is already registered, and is not a ${kind}`,
      );
    }
    const registeredNames = (metric as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
    const same =
      registeredNames.length === names.length &&
      [...registeredNames].sort().join() === [...names].sort().join();
    if (!same) {
      throw new TypeError(
        `[ws-bridge] prometheusMetrics: ${name} is already registered with labels [${registeredNames.join(', ')}], not [${names.join(', ')}]`,
      );
    }
    return metric;
  };

  const counter = (suffix: string, help: string, names: readonly string[] = labelNames): Counter<string> => {
    const name = `${prefix}${suffix}`;
    return (
      (existing(name, 'counter', names) as Counter<string> | undefined) ??
      new Counter({ name, help, labelNames: names, registers })
    );
  };

  const connections = counter('connections_total', 'WebSocket connections opened by the bridge.');
  const disconnects = counter(
    'disconnects_total',
    'WebSocket connections lost, by failure class (transient: retried; permanent: the bridge stopped).',
    [...labelNames, 'class'],
  );
  const tokenRefreshes = counter('token_refreshes_total', 'Token refresh cycles started by the bridge.');
  const reconnectAttempts = counter('reconnect_attempts_total', 'Reconnect attempts made by the bridge.');

  const statusName = `${prefix}connection_status`;
  const status =
    (existing(statusName, 'gauge', labelNames) as Gauge<string> | undefined) ??
    new Gauge({
      name: statusName,
      help: 'Whether the bridge is connected (1) or not (0).',
      labelNames,
      registers,
    });

  const connectName = `${prefix}connect_seconds`;
  const connectSeconds =
    (existing(connectName, 'histogram', labelNames) as Histogram<string> | undefined) ??
    new Histogram({
      name: connectName,
      help: 'Time to open a WebSocket connection, from dial to open, in seconds.',
      labelNames,
      buckets: [...(options.connectBuckets ?? DEFAULT_BUCKETS)],
      registers,
    });

  // Make every series visible at 0 from the start (an increment by 0 never resets a reused series).
  connections.inc(labels, 0);
  disconnects.inc({ ...labels, class: 'transient' }, 0);
  disconnects.inc({ ...labels, class: 'permanent' }, 0);
  tokenRefreshes.inc(labels, 0);
  reconnectAttempts.inc(labels, 0);
  status.inc(labels, 0);

  return {
    registry,
    incConnections: () => connections.inc(labels),
    incDisconnects: (failureClass: FailureClass) => disconnects.inc({ ...labels, class: failureClass }),
    incTokenRefreshes: () => tokenRefreshes.inc(labels),
    incReconnectAttempts: () => reconnectAttempts.inc(labels),
    setConnectionStatus: (value: 0 | 1) => status.set(labels, value),
    observeConnectMs: (ms: number) => {
      if (Number.isFinite(ms) && ms >= 0) connectSeconds.observe(labels, ms / 1000);
    },
  };
}

function isKind(metric: unknown, kind: string): boolean {
  if (kind === 'counter') return metric instanceof Counter;
  if (kind === 'gauge') return metric instanceof Gauge;
  return metric instanceof Histogram;
}
