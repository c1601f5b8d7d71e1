import { describe, expect, it } from 'vitest';
import { createHandlePool } from './index';

function manualClock(start = 0) {
  let time = start;
  return {
    now: () => time,
    set(value: number) {
      time = value;
    },
  };
}

describe('leaks', () => {
  it('lists live handles oldest first with ages from the injected clock', () => {
    const clock = manualClock();
    const pool = createHandlePool({ clock });
    clock.set(100);
    const newer = pool.track({ binding: 'newer', obligation: 'fs:close' });
    clock.set(0);
    // createdAt comes from the clock, not from tracking order.
    const older = pool.track({ binding: 'older', obligation: 'py:release' });
    clock.set(250);
    pool.track({ binding: 'newest', obligation: 'socket:end' });
    pool.forget(pool.track({ binding: 'gone', obligation: 'x' }));
    clock.set(1_000);

    expect(pool.leaks()).toEqual([
      { id: older.id, binding: 'older', obligation: 'py:release', createdAt: 0, ageMs: 1_000 },
      { id: newer.id, binding: 'newer', obligation: 'fs:close', createdAt: 100, ageMs: 900 },
      { id: 'h_3', binding: 'newest', obligation: 'socket:end', createdAt: 250, ageMs: 750 },
    ]);
    expect(pool.leaks({ olderThanMs: 900 }).map((entry) => entry.binding)).toEqual(['older', 'newer']);
    expect(pool.leaks({ olderThanMs: 5_000 })).toEqual([]);
    expect(() => pool.leaks({ olderThanMs: -1 })).toThrow(/olderThanMs must be a non-negative number/);
  });

  it('keeps tracking order for equal ages', () => {
    const pool = createHandlePool({ clock: { now: () => 42 } });
    for (const binding of ['a', 'b', 'c']) pool.track({ binding, obligation: 'x' });
    expect(pool.leaks().map((entry) => [entry.binding, entry.ageMs])).toEqual([
      ['a', 0],
      ['b', 0],
      ['c', 0],
    ]);
  });

  it('includes the creation stack, starting at the caller, when captureStacks is set', () => {
    const pool = createHandlePool({ captureStacks: true });
    function openUploadFile() {
      return pool.track({ binding: 'upload.csv', obligation: 'fs:close' });
    }
    const handle = openUploadFile();
    expect(typeof handle.stack).toBe('string');
    const lines = handle.stack?.split('\n') ?? [];
    expect(lines[0]).toMatch(/^at openUploadFile /);
    expect(lines.every((line) => line.startsWith('at '))).toBe(true);
    expect(handle.stack).toContain('report.test.ts');
    expect(handle.stack).not.toMatch(/pool\.ts/);

    const [entry] = pool.leaks();
    expect(entry?.stack).toBe(handle.stack);
  });

  it('omits stacks by default', () => {
    const pool = createHandlePool();
    pool.track({ binding: 'b', obligation: 'x' });
    const [entry] = pool.leaks();
    expect(entry).toBeDefined();
    expect(entry && 'stack' in entry).toBe(false);
  });
});
