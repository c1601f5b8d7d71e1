import { createBudget } from '@trestle/budget';
import { describe, expect, it } from 'vitest';
import { BridgeError, BridgeErrorCode, BudgetExceededError, createBridgeManager } from './index';

describe('errors', () => {
  it('keeps its published codes', () => {
    expect(BridgeErrorCode).toEqual({
      InvalidArgument: 'BRIDGE_INVALID_ARGUMENT',
      UnknownTier: 'BRIDGE_UNKNOWN_TIER',
      SessionEnded: 'BRIDGE_SESSION_ENDED',
      TooManySessions: 'BRIDGE_TOO_MANY_SESSIONS',
      BudgetExceeded: 'BRIDGE_BUDGET_EXCEEDED',
      OwnerEnded: 'BRIDGE_OWNER_ENDED',
      ManagerClosed: 'BRIDGE_MANAGER_CLOSED',
      ListenerFailed: 'BRIDGE_LISTENER_FAILED',
    });
  });

  it('recognises its errors across duplicate installs, and nothing else', () => {
    const error = new BridgeError(BridgeErrorCode.SessionEnded, 'gone', { sessionId: 's', cause: 'why' });
    expect(error).toMatchObject({
      name: 'BridgeError',
      code: 'BRIDGE_SESSION_ENDED',
      sessionId: 's',
      cause: 'why',
      message: '[bridge] gone',
    });
    expect(BridgeError.isInstance(error)).toBe(true);
    // Another copy of the package marks its errors with the same registry symbol.
    expect(BridgeError.isInstance({ [Symbol.for('trestle.bridge.error')]: true })).toBe(true);
    expect(BridgeError.isInstance(new Error('x'))).toBe(false);
    expect(BridgeError.isInstance({ [Symbol.for('trestle.budget.error')]: true })).toBe(false);
    expect(BridgeError.isInstance(null)).toBe(false);
    expect(new BridgeError(BridgeErrorCode.InvalidArgument, 'x')).not.toHaveProperty('cause');
  });

  it('says why a degraded store denied a metered call', async () => {
    const clock = { now: () => 0, setTimeout: () => 0, clearTimeout: () => {} };
    const budget = createBudget({
      clock,
      tiers: { strict: { capacity: 10, refillPerSec: 1, onStoreError: 'failClosed' } },
    });
    budget.store.reserve = () => {
      throw new Error('connection refused');
    };
    const manager = createBridgeManager({ budget, clock });
    const session = await manager.getOrCreate('user-1', 'strict');
    const error = await session.metered(1, () => 'never').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BudgetExceededError);
    expect(error).toMatchObject({
      name: 'BudgetExceededError',
      code: 'BRIDGE_BUDGET_EXCEEDED',
      decision: expect.objectContaining({ kind: 'degraded', policy: 'failClosed' }),
      message: expect.stringContaining(
        'session "user-1": cost 1 denied on tier "strict": the budget store failed and policy "failClosed" denied it',
      ),
    });
    expect((error as Error).message).toContain('connection refused');
  });
});
