import {
  createSessionManager,
  type Ref,
  type RefGoneReason,
  RefNotFoundError,
  type Releaser,
} from '@trestle/ref-registry';
import { describe, expect, it } from 'vitest';
import { END_REASONS, type EndReason, REF_REASON_BY_END_REASON } from './index';
import { advance, manualClock } from './test-support/manual-clock';
import { setup } from './test-support/setup';

const init = { typeName: 'TextIOWrapper', module: 'io' };

interface Release {
  sessionId: string;
  refs: number;
  reason: RefGoneReason;
}

function refsSetup(options: { releaser?: Releaser } = {}) {
  const clock = manualClock(1_000);
  const released: Release[] = [];
  const releaser: Releaser = options.releaser ?? {
    name: 'recording',
    releaseSession: async (sessionId, refs, reason) => {
      released.push({ sessionId, refs: refs.length, reason });
    },
  };
  const refs = createSessionManager({ clock, releaser, sweepIntervalMs: 0 });
  const bridge = setup({ clock, refs, refLimits: { maxRefs: 50 } });
  return { ...bridge, refs, released };
}

describe('ref-registry integration', () => {
  it('registers a ref session with the same id and the configured limits', async () => {
    const { manager, refs } = refsSetup();
    const session = await manager.getOrCreate('user-1', 'free');
    expect(session.refs?.id).toBe('user-1');
    expect(refs.sessionExists('user-1')).toBe(true);
    expect(session.refs?.info()?.limits.maxRefs).toBe(50);
    const ref = session.refs!.registerRef(init);
    expect(refs.getRef('user-1', ref)).toBe(ref);
  });

  it.each(END_REASONS.map((reason) => [reason, REF_REASON_BY_END_REASON[reason]] as const))(
    'end(%s) releases the refs with reason %s, and they report it',
    async (reason: EndReason, refReason: RefGoneReason) => {
      const { manager, refs, released } = refsSetup();
      const session = await manager.getOrCreate('user-1', 'free');
      const a = session.refs!.registerRef(init);
      session.refs!.registerRef(init);
      const report = await manager.end('user-1', reason);
      expect(report?.refs).toEqual({ status: 'released', reason: refReason, cause: 'explicit', count: 2 });
      expect(report?.refsReleased).toBe(2);
      expect(released).toEqual([{ sessionId: 'user-1', refs: 2, reason: refReason }]);
      expect(refs.sessionExists('user-1')).toBe(false);
      const error = (() => {
        try {
          refs.getRef('user-1', a);
        } catch (caught) {
          return caught;
        }
      })();
      expect(error).toBeInstanceOf(RefNotFoundError);
      expect(error).toMatchObject({ code: 'REF_NOT_FOUND', refId: a.id, reason: refReason });
      expect(() => session.refs!.registerRef(init)).toThrow(
        expect.objectContaining({ code: 'REF_SESSION_NOT_FOUND' }),
      );
    },
  );

  it('an idle session leaves refs gone by ttl', async () => {
    const { manager, clock, refs } = refsSetup();
    const session = await manager.getOrCreate('user-1', 'free');
    const ref = session.refs!.registerRef(init);
    await advance(clock, 16 * 60_000);
    expect((await session.end()).reason).toBe('idle');
    expect(() => refs.getRef('user-1', ref)).toThrow(expect.objectContaining({ reason: 'ttl' }));
  });

  it('drains the handles before it releases the refs, so dischargers can still reach the objects', async () => {
    const steps: string[] = [];
    const { manager } = refsSetup({
      releaser: {
        name: 'python',
        releaseSession: async (_sessionId, refs) => {
          steps.push(`release ${refs.length} ref(s)`);
        },
      },
    });
    const session = await manager.getOrCreate('user-1', 'free');
    session.handles.registerDischarger<Ref>('py:close', (handle) => {
      // The ref the handle closes is still live in its session.
      const ref = session.refs!.getRef(handle.resource);
      steps.push(`close ${handle.binding} (${ref.typeName})`);
    });
    const file = session.refs!.registerRef(init);
    session.handles.track({ binding: 'f', obligation: 'py:close', resource: file });
    await session.end('logout');
    expect(steps).toEqual(['close f (TextIOWrapper)', 'release 1 ref(s)']);
  });

  it('ends the session with worker-lost when its worker dies (ref session released worker_restarted)', async () => {
    const { manager, refs, events } = refsSetup();
    const session = await manager.getOrCreate('user-1', 'free');
    session.refs!.registerRef(init);
    // What python-adapter does when a worker crashes.
    await refs.releaseSession('user-1', 'worker_restarted');
    const report = await session.end();
    expect(report.reason).toBe('worker-lost');
    expect(report.refs).toEqual({
      status: 'released',
      reason: 'worker_restarted',
      cause: 'explicit',
      count: 1,
    });
    expect(events.filter((event) => event.type === 'session-ending')).toEqual([
      { type: 'session-ending', session, reason: 'worker-lost' },
    ]);
  });

  it('ends the session with owner-lost when its ref session is released from outside', async () => {
    const { manager, refs } = refsSetup();
    const session = await manager.getOrCreate('user-1', 'free');
    await refs.releaseSession('user-1');
    expect((await session.end()).reason).toBe('owner-lost');
    // A new session gets a new ref session.
    const fresh = await manager.getOrCreate('user-1', 'free');
    expect(fresh.refs?.released).toBe(false);
    expect(refs.sessionExists('user-1')).toBe(true);
  });

  it('ends every session with shutdown when the ref manager is disposed', async () => {
    const { manager, refs } = refsSetup();
    const a = await manager.getOrCreate('a', 'free');
    const b = await manager.getOrCreate('b', 'free');
    await refs.dispose();
    const reports = await Promise.all([a.end(), b.end()]);
    expect(reports.map((report) => [report.reason, report.refs?.cause])).toEqual([
      ['shutdown', 'disposed'],
      ['shutdown', 'disposed'],
    ]);
    await expect(manager.getOrCreate('c', 'free')).rejects.toMatchObject({ code: 'REF_MANAGER_DISPOSED' });
    expect(manager.stats().open).toBe(0);
  });

  it('reports a releaser that fails twice, and still ends', async () => {
    const { manager, clock, refs } = refsSetup({
      releaser: {
        name: 'broken',
        releaseSession: async () => {
          throw new Error('worker unreachable');
        },
      },
    });
    const failures: unknown[] = [];
    refs.on('release-failed', (event) => failures.push(event.sessionId));
    const session = await manager.getOrCreate('user-1', 'free');
    session.refs!.registerRef(init);
    const ending = session.end('logout');
    await advance(clock, 100); // the ref manager's clock: its one retry, after retryDelayMs
    const report = await ending;
    expect(report.refs).toMatchObject({
      status: 'failed',
      count: 1,
      error: expect.objectContaining({ code: 'REF_RELEASE_FAILED' }),
    });
    expect(report.errors).toEqual([]);
    expect(failures).toEqual(['user-1']);
  });

  it('stops listening to the ref manager after close', async () => {
    const { manager, refs } = refsSetup();
    await manager.getOrCreate('user-1', 'free');
    await manager.close();
    // The ref manager outlives the bridge and is not disposed by it.
    expect(refs.registerSession('other').released).toBe(false);
    await refs.releaseSession('other');
    expect(manager.stats()).toMatchObject({ open: 0, ended: { shutdown: 1, 'owner-lost': 0 } });
  });
});
