import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { prometheusMetrics } from './prometheus';

/** The value of one sample line of the text exposition (`name{labels} value`), or undefined. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    if (line.slice(0, at) === series) return Number(line.slice(at + 1));
  }
  return undefined;
}

describe('prometheusMetrics', () => {
  it('drives every Metrics method and exposes the values', async () => {
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry });
    metrics.incConnections();
    metrics.incConnections();
    metrics.incDisconnects('transient');
    metrics.incDisconnects('transient');
    metrics.incDisconnects('permanent');
    metrics.incTokenRefreshes();
    metrics.incReconnectAttempts();
    metrics.incReconnectAttempts();
    metrics.incReconnectAttempts();
    metrics.setConnectionStatus(1);
    metrics.observeConnectMs(42);
    metrics.observeConnectMs(1500);
    const text = await registry.metrics();

    expect(sample(text, 'trestle_ws_connections_total')).toBe(2);
    expect(sample(text, 'trestle_ws_disconnects_total{class="transient"}')).toBe(2);
    expect(sample(text, 'trestle_ws_disconnects_total{class="permanent"}')).toBe(1);
    expect(sample(text, 'trestle_ws_token_refreshes_total')).toBe(1);
    expect(sample(text, 'trestle_ws_reconnect_attempts_total')).toBe(3);
    expect(sample(text, 'trestle_ws_connection_status')).toBe(1);
    expect(sample(text, 'trestle_ws_connect_seconds_count')).toBe(2);
    expect(sample(text, 'trestle_ws_connect_seconds_sum')).toBeCloseTo(1.542, 6);
    expect(sample(text, 'trestle_ws_connect_seconds_bucket{le="0.05"}')).toBe(1);
    expect(sample(text, 'trestle_ws_connect_seconds_bucket{le="2.5"}')).toBe(2);
    expect(text).toContain('# TYPE trestle_ws_connections_total counter');
    expect(text).toContain('# TYPE trestle_ws_connection_status gauge');
    expect(text).toContain('# TYPE trestle_ws_connect_seconds histogram');

    metrics.setConnectionStatus(0);
    expect(sample(await registry.metrics(), 'trestle_ws_connection_status')).toBe(0);
  });

  it('shows every series at 0 before anything happens', async () => {
    const registry = new Registry();
    prometheusMetrics({ registry, labels: { bridge: 'a' } });
    const text = await registry.metrics();
    for (const series of [
      'trestle_ws_connections_total{bridge="a"}',
      'trestle_ws_disconnects_total{bridge="a",class="transient"}',
      'trestle_ws_disconnects_total{bridge="a",class="permanent"}',
      'trestle_ws_token_refreshes_total{bridge="a"}',
      'trestle_ws_reconnect_attempts_total{bridge="a"}',
      'trestle_ws_connection_status{bridge="a"}',
    ]) {
      expect(sample(text, series), series).toBe(0);
    }
  });

  it('two bridges on one registry: reused metrics, separate series by labels', async () => {
    const registry = new Registry();
    const orders = prometheusMetrics({ registry, labels: { bridge: 'orders' } });
    const prices = prometheusMetrics({ registry, labels: { bridge: 'prices' } });
    orders.incConnections();
    orders.setConnectionStatus(1);
    prices.incConnections();
    prices.incConnections();
    prices.incDisconnects('permanent');
    const text = await registry.metrics();
    expect(sample(text, 'trestle_ws_connections_total{bridge="orders"}')).toBe(1);
    expect(sample(text, 'trestle_ws_connections_total{bridge="prices"}')).toBe(2);
    expect(sample(text, 'trestle_ws_connection_status{bridge="orders"}')).toBe(1);
    expect(sample(text, 'trestle_ws_connection_status{bridge="prices"}')).toBe(0);
    expect(sample(text, 'trestle_ws_disconnects_total{bridge="prices",class="permanent"}')).toBe(1);
    expect(sample(text, 'trestle_ws_disconnects_total{bridge="orders",class="permanent"}')).toBe(0);
    expect(text.match(/^# TYPE trestle_ws_connections_total/gm)).toHaveLength(1);
  });

  it('creating it twice with the same labels adds to the same series and resets nothing', async () => {
    const registry = new Registry();
    const first = prometheusMetrics({ registry });
    first.incConnections();
    first.setConnectionStatus(1);
    const second = prometheusMetrics({ registry });
    second.incConnections();
    const text = await registry.metrics();
    expect(sample(text, 'trestle_ws_connections_total')).toBe(2);
    expect(sample(text, 'trestle_ws_connection_status')).toBe(1);
  });

  it('honours prefix and registry', async () => {
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry, prefix: 'agent_' });
    expect(metrics.registry).toBe(registry);
    metrics.incTokenRefreshes();
    const text = await registry.metrics();
    expect(sample(text, 'agent_token_refreshes_total')).toBe(1);
    expect(text).not.toContain('trestle_ws_');
  });

  it('refuses conflicting registrations and bad names', () => {
    const registry = new Registry();
    prometheusMetrics({ registry, labels: { bridge: 'a' } });
    expect(() => prometheusMetrics({ registry })).toThrow(/already registered with labels/);
    expect(() => prometheusMetrics({ registry, labels: { class: 'x' } })).toThrow(TypeError);
    expect(() => prometheusMetrics({ registry, labels: { 'bad-name': 'x' } })).toThrow(TypeError);
    expect(() => prometheusMetrics({ registry, prefix: 'bad-prefix' })).toThrow(TypeError);
    const other = new Registry();
    new Counter({ name: 'trestle_ws_connection_status', help: 'x', registers: [other] });
    expect(() => prometheusMetrics({ registry: other })).toThrow(/not a gauge/);
  });

  it('ignores a negative or non-finite connect time', async () => {
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry });
    metrics.observeConnectMs(-1);
    metrics.observeConnectMs(Number.NaN);
    expect(sample(await registry.metrics(), 'trestle_ws_connect_seconds_count')).toBe(0);
  });
});
