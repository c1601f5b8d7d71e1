import { afterEach, describe, expect, it } from 'vitest';
import { createApp, type ServerApp } from './app';
import type { ServerConfig } from './contracts';
import {
  alive,
  call,
  callError,
  captureLogger,
  eventually,
  FakeConnection,
  flush,
  type ManualClock,
  manualClock,
  metricValue,
  pythonAvailable,
  testConfig,
  testMetrics,
} from './testing-domain';

const hasPython = pythonAvailable();

type Wire = Record<string, unknown>;

describe.runIf(hasPython)('sessions (real python3, manual clock)', () => {
  const apps: ServerApp[] = [];

  function setup(overrides: Partial<ServerConfig> = {}) {
    const clock: ManualClock = manualClock();
    const metrics = testMetrics();
    const log = captureLogger();
    const app = createApp(
      {
        config: testConfig({ resumeGraceMs: 30_000, idleTimeoutMs: 600_000, ...overrides }),
        metrics,
        logger: log.logger,
        publicUrl: 'ws://127.0.0.1:1/rpc',
      },
      { clock },
    );
    apps.push(app);
    return { app, clock, metrics, lines: log.lines };
  }

  /** Advances the manual clock and lets the work it triggers run. */
  async function advance(clock: ManualClock, ms: number) {
    await flush();
    clock.advance(ms);
    await flush();
  }

  function disconnect(app: ServerApp, connection: FakeConnection) {
    connection.close();
    app.onDisconnect(connection);
  }

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.shutdown(2_000)));
  });

  it('opens one session per connection, with a resume token, and ends it with a report', async () => {
    const { app, metrics } = setup();
    const conn = new FakeConnection('acme', 'basic');
    app.onConnection(conn);
    const opened = await call<Record<string, unknown>>(app, conn, 'session.open');
    expect(opened).toMatchObject({ tenant: 'acme', tier: 'basic', replica: 'test-replica', graceMs: 30_000 });
    expect(String(opened.sessionId)).toMatch(/^s_[0-9a-f]{32}$/);
    expect(Buffer.from(String(opened.resumeToken), 'base64url')).toHaveLength(32);
    expect(typeof opened.createdAt).toBe('number');
    expect((await callError(app, conn, 'session.open')).code).toBe('SESSION_ATTACHED');
    // Two opens racing on one connection: one wins.
    const racer = new FakeConnection('acme');
    const outcomes = await Promise.allSettled([
      call(app, racer, 'session.open'),
      call(app, racer, 'session.open'),
    ]);
    expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['fulfilled', 'rejected']);
    await call(app, racer, 'session.end');
    expect(await metricValue(metrics.sessions)).toBe(1);
    const info = await call<Record<string, unknown>>(app, conn, 'session.info');
    expect(info).toMatchObject({
      sessionId: opened.sessionId,
      tenant: 'acme',
      tier: 'basic',
      refs: 0,
      handles: 0,
    });
    const report = await call<Record<string, unknown>>(app, conn, 'session.end');
    expect(report).toMatchObject({ sessionId: opened.sessionId, reason: 'logout', tenant: 'acme' });
    expect((await callError(app, conn, 'session.info')).code).toBe('NO_SESSION');
    expect(await metricValue(metrics.sessions)).toBe(0);
    expect(await metricValue(metrics.sessionsEnded, { reason: 'logout' })).toBe(2); // the racer's and this one
    // A connection may open a new session after ending its own.
    await call(app, conn, 'session.open');
  });

  it('keeps a disconnected session and its refs for the resume grace, then ends it (owner-lost)', async () => {
    const { app, clock, metrics } = setup();
    const first = new FakeConnection('acme');
    const opened = await call<{ sessionId: string; resumeToken: string }>(app, first, 'session.open');
    const { value: pattern } = await call<{ value: Wire }>(app, first, 'py.call', {
      module: 're',
      fn: 'compile',
      args: ['\\d+'],
    });
    disconnect(app, first);
    await advance(clock, 29_000);
    const second = new FakeConnection('acme');
    const resumed = await call<Record<string, unknown>>(app, second, 'session.resume', {
      sessionId: opened.sessionId,
      resumeToken: opened.resumeToken,
    });
    expect(resumed).toMatchObject({ sessionId: opened.sessionId, tenant: 'acme' });
    expect(await call(app, second, 'py.attr', { ref: pattern, name: 'pattern' })).toEqual({ value: '\\d+' });

    disconnect(app, second);
    await advance(clock, 29_999);
    expect(app.sessions.get(opened.sessionId)).toBeDefined();
    await advance(clock, 1);
    await eventually(() => app.sessions.get(opened.sessionId) === undefined);
    expect(await metricValue(metrics.sessionsEnded, { reason: 'owner-lost' })).toBe(1);
    const third = new FakeConnection('acme');
    const late = await callError(app, third, 'session.resume', {
      sessionId: opened.sessionId,
      resumeToken: opened.resumeToken,
    });
    expect(late.code).toBe('SESSION_NOT_FOUND');
    await call(app, third, 'session.open');
    const gone = await callError(app, third, 'py.attr', { ref: pattern, name: 'pattern' });
    expect(gone.code).toBe('REF_NOT_FOUND');
    expect(gone.data).toMatchObject({ reason: 'session_released' });
  });

  it('refuses resumes with a wrong token, from another tenant, or while attached elsewhere', async () => {
    const { app } = setup();
    const owner = new FakeConnection('acme');
    const opened = await call<{ sessionId: string; resumeToken: string }>(app, owner, 'session.open');
    const thief = new FakeConnection('acme');
    const wrong = await callError(app, thief, 'session.resume', {
      sessionId: opened.sessionId,
      resumeToken: Buffer.alloc(32, 1).toString('base64url'),
    });
    expect(wrong.code).toBe('SESSION_FORBIDDEN');
    const shortToken = await callError(app, thief, 'session.resume', {
      sessionId: opened.sessionId,
      resumeToken: 'x',
    });
    expect(shortToken.code).toBe('SESSION_FORBIDDEN');
    const otherTenant = new FakeConnection('globex');
    const foreign = await callError(app, otherTenant, 'session.resume', opened);
    expect(foreign.code).toBe('SESSION_FORBIDDEN');
    const attached = await callError(app, thief, 'session.resume', opened);
    expect(attached.code).toBe('SESSION_ATTACHED');
    const unknown = await callError(app, thief, 'session.resume', { sessionId: 's_nope', resumeToken: 'x' });
    expect(unknown.code).toBe('SESSION_NOT_FOUND');
    // Resuming on the connection that holds it is a no-op.
    expect(await call(app, owner, 'session.resume', opened)).toMatchObject({ sessionId: opened.sessionId });
  });

  it('culls idle sessions with the bridge sweeper; a call in flight is activity', async () => {
    const { app, clock, metrics } = setup({ idleTimeoutMs: 60_000 });
    const conn = new FakeConnection('acme');
    const opened = await call<{ sessionId: string }>(app, conn, 'session.open');
    const slow = call(app, conn, 'py.call', { module: 'time', fn: 'sleep', args: [0.3] });
    await eventually(() => app.inflight === 1 && (app.sessions.get(opened.sessionId)?.bridge.busy ?? 0) > 0);
    await advance(clock, 200_000);
    expect(app.sessions.get(opened.sessionId)?.endReason).toBeUndefined();
    await slow;
    await advance(clock, 59_000);
    expect(app.sessions.get(opened.sessionId)?.endReason).toBeUndefined();
    await advance(clock, 61_000);
    await eventually(() => app.sessions.get(opened.sessionId) === undefined);
    expect(conn.of('session.ending')).toEqual([{ sessionId: opened.sessionId, reason: 'idle' }]);
    expect(await metricValue(metrics.sessionsEnded, { reason: 'idle' })).toBe(1);
    expect((await callError(app, conn, 'py.call', { module: 'math', fn: 'sqrt', args: [1] })).code).toBe(
      'NO_SESSION',
    );
  });

  it('meters every Python call on the tenant budget: a denial is BUDGET_EXCEEDED with retryAfterMs', async () => {
    const { app, clock, metrics } = setup();
    const a = new FakeConnection('tinyco', 'tiny');
    const b = new FakeConnection('tinyco', 'tiny');
    await call(app, a, 'session.open');
    await call(app, b, 'session.open');
    // capacity 2, refill 0.5/s, shared by both sessions of the tenant.
    await call(app, a, 'py.call', { module: 'math', fn: 'sqrt', args: [4] });
    await call(app, b, 'py.call', { module: 'math', fn: 'sqrt', args: [4] });
    const denied = await callError(app, a, 'py.call', { module: 'math', fn: 'sqrt', args: [4] });
    expect(denied.code).toBe('BUDGET_EXCEEDED');
    expect(denied.data).toEqual({ retryAfterMs: 2_000, remaining: 0, tier: 'tiny' });
    expect(await metricValue(metrics.budgetDecisions, { decision: 'denied' })).toBe(1);
    expect(await metricValue(metrics.budgetDecisions, { decision: 'allowed' })).toBe(2);
    expect(await call(app, b, 'budget.get')).toMatchObject({ tier: 'tiny', remaining: 0, capacity: 2 });
    await advance(clock, 2_000);
    expect(await call(app, a, 'py.call', { module: 'math', fn: 'sqrt', args: [9] })).toEqual({ value: 3 });
    // The session survives a denial by default.
    expect(app.sessions.size).toBe(2);
  });

  it('ends the session on a denial when endOnBudgetExhausted is set (session.ending first)', async () => {
    const { app, metrics, lines } = setup({ endOnBudgetExhausted: true });
    const conn = new FakeConnection('tinyco', 'tiny');
    const opened = await call<{ sessionId: string }>(app, conn, 'session.open');
    await call(app, conn, 'py.call', { module: 'math', fn: 'sqrt', args: [4] });
    await call(app, conn, 'py.call', { module: 'math', fn: 'sqrt', args: [4] });
    const denied = await callError(app, conn, 'py.call', { module: 'math', fn: 'sqrt', args: [4] });
    expect(denied.code).toBe('BUDGET_EXCEEDED');
    await eventually(() => app.sessions.size === 0);
    expect(conn.of('session.ending')).toEqual([{ sessionId: opened.sessionId, reason: 'budget' }]);
    expect(await metricValue(metrics.sessionsEnded, { reason: 'budget' })).toBe(1);
    const logged = lines.find((line) => line.msg === 'session ended') as { report: { reason: string } };
    expect(logged.report.reason).toBe('budget');
  });

  it("closes a tenant's Python after tenantIdleMs without sessions", async () => {
    const { app, clock } = setup({ tenantIdleMs: 60_000 });
    const conn = new FakeConnection('sleepy');
    await call(app, conn, 'session.open');
    const pids = app.tenants.workerPids();
    expect(pids).toHaveLength(1);
    await call(app, conn, 'session.end');
    await advance(clock, 59_000);
    expect(app.tenants.peek('sleepy')?.python).toBeDefined();
    // A new session in time keeps it.
    const again = new FakeConnection('sleepy');
    await call(app, again, 'session.open');
    await advance(clock, 5_000);
    expect(app.tenants.workerPids()).toEqual(pids);
    await call(app, again, 'session.end');
    await advance(clock, 60_000);
    await eventually(() => app.tenants.peek('sleepy')?.python === undefined);
    await eventually(() => pids.every((pid) => !alive(pid)));
  });
});
