import { BudgetError, type ChargeEvent, createBudget } from '@trestle/budget';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BridgeError, BudgetExceededError, createBridgeManager } from './index';
import { advance, flush, manualClock } from './test-support/manual-clock';
import { setup } from './test-support/setup';

// A tier that does not refill noticeably while a test advances the clock.
const tiers = { slow: { capacity: 1000, refillPerSec: 0.000_001 } };

describe('metered', () => {
  it('reserves the maximum, then settles what the call reported: the rest is refunded', async () => {
    const { manager, budget } = setup();
    const session = await manager.getOrCreate('user-1', 'free');
    const seen: number[] = [];
    const result = await session.metered(100, async (meter) => {
      seen.push((await budget.peek('user-1', 'free'))!); // the maximum is held while the call runs
      expect(meter.reservation).toMatchObject({ key: 'user-1', tier: 'free', amount: 100 });
      expect(meter.decision).toMatchObject({ allowed: true, remaining: 900 });
      expect(meter.used).toBeUndefined();
      meter.use(20);
      meter.use(10);
      expect(meter.used).toBe(30);
      return 'done';
    });
    expect(result).toBe('done');
    expect(seen).toEqual([900]);
    expect(await session.budget.peek()).toBe(970);
    expect(session.calls).toMatchObject({ metered: 1, succeeded: 1, charged: 30 });
  });

  it('charges the full reservation when a successful call reports nothing', async () => {
    const { manager } = setup();
    const session = await manager.getOrCreate('user-1', 'free');
    await session.metered(100, () => 'done');
    expect(await session.budget.peek()).toBe(900);
    expect(session.calls.charged).toBe(100);
  });

  it('refunds a failed call that reported nothing, and charges what a failed call reported', async () => {
    const { manager } = setup();
    const session = await manager.getOrCreate('user-1', 'free');
    const failure = new Error('python raised');
    await expect(
      session.metered(100, () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await session.budget.peek()).toBe(1000);
    await expect(
      session.metered(100, async (meter) => {
        meter.use(25);
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await session.budget.peek()).toBe(975);
    expect(session.calls).toMatchObject({ metered: 2, succeeded: 0, failed: 2, charged: 25 });
    expect(session.busy).toBe(0);
  });

  it('charges a reported cost above the reservation post-paid, bounded by maxDebt', async () => {
    const { manager } = setup(
      {},
      { tiers: { debt: { capacity: 100, refillPerSec: 0.000_001, maxDebt: 30 } } },
    );
    const session = await manager.getOrCreate('user-1', 'debt');
    await session.metered(50, (meter) => meter.use(70));
    expect(await session.budget.peek()).toBeCloseTo(30);
    await session.metered(30, (meter) => meter.use(100));
    // 30 held, then 70 more asked, of which only 30 fit (down to -maxDebt).
    expect(await session.budget.peek()).toBeCloseTo(-30);
    expect(session.calls.charged).toBeCloseTo(70 + 60);
  });

  it('throws BudgetExceededError when the reservation is denied: the call does not run, nothing is charged', async () => {
    const { manager } = setup();
    const session = await manager.getOrCreate('user-1', 'free');
    await session.budget.consume(950);
    let ran = false;
    const error = await session
      .metered(100, () => {
        ran = true;
      })
      .catch((caught: unknown) => caught);
    expect(ran).toBe(false);
    expect(error).toBeInstanceOf(BudgetExceededError);
    expect(BridgeError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({
      code: 'BRIDGE_BUDGET_EXCEEDED',
      sessionId: 'user-1',
      retryAfterMs: 5_000, // 50 missing at 10/s
      decision: expect.objectContaining({ kind: 'denied', remaining: 50 }),
      message: expect.stringContaining(
        'session "user-1": cost 100 denied on tier "free" (50 left): retry in 5000 ms',
      ),
    });
    expect(await session.budget.peek()).toBe(50);
    expect(session.calls).toMatchObject({ metered: 0, denied: 1 });
    expect(session.busy).toBe(0);
  });

  it('passes budget errors through for costs no tier can grant or malformed ones', async () => {
    const { manager } = setup();
    const session = await manager.getOrCreate('user-1', 'free');
    const fn = () => 'never';
    const tooBig = await session.metered(1001, fn).catch((caught: unknown) => caught);
    expect(BudgetError.isInstance(tooBig)).toBe(true);
    expect(tooBig).toMatchObject({ code: 'BUDGET_COST_EXCEEDS_CAPACITY' });
    await expect(session.metered(-1, fn)).rejects.toMatchObject({ code: 'BUDGET_INVALID_ARGUMENT' });
    await expect(session.metered(Number.NaN, fn)).rejects.toMatchObject({ code: 'BUDGET_INVALID_ARGUMENT' });
    await expect(session.metered(1, fn, { leaseMs: 0 })).rejects.toMatchObject({
      code: 'BUDGET_INVALID_ARGUMENT',
    });
    await expect(session.metered(1, 'fn' as never)).rejects.toMatchObject({
      code: 'BRIDGE_INVALID_ARGUMENT',
      message: expect.stringContaining('got "fn"'),
    });
    expect(session.busy).toBe(0);
    expect(await session.budget.peek()).toBe(1000);
  });

  it('rejects a malformed meter.use() inside the call, which then fails and is refunded', async () => {
    const { manager } = setup();
    const session = await manager.getOrCreate('user-1', 'free');
    await expect(session.metered(10, (meter) => meter.use(-1))).rejects.toMatchObject({
      code: 'BRIDGE_INVALID_ARGUMENT',
      message: expect.stringContaining('got -1'),
    });
    expect(await session.budget.peek()).toBe(1000);
  });

  it('charges a call that outlives its lease post-paid instead of letting it run for free', async () => {
    const { manager, clock } = setup({ leaseMs: 1_000 }, { tiers });
    const session = await manager.getOrCreate('user-1', 'slow');
    const call = session.metered(100, async (meter) => {
      await advance(clock, 5_000); // the lease ran out: the budget refunded the 100
      expect(await session.budget.peek()).toBeCloseTo(1000);
      meter.use(40);
    });
    await call;
    expect(await session.budget.peek()).toBeCloseTo(960);
    expect(session.calls).toMatchObject({ leaseExpired: 1, charged: 40 });
    // A per-call lease overrides the manager's.
    await session.metered(
      10,
      async () => {
        await advance(clock, 5_000);
      },
      { leaseMs: 10_000 },
    );
    expect(session.calls.leaseExpired).toBe(1);
  });

  it('counts a settle the store failed (the lease then refunds it)', async () => {
    const { manager, budget } = setup();
    const session = await manager.getOrCreate('user-1', 'free');
    budget.store.settle = () => {
      throw new Error('store down');
    };
    await session.metered(10, (meter) => meter.use(1));
    expect(session.calls).toMatchObject({ succeeded: 1, settleFailures: 1, charged: 0 });
  });

  it('gives the reservation back and runs nothing when the session starts ending meanwhile', async () => {
    const { manager } = setup();
    const session = await manager.getOrCreate('user-1', 'free');
    let ran = false;
    const call = session.metered(100, () => {
      ran = true;
    });
    const ending = session.end('logout');
    await expect(call).rejects.toMatchObject({ code: 'BRIDGE_SESSION_ENDED' });
    expect(ran).toBe(false);
    expect(await session.budget.peek()).toBe(1000);
    expect((await ending).abandonedCalls).toBe(0);
  });

  it('hands the session signal to the call: it aborts when the session ends', async () => {
    const { manager, clock } = setup();
    const session = await manager.getOrCreate('user-1', 'free');
    const call = session.metered(10, (meter) => {
      expect(meter.sessionId).toBe('user-1');
      return new Promise<string>((resolve) => {
        meter.signal.addEventListener('abort', () => {
          meter.use(2);
          resolve(`aborted: ${(meter.signal.reason as Error).message}`);
        });
      });
    });
    await flush();
    const ending = session.end('shutdown');
    expect(await call).toContain('session "user-1" is ending (reason shutdown)');
    await ending;
    expect(await session.budget.peek()).toBe(998); // settling still works after the end
    expect(clock.pending).toBe(0);
  });

  it('meters unlimited tiers too (never denied, what was used is reported to onCharge)', async () => {
    const clock = manualClock();
    const charges: ChargeEvent[] = [];
    const budget = createBudget({ clock, onCharge: (event) => charges.push(event) });
    const manager = createBridgeManager({ budget, clock });
    const session = await manager.getOrCreate('root', 'unlimited');
    await session.metered(1_000_000, (meter) => meter.use(12));
    expect(session.calls.charged).toBe(12);
    expect(charges.filter((charge) => charge.operation === 'settle')).toEqual([
      expect.objectContaining({ key: 'root', tier: 'unlimited', amount: 12 }),
    ]);
  });

  it('never overdraws under concurrent calls: what runs at once fits the budget, and the books balance', async () => {
    const call = fc.record({
      max: fc.integer({ min: 1, max: 40 }),
      usedFraction: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
      fails: fc.boolean(),
      ticks: fc.integer({ min: 0, max: 4 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 40 }), async (calls) => {
        const clock = manualClock();
        const budget = createBudget({ clock, tiers: { tiny: { capacity: 100, refillPerSec: 1 } } });
        const manager = createBridgeManager({ budget, clock });
        const session = await manager.getOrCreate('tenant', 'tiny');
        let held = 0;
        let peak = 0;
        let expectedCharge = 0;
        const outcomes = await Promise.allSettled(
          calls.map(({ max, usedFraction, fails, ticks }) =>
            session.metered(max, async (meter) => {
              held += max;
              peak = Math.max(peak, held);
              for (let tick = 0; tick < ticks; tick += 1) await Promise.resolve();
              const used = usedFraction === undefined ? undefined : Math.round(max * usedFraction);
              if (used !== undefined) meter.use(used);
              held -= max;
              expectedCharge += used ?? (fails ? 0 : max);
              if (fails) throw new Error('boom');
            }),
          ),
        );
        // The clock never moved: no refill, so the budget is exactly what was charged.
        expect(peak).toBeLessThanOrEqual(100);
        expect(await session.budget.peek()).toBe(100 - expectedCharge);
        const denied = outcomes.filter(
          (outcome) => outcome.status === 'rejected' && outcome.reason?.code === 'BRIDGE_BUDGET_EXCEEDED',
        ).length;
        const stats = session.calls;
        expect(stats.charged).toBe(expectedCharge);
        expect(stats.denied).toBe(denied);
        expect(stats.metered + stats.denied).toBe(calls.length);
        expect(stats.succeeded + stats.failed).toBe(stats.metered);
        expect(session.busy).toBe(0);
        await manager.close();
      }),
      { numRuns: 150 },
    );
  });
});
