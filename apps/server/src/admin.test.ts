import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KernelClient } from '@trestle/kernel-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type ServerApp } from './app';
import {
  call,
  callError,
  captureLogger,
  eventually,
  FakeConnection,
  pythonAvailable,
  testConfig,
  testMetrics,
} from './testing-domain';

const hasPython = pythonAvailable();

describe.runIf(hasPython)('admin socket (kernel protocol)', () => {
  let app: ServerApp;
  let dir: string;
  let socket: string;
  let client: KernelClient;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'trestle-admin-'));
    socket = path.join(dir, 'admin.sock');
    app = createApp({
      config: testConfig({ adminSocket: socket, replicaId: 'replica-a' }),
      metrics: testMetrics(),
      logger: captureLogger().logger,
      publicUrl: 'ws://127.0.0.1:1/rpc',
    });
    expect(await app.admin).toBeDefined();
    client = new KernelClient({ enabled: true, endpoint: `unix://${socket}`, timeoutMs: 5_000 });
  });

  afterAll(async () => {
    await client?.close();
    await app?.shutdown(2_000);
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers PING and STATUS', async () => {
    const ping = await client.ping();
    expect(ping.success).toBe(true);
    expect(ping.payload).toMatchObject({ pong: true, replica: 'replica-a' });
    const conn = new FakeConnection('status-co');
    await call(app, conn, 'session.open');
    const status = await client.getStatus();
    expect(status.success).toBe(true);
    expect(status.payload).toMatchObject({ replica: 'replica-a', sessions: 1, tenants: 1, draining: false });
    expect((status.payload as { calls: number }).calls).toBeGreaterThanOrEqual(1);
    expect((status.payload as { uptimeMs: number }).uptimeMs).toBeGreaterThanOrEqual(0);
    await call(app, conn, 'session.end');
  });

  it('APPLY_POLICY changes the tier of live and future sessions', async () => {
    const conn = new FakeConnection('acme', 'free');
    await call(app, conn, 'session.open');
    const applied = await client.applyPolicy({ tenant: 'acme', tier: 'basic' });
    expect(applied.success).toBe(true);
    expect(applied.payload).toMatchObject({
      applied: true,
      tenant: 'acme',
      tier: 'basic',
      sessionsUpdated: 1,
    });
    expect(await call(app, conn, 'session.info')).toMatchObject({ tier: 'basic' });
    expect(await call(app, conn, 'budget.get')).toMatchObject({ tier: 'basic', capacity: 1_000 });
    const later = new FakeConnection('acme', 'free');
    expect(await call(app, later, 'session.open')).toMatchObject({ tier: 'basic' });
    await call(app, later, 'session.end');
    await call(app, conn, 'session.end');
  });

  it('APPLY_POLICY changes the module allowlist: at once with no session, else at the next start', async () => {
    const conn = new FakeConnection('modco');
    await call(app, conn, 'session.open');
    expect(await call(app, conn, 'py.call', { module: 'json', fn: 'dumps', args: [[1]] })).toEqual({
      value: '[1]',
    });
    const applied = await client.applyPolicy({ tenant: 'modco', allowModules: ['math'] });
    expect(applied.payload).toMatchObject({ applied: true, restarted: false, pending: true });
    // The server's own check applies at once...
    expect((await callError(app, conn, 'py.dir', { module: 'json' })).code).toBe('PY_FORBIDDEN');
    // ...the running workers keep their list until the tenant's Python restarts.
    expect(await call(app, conn, 'py.call', { module: 'json', fn: 'dumps', args: [2] })).toEqual({
      value: '2',
    });
    await call(app, conn, 'session.end');
    await eventually(() => app.tenants.peek('modco')?.python === undefined);
    const next = new FakeConnection('modco');
    await call(app, next, 'session.open');
    expect((await callError(app, next, 'py.call', { module: 'json', fn: 'dumps', args: [2] })).code).toBe(
      'PY_FORBIDDEN',
    );
    expect(await call(app, next, 'py.call', { module: 'math', fn: 'sqrt', args: [4] })).toEqual({ value: 2 });
    await call(app, next, 'session.end');
    // No session: the Python restarts now.
    const again = await client.applyPolicy({ tenant: 'modco', allowModules: null });
    expect(again.payload).toMatchObject({ restarted: true, pending: false });
  });

  it('refuses a bad policy with BAD_POLICY naming the field', async () => {
    const unknownTier = await client.applyPolicy({ tenant: 'acme', tier: 'gold' });
    expect(unknownTier.success).toBe(false);
    expect(unknownTier.errorCode).toBe('BAD_POLICY');
    expect(unknownTier.reason).toMatch(/^policy\.tier: unknown tier "gold"/);
    const badTenant = await client.applyPolicy({ tenant: 5 });
    expect(badTenant.errorCode).toBe('BAD_POLICY');
    expect(badTenant.reason).toMatch(/^policy\.tenant/);
    const badModule = await client.applyPolicy({ tenant: 'acme', allowModules: ['ok', 'not a module'] });
    expect(badModule.errorCode).toBe('BAD_POLICY');
    expect(badModule.reason).toMatch(/^policy\.allowModules\.1/);
    const nothing = await client.applyPolicy({ tenant: 'acme' });
    expect(nothing.errorCode).toBe('BAD_POLICY');
    expect(nothing.reason).toMatch(/^policy: give tier and\/or allowModules/);
    const missing = await client.call('APPLY_POLICY', {});
    expect(missing.errorCode).toBe('BAD_POLICY');
    expect(missing.reason).toMatch(/^policy/);
  });
});
