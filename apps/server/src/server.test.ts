import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from './auth';
import { createLogger } from './log';
import { createMetrics } from './metrics';
import { startServer, TOKEN_EXPIRED_CLOSE_CODE } from './server';
import {
  connect,
  refused,
  startTestServer,
  TEST_SECRET,
  type TestServer,
  testConfig,
} from './test-support/protocol-harness';

describe('HTTP endpoints', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.server.close());

  it('builds the app with config, metrics, logger and the public URL', () => {
    expect(t.app.deps).toHaveLength(1);
    expect(t.app.deps[0]).toMatchObject({
      config: t.server.config,
      metrics: t.server.metrics,
      publicUrl: t.server.url,
    });
    expect(t.server.url).toBe(`ws://127.0.0.1:${t.server.port}/rpc`);
    expect(t.server.port).toBeGreaterThan(0);
  });

  it('/healthz answers 200 {"ok":true}', async () => {
    const response = await fetch(`${t.server.httpUrl}/healthz`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/json');
    expect(await response.json()).toEqual({ ok: true });
  });

  it('/readyz reflects app.ready()', async () => {
    const ok = await fetch(`${t.server.httpUrl}/readyz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ok: true, detail: { python: 'ok' } });
    t.app.readyAnswer = { ok: false, detail: { redis: 'down' } };
    const down = await fetch(`${t.server.httpUrl}/readyz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ ok: false, detail: { redis: 'down' } });
    t.app.readyAnswer = { ok: true, detail: {} };
  });

  it('/metrics serves the registry with the Prometheus content type, after some calls', async () => {
    const client = await connect(t.server.url, await t.token());
    await client.request('echo', { value: 1 });
    await client.request('fail', {});
    const response = await fetch(`${t.server.httpUrl}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await response.text();
    expect(text).toContain('trestle_connections 1');
    expect(text).toContain('trestle_calls_total{method="echo",outcome="ok"} 1');
    expect(text).toContain('trestle_calls_total{method="fail",outcome="NO_SESSION"} 1');
    expect(text).toContain('trestle_call_duration_seconds_bucket{le="0.0005",method="echo"}');
    for (const name of [
      'trestle_sessions',
      'trestle_budget_decisions_total',
      'trestle_worker_restarts_total',
      'trestle_handles_discharged_total',
      'trestle_sessions_ended_total',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    await client.close();
    await t.app.disconnected(1);
    expect(await (await fetch(`${t.server.httpUrl}/metrics`)).text()).toContain('trestle_connections 0');
  });

  it('404 elsewhere, 405 for another method, 426 for /rpc without an upgrade', async () => {
    const missing = await fetch(`${t.server.httpUrl}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'NOT_FOUND' });
    const post = await fetch(`${t.server.httpUrl}/healthz`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect((await fetch(`${t.server.httpUrl}/rpc`)).status).toBe(426);
  });
});

describe('startServer', () => {
  it('default process metrics carry the trestle_ prefix', async () => {
    const metrics = createMetrics();
    expect(await metrics.registry.metrics()).toContain('trestle_process_cpu_user_seconds_total');
  });

  it('tells the app the configured public URL', async () => {
    const t = await startTestServer(testConfig(['--public-url', 'wss://replica-a.example/rpc']));
    try {
      expect(t.app.deps[0]?.publicUrl).toBe('wss://replica-a.example/rpc');
      expect(t.server.publicUrl).toBe('wss://replica-a.example/rpc');
    } finally {
      await t.server.close();
    }
  });

  it('names the address and the setting when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expect(
        startServer(testConfig(['--port', String(port)]), {
          createApp: () => {
            throw new Error('not reached');
          },
          logger: createLogger('silent'),
          metrics: createMetrics({ defaultMetrics: false }),
        }),
      ).rejects.toThrow(
        `cannot listen on 127.0.0.1:${port}: the address is already in use: pick another port (--port / TRESTLE_PORT) (EADDRINUSE)`,
      );
    } finally {
      blocker.close();
    }
  });

  it('closes the HTTP server when createApp throws', async () => {
    let port = 0;
    await expect(
      startServer(testConfig(), {
        createApp: ({ publicUrl }) => {
          port = Number(new URL(publicUrl).port);
          throw new Error('app failed');
        },
        logger: createLogger('silent'),
        metrics: createMetrics({ defaultMetrics: false }),
      }),
    ).rejects.toThrow('app failed');
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('closes a connection with 4401 when its token expires', async () => {
    const t = await startTestServer();
    try {
      // Accepted within the clock tolerance, already past its exp: closed at once.
      const token = await signToken({
        tenant: 'acme',
        tier: 'free',
        ttlSeconds: 1,
        secret: TEST_SECRET,
        now: Date.now() / 1000 - 3,
      });
      const client = await connect(t.server.url, token);
      expect(await client.closed).toEqual({ code: TOKEN_EXPIRED_CLOSE_CODE, reason: 'token expired' });
    } finally {
      await t.server.close();
    }
  });

  it('while draining: upgrades 503 SERVER_DRAINING, /readyz 503, requests SERVER_DRAINING', async () => {
    const t = await startTestServer();
    try {
      const client = await connect(t.server.url, await t.token());
      t.server.startDraining();
      const response = await refused(connect(t.server.url, await t.token()));
      expect(response.status).toBe(503);
      expect(JSON.parse(response.body)).toEqual({
        error: 'SERVER_DRAINING',
        message: 'the server is shutting down',
      });
      const ready = await fetch(`${t.server.httpUrl}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ ok: false, draining: true });
      expect((await fetch(`${t.server.httpUrl}/healthz`)).status).toBe(200);
      expect((await client.request('echo', { value: 1 })).error).toEqual({
        code: -32000,
        message: 'the server is shutting down: no new calls',
        data: { code: 'SERVER_DRAINING' },
      });
      await t.server.close();
      expect((await client.closed).code).toBe(1001);
    } finally {
      await t.server.close();
    }
  });
});
