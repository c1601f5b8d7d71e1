import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HandlePoolError, HandlePoolErrorCode } from './errors';
import type { DischargeContext, Discharger, DischargerPlugin, Handle, HandlePoolEvent } from './index';
import { createHandlePool } from './index';

function manualClock(start = 0) {
  let time = start;
  return {
    now: () => time,
    advance(ms: number) {
      time += ms;
    },
  };
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

describe('track', () => {
  it('issues frozen handles with unique ids and the clock time', () => {
    const clock = manualClock(1_000);
    const pool = createHandlePool({ clock });
    const resource = { fd: 3 };
    const first = pool.track({
      binding: 'data.csv',
      obligation: 'fs:close',
      resource,
      meta: { tenant: 't1' },
    });
    clock.advance(5);
    const second = pool.track({ binding: 'socket', obligation: 'socket:end' });

    expect(first).toEqual({
      id: 'h_1',
      binding: 'data.csv',
      obligation: 'fs:close',
      createdAt: 1_000,
      resource,
      meta: { tenant: 't1' },
    });
    expect(first.resource).toBe(resource);
    expect(second.id).toBe('h_2');
    expect(second.createdAt).toBe(1_005);
    expect(second.resource).toBeUndefined();
    expect('stack' in first).toBe(false);
    expect(Object.isFrozen(first)).toBe(true);
    expect(pool.size).toBe(2);
    expect(pool.get('h_1')).toBe(first);
    expect(pool.get('h_9')).toBeUndefined();
    expect(pool.list()).toEqual([first, second]);
  });

  it.each([
    [{ binding: '', obligation: 'fs:close' }, /binding must be a non-empty string, got ""/],
    [{ binding: 'file', obligation: '' }, /obligation must be a non-empty string, got "" \(binding "file"\)/],
    [{ binding: 42, obligation: 'fs:close' }, /binding must be a non-empty string, got 42/],
    [null, /expects \{ binding, obligation \}, got null/],
  ])('rejects malformed input %j with HANDLE_POOL_INVALID_INPUT', (input, message) => {
    const pool = createHandlePool();
    const error = catchError(() => pool.track(input as never));
    expect(HandlePoolError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: HandlePoolErrorCode.InvalidInput });
    expect((error as Error).message).toMatch(message);
    expect(pool.size).toBe(0);
  });

  it('throws HANDLE_POOL_EXHAUSTED at maxHandles, naming the limit and the binding', async () => {
    const pool = createHandlePool({ maxHandles: 2 });
    const first = pool.track({ binding: 'a', obligation: 'x' });
    pool.track({ binding: 'b', obligation: 'x' });

    const error = catchError(() => pool.track({ binding: 'upload.csv', obligation: 'fs:close' }));
    expect(error).toBeInstanceOf(HandlePoolError);
    expect(error).toMatchObject({ code: 'HANDLE_POOL_EXHAUSTED' });
    expect((error as Error).message).toContain('maxHandles (2)');
    expect((error as Error).message).toContain('"upload.csv"');
    expect(pool.size).toBe(2);

    // Settling a handle frees its slot.
    expect(pool.forget(first)).toBe(true);
    expect(pool.track({ binding: 'c', obligation: 'x' }).id).toBe('h_3');
  });

  it('throws HANDLE_POOL_CLOSED after drain({ close: true })', async () => {
    const pool = createHandlePool();
    await pool.drain({ close: true });
    expect(pool.closed).toBe(true);
    const error = catchError(() => pool.track({ binding: 'late', obligation: 'fs:close' }));
    expect(error).toMatchObject({ code: HandlePoolErrorCode.Closed });
    expect((error as Error).message).toContain('"late"');
  });

  it('rejects malformed options', () => {
    expect(() => createHandlePool({ maxHandles: 0 })).toThrow(/maxHandles must be a positive integer/);
    expect(() => createHandlePool({ maxHandles: 1.5 })).toThrow(HandlePoolError);
    expect(() => createHandlePool({ defaultTimeoutMs: -1 })).toThrow(/defaultTimeoutMs/);
    expect(() => createHandlePool({ retainOutcomes: -1 })).toThrow(/retainOutcomes/);
    expect(() => createHandlePool({ maxHandles: Number.POSITIVE_INFINITY })).not.toThrow();
  });
});

