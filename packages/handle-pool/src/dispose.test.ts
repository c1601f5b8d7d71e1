import { describe, expect, it } from 'vitest';
import { asyncDisposeSymbol } from './dispose';
import type { HandlePool } from './index';
import { createHandlePool, HandlePoolDrainError } from './index';

describe('async dispose', () => {
  it('uses the runtime Symbol.asyncDispose', () => {
    expect(asyncDisposeSymbol).toBe(Symbol.asyncDispose);
  });

  it('drains newest first and closes the pool at the end of an `await using` scope', async () => {
    const closed: string[] = [];
    let escaped: HandlePool | undefined;
    {
      await using pool = createHandlePool({
        dischargers: { 'fs:close': (handle) => void closed.push(handle.binding) },
      });
      escaped = pool;
      pool.track({ binding: 'a.txt', obligation: 'fs:close' });
      pool.track({ binding: 'b.txt', obligation: 'fs:close' });
      expect(closed).toEqual([]);
    }
    expect(closed).toEqual(['b.txt', 'a.txt']);
    expect(escaped?.closed).toBe(true);
    expect(escaped?.size).toBe(0);
    expect(() => escaped?.track({ binding: 'c.txt', obligation: 'fs:close' })).toThrow(
      expect.objectContaining({ code: 'HANDLE_POOL_CLOSED' }),
    );
    // Idempotent.
    await expect(escaped?.[Symbol.asyncDispose]()).resolves.toBeUndefined();
  });

  it('throws the drain error at scope exit after attempting every handle', async () => {
    const closed: string[] = [];
    let caught: unknown;
    try {
      await using pool = createHandlePool({
        dischargers: {
          ok: (handle) => void closed.push(handle.binding),
          bad: () => {
            throw new Error('EIO');
          },
        },
      });
      pool.track({ binding: 'first', obligation: 'ok' });
      pool.track({ binding: 'broken', obligation: 'bad' });
      pool.track({ binding: 'last', obligation: 'ok' });
    } catch (error) {
      caught = error;
    }
    expect(closed).toEqual(['last', 'first']);
    expect(HandlePoolDrainError.isInstance(caught)).toBe(true);
    expect((caught as HandlePoolDrainError).report.failed.map((failure) => failure.handle.binding)).toEqual([
      'broken',
    ]);
  });
});
