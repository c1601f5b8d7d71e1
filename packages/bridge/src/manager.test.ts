import { createBudget } from '@trestle/budget';
import { describe, expect, it } from 'vitest';
import { BridgeError, createBridgeManager } from './index';
import { flush } from './test-support/manual-clock';
import { setup } from './test-support/setup';

describe('getOrCreate', () => {
  it('creates a session with a tier, a budget key, a handle pool and meta', async () => {
    const { manager, clock, events } = setup<{ tenant: string }>();
    const session = await manager.getOrCreate('user-1', 'free', { meta: { tenant: 'acme' } });
    expect(session).toMatchObject({
      id: 'user-1',
      tier: 'free',
      meta: { tenant: 'acme' },
      state: 'open',
      createdAt: clock.now(),
      lastActiveAt: clock.now(),
      busy: 0,
      refs: undefined,
    });
    expect(session.budget.key).toBe('user-1');
    expect(session.budget.tier).toBe('free');
    expect(session.handles.size).toBe(0);
    expect(manager.get('user-1')).toBe(session);
    expect(manager.sessions()).toEqual([session]);
    expect(events).toEqual([{ type: 'session-created', session }]);
  });

  it('returns the same session for the same id, touching it, and ignores meta after creation', async () => {
    const { manager, clock } = setup<{ tenant: string }>();
    const first = await manager.getOrCreate('user-1', 'free', { meta: { tenant: 'a' } });
    clock.advance(500);
    const again = await manager.getOrCreate('user-1', 'free', { meta: { tenant: 'b' } });
    expect(again).toBe(first);
    expect(again.meta).toEqual({ tenant: 'a' });
    expect(again.lastActiveAt).toBe(clock.now());
    expect(manager.stats().created).toBe(1);
  });

  it('never creates a session twice under concurrent calls', async () => {
    const { manager, events } = setup();
    const sessions = await Promise.all(
      Array.from({ length: 20 }, (_, index) => manager.getOrCreate('same', index % 2 ? 'free' : 'basic')),
    );
    expect(new Set(sessions).size).toBe(1);
    expect(events.filter((event) => event.type === 'session-created')).toHaveLength(1);
    expect(manager.stats()).toMatchObject({ open: 1, created: 1 });
    // The last call's tier wins: changes are applied in call order.
    expect(sessions[0]!.tier).toBe('free');
  });

  it('applies a changed tier to an existing session and its budget key (Koru ignored it)', async () => {
    const { manager, budget, events } = setup();
    const session = await manager.getOrCreate('user-1', 'free');
    await session.budget.consume(750); // 250 / 1000 left
    const same = await manager.getOrCreate('user-1', 'basic');
    expect(same).toBe(session);
    expect(session.tier).toBe('basic');
    expect(session.budget.tier).toBe('basic');
    // The fill fraction is kept: 250 / 1000 becomes 1250 / 5000.
    expect(await budget.peek('user-1', 'basic')).toBe(1250);
    expect(await session.budget.peek()).toBe(1250);
    expect(events.filter((event) => event.type === 'tier-changed')).toEqual([
      { type: 'tier-changed', session, from: 'free', to: 'basic', remaining: 1250 },
    ]);
    // Charges now use the new tier's limits.
    expect(await session.budget.consume(1200)).toMatchObject({ allowed: true, tier: 'basic', remaining: 50 });
  });

  it('applies tier changes in call order, also through setTier, and to unlimited', async () => {
    const { manager, events } = setup();
    const session = await manager.getOrCreate('user-1', 'free');
    const changes = [
      manager.getOrCreate('user-1', 'premium'),
      session.setTier('basic'),
      manager.getOrCreate('user-1', 'unlimited'),
    ];
    await Promise.all(changes);
    expect(session.tier).toBe('unlimited');
    expect(await session.budget.peek()).toBeNull();
    expect(
      events.flatMap((event) => (event.type === 'tier-changed' ? [`${event.from}->${event.to}`] : [])),
    ).toEqual(['free->premium', 'premium->basic', 'basic->unlimited']);
  });

  it('applies the tier even when the store fails to rescale, and says so in the event', async () => {
    const clock = { now: () => 0, setTimeout: () => 0, clearTimeout: () => {} };
    const budget = createBudget({ clock });
    const failure = new Error('store down');
    budget.store.rescale = () => Promise.reject(failure);
    const events: unknown[] = [];
    const manager = createBridgeManager({ budget, clock, onEvent: (event) => events.push(event) });
    const session = await manager.getOrCreate('user-1', 'free');
    await manager.getOrCreate('user-1', 'basic');
    expect(session.tier).toBe('basic');
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'tier-changed', to: 'basic', remaining: undefined, error: failure }),
    );
  });

  it('rejects unknown tiers, bad ids and bad owners with typed errors naming the value', async () => {
    const { manager } = setup();
    await expect(manager.getOrCreate('user-1', 'gold')).rejects.toMatchObject({
      code: 'BRIDGE_UNKNOWN_TIER',
      message: expect.stringContaining('"gold" (known: free, basic, premium, unlimited)'),
    });
    await expect(manager.getOrCreate('', 'free')).rejects.toMatchObject({
      code: 'BRIDGE_INVALID_ARGUMENT',
      message: expect.stringContaining('got ""'),
    });
    await expect(manager.getOrCreate(42 as unknown as string, 'free')).rejects.toMatchObject({
      code: 'BRIDGE_INVALID_ARGUMENT',
      message: expect.stringContaining('got 42'),
    });
    await expect(
      manager.getOrCreate('user-1', 'free', { owner: {} as unknown as AbortSignal }),
    ).rejects.toMatchObject({ code: 'BRIDGE_INVALID_ARGUMENT' });
    await expect(manager.getOrCreate('user-1', 'free', { owner: { gc: {} } })).rejects.toMatchObject({
      code: 'BRIDGE_INVALID_ARGUMENT',
      message: expect.stringContaining('gc'),
    });
    await expect(manager.getOrCreate('user-1', 'free', { owner: AbortSignal.abort() })).rejects.toMatchObject(
      {
        code: 'BRIDGE_OWNER_ENDED',
        sessionId: 'user-1',
      },
    );
    const session = await manager.getOrCreate('user-1', 'free');
    await expect(session.setTier('gold')).rejects.toMatchObject({ code: 'BRIDGE_UNKNOWN_TIER' });
    expect(manager.stats().created).toBe(1);
  });

  it('refuses a new session beyond maxSessions, counting sessions still ending', async () => {
    const { manager, clock } = setup({ maxSessions: 2 });
    const a = await manager.getOrCreate('a', 'free');
    await manager.getOrCreate('b', 'free');
    const error = await manager.getOrCreate('c', 'free').catch((caught: unknown) => caught);
    expect(BridgeError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({
      code: 'BRIDGE_TOO_MANY_SESSIONS',
      sessionId: 'c',
      message: expect.stringContaining('maxSessions (2)'),
    });
    // An existing id is still served.
    expect(await manager.getOrCreate('a', 'free')).toBe(a);
    // A session that is ending (a slow discharger) still holds its slot.
    a.handles.registerDischarger('slow', () => new Promise<void>(() => {}));
    a.handles.track({ binding: 'x', obligation: 'slow' });
    const ending = a.end('logout');
    await expect(manager.getOrCreate('c', 'free')).rejects.toMatchObject({
      code: 'BRIDGE_TOO_MANY_SESSIONS',
    });
    await flush();
    clock.advance(5_000);
    await ending;
    expect((await manager.getOrCreate('c', 'free')).id).toBe('c');
  });

  it('never returns a session that is ending: waits for its end, then creates a new one', async () => {
    const { manager, clock, events } = setup();
    const old = await manager.getOrCreate('user-1', 'free');
    old.handles.registerDischarger(
      'slow',
      (_, { signal }) =>
        new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => resolve());
        }),
    );
    old.handles.track({ binding: 'x', obligation: 'slow' });
    const ending = old.end('logout');
    expect(manager.get('user-1')).toBeUndefined();
    let fresh: unknown;
    const next = manager.getOrCreate('user-1', 'basic').then((session) => {
      fresh = session;
      return session;
    });
    await flush();
    expect(fresh).toBeUndefined();
    await flush();
    clock.advance(5_000);
    const report = await ending;
    const session = await next;
    expect(session).not.toBe(old);
    expect(session).toMatchObject({ id: 'user-1', tier: 'basic', state: 'open' });
    expect(old.state).toBe('ended');
    expect(report.undischarged).toHaveLength(1);
    expect(events.map((event) => event.type)).toEqual([
      'session-created',
      'session-ending',
      'session-ended',
      'session-created',
    ]);
  });

  it('uses budgetKey to name the bucket, and keeps the bucket when the session ends', async () => {
    const { manager, budget } = setup<{ tenant: string }>({
      budgetKey: (id, meta) => `${meta?.tenant}:${id}`,
    });
    const session = await manager.getOrCreate('user-1', 'free', { meta: { tenant: 'acme' } });
    expect(session.budget.key).toBe('acme:user-1');
    await session.budget.consume(600);
    await session.end('logout');
    // Reconnecting does not refill: the bucket outlives the session.
    expect(await budget.peek('acme:user-1', 'free')).toBe(400);
    const again = await manager.getOrCreate('user-1', 'free', { meta: { tenant: 'acme' } });
    expect(await again.budget.peek()).toBe(400);
  });

  it('rejects a budgetKey that is not a non-empty string', async () => {
    const { manager } = setup({ budgetKey: () => '' });
    await expect(manager.getOrCreate('user-1', 'free')).rejects.toMatchObject({
      code: 'BRIDGE_INVALID_ARGUMENT',
      message: expect.stringContaining('budgetKey() must return'),
    });
    expect(manager.stats().open).toBe(0);
  });

  it('follows the latest owner: an owner given again replaces the previous one', async () => {
    const { manager } = setup();
    const first = new AbortController();
    const second = new AbortController();
    const session = await manager.getOrCreate('user-1', 'free', { owner: first.signal });
    expect(await manager.getOrCreate('user-1', 'free', { owner: second.signal })).toBe(session);
    first.abort();
    expect(session.state).toBe('open');
    second.abort();
    expect(session.state).toBe('ending');
    expect((await session.end()).reason).toBe('owner-lost');
  });
});