describe('registerDischarger', () => {
  it('accepts a function, a plugin object, and an initial record or list', async () => {
    const calls: string[] = [];
    const pool = createHandlePool({
      dischargers: { 'a:close': (handle) => void calls.push(`record ${handle.binding}`) },
    });
    pool.registerDischarger('b:close', (handle) => void calls.push(`function ${handle.binding}`));
    // Plugins are called as methods, so a class-based plugin can use `this`.
    class PrefixDischarger implements DischargerPlugin {
      readonly name = 'c-closer';
      readonly obligation = 'c:close';
      readonly prefix = 'plugin';
      discharge(handle: Handle) {
        calls.push(`${this.prefix} ${handle.binding}`);
      }
    }
    pool.registerDischarger(new PrefixDischarger());
    const fromList = createHandlePool({
      dischargers: [
        {
          name: 'd',
          obligation: 'd:close',
          discharge: (handle) => void calls.push(`list ${handle.binding}`),
        },
      ],
    });

    await pool.discharge(pool.track({ binding: '1', obligation: 'a:close' }));
    await pool.discharge(pool.track({ binding: '2', obligation: 'b:close' }));
    await pool.discharge(pool.track({ binding: '3', obligation: 'c:close' }));
    await fromList.discharge(fromList.track({ binding: '4', obligation: 'd:close' }));
    expect(calls).toEqual(['record 1', 'function 2', 'plugin 3', 'list 4']);
    expect(pool.stats().dischargers).toBe(3);
  });

  it('refuses a second discharger for an obligation; unregister is idempotent and scoped', async () => {
    const pool = createHandlePool();
    const unregister = pool.registerDischarger('fs:close', function closeFile() {});
    const error = catchError(() => pool.registerDischarger('fs:close', () => {}));
    expect(error).toMatchObject({ code: HandlePoolErrorCode.DuplicateDischarger });
    expect((error as Error).message).toContain('"closeFile"');

    unregister();
    const replacement = vi.fn();
    pool.registerDischarger('fs:close', replacement);
    unregister(); // must not remove the replacement
    await pool.discharge(pool.track({ binding: 'f', obligation: 'fs:close' }));
    expect(replacement).toHaveBeenCalledTimes(1);
  });

  it('rejects malformed dischargers', () => {
    const pool = createHandlePool();
    expect(() => pool.registerDischarger('', () => {})).toThrow(/obligation must be a non-empty string/);
    expect(() => pool.registerDischarger('x', 'nope' as never)).toThrow(/must be a function, got "nope"/);
    expect(() => pool.registerDischarger({ name: 'p', obligation: 'y' } as never)).toThrow(
      /has no discharge\(\)/,
    );
  });
});

