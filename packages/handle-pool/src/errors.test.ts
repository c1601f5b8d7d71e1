import { describe, expect, it } from 'vitest';
import { HandlePoolDrainError, HandlePoolError, HandlePoolErrorCode } from './index';

describe('HandlePoolError', () => {
  it('carries a stable code, a name and the cause', () => {
    const cause = new Error('root');
    const error = new HandlePoolError(HandlePoolErrorCode.DischargeFailed, 'failed', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('HandlePoolError');
    expect(error.code).toBe('HANDLE_DISCHARGE_FAILED');
    expect(error.cause).toBe(cause);
    expect(error.message).toBe('[handle-pool] failed');
  });

  it('publishes these codes', () => {
    expect(Object.values(HandlePoolErrorCode).sort()).toEqual([
      'HANDLE_DISCHARGE_ABORTED',
      'HANDLE_DISCHARGE_FAILED',
      'HANDLE_DISCHARGE_TIMEOUT',
      'HANDLE_POOL_CLOSED',
      'HANDLE_POOL_DRAIN_FAILED',
      'HANDLE_POOL_DUPLICATE_DISCHARGER',
      'HANDLE_POOL_EXHAUSTED',
      'HANDLE_POOL_INVALID_INPUT',
    ]);
  });

  it('isInstance recognizes errors from a duplicate install and nothing else', () => {
    const fromOtherCopy = Object.assign(new Error('x'), { [Symbol.for('trestle.handle-pool.error')]: true });
    expect(HandlePoolError.isInstance(new HandlePoolError('HANDLE_POOL_CLOSED', 'closed'))).toBe(true);
    expect(HandlePoolError.isInstance(fromOtherCopy)).toBe(true);
    expect(HandlePoolError.isInstance(new Error('plain'))).toBe(false);
    expect(
      HandlePoolError.isInstance(
        Object.assign(new Error('other trestle package'), { [Symbol.for('trestle.budget.error')]: true }),
      ),
    ).toBe(false);
    expect(HandlePoolError.isInstance(null)).toBe(false);
    expect(HandlePoolError.isInstance('HANDLE_POOL_CLOSED')).toBe(false);
  });
});

describe('HandlePoolDrainError', () => {
  it('is an AggregateError with a code and a hidden report', () => {
    const inner = new HandlePoolError('HANDLE_DISCHARGE_TIMEOUT', 'slow');
    const report = { discharged: [], failed: [], noDischarger: [], durationMs: 0 };
    const error = new HandlePoolDrainError([inner], report, '1 of 1 handles failed');
    expect(error).toBeInstanceOf(AggregateError);
    expect(error.name).toBe('HandlePoolDrainError');
    expect(error.code).toBe('HANDLE_POOL_DRAIN_FAILED');
    expect(error.errors).toEqual([inner]);
    expect(error.report).toBe(report);
    expect(Object.keys(error)).not.toContain('report');
    expect(HandlePoolDrainError.isInstance(error)).toBe(true);
    expect(HandlePoolError.isInstance(error)).toBe(false);
    expect(HandlePoolDrainError.isInstance(inner)).toBe(false);
  });
});