describe('manager', () => {
  it('validates its options with typed errors', () => {
    const budget = createBudget();
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'budget must be a Budget'],
      [{ budget, idleTimeoutMs: 0 }, 'idleTimeoutMs must be'],
      [{ budget, sweepIntervalMs: Number.POSITIVE_INFINITY }, 'sweepIntervalMs must be'],
      [{ budget, drainTimeoutMs: -1 }, 'drainTimeoutMs must be'],
      [{ budget, endGraceMs: Number.NaN }, 'endGraceMs must be'],
      [{ budget, leaseMs: 0 }, 'leaseMs must be'],
      [{ budget, maxSessions: 1.5 }, 'maxSessions must be'],
      [{ budget, retainReports: -1 }, 'retainReports must be'],
      [{ budget, budgetKey: 'x' }, 'budgetKey must be'],
      [{ budget, clock: { now: () => 0 } }, 'clock must have'],
      [{ budget, refs: {} }, 'refs must be'],
      [{ budget, maxHandles: 0 }, 'invalid handle pool options'],
      [{ budget, dischargers: { 'py:close': 'nope' } }, 'invalid handle pool options'],
    ];
    for (const [options, message] of cases) {
      expect(() => createBridgeManager(options as never), message).toThrow(
        expect.objectContaining({
          code: 'BRIDGE_INVALID_ARGUMENT',
          message: expect.stringContaining(message),
        }),
      );
    }
    expect(() => createBridgeManager(undefined as never)).toThrow(
      expect.objectContaining({ code: 'BRIDGE_INVALID_ARGUMENT' }),
    );
  });

  it('lists open sessions least recently active first and counts them', async () => {
    const { manager, clock } = setup();
    const a = await manager.getOrCreate('a', 'free');
    clock.advance(1);
    const b = await manager.getOrCreate('b', 'basic');
    clock.advance(1);
    a.touch();
    expect(manager.sessions()).toEqual([b, a]);
    const token = b.enter();
    expect(manager.stats()).toEqual({
      open: 2,
      ending: 0,
      busy: 1,
      created: 2,
      ended: { logout: 0, idle: 0, budget: 0, shutdown: 0, 'owner-lost': 0, 'worker-lost': 0, error: 0 },
      sweeperArmed: true,
      retainedReports: 0,
      closed: false,
    });
    token.leave();
    await manager.end('a', 'budget');
    expect(manager.stats()).toMatchObject({ open: 1, busy: 0, ended: { budget: 1 }, retainedReports: 1 });
  });

  it('close() ends every session with shutdown, refuses new ones, and is idempotent', async () => {
    const { manager, clock } = setup();
    await manager.getOrCreate('a', 'free');
    await manager.getOrCreate('b', 'free');
    const closing = manager.close();
    expect(manager.close()).toBe(closing);
    expect(manager.closed).toBe(true);
    const reports = await closing;
    expect(reports.map((report) => [report.id, report.reason])).toEqual([
      ['a', 'shutdown'],
      ['b', 'shutdown'],
    ]);
    await expect(manager.getOrCreate('c', 'free')).rejects.toMatchObject({
      code: 'BRIDGE_MANAGER_CLOSED',
      message: expect.stringContaining('"c"'),
    });
    expect(manager.stats()).toMatchObject({ open: 0, ending: 0, sweeperArmed: false, closed: true });
    expect(clock.pending).toBe(0);
  });

  it('endAll() ends every session concurrently and leaves the manager usable', async () => {
    const { manager } = setup();
    const sessions = await Promise.all(['a', 'b', 'c'].map((id) => manager.getOrCreate(id, 'free')));
    const alreadyEnding = sessions[0]!.end('budget');
    const reports = await manager.endAll('shutdown');
    expect(reports.map((report) => report.reason)).toEqual(['budget', 'shutdown', 'shutdown']);
    expect(reports[0]).toBe(await alreadyEnding);
    expect(manager.sessions()).toEqual([]);
    expect((await manager.getOrCreate('a', 'free')).state).toBe('open');
    await expect(manager.endAll('later' as never)).rejects.toMatchObject({ code: 'BRIDGE_INVALID_ARGUMENT' });
  });

  it('on() subscribes to one event type and unsubscribes', async () => {
    const { manager } = setup();
    const seen: string[] = [];
    const off = manager.on('session-ended', (event) =>
      seen.push(`${event.report.id}:${event.report.reason}`),
    );
    await manager.getOrCreate('a', 'free');
    await manager.end('a', 'logout');
    off();
    await manager.getOrCreate('b', 'free');
    await manager.end('b', 'logout');
    expect(seen).toEqual(['a:logout']);
  });

  it('reports a throwing listener as a process warning and carries on', async () => {
    const { manager } = setup();
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      manager.on('session-created', () => {
        throw new Error('observer bug');
      });
      const session = await manager.getOrCreate('a', 'free');
      expect(session.state).toBe('open');
      await flush();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({
        code: 'BRIDGE_LISTENER_FAILED',
        sessionId: 'a',
        cause: expect.objectContaining({ message: 'observer bug' }),
      });
    } finally {
      process.off('warning', onWarning);
    }
  });
});
