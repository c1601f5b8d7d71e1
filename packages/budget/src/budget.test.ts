import { describe, expect, it } from 'vitest';
import { createBudget } from './budget';
import { BudgetError } from './errors';
import { manualClock } from './manual-clock';
import type { BudgetStore } from './store';
import { memoryStore } from './stores/memory';
import { DEFAULT_TIERS } from './tiers';

const setup = (options: Parameters<typeof createBudget>[0] = {}) => {
  const clock = manualClock(1_000);
  const budget = createBudget({ clock, ...options });
  return { clock, budget };
};

describe('tiers', () => {
  it('ships the seed tiers as data', () => {
    expect(DEFAULT_TIERS.free).toEqual({ capacity: 1000, refillPerSec: 10 });
    expect(DEFAULT_TIERS.basic).toEqual({ capacity: 5000, refillPerSec: 50 });
    expect(DEFAULT_TIERS.premium).toEqual({ capacity: 50000, refillPerSec: 1000 });
    expect(DEFAULT_TIERS.unlimited).toBeNull();
  });

  it('accepts custom tiers and rejects malformed ones with a typed error', () => {
    const { budget } = setup({ tiers: { team: { capacity: 20, refillPerSec: 2 } } });
    expect(budget.tiers.get('team')?.limits).toEqual({ capacity: 20, refillPerMs: 0.002, maxDebt: 0 });
    expect(budget.tiers.has('free')).toBe(true);
    expect(() => createBudget({ tiers: { bad: { capacity: -1, refillPerSec: 1 } } })).toThrow(
      expect.objectContaining({ code: 'BUDGET_INVALID_TIER' }),
    );
    expect(() => budget.defineTier('x', { capacity: 1, refillPerSec: 0 })).toThrow(/refillPerSec/);
  });

  it('rejects unknown tiers and bad costs with typed errors, never as denials', async () => {
    const { budget } = setup();
    await expect(budget.consume('k', 'gold')).rejects.toMatchObject({ code: 'BUDGET_UNKNOWN_TIER' });
    await expect(budget.consume('k', 'free', -1)).rejects.toMatchObject({ code: 'BUDGET_INVALID_ARGUMENT' });
    await expect(budget.consume('k', 'free', Number.NaN)).rejects.toMatchObject({
      code: 'BUDGET_INVALID_ARGUMENT',
    });
    await expect(budget.consume('', 'free')).rejects.toMatchObject({ code: 'BUDGET_INVALID_ARGUMENT' });
    await expect(budget.consume('k', 'free', 1001)).rejects.toMatchObject({
      code: 'BUDGET_COST_EXCEEDS_CAPACITY',
    });
    const error = await budget.consume('k', 'free', 1001).catch((caught: unknown) => caught);
    expect(BudgetError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('"free"');
  });
});

describe('consume', () => {
  it('allows until empty, then denies with an exact retry time and charges nothing', async () => {
    const { budget, clock } = setup();
    const first = await budget.consume('user', 'free', 999.5);
    expect(first).toMatchObject({ kind: 'allowed', allowed: true, remaining: 0.5, retryAfterMs: 0 });
    expect(first.fullAfterMs).toBe(99_950);
    const denied = await budget.consume('user', 'free', 3);
    expect(denied).toMatchObject({ kind: 'denied', allowed: false, remaining: 0.5, retryAfterMs: 250 });
    clock.advance(249);
    expect((await budget.consume('user', 'free', 3)).kind).toBe('denied');
    clock.advance(1);
    const allowed = await budget.consume('user', 'free', 3);
    expect(allowed.kind).toBe('allowed');
    expect(allowed.remaining).toBeCloseTo(0, 9);
  });

  it('refills fractionally and lazily up to capacity, on monotonic time', async () => {
    const { budget, clock } = setup();
    await budget.consume('u', 'free', 1000);
    clock.advance(150);
    expect(await budget.peek('u', 'free')).toBeCloseTo(1.5, 9);
    clock.advance(1_000_000);
    expect(await budget.peek('u', 'free')).toBe(1000);
  });

  it('takes weighted and fractional costs', async () => {
    const { budget } = setup();
    await budget.consume('w', 'free', 0.25);
    await budget.consume('w', 'free', 10.5);
    expect(await budget.peek('w', 'free')).toBeCloseTo(989.25, 9);
  });

  it('is synchronous on the memory store and refuses sync calls on async stores', () => {
    const { budget } = setup();
    expect(budget.consumeSync('s', 'basic', 10)).toMatchObject({ kind: 'allowed', remaining: 4990 });
    const asyncStore: BudgetStore = { ...memoryStore(), name: 'async', synchronous: false };
    const other = createBudget({ store: asyncStore });
    expect(() => other.consumeSync('s', 'free')).toThrow(
      expect.objectContaining({ code: 'BUDGET_NOT_SYNCHRONOUS' }),
    );
  });

  it('never denies unlimited but still meters it', async () => {
    const charges: number[] = [];
    const { budget } = setup({ onCharge: (event) => charges.push(event.amount) });
    for (let i = 0; i < 5; i++) {
      const decision = await budget.consume('vip', 'unlimited', 1e9);
      expect(decision).toMatchObject({ kind: 'allowed', remaining: Number.POSITIVE_INFINITY });
    }
    expect(charges).toEqual([1e9, 1e9, 1e9, 1e9, 1e9]);
    expect(await budget.peek('vip', 'unlimited')).toBeNull();
  });

  it('meters allowed charges only: a denial charges nothing', async () => {
    const events: string[] = [];
    const { budget } = setup({
      tiers: { tiny: { capacity: 2, refillPerSec: 1 } },
      onCharge: (event) => events.push(`${event.operation}:${event.amount}`),
    });
    await budget.consume('m', 'tiny', 2);
    await budget.consume('m', 'tiny', 1);
    expect(events).toEqual(['consume:2']);
  });
});

describe('headers', () => {
  it('carries IETF RateLimit values on every decision', async () => {
    const { budget } = setup();
    const allowed = await budget.consume('h', 'free', 958.2);
    expect(allowed.headers).toEqual({
      'RateLimit-Policy': '"free";q=1000;w=100',
      RateLimit: '"free";r=41;t=96',
    });
    const denied = await budget.consume('h', 'free', 50);
    expect(denied.headers).toEqual({
      'RateLimit-Policy': '"free";q=1000;w=100',
      RateLimit: '"free";r=41;t=96',
      'Retry-After': '1',
    });
    expect(denied.retryAfterMs).toBe(820);
    expect((await budget.consume('h', 'unlimited')).headers).toEqual({});
  });
});

describe('reserve and settle', () => {
  it('debits up front and refunds the unused part, idempotently', async () => {
    const { budget } = setup();
    const { decision, reservation } = await budget.reserve('r', 'free', 300);
    expect(decision.kind).toBe('allowed');
    expect(reservation).not.toBeNull();
    expect(await budget.peek('r', 'free')).toBe(700);
    const settled = await budget.settle(reservation!.id, 120);
    expect(settled).toMatchObject({ status: 'settled', refunded: 180, extraCharged: 0, remaining: 880 });
    const again = await budget.settle(reservation!.id, 0);
    expect(again).toMatchObject({ status: 'unknown', refunded: 0 });
    expect(await budget.peek('r', 'free')).toBe(880);
  });

  it('denies a reservation the bucket cannot hold, without charging', async () => {
    const { budget } = setup();
    await budget.consume('r2', 'free', 900);
    const { decision, reservation } = await budget.reserve('r2', 'free', 200);
    expect(decision).toMatchObject({ kind: 'denied', retryAfterMs: 10_000 });
    expect(reservation).toBeNull();
    expect(await budget.peek('r2', 'free')).toBe(100);
  });

  it('caps refunds at capacity', async () => {
    const { budget, clock } = setup();
    const { reservation } = await budget.reserve('cap', 'free', 500, 1_000_000);
    clock.advance(30_000);
    const settled = await budget.settle(reservation!.id, 0);
    expect(settled.status).toBe('settled');
    expect(settled.remaining).toBe(1000);
    expect(settled.refunded).toBe(200);
  });

  it('releases the hold when the lease expires; a late settle changes nothing', async () => {
    const { budget, clock } = setup();
    const { reservation } = await budget.reserve('lease', 'free', 400, 5_000);
    expect(reservation!.expiresAt).toBe(6_000);
    clock.advance(4_999);
    expect(await budget.peek('lease', 'free')).toBeCloseTo(649.99, 9);
    clock.advance(1);
    expect(await budget.peek('lease', 'free')).toBe(1000);
    expect((await budget.settle(reservation!.id, 400)).status).toBe('unknown');
    expect(await budget.peek('lease', 'free')).toBe(1000);
  });

  it('charges use beyond the reservation as a bounded debit', async () => {
    const { budget } = setup({ tiers: { paid: { capacity: 100, refillPerSec: 1, maxDebt: 50 } } });
    const { reservation } = await budget.reserve('x', 'paid', 100);
    const settled = await budget.settle(reservation!.id, 180);
    expect(settled).toMatchObject({ status: 'settled', extraCharged: 50, remaining: -50 });
  });

  it('rejects ids it did not make', async () => {
    const { budget } = setup();
    await expect(budget.settle('nope', 1)).rejects.toMatchObject({ code: 'BUDGET_INVALID_RESERVATION' });
  });

  it('gives reservation ids any replica can settle', async () => {
    const store = memoryStore();
    const clock = manualClock();
    const a = createBudget({ store, clock });
    const b = createBudget({ store, clock });
    const { reservation } = await a.reserve('user:with:colons', 'basic', 10);
    expect(await b.settle(reservation!.id, 4)).toMatchObject({ status: 'settled', refunded: 6 });
  });
});

describe('debit (post-paid) and the seed vocabulary', () => {
  it('goes into bounded debt and reports what it could not charge', async () => {
    const { budget, clock } = setup({ tiers: { post: { capacity: 10, refillPerSec: 1, maxDebt: 5 } } });
    expect(await budget.debit('d', 'post', 12)).toMatchObject({
      status: 'charged',
      charged: 12,
      remaining: -2,
    });
    expect(await budget.debit('d', 'post', 10)).toMatchObject({ charged: 3, unpaid: 7, remaining: -5 });
    const denied = await budget.consume('d', 'post', 1);
    expect(denied).toMatchObject({ kind: 'denied', retryAfterMs: 6_000 });
    clock.advance(6_000);
    expect((await budget.consume('d', 'post', 1)).kind).toBe('allowed');
  });

  it('defaults maxDebt to zero: a debit saturates at empty', async () => {
    const { budget } = setup();
    expect(await budget.debit('z', 'free', 1500)).toMatchObject({ charged: 1000, unpaid: 500, remaining: 0 });
  });

  it('ports the seed: refill, available (null for unlimited), consume(used)', async () => {
    const { budget, clock } = setup();
    const account = budget.account('user-123', 'premium');
    expect(await account.refill()).toBe(50_000);
    expect(await account.available()).toBe(50_000);
    expect(await account.consume(1234)).toMatchObject({ charged: 1234, remaining: 48_766 });
    clock.advance(1_000);
    expect(await account.available()).toBe(49_766);
    expect(await budget.account('root', 'unlimited').available()).toBeNull();
  });
});

describe('setTier', () => {
  it('rescales the fill fraction to the new tier', async () => {
    const { budget } = setup();
    await budget.consume('t', 'free', 750);
    expect(await budget.setTier('t', 'basic')).toBe(1250);
    expect(await budget.peek('t', 'basic')).toBe(1250);
    expect(await budget.setTier('t', 'unlimited')).toBeNull();
    expect(await budget.peek('t', 'free')).toBe(1000);
  });
});

describe('store failure', () => {
  const broken = (): BudgetStore => {
    const fail = () => Promise.reject(new Error('connection refused'));
    return {
      name: 'broken',
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
  };
  const tiers = {
    open: { capacity: 3, refillPerSec: 1, onStoreError: 'failOpen' },
    closed: { capacity: 3, refillPerSec: 1, onStoreError: 'failClosed' },
    local: { capacity: 3, refillPerSec: 1, onStoreError: 'local' },
  } as const;

  it('decides per tier policy and says degraded, never throws', async () => {
    const { budget, clock } = setup({ store: broken(), tiers });
    const open = await budget.consume('k', 'open');
    expect(open).toMatchObject({ kind: 'degraded', allowed: true, policy: 'failOpen' });
    expect(open.kind === 'degraded' && open.reason).toContain('connection refused');
    expect(await budget.consume('k', 'closed')).toMatchObject({ kind: 'degraded', allowed: false });
    const local = [];
    for (let i = 0; i < 4; i++) local.push(await budget.consume('k', 'local'));
    expect(local.map((decision) => decision.allowed)).toEqual([true, true, true, false]);
    expect(local[3]).toMatchObject({ kind: 'degraded', policy: 'local', remaining: 0, retryAfterMs: 1000 });
    clock.advance(1000);
    expect((await budget.consume('k', 'local')).allowed).toBe(true);
  });

  it('degrades reserve, settle and debit too', async () => {
    const { budget } = setup({ store: broken(), tiers });
    const { decision, reservation } = await budget.reserve('k', 'local', 2);
    expect(decision).toMatchObject({ kind: 'degraded', allowed: true });
    expect(await budget.settle(reservation!.id, 1)).toMatchObject({ status: 'settled', refunded: 1 });
    expect(await budget.debit('k', 'closed', 1)).toMatchObject({ status: 'degraded', charged: 0, unpaid: 1 });
    const failed = await budget.reserve('k', 'closed', 1);
    expect(failed.reservation).toBeNull();
    const settle = await budget.settle(`S1:6:closedk`, 1);
    expect(settle.status).toBe('degraded');
  });
});

describe('decision shape', () => {
  it('serializes and prints every field, including the computed ones', async () => {
    const { budget } = setup();
    const decision = await budget.consume('json', 'free', 2);
    expect(JSON.parse(JSON.stringify(decision))).toEqual({
      kind: 'allowed',
      allowed: true,
      key: 'json',
      tier: 'free',
      cost: 2,
      limit: 1000,
      remaining: 998,
      retryAfterMs: 0,
      fullAfterMs: 200,
      headers: { 'RateLimit-Policy': '"free";q=1000;w=100', RateLimit: '"free";r=998;t=1' },
    });
    const { inspect } = await import('node:util');
    expect(inspect(decision)).toContain("tier: 'free'");
    expect(inspect(decision)).not.toContain('#');
  });
});

describe('metering', () => {
  it('meters what was used: reserve at its maximum, corrected at settle (also unlimited)', async () => {
    const events: string[] = [];
    const { budget } = setup({
      onCharge: (event) => events.push(`${event.tier}:${event.operation}:${event.amount}`),
    });
    const limited = await budget.reserve('m', 'free', 10);
    await budget.settle(limited.reservation!.id, 4);
    const unlimited = await budget.reserve('m', 'unlimited', 10);
    await budget.settle(unlimited.reservation!.id, 4);
    expect(events).toEqual(['free:reserve:10', 'free:settle:-6', 'unlimited:settle:4']);
  });

  it('lets a throwing metering hook surface as an error, not as a store failure', async () => {
    const { budget } = setup({
      onCharge: () => {
        throw new Error('meter down');
      },
    });
    await expect(budget.consume('h', 'free')).rejects.toThrow('meter down');
  });

  it('meters a degraded reservation as a reservation', async () => {
    const operations: string[] = [];
    const failing: BudgetStore = {
      ...memoryStore(),
      name: 'failing',
      synchronous: false,
      reserve: () => Promise.reject(new Error('down')),
    };
    const { budget } = setup({
      store: failing,
      tiers: { open: { capacity: 5, refillPerSec: 1, onStoreError: 'failOpen' } },
      onCharge: (event) => operations.push(`${event.operation}:${event.degraded}`),
    });
    await budget.reserve('d', 'open', 2);
    expect(operations).toEqual(['reserve:true']);
  });
});
