import { describe, expect, it } from 'vitest';
import { KernelError } from './errors';
import { Semaphore } from './semaphore';

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Semaphore', () => {
  it('grants up to the limit, then queues in FIFO order', async () => {
    const slots = new Semaphore(2);
    const a = await slots.acquire();
    const b = await slots.acquire();
    const order: string[] = [];
    const c = slots.acquire().then((release) => {
      order.push('c');
      return release;
    });
    const d = slots.acquire().then((release) => {
      order.push('d');
      return release;
    });
    await flush();
    expect([slots.held, slots.waiting, order]).toEqual([2, 2, []]);
    b();
    const releaseC = await c;
    expect(order).toEqual(['c']);
    a();
    const releaseD = await d;
    expect(order).toEqual(['c', 'd']);
    releaseC();
    releaseD();
    expect([slots.held, slots.waiting]).toEqual([0, 0]);
  });

  it('ignores a second release', async () => {
    const slots = new Semaphore(1);
    const release = await slots.acquire();
    release();
    release();
    expect(slots.held).toBe(0);
    await slots.acquire();
    expect(slots.tryAcquire()).toBeUndefined();
  });

  it('removes an aborted waiter, which never gets a slot', async () => {
    const slots = new Semaphore(1);
    const first = await slots.acquire();
    const controller = new AbortController();
    const aborted = slots.acquire(controller.signal);
    const next = slots.acquire();
    expect(slots.waiting).toBe(2);
    controller.abort(new Error('gone'));
    await expect(aborted).rejects.toThrow('gone');
    expect(slots.waiting).toBe(1);
    first();
    const release = await next;
    expect(slots.held).toBe(1);
    release();
    expect(slots.held).toBe(0);
  });

  it('rejects at once with an aborted signal', async () => {
    const slots = new Semaphore(1);
    await expect(slots.acquire(AbortSignal.abort(new Error('early')))).rejects.toThrow('early');
    expect(slots.held).toBe(0);
  });

  it('does not let tryAcquire jump the queue', async () => {
    const slots = new Semaphore(1);
    const first = await slots.acquire();
    const waiting = slots.acquire();
    first();
    expect(slots.tryAcquire()).toBeUndefined();
    (await waiting)();
    expect(slots.tryAcquire()).toBeTypeOf('function');
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() => new Semaphore(0)).toThrow(KernelError);
    expect(() => new Semaphore(1.5)).toThrow(/positive integer/);
  });
});
