import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HandlePoolDrainError, HandlePoolError } from './errors';
import type { Handle } from './index';
import { createHandlePool } from './index';

const ids = (handles: readonly Handle[]) => handles.map((handle) => handle.id);

describe('drain', () => {
  it('discharges newest first, one at a time', async () => {
    const log: string[] = [];
    const pool = createHandlePool({
      dischargers: {
        'async:close': async (handle) => {
          log.push(`start ${handle.binding}`);
          await new Promise((resolve) => setTimeout(resolve, 1));
          log.push(`end ${handle.binding}`);
        },
      },
    });
    for (const binding of ['connection', 'transaction', 'cursor'])
      pool.track({ binding, obligation: 'async:close' });

    const report = await pool.drain();
    expect(log).toEqual([
      'start cursor',
      'end cursor',
      'start transaction',
      'end transaction',
      'start connection',
      'end connection',
    ]);
    expect(ids(report.discharged)).toEqual(['h_3', 'h_2', 'h_1']);
    expect(report.failed).toEqual([]);
    expect(report.noDischarger).toEqual([]);
    expect(report.error).toBeUndefined();
    expect(pool.size).toBe(0);
  });

  it('collects sync and async failures into one AggregateError and still discharges the rest', async () => {
    const syncError = new Error('sync close failed');
    const asyncError = new Error('async close failed');
    const discharged: string[] = [];
    const pool = createHandlePool({
      dischargers: {
        ok: (handle) => void discharged.push(handle.binding),
        'sync:bad': () => {
          throw syncError;
        },
        'async:bad': async () => {
          throw asyncError;
        },
      },
    });
    const first = pool.track({ binding: 'first', obligation: 'ok' });
    const syncBad = pool.track({ binding: 'sync', obligation: 'sync:bad' });
    const middle = pool.track({ binding: 'middle', obligation: 'ok' });
    const asyncBad = pool.track({ binding: 'async', obligation: 'async:bad' });
    const last = pool.track({ binding: 'last', obligation: 'ok' });

    const report = await pool.drain();
    expect(discharged).toEqual(['last', 'middle', 'first']);
    expect(report.discharged).toEqual([last, middle, first]);
    expect(report.failed.map((failure) => failure.handle)).toEqual([asyncBad, syncBad]);
    expect(report.failed.map((failure) => failure.error.cause)).toEqual([asyncError, syncError]);

    const error = report.error;
    expect(error).toBeInstanceOf(AggregateError);
    expect(HandlePoolDrainError.isInstance(error)).toBe(true);
    expect(error?.code).toBe('HANDLE_POOL_DRAIN_FAILED');
    expect(error?.errors).toEqual(report.failed.map((failure) => failure.error));
    expect(error?.errors.every((item) => HandlePoolError.isInstance(item))).toBe(true);
    expect(error?.message).toBe(
      '[handle-pool] 2 of 5 handles failed to discharge: h_4 (HANDLE_DISCHARGE_FAILED), h_2 (HANDLE_DISCHARGE_FAILED)',
    );
    expect(error?.report).toBe(report);
    // The back-reference is hidden, so the report stays serializable.
    expect(() => JSON.stringify(report)).not.toThrow();
  });

  it('reports handles without a discharger once, in noDischarger', async () => {
    const pool = createHandlePool({ dischargers: { ok: () => {} } });
    const orphan = pool.track({ binding: 'orphan', obligation: 'gpu:free' });
    const fine = pool.track({ binding: 'fine', obligation: 'ok' });
    const report = await pool.drain();
    expect(report.noDischarger).toEqual([orphan]);
    expect(report.discharged).toEqual([fine]);
    expect(report.error).toBeUndefined();
  });

  it('rejects with the HandlePoolDrainError when throwOnError is set', async () => {
    const pool = createHandlePool({
      dischargers: {
        bad: () => {
          throw new Error('nope');
        },
      },
    });
    pool.track({ binding: 'b', obligation: 'bad' });
    const error = await pool.drain({ throwOnError: true }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(HandlePoolDrainError.isInstance(error)).toBe(true);
    expect((error as HandlePoolDrainError).report.failed).toHaveLength(1);
    expect(pool.size).toBe(0);

    // Without failures it resolves.
    pool.track({ binding: 'c', obligation: 'none' });
    await expect(pool.drain({ throwOnError: true })).resolves.toMatchObject({
      noDischarger: [{ binding: 'c' }],
    });
  });

  it('shares one run between concurrent drains', async () => {
    const discharger = vi.fn(async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
    });
    const pool = createHandlePool({ dischargers: { x: discharger } });
    pool.track({ binding: 'a', obligation: 'x' });
    pool.track({ binding: 'b', obligation: 'x' });
    const first = pool.drain();
    const second = pool.drain();
    expect(pool.stats().draining).toBe(true);
    expect(second).toBe(first);
    const [one, two] = await Promise.all([first, second]);
    expect(two).toBe(one);
    expect(discharger).toHaveBeenCalledTimes(2);
    expect(pool.stats().draining).toBe(false);
    // A later drain is a new run.
    expect(await pool.drain()).toMatchObject({ discharged: [], failed: [], noDischarger: [] });
  });

  it('also drains handles tracked while it runs, and joins discharges already running', async () => {
    let releaseOld: () => void = () => {};
    const pool = createHandlePool();
    const order: string[] = [];
    pool.registerDischarger('slow', (handle) => {
      order.push(handle.binding);
      return new Promise<void>((resolve) => {
        releaseOld = resolve;
      });
    });
    pool.registerDischarger('spawns', (handle) => {
      order.push(handle.binding);
      // A discharger that needs a follow-up resource cleaned up too.
      pool.track({ binding: 'follow-up', obligation: 'plain' });
    });
    pool.registerDischarger('plain', (handle) => void order.push(handle.binding));

    const old = pool.track({ binding: 'old', obligation: 'slow' });
    const direct = pool.discharge(old); // already running when the drain starts
    pool.track({ binding: 'spawner', obligation: 'spawns' });
    const draining = pool.drain();
    await Promise.resolve();
    releaseOld();
    const report = await draining;

    expect(order).toEqual(['old', 'spawner', 'follow-up']);
    expect(report.discharged.map((handle) => handle.binding)).toEqual(['spawner', 'old', 'follow-up']);
    expect((await direct).handle).toBe(old);
    expect(pool.size).toBe(0);
  });

  it('reports handles settled by someone else during the drain exactly once', async () => {
    const discharger = vi.fn();
    const pool = createHandlePool({ dischargers: { x: discharger } });
    const victim = pool.track({ binding: 'victim', obligation: 'x' });
    pool.registerDischarger('forgets', () => {
      pool.forget(victim);
    });
    pool.track({ binding: 'killer', obligation: 'forgets' });
    const report = await pool.drain();
    expect(report.discharged.map((handle) => handle.binding)).toEqual(['killer', 'victim']);
    expect(discharger).not.toHaveBeenCalled();
    expect(await pool.discharge(victim)).toMatchObject({ forgotten: true });
  });

  it('closes the pool first with close: true', async () => {
    const pool = createHandlePool();
    pool.registerDischarger('x', () => {
      expect(() => pool.track({ binding: 'during', obligation: 'x' })).toThrow(/closed/);
    });
    pool.track({ binding: 'a', obligation: 'x' });
    const report = await pool.drain({ close: true });
    expect(report.discharged).toHaveLength(1);
    expect(pool.closed).toBe(true);
  });

  it('reports every remaining handle as aborted, without running it, when the signal aborts', async () => {
    const controller = new AbortController();
    const ran: string[] = [];
    const pool = createHandlePool({
      dischargers: {
        x: (handle) => {
          ran.push(handle.binding);
          // After c returns, as a shutdown deadline firing between two discharges would.
          if (handle.binding === 'c') queueMicrotask(() => controller.abort(new Error('deadline')));
        },
      },
    });
    for (const binding of ['a', 'b', 'c', 'd']) pool.track({ binding, obligation: 'x' });
    pool.track({ binding: 'orphan', obligation: 'none' });

    const report = await pool.drain({ signal: controller.signal });
    expect(ran).toEqual(['d', 'c']);
    expect(report.noDischarger.map((handle) => handle.binding)).toEqual(['orphan']);
    expect(report.discharged.map((handle) => handle.binding)).toEqual(['d', 'c']);
    expect(report.failed.map((failure) => [failure.handle.binding, failure.error.code])).toEqual([
      ['b', 'HANDLE_DISCHARGE_ABORTED'],
      ['a', 'HANDLE_DISCHARGE_ABORTED'],
    ]);
    expect(pool.size).toBe(0);
  });

  it('rejects a malformed timeout', async () => {
    const pool = createHandlePool();
    await expect(pool.drain({ timeoutMs: Number.NaN })).rejects.toMatchObject({
      code: 'HANDLE_POOL_INVALID_INPUT',
    });
  });

  describe('with fake timers', () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it('times out a discharger that never settles and still discharges the rest', async () => {
      const discharged: string[] = [];
      const pool = createHandlePool({ defaultTimeoutMs: 60_000 });
      pool.registerDischarger('ok', (handle) => void discharged.push(handle.binding));
      pool.registerDischarger('hang', () => new Promise<void>(() => {}));
      pool.track({ binding: 'older', obligation: 'ok' });
      const stuck = pool.track({ binding: 'stuck', obligation: 'hang' });
      pool.track({ binding: 'newer', obligation: 'ok' });

      let report: Awaited<ReturnType<typeof pool.drain>> | undefined;
      void pool.drain({ timeoutMs: 1_000 }).then((result) => {
        report = result;
      });
      await vi.advanceTimersByTimeAsync(999);
      expect(report).toBeUndefined();
      expect(discharged).toEqual(['newer']);

      await vi.advanceTimersByTimeAsync(1);
      expect(discharged).toEqual(['newer', 'older']);
      expect(report?.discharged.map((handle) => handle.binding)).toEqual(['newer', 'older']);
      expect(report?.failed).toHaveLength(1);
      expect(report?.failed[0]?.handle).toBe(stuck);
      expect(report?.failed[0]?.error.code).toBe('HANDLE_DISCHARGE_TIMEOUT');
      expect(report?.error?.errors).toEqual([report?.failed[0]?.error]);
      expect(report?.durationMs).toBe(1_000);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('gives each handle its own timeout', async () => {
      const pool = createHandlePool({ dischargers: { hang: () => new Promise<void>(() => {}) } });
      for (const binding of ['a', 'b', 'c']) pool.track({ binding, obligation: 'hang' });
      const pending = pool.drain({ timeoutMs: 100 });
      await vi.advanceTimersByTimeAsync(300);
      const report = await pending;
      expect(report.failed.map((failure) => failure.error.code)).toEqual([
        'HANDLE_DISCHARGE_TIMEOUT',
        'HANDLE_DISCHARGE_TIMEOUT',
        'HANDLE_DISCHARGE_TIMEOUT',
      ]);
      expect(report.durationMs).toBe(300);
    });
  });
});
