import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from './app';
import {
  alive,
  call,
  callError,
  captureLogger,
  eventually,
  FakeConnection,
  metricValue,
  pythonAvailable,
  testConfig,
  testMetrics,
} from './testing-domain';

const hasPython = pythonAvailable();

describe.runIf(hasPython)('App.shutdown (real python3)', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'trestle-shutdown-'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('drains calls in flight, ends every session with reason shutdown, closes every Python', async () => {
    const metrics = testMetrics();
    const { logger, lines } = captureLogger();
    const socket = path.join(dir, 'admin.sock');
    const app = createApp({
      config: testConfig({ adminSocket: socket }),
      metrics,
      logger,
      publicUrl: 'ws://127.0.0.1:1/rpc',
    });
    expect(await app.admin).toBeDefined();
    const file = path.join(dir, 'held.txt');
    writeFileSync(file, 'x');
    const a = new FakeConnection('acme');
    const b = new FakeConnection('globex');
    const { sessionId: sa } = await call<{ sessionId: string }>(app, a, 'session.open');
    const { sessionId: sb } = await call<{ sessionId: string }>(app, b, 'session.open');
    await call(app, a, 'py.call', { module: 'io', fn: 'open', args: [file] });
    await call(app, b, 'py.call', { module: 'math', fn: 'sqrt', args: [1] });
    const pids = app.tenants.workerPids();
    expect(pids).toHaveLength(2);
    expect(pids.every(alive)).toBe(true);

    const ready = await app.ready();
    expect(ready.ok).toBe(true);
    expect(ready.detail).toMatchObject({ draining: false, sessions: 2, python: { ok: true } });

    const slow = call(app, b, 'py.call', { module: 'time', fn: 'sleep', args: [0.4] });
    await eventually(() => app.inflight === 1);
    const stopping = app.shutdown(5_000);
    expect(app.draining).toBe(true);
    expect((await callError(app, a, 'py.call', { module: 'math', fn: 'sqrt', args: [4] })).code).toBe(
      'SERVER_DRAINING',
    );
    expect((await app.ready()).ok).toBe(false);
    await expect(slow).resolves.toEqual({ value: null });
    await stopping;

    expect(a.of('session.ending')).toEqual([{ sessionId: sa, reason: 'shutdown' }]);
    expect(b.of('session.ending')).toEqual([{ sessionId: sb, reason: 'shutdown' }]);
    const reports = lines
      .filter((line) => line.msg === 'session ended')
      .map((line) => line.report as { sessionId: string; reason: string; discharged: unknown[] });
    expect(reports.map((report) => report.sessionId).sort()).toEqual([sa, sb].sort());
    expect(reports.every((report) => report.reason === 'shutdown')).toBe(true);
    expect(reports.find((report) => report.sessionId === sa)?.discharged).toHaveLength(1);
    expect(await metricValue(metrics.sessionsEnded, { reason: 'shutdown' })).toBe(2);
    expect(await metricValue(metrics.sessions)).toBe(0);
    expect(app.sessions.size).toBe(0);
    expect(app.tenants.running).toBe(0);
    await eventually(() => pids.every((pid) => !alive(pid)));
    expect(existsSync(socket)).toBe(false);
    // Idempotent.
    await app.shutdown(5_000);
  });

  it('aborts the calls still running at the deadline', async () => {
    const app = createApp({
      config: testConfig(),
      metrics: testMetrics(),
      logger: captureLogger().logger,
      publicUrl: 'ws://127.0.0.1:1/rpc',
    });
    const conn = new FakeConnection('acme');
    await call(app, conn, 'session.open');
    await call(app, conn, 'py.call', { module: 'math', fn: 'sqrt', args: [1] });
    const pids = app.tenants.workerPids();
    const stuck = call(app, conn, 'py.call', { module: 'time', fn: 'sleep', args: [30] }).catch(
      (error: { code: string }) => error.code,
    );
    await eventually(() => app.inflight === 1);
    const started = Date.now();
    await app.shutdown(200);
    expect(await stuck).toBe('PY_ABORTED');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(app.sessions.size).toBe(0);
    await eventually(() => pids.every((pid) => !alive(pid)));
  });

  it('counts worker restarts; a session whose worker died ends with worker-lost', async () => {
    const metrics = testMetrics();
    const app = createApp({
      config: testConfig(),
      metrics,
      logger: captureLogger().logger,
      publicUrl: 'ws://127.0.0.1:1/rpc',
    });
    const conn = new FakeConnection('crashy');
    const { sessionId } = await call<{ sessionId: string }>(app, conn, 'session.open');
    const crash = await callError(app, conn, 'py.call', { module: 'os', fn: '_exit', args: [3] });
    expect(crash.code).toBe('PY_WORKER_CRASHED');
    await eventually(() => app.sessions.size === 0);
    expect(conn.of('session.ending')).toEqual([{ sessionId, reason: 'worker-lost' }]);
    expect(await metricValue(metrics.workerRestarts)).toBe(1);
    expect(await metricValue(metrics.sessionsEnded, { reason: 'worker-lost' })).toBe(1);
    // The tenant carries on with a new session on the respawned worker.
    await call(app, conn, 'session.open');
    expect(await call(app, conn, 'py.call', { module: 'math', fn: 'sqrt', args: [4] })).toEqual({ value: 2 });
    await app.shutdown(2_000);
  });

  it('forgets the py:close handle of a ref evicted in Python (LRU)', async () => {
    const app = createApp(
      {
        config: testConfig(),
        metrics: testMetrics(),
        logger: captureLogger().logger,
        publicUrl: 'ws://127.0.0.1:1/rpc',
      },
      { pythonOptions: { defaults: { maxRefs: 1 } } },
    );
    const file = path.join(dir, 'evicted.txt');
    writeFileSync(file, 'x');
    const conn = new FakeConnection('lru-co');
    await call(app, conn, 'session.open');
    await call(app, conn, 'py.call', { module: 'io', fn: 'open', args: [file] });
    expect((await call<{ handles: unknown[] }>(app, conn, 'handles.list')).handles).toHaveLength(1);
    await call(app, conn, 'py.call', { module: 're', fn: 'compile', args: ['x'] });
    expect((await call<{ handles: unknown[] }>(app, conn, 'handles.list')).handles).toHaveLength(0);
    const report = await call<{ discharged: unknown[]; undischarged: unknown[] }>(app, conn, 'session.end');
    expect(report.discharged).toEqual([]);
    expect(report.undischarged).toEqual([]);
    await app.shutdown(2_000);
  });
});
