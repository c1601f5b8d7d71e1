import { getEventListeners } from 'node:events';
import { createBudget } from '@trestle/budget';
import { createSessionManager } from '@trestle/ref-registry';
import { describe, expect, it } from 'vitest';
import { type BridgeManager, createBridgeManager } from './index';
import { manualClock } from './test-support/manual-clock';

// vitest.config.ts runs the workers with --expose-gc.
const gc = (globalThis as { gc?: () => void }).gc;

// Several collections with event-loop turns between them, so finalizers and pending promise jobs
// do not show up as growth.
async function heapAfterGc(): Promise<number> {
  for (let round = 0; round < 3; round += 1) {
    gc?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  gc?.();
  return process.memoryUsage().heapUsed;
}

/**
 * Creates and ends `count` sessions, each owned by an AbortSignal, with a ref, two handles (one
 * discharged, one without a discharger) and a metered call. Ends rotate over logout, idle (the
 * sweeper), owner-lost (the owner aborts) and budget. Every 1,000th owner is kept in `samples`.
 */
async function cycles(
  manager: BridgeManager,
  clock: ReturnType<typeof manualClock>,
  count: number,
  samples: AbortSignal[] | undefined,
): Promise<void> {
  for (let index = 0; index < count; index += 1) {
    const controller = new AbortController();
    const session = await manager.getOrCreate(`user-${index}`, index % 2 ? 'free' : 'basic', {
      meta: { tenant: `t${index % 7}` },
      owner: controller.signal,
    });
    session.refs!.registerRef({ typeName: 'TextIOWrapper', module: 'io' });
    session.handles.track({ binding: 'file', obligation: 'py:close', resource: new Array(16).fill(index) });
    session.handles.track({ binding: 'gpu', obligation: 'none' });
    await session.metered(5, (meter) => meter.use(1));
    switch (index % 4) {
      case 0:
        await manager.end(session.id, 'logout');
        break;
      case 1:
        clock.advance(70_000); // idle past the timeout: a sweep ends it
        await session.end();
        break;
      case 2:
        controller.abort();
        await session.end();
        break;
      default:
        await session.end('budget');
    }
    const report = await session.end();
    if (report.discharged.length !== 1 || report.undischarged.length !== 1 || report.refsReleased !== 1) {
      throw new Error(`cycle ${index}: unexpected report ${JSON.stringify(report)}`);
    }
    if (samples && index % 1_000 === 0) samples.push(controller.signal);
  }
}

describe('leaks', () => {
  it('leaves no sessions, timers or listeners after 10,000 sessions, and a flat heap', async () => {
    expect(gc, 'run with --expose-gc (see vitest.config.ts)').toBeTypeOf('function');
    const clock = manualClock();
    const budget = createBudget({ clock });
    const refs = createSessionManager({ clock, releaser: { name: 'noop', releaseSession: async () => {} } });
    const manager = createBridgeManager({
      budget,
      refs,
      clock,
      idleTimeoutMs: 60_000,
      sweepIntervalMs: 10_000,
      dischargers: { 'py:close': () => {} },
    });
    const ended: string[] = [];
    manager.on('session-ended', (event) => ended.push(event.report.reason));

    // Warm-up: optimized code, the retained-report window (1,000) and the ref store's memory of
    // released sessions must be in place before the baseline.
    await cycles(manager, clock, 10_000, undefined);
    const before = await heapAfterGc();
    const samples: AbortSignal[] = [];
    await cycles(manager, clock, 10_000, samples);
    const growth = (await heapAfterGc()) - before;

    expect(manager.sessions()).toEqual([]);
    expect(manager.stats()).toMatchObject({
      open: 0,
      ending: 0,
      busy: 0,
      created: 20_000,
      ended: { logout: 5_000, idle: 5_000, 'owner-lost': 5_000, budget: 5_000 },
      sweeperArmed: false,
      retainedReports: 1_000,
    });
    expect(ended).toHaveLength(20_000);
    expect(clock.pending).toBe(0);
    expect(refs.stats()).toMatchObject({ sessions: 0, refs: 0, owners: 0, releasing: 0 });
    expect(samples).toHaveLength(10);
    for (const signal of samples) expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    expect(growth).toBeLessThan(2_000_000);
    await manager.close();
    await refs.dispose();
  });
});