describe('discharge', () => {
  it('runs the discharger with the handle and a signal, then removes the handle', async () => {
    const seen: [Handle, DischargeContext][] = [];
    const pool = createHandlePool({
      dischargers: { 'fs:close': (handle, context) => void seen.push([handle, context]) },
    });
    const handle = pool.track({ binding: 'f', obligation: 'fs:close' });

    const outcome = await pool.discharge(handle.id);
    expect(outcome).toMatchObject({ status: 'discharged', id: handle.id, handle, forgotten: false });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(0);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.[0]).toBe(handle);
    expect(seen[0]?.[1].signal.aborted).toBe(false);
    expect(seen[0]?.[1].timeoutMs).toBe(5_000);
    expect(pool.size).toBe(0);
    expect(pool.get(handle.id)).toBeUndefined();
  });

  it('reports a synchronous throw as failed with the thrown value as cause', async () => {
    const boom = new Error('EBADF');
    const pool = createHandlePool({
      dischargers: {
        'fs:close': function closeFile() {
          throw boom;
        },
      },
    });
    const handle = pool.track({ binding: 'data.csv', obligation: 'fs:close' });
    const outcome = await pool.discharge(handle);
    expect(outcome.status).toBe('failed');
    if (outcome.status !== 'failed') return;
    expect(outcome.error.code).toBe(HandlePoolErrorCode.DischargeFailed);
    expect(outcome.error.cause).toBe(boom);
    expect(outcome.error.message).toBe(
      '[handle-pool] discharger "closeFile" for handle h_1 (binding "data.csv", obligation "fs:close") failed: EBADF',
    );
    expect(pool.size).toBe(0);
  });

  it('reports a rejection (even of a non-Error) as failed', async () => {
    const pool = createHandlePool({
      dischargers: { 'py:release': async () => Promise.reject('worker gone') },
    });
    const outcome = await pool.discharge(pool.track({ binding: 'df', obligation: 'py:release' }));
    expect(outcome).toMatchObject({
      status: 'failed',
      error: { code: 'HANDLE_DISCHARGE_FAILED', cause: 'worker gone' },
    });
  });

  it('reports no-discharger, removing the handle, and unknown ids without running anything', async () => {
    const pool = createHandlePool({ retainOutcomes: 0 });
    const handle = pool.track({ binding: 'f', obligation: 'fs:close' });
    expect(await pool.discharge(handle.id)).toEqual({
      status: 'no-discharger',
      id: 'h_1',
      handle,
      durationMs: 0,
    });
    expect(pool.size).toBe(0);
    expect(await pool.discharge('h_1')).toEqual({
      status: 'unknown',
      id: 'h_1',
      handle: undefined,
      durationMs: 0,
    });
    expect(await pool.discharge('nope')).toMatchObject({ status: 'unknown', id: 'nope' });
    // A handle object still gets its own outcome, whatever the retention.
    expect(await pool.discharge(handle)).toMatchObject({ status: 'no-discharger', handle });
  });

  it('does not confuse a handle from another pool that has the same id', async () => {
    const discharger = vi.fn();
    const pool = createHandlePool({ dischargers: { x: discharger } });
    const other = createHandlePool({ dischargers: { x: discharger } });
    pool.track({ binding: 'mine', obligation: 'x' });
    const foreign = other.track({ binding: 'theirs', obligation: 'x' });
    expect(foreign.id).toBe('h_1');

    expect(await pool.discharge(foreign)).toMatchObject({ status: 'unknown', id: 'h_1' });
    expect(pool.forget(foreign)).toBe(false);
    expect(discharger).not.toHaveBeenCalled();
    expect(pool.size).toBe(1);
  });

  it('is idempotent: a second sequential call returns the same outcome without running again', async () => {
    const discharger = vi.fn();
    const pool = createHandlePool({ dischargers: { x: discharger } });
    const handle = pool.track({ binding: 'b', obligation: 'x' });
    const first = await pool.discharge(handle.id);
    const byId = await pool.discharge(handle.id);
    const byHandle = await pool.discharge(handle);
    expect(byId).toBe(first);
    expect(byHandle).toBe(first);
    expect(discharger).toHaveBeenCalledTimes(1);
  });

  it('is idempotent under concurrency, including re-entry from the discharger itself', async () => {
    let release: () => void = () => {};
    const pool = createHandlePool();
    const discharger = vi.fn((handle: Handle) => {
      // Re-entering for the same handle must join the running discharge, not start another.
      void pool.discharge(handle);
      expect(pool.forget(handle)).toBe(false);
      return new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    pool.registerDischarger('x', discharger);
    const handle = pool.track({ binding: 'b', obligation: 'x' });

    const calls = [
      pool.discharge(handle),
      pool.discharge(handle.id),
      pool.discharge(handle, { timeoutMs: 1 }),
    ];
    expect(pool.stats().settling).toBe(1);
    expect(pool.size).toBe(1); // still live while its discharger runs
    release();
    const [first, second, third] = await Promise.all(calls);
    expect(first?.status).toBe('discharged');
    expect(second).toBe(first);
    expect(third).toBe(first);
    expect(discharger).toHaveBeenCalledTimes(1);
    expect(pool.stats()).toMatchObject({ live: 0, settling: 0 });
  });

  it('rejects a malformed target or timeout with HANDLE_POOL_INVALID_INPUT', async () => {
    const pool = createHandlePool();
    await expect(pool.discharge(42 as never)).rejects.toMatchObject({ code: 'HANDLE_POOL_INVALID_INPUT' });
    await expect(pool.discharge('h_1', { timeoutMs: 0 })).rejects.toThrow(
      /timeoutMs must be a positive number/,
    );
  });

  it('forgets without running the discharger, as a discharged outcome', async () => {
    const discharger = vi.fn();
    const pool = createHandlePool({ dischargers: { x: discharger } });
    const handle = pool.track({ binding: 'b', obligation: 'x' });
    expect(pool.forget(handle.id)).toBe(true);
    expect(pool.forget(handle.id)).toBe(false);
    expect(pool.size).toBe(0);
    expect(await pool.discharge(handle)).toEqual({
      status: 'discharged',
      id: handle.id,
      handle,
      forgotten: true,
      durationMs: 0,
    });
    expect(discharger).not.toHaveBeenCalled();
  });

  it('forgets the oldest retained outcome beyond retainOutcomes', async () => {
    const pool = createHandlePool({ retainOutcomes: 2, dischargers: { x: () => {} } });
    const handles = [1, 2, 3].map((index) => pool.track({ binding: `b${index}`, obligation: 'x' }));
    for (const handle of handles) await pool.discharge(handle);
    expect(pool.stats().retainedOutcomes).toBe(2);
    expect(await pool.discharge('h_1')).toMatchObject({ status: 'unknown' });
    expect(await pool.discharge('h_3')).toMatchObject({ status: 'discharged', id: 'h_3' });
  });

  describe('with fake timers', () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it('fails with HANDLE_DISCHARGE_TIMEOUT and aborts the discharger signal', async () => {
      let signal: AbortSignal | undefined;
      const pool = createHandlePool({ defaultTimeoutMs: 1_000 });
      pool.registerDischarger('hang', function hangForever(_handle, context) {
        signal = context.signal;
        return new Promise<void>(() => {});
      });
      const handle = pool.track({ binding: 'stuck', obligation: 'hang' });
      let outcome: Awaited<ReturnType<typeof pool.discharge>> | undefined;
      void pool.discharge(handle).then((result) => {
        outcome = result;
      });

      await vi.advanceTimersByTimeAsync(999);
      expect(outcome).toBeUndefined();
      expect(signal?.aborted).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(outcome).toMatchObject({ status: 'failed', durationMs: 1_000 });
      if (outcome?.status !== 'failed') throw new Error('expected a failure');
      expect(outcome.error.code).toBe('HANDLE_DISCHARGE_TIMEOUT');
      expect(outcome.error.message).toContain('did not settle within 1000 ms');
      expect(outcome.error.message).toContain('"hangForever"');
      expect(signal?.aborted).toBe(true);
      expect(signal?.reason).toBe(outcome.error);
      expect(pool.size).toBe(0);
    });

    it('clears its timer when the discharger settles', async () => {
      const pool = createHandlePool({ dischargers: { x: () => {} } });
      for (let index = 0; index < 50; index += 1)
        await pool.discharge(pool.track({ binding: 'b', obligation: 'x' }));
      expect(vi.getTimerCount()).toBe(0);
    });

    it('ignores a discharger that rejects after its timeout', async () => {
      let reject: (error: Error) => void = () => {};
      const pool = createHandlePool({
        dischargers: {
          late: () =>
            new Promise<void>((_resolve, rejectLater) => {
              reject = rejectLater;
            }),
        },
      });
      const pending = pool.discharge(pool.track({ binding: 'b', obligation: 'late' }), { timeoutMs: 10 });
      await vi.advanceTimersByTimeAsync(10);
      const outcome = await pending;
      reject(new Error('too late'));
      await vi.advanceTimersByTimeAsync(0);
      expect(outcome).toMatchObject({ status: 'failed', error: { code: 'HANDLE_DISCHARGE_TIMEOUT' } });
      expect(await pool.discharge(outcome.id)).toBe(outcome);
    });
  });

  it('uses the timers of an injected clock', async () => {
    const scheduled: { callback: () => void; ms: number }[] = [];
    const cleared: unknown[] = [];
    const clock = {
      time: 0,
      now() {
        return this.time;
      },
      setTimeout(callback: () => void, ms: number) {
        scheduled.push({ callback, ms });
        return scheduled.length;
      },
      clearTimeout(timer: unknown) {
        cleared.push(timer);
      },
    };
    const pool = createHandlePool({
      clock,
      defaultTimeoutMs: 250,
      dischargers: { ok: () => {}, hang: () => new Promise<void>(() => {}) },
    });

    await pool.discharge(pool.track({ binding: 'quick', obligation: 'ok' }));
    expect(scheduled.map((timer) => timer.ms)).toEqual([250]);
    expect(cleared).toEqual([1]);

    const pending = pool.discharge(pool.track({ binding: 'stuck', obligation: 'hang' }));
    expect(scheduled).toHaveLength(2);
    clock.time = 250;
    scheduled[1]?.callback();
    expect(await pending).toMatchObject({
      status: 'failed',
      durationMs: 250,
      error: { code: 'HANDLE_DISCHARGE_TIMEOUT' },
    });
  });

  it('runs without a timer when timeoutMs is Infinity', async () => {
    const setTimeoutSpy = vi.fn();
    const pool = createHandlePool({
      clock: { now: () => 0, setTimeout: setTimeoutSpy, clearTimeout: () => {} },
      dischargers: { ok: async () => {} },
    });
    const outcome = await pool.discharge(pool.track({ binding: 'b', obligation: 'ok' }), {
      timeoutMs: Number.POSITIVE_INFINITY,
    });
    expect(outcome.status).toBe('discharged');
    expect(setTimeoutSpy).not.toHaveBeenCalled();
  });

  it('fails with HANDLE_DISCHARGE_ABORTED when the caller signal aborts', async () => {
    const pool = createHandlePool({ dischargers: { hang: () => new Promise<void>(() => {}) } });
    const controller = new AbortController();
    const pending = pool.discharge(pool.track({ binding: 'b', obligation: 'hang' }), {
      signal: controller.signal,
    });
    const reason = new Error('shutting down');
    controller.abort(reason);
    expect(await pending).toMatchObject({
      status: 'failed',
      error: { code: 'HANDLE_DISCHARGE_ABORTED', cause: reason },
    });
  });
});

