import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { DischargeOutcome, HandlePool } from './index';
import { createHandlePool } from './index';

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

async function cycles(pool: HandlePool, count: number, signal: AbortSignal): Promise<void> {
  for (let index = 0; index < count; index += 1) {
    // A resource with some weight, so a retained one would show up in the heap.
    const handle = pool.track({
      binding: `file-${index}`,
      obligation: 'test:close',
      resource: new Array(32).fill(index),
    });
    let outcome: DischargeOutcome;
    if (index % 3 === 0) outcome = await pool.discharge(handle, { signal });
    else if (index % 3 === 1) outcome = await pool.discharge(handle.id, { signal });
    else {
      pool.forget(handle);
      outcome = await pool.discharge(handle);
    }
    if (outcome.status !== 'discharged') throw new Error(`cycle ${index}: ${outcome.status}`);
  }
}

describe('memory', () => {
  it('keeps a flat heap over 10,000 track/discharge cycles', async () => {
    expect(gc, 'run with --expose-gc (see vitest.config.ts)').toBeTypeOf('function');
    const pool = createHandlePool({ dischargers: { 'test:close': async () => {} } });
    // One long-lived signal, as a drain or request scope would pass to every discharge.
    const signal = new AbortController().signal;

    // Warm-up: optimized code (V8 allocates it on the heap, ~0.5 MB here) and the bounded
    // retained-outcome window (1,000 by default) must both be in place before the baseline.
    await cycles(pool, 10_000, signal);
    const before = await heapAfterGc();
    await cycles(pool, 10_000, signal);
    const growth = (await heapAfterGc()) - before;

    expect(growth).toBeLessThan(1_000_000);
    expect(pool.stats()).toEqual({
      live: 0,
      settling: 0,
      retainedOutcomes: 1_000,
      dischargers: 1,
      closed: false,
      draining: false,
    });
    expect(pool.list()).toEqual([]);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('holds nothing after drain cycles when outcomes are not retained', async () => {
    const pool = createHandlePool({ retainOutcomes: 0, dischargers: { 'test:close': () => {} } });
    const drainCycles = async (count: number) => {
      for (let index = 0; index < count; index += 1) {
        pool.track({ binding: 'a', obligation: 'test:close', resource: new Array(32).fill(index) });
        pool.track({ binding: 'b', obligation: 'none' });
        const report = await pool.drain();
        if (report.discharged.length !== 1 || report.noDischarger.length !== 1) throw new Error('bad report');
      }
    };
    await drainCycles(10_000);
    const before = await heapAfterGc();
    await drainCycles(10_000);
    expect((await heapAfterGc()) - before).toBeLessThan(1_000_000);
    expect(pool.stats()).toMatchObject({ live: 0, settling: 0, retainedOutcomes: 0, draining: false });
  });
});
