import type { BudgetStore } from '@trestle/budget';
import type { Handle } from '@trestle/handle-pool';
import { describe, expect, it } from 'vitest';
import { BridgeError } from './index';
import { advance, flush } from './test-support/manual-clock';
import { setup } from './test-support/setup';

describe('end', () => {
  it('is idempotent: concurrent and repeated calls return one promise and one report', async () => {
    const { manager, events } = setup();
    const session = await manager.getOrCreate('user-1', 'free');
    const calls = [
      session.end('logout'),
      manager.end('user-1', 'idle'),
      session.end('budget'),
      manager.end('user-1', 'shutdown'),
    ];
    expect(new Set(calls).size).toBe(1);
    const reports = await Promise.all(calls);
    expect(new Set(reports).size).toBe(1);
    expect(reports[0]!.reason).toBe('logout');
    // After the end: the session keeps its report, the manager retains it by id.
    expect(await session.end('idle')).toBe(reports[0]);
    expect(await manager.end('user-1', 'idle')).toBe(reports[0]);
    expect(events.filter((event) => event.type === 'session-ended')).toHaveLength(1);
    expect(events.filter((event) => event.type === 'session-ending')).toHaveLength(1);
    expect(await manager.end('never-seen', 'logout')).toBeUndefined();
  });

  it('joins the running end when an abort listener or an observer calls end() again', async () => {
    const { manager, events } = setup();
    const session = await manager.getOrCreate('user-1', 'free');
    const joined: Promise<unknown>[] = [];
    session.signal.addEventListener('abort', () => joined.push(session.end('error')));
    manager.on('session-ending', () => joined.push(manager.end('user-1', 'shutdown')));
    const ending = session.end('logout');
    expect(joined).toHaveLength(2);
    expect(joined[0]).toBe(ending);
    expect(joined[1]).toBe(ending);
    expect((await ending).reason).toBe('logout');
    expect(events.filter((event) => event.type === 'session-ended')).toHaveLength(1);
  });

  it('forgets the oldest reports beyond retainReports', async () => {
    const { manager } = setup({ retainReports: 2 });
    for (const id of ['a', 'b', 'c']) {
      await manager.getOrCreate(id, 'free');
      await manager.end(id, 'logout');
    }
    expect(await manager.end('a', 'logout')).toBeUndefined();
    expect((await manager.end('b', 'logout'))?.id).toBe('b');
    expect(manager.stats().retainedReports).toBe(2);
  });

  it('rejects an unknown reason with a typed error naming it', async () => {
    const { manager } = setup();
    const session = await manager.getOrCreate('user-1', 'free');
    await expect(session.end('bored' as never)).rejects.toMatchObject({
      code: 'BRIDGE_INVALID_ARGUMENT',
      message: expect.stringContaining('"bored"'),
    });
    await expect(manager.end('user-1', 'bored' as never)).rejects.toMatchObject({
      code: 'BRIDGE_INVALID_ARGUMENT',
    });
    expect(session.state).toBe('open');
  });

  it('builds a report with times, tier, meta, calls and handles', async () => {
    const { manager, clock } = setup<{ tenant: string }>({ dischargers: { 'py:close': () => {} } });
    const session = await manager.getOrCreate('user-1', 'basic', { meta: { tenant: 'acme' } });
    await session.metered(10, (meter) => meter.use(4));
    const file = session.handles.track({ binding: 'f', obligation: 'py:close' });
    clock.advance(60_000);
    const report = await manager.end('user-1', 'logout');
    expect(report).toEqual({
      id: 'user-1',
      meta: { tenant: 'acme' },
      tier: 'basic',
      reason: 'logout',
      startedAt: 1_000,
      endStartedAt: 61_000,
      endedAt: 61_000,
      durationMs: 60_000,
      cleanupMs: 0,
      discharged: [file],
      undischarged: [],
      refs: undefined,
      refsReleased: 0,
      calls: {
        metered: 1,
        succeeded: 1,
        failed: 0,
        denied: 0,
        charged: 4,
        leaseExpired: 0,
        settleFailures: 0,
      },
      abandonedCalls: 0,
      errors: [],
    });
    expect(Object.isFrozen(report)).toBe(true);
  });

  it('reports every undischarged handle exactly once, with why, and discharges the rest LIFO', async () => {
    const order: string[] = [];
    const { manager, clock } = setup({
      drainTimeoutMs: 1_000,
      dischargers: {
        ok: (handle) => void order.push(handle.binding),
        throws: (handle) => {
          order.push(handle.binding);
          throw new Error(`cannot close ${handle.binding}`);
        },
        rejects: async (handle) => {
          order.push(handle.binding);
          throw new Error('rejected');
        },
        hangs: (handle) => {
          order.push(handle.binding);
          return new Promise<void>(() => {});
        },
      },
    });
    const session = await manager.getOrCreate('user-1', 'free');
    const track = (binding: string, obligation: string): Handle =>
      session.handles.track({ binding, obligation });
    const handles = [
      track('a', 'ok'),
      track('b', 'throws'),
      track('c', 'hangs'),
      track('d', 'nobody'),
      track('e', 'rejects'),
      track('f', 'ok'),
    ];
    // One handle already discharged by the host: not in the report.
    const early = track('early', 'ok');
    await session.handles.discharge(early);

    const ending = session.end('logout');
    await advance(clock, 1_000); // the hanging discharger times out
    const report = await ending;

    expect(order).toEqual(['early', 'f', 'e', 'c', 'b', 'a']);
    expect(report.discharged.map((handle) => handle.binding)).toEqual(['f', 'a']);
    expect(report.undischarged.map(({ handle, why }) => [handle.binding, why])).toEqual([
      ['e', 'failed'],
      ['c', 'timeout'],
      ['b', 'failed'],
      ['d', 'no-discharger'],
    ]);
    expect(report.undischarged[0]?.error).toMatchObject({
      code: 'HANDLE_DISCHARGE_FAILED',
      cause: expect.objectContaining({ message: 'rejected' }),
    });
    expect(report.undischarged[1]?.error).toMatchObject({ code: 'HANDLE_DISCHARGE_TIMEOUT' });
    expect(report.undischarged[2]?.error?.message).toContain('cannot close b');
    expect(report.undischarged[3]?.error).toBeUndefined();
    // Exactly once: every handle live at the end is in one list, once.
    const reported = [...report.discharged, ...report.undischarged.map(({ handle }) => handle)];
    expect(reported).toHaveLength(handles.length);
    expect(new Set(reported)).toEqual(new Set(handles));
    expect(session.handles.size).toBe(0);
    expect(session.handles.closed).toBe(true);
    expect(() => session.handles.track({ binding: 'late', obligation: 'ok' })).toThrow(
      expect.objectContaining({ code: 'HANDLE_POOL_CLOSED' }),
    );
    expect(clock.pending).toBe(0);
  });

  it('runs cleanup when the budget is exhausted: cleanup is never metered', async () => {
    const closed: string[] = [];
    const { manager, budget } = setup({
      dischargers: { 'py:close': (handle) => void closed.push(handle.binding) },
    });
    const session = await manager.getOrCreate('user-1', 'free');
    session.handles.track({ binding: 'socket', obligation: 'py:close' });
    session.handles.track({ binding: 'file', obligation: 'py:close' });
    expect(await session.budget.consume(1000)).toMatchObject({ allowed: true, remaining: 0 });
    expect(await session.budget.consume(1)).toMatchObject({ allowed: false });
    await expect(session.metered(1, () => 'never')).rejects.toMatchObject({ code: 'BRIDGE_BUDGET_EXCEEDED' });

    const report = await manager.end('user-1', 'budget');
    expect(closed).toEqual(['file', 'socket']);
    expect(report).toMatchObject({ reason: 'budget', undischarged: [] });
    expect(report?.discharged).toHaveLength(2);
    expect(await budget.peek('user-1', 'free')).toBe(0);
  });

  it('runs cleanup when the budget store is down', async () => {
    const fail = () => {
      throw new Error('store down');
    };
    const store: BudgetStore = {
      name: 'down',
      contractVersion: 1,
      synchronous: false,
      take: fail,
      reserve: fail,
      settle: fail,
      debit: fail,
      rescale: fail,
      peek: fail,
      delete: fail,
    };
    const closed: string[] = [];
    const { manager } = setup(
      { dischargers: { 'py:close': (handle) => void closed.push(handle.binding) } },
      { store },
    );
    const session = await manager.getOrCreate('user-1', 'free');
    session.handles.track({ binding: 'file', obligation: 'py:close' });
    const report = await session.end('error');
    expect(closed).toEqual(['file']);
    expect(report).toMatchObject({ reason: 'error', errors: [] });
  });

  it('aborts the session signal, refuses new work, and waits for calls in flight before draining', async () => {
    const steps: string[] = [];
    const { manager, clock } = setup({
      dischargers: { 'py:close': () => void steps.push('discharged') },
    });
    const session = await manager.getOrCreate('user-1', 'free');
    session.handles.track({ binding: 'file', obligation: 'py:close' });
    let release!: () => void;
    const call = session.run(async (signal) => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      steps.push(`call left (aborted: ${signal.aborted})`);
    });
    await flush();
    expect(session.busy).toBe(1);

    const ending = session.end('logout');
    expect(session.state).toBe('ending');
    expect(session.signal.aborted).toBe(true);
    expect(BridgeError.isInstance(session.signal.reason)).toBe(true);
    expect(session.signal.reason).toMatchObject({ code: 'BRIDGE_SESSION_ENDED' });
    expect(() => session.enter()).toThrow(expect.objectContaining({ code: 'BRIDGE_SESSION_ENDED' }));
    await expect(session.run(() => 1)).rejects.toMatchObject({ code: 'BRIDGE_SESSION_ENDED' });
    await expect(session.metered(1, () => 1)).rejects.toMatchObject({ code: 'BRIDGE_SESSION_ENDED' });
    await expect(session.budget.consume(1)).rejects.toMatchObject({ code: 'BRIDGE_SESSION_ENDED' });
    await expect(session.budget.reserve(1)).rejects.toMatchObject({ code: 'BRIDGE_SESSION_ENDED' });
    await expect(session.budget.debit(1)).rejects.toMatchObject({ code: 'BRIDGE_SESSION_ENDED' });
    await expect(session.setTier('basic')).rejects.toMatchObject({
      code: 'BRIDGE_SESSION_ENDED',
      message: expect.stringContaining('session "user-1" is ending (reason logout)'),
    });
    expect(await session.budget.peek()).toBe(1000);
    await flush();
    expect(steps).toEqual([]);

    release();
    await call;
    const report = await ending;
    expect(steps).toEqual(['call left (aborted: true)', 'discharged']);
    expect(report.abandonedCalls).toBe(0);
    expect(clock.pending).toBe(0);
    expect(session.state).toBe('ended');
    expect(() => session.enter()).toThrow(
      expect.objectContaining({ message: expect.stringContaining('has ended') }),
    );
  });

  it('drains under calls that outlive endGraceMs, and reports them as abandoned', async () => {
    const { manager, clock } = setup({ endGraceMs: 2_000 });
    const session = await manager.getOrCreate('user-1', 'free');
    const token = session.enter();
    const ending = session.end('shutdown');
    let done = false;
    void ending.then(() => {
      done = true;
    });
    await advance(clock, 1_999);
    expect(done).toBe(false);
    await advance(clock, 1);
    const report = await ending;
    expect(report.abandonedCalls).toBe(1);
    expect(report.cleanupMs).toBe(2_000);
    token.leave();
    token.leave(); // idempotent
    expect(session.busy).toBe(0);
  });

  it('does not wait with endGraceMs 0', async () => {
    const { manager } = setup({ endGraceMs: 0 });
    const session = await manager.getOrCreate('user-1', 'free');
    session.enter();
    expect((await session.end('shutdown')).abandonedCalls).toBe(1);
  });

  it('emits created, ending, ended in order, with the report', async () => {
    const { manager, events } = setup();
    const session = await manager.getOrCreate('user-1', 'free');
    await manager.getOrCreate('user-1', 'premium');
    const report = await session.end('idle');
    expect(events.map((event) => event.type)).toEqual([
      'session-created',
      'tier-changed',
      'session-ending',
      'session-ended',
    ]);
    expect(events[2]).toEqual({ type: 'session-ending', session, reason: 'idle' });
    expect(events[3]).toEqual({ type: 'session-ended', session, report });
    expect(report.tier).toBe('premium');
  });

  it('lets an observer of session-ended create the session again at once', async () => {
    const { manager } = setup();
    const recreated: Promise<unknown>[] = [];
    manager.on('session-ended', (event) => {
      recreated.push(manager.getOrCreate(event.report.id, 'free'));
    });
    const old = await manager.getOrCreate('user-1', 'free');
    await old.end('logout');
    const [fresh] = await Promise.all(recreated);
    expect(fresh).not.toBe(old);
    expect(manager.get('user-1')).toBe(fresh);
  });

  it('ends with owner-lost when the owner ends, and stops watching an owner after any end', async () => {
    const { EventEmitter } = await import('node:events');
    const { manager } = setup();
    const socket = Object.assign(new EventEmitter(), { destroyed: false });
    const session = await manager.getOrCreate('user-1', 'free', { owner: socket });
    expect(socket.listenerCount('close')).toBe(1);
    socket.emit('close');
    expect(socket.listenerCount('close')).toBe(0);
    expect((await session.end()).reason).toBe('owner-lost');

    const controller = new AbortController();
    const other = await manager.getOrCreate('user-2', 'free', { owner: controller.signal });
    await other.end('logout');
    controller.abort();
    expect((await other.end()).reason).toBe('logout');
  });

  it('is what await using calls on a session (reason logout)', async () => {
    const { manager } = setup();
    let escaped: Awaited<ReturnType<typeof manager.getOrCreate>> | undefined;
    {
      await using session = await manager.getOrCreate('user-1', 'free');
      escaped = session;
      expect(session.state).toBe('open');
    }
    expect(escaped?.state).toBe('ended');
    expect((await escaped?.end())?.reason).toBe('logout');
  });

  it('is what await using calls on a manager (close, reason shutdown)', async () => {
    const { manager, clock } = setup();
    let session: Awaited<ReturnType<typeof manager.getOrCreate>> | undefined;
    {
      await using scoped = manager;
      session = await scoped.getOrCreate('user-1', 'free');
    }
    expect(manager.closed).toBe(true);
    expect(session?.state).toBe('ended');
    expect((await session?.end())?.reason).toBe('shutdown');
    expect(clock.pending).toBe(0);
  });
});