describe('onEvent', () => {
  it('reports tracked, discharged, failed and abandoned handles after updating state', async () => {
    const events: string[] = [];
    const pool = createHandlePool({
      dischargers: {
        ok: () => {},
        bad: () => {
          throw new Error('no');
        },
      },
      onEvent: (event: HandlePoolEvent) => {
        events.push(`${event.type} ${event.handle.binding} live=${pool.size}`);
      },
    });
    const ok = pool.track({ binding: 'ok', obligation: 'ok' });
    const bad = pool.track({ binding: 'bad', obligation: 'bad' });
    const none = pool.track({ binding: 'none', obligation: 'none' });
    const gone = pool.track({ binding: 'gone', obligation: 'ok' });
    await pool.discharge(ok);
    await pool.discharge(bad);
    await pool.discharge(none);
    pool.forget(gone);
    expect(events).toEqual([
      'handle-tracked ok live=1',
      'handle-tracked bad live=2',
      'handle-tracked none live=3',
      'handle-tracked gone live=4',
      'handle-discharged ok live=3',
      'handle-failed bad live=2',
      'handle-abandoned none live=1',
      'handle-discharged gone live=0',
    ]);
  });

  it('re-throws an observer error from a microtask without disturbing the pool', async () => {
    const scheduled: (() => void)[] = [];
    vi.stubGlobal('queueMicrotask', (callback: () => void) => scheduled.push(callback));
    try {
      const observerError = new Error('observer broke');
      const pool = createHandlePool({
        onEvent: () => {
          throw observerError;
        },
      });
      const handle = pool.track({ binding: 'b', obligation: 'x' });
      expect(pool.get(handle.id)).toBe(handle);
      expect(scheduled).toHaveLength(1);
      expect(() => scheduled[0]?.()).toThrow(observerError);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

describe('types', () => {
  it('accepts resource-typed dischargers in the dischargers record', async () => {
    const closed: string[] = [];
    const closeFile: Discharger<{ path: string }> = (handle) => void closed.push(handle.resource.path);
    const pool = createHandlePool({ dischargers: { 'fs:close': closeFile } });
    const handle = pool.track({ binding: 'f', obligation: 'fs:close', resource: { path: '/tmp/f' } });
    expect(handle.resource.path).toBe('/tmp/f');
    await pool.drain();
    expect(closed).toEqual(['/tmp/f']);
  });
});
