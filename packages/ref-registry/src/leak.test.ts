import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Releaser } from './releaser';
import { createSessionContext, type SessionContext } from './session-context';
import { createSessionManager } from './session-manager';
import type { SessionManager } from './session-types';
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

const init = { typeName: 'Pattern', module: 're' };

/**
 * Opens and releases `count` sessions, each owned by an AbortSignal and holding two refs: half are
 * released by their owner (aborted), a quarter by `releaseSession`, a quarter by the end of a
 * `withSession` scope. Every 1,000th signal is kept in `samples`.
 */
async function cycles(
  manager: SessionManager,
  context: SessionContext,
  count: number,
  samples: AbortSignal[] | undefined,
): Promise<void> {
  for (let index = 0; index < count; index += 1) {
    const controller = new AbortController();
    const owner = controller.signal;
    if (index % 2 === 0) {
      const session = manager.open({ owner });
      session.registerRef(init);
      session.registerRef(init);
      controller.abort();
      if (!session.released) throw new Error(`cycle ${index}: not released by its owner`);
    } else if (index % 4 === 1) {
      const session = manager.open({ owner });
      session.registerRef(init);
      session.registerRef(init);
      const report = await manager.releaseSession(session.id);
      if (report.status !== 'released' || report.refs.length !== 2)
        throw new Error(`cycle ${index}: ${report.status}`);
    } else {
      await context.withSession({ owner }, async () => {
        const session = context.ensure();
        session.registerRef(init);
        await Promise.resolve();
        session.registerRef(init);
      });
    }
    if (samples && index % 1_000 === 0) samples.push(owner);
    if (index % 500 === 0) await manager.flush();
  }
  await manager.flush();
}

describe('leaks', () => {
  it('leaves no sessions, refs, listeners or timers after 100,000 sessions, and a flat heap', async () => {
    expect(gc, 'run with --expose-gc (see vitest.config.ts)').toBeTypeOf('function');
    const clock = manualClock();
    let released = 0;
    const releaser: Releaser = {
      name: 'counting',
      releaseSession: async () => {
        released += 1;
      },
      releaseRefs: async () => {},
    };
    const manager = createSessionManager({ clock, releaser, sweepIntervalMs: 60_000 });
    const context = createSessionContext(manager);

    // Warm-up: optimized code and the store's bounded memory of released sessions (10,000 by
    // default) must be in place before the baseline.
    await cycles(manager, context, 20_000, undefined);
    const samples: AbortSignal[] = [];
    const before = await heapAfterGc();
    await cycles(manager, context, 100_000, samples);
    const growth = (await heapAfterGc()) - before;

    expect(manager.sessions()).toEqual([]);
    expect(manager.stats()).toEqual({ sessions: 0, refs: 0, owners: 0, releasing: 0, releaseFailures: 0 });
    expect(manager.store.size).toBe(0);
    expect(manager.store.sessionIds()).toEqual([]);
    expect(released).toBe(120_000);
    expect(clock.pending).toBe(0);
    // Every session armed and disarmed the one sweep timer: it was really used, and never left behind.
    expect(clock.created).toBeGreaterThan(0);
    expect(samples).toHaveLength(100);
    for (const signal of samples) expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    expect(growth).toBeLessThan(2_000_000);

    await manager.dispose();
  });
});
