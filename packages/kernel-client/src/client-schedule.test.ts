// Schedules of KernelClient on a manual clock with a scripted transport: retries, backoff, the
// whole-call deadline, the in-flight bound and close(). Nothing waits on real time.
import { type ManualClock, manualClock, seededRandom } from '@trestle/ws-bridge/testing';
import { describe, expect, it } from 'vitest';
import { retryDelay } from './backoff';
import { KernelClient } from './client';
import type { KernelClientOptions } from './config';
import { KernelTransportError, type TransportFailureKind } from './errors';
import type { KernelRequest, KernelResult, KernelTransport, SendOptions, TransportReply } from './types';

/** One scripted attempt: what the transport does with a send. */
type Step = (request: KernelRequest, options: SendOptions) => Promise<TransportReply>;

const ok =
  (body: unknown = { ok: true }, wireBytes = 20): Step =>
  async () => ({ body, wireBytes });
const failWith =
  (kind: TransportFailureKind, wireBytes = 0): Step =>
  async () => {
    throw new KernelTransportError(kind, `scripted ${kind}`, { wireBytes });
  };
/** Never replies; rejects with `aborted` when the signal fires, like a well-behaved transport. */
const hang: Step = (_request, { signal }) =>
  new Promise((_resolve, reject) =>
    signal.addEventListener('abort', () => reject(new KernelTransportError('aborted', 'aborted')), {
      once: true,
    }),
  );
/** Never settles, even when aborted (a misbehaving plugin). */
const deaf: Step = () => new Promise<never>(() => {});

interface Scripted extends KernelTransport {
  /** Clock time of each send, with its method. */
  readonly sends: { readonly method: string; readonly at: number }[];
  /** Sends in progress now, and the most seen at once. */
  readonly active: number;
  readonly maxActive: number;
  readonly closes: number;
}

/** A transport that plays `steps` in order, then `fallback` for every later send. */
function scripted(clock: ManualClock, steps: Step[], fallback: Step = ok()): Scripted {
  const queue = [...steps];
  let active = 0;
  let maxActive = 0;
  let closes = 0;
  const sends: { method: string; at: number }[] = [];
  return {
    name: 'scripted',
    endpoint: 'scripted://test',
    sends,
    get active() {
      return active;
    },
    get maxActive() {
      return maxActive;
    },
    get closes() {
      return closes;
    },
    async send(request, options) {
      sends.push({ method: request.method, at: clock.now() });
      active++;
      maxActive = Math.max(maxActive, active);
      try {
        return await (queue.shift() ?? fallback)(request, options);
      } finally {
        active--;
      }
    },
    async isAvailable() {
      return true;
    },
    async close() {
      closes++;
    },
  };
}

/** Lets every pending promise callback run (no time passes on the manual clock). */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs the clock timer by timer until `promise` settles. */
async function settle<T>(clock: ManualClock, promise: Promise<T>): Promise<T> {
  let done = false;
  const tracked = promise.finally(() => {
    done = true;
  });
  await flush();
  while (!done && clock.nextAt !== undefined) {
    clock.set(clock.nextAt);
    await flush();
  }
  return tracked;
}

function setup(steps: Step[], options: KernelClientOptions = {}, fallback?: Step) {
  const clock = manualClock(1_000);
  const transport = scripted(clock, steps, fallback);
  const client = new KernelClient({
    enabled: true,
    transport,
    clock,
    random: seededRandom(42),
    retryDelayMs: 100,
    ...options,
  });
  return { clock, transport, client };
}

describe('KernelClient retries', () => {
  it('backs off exponentially with equal jitter, exact delays from the seeded random', async () => {
    const { clock, transport, client } = setup([failWith('connect'), failWith('lost'), failWith('connect')], {
      retryAttempts: 3,
    });
    const result = await settle(clock, client.ping());
    expect(result).toMatchObject({ status: 'ok', retryCount: 3 });
    const random = seededRandom(42);
    const delays = [0, 1, 2].map((attempt) => retryDelay(attempt, { baseMs: 100, maxMs: 3_000, random }));
    // [d/2, d] with d = 100, 200, 400: growing, unlike the seed's constant delay.
    delays.forEach((delay, attempt) => {
      expect(delay).toBeGreaterThanOrEqual(50 * 2 ** attempt);
      expect(delay).toBeLessThanOrEqual(100 * 2 ** attempt);
    });
    const at = transport.sends.map((send) => send.at - 1_000);
    expect(at).toEqual([0, delays[0], delays[0]! + delays[1]!, delays[0]! + delays[1]! + delays[2]!]);
    expect(result.latencyMs).toBe(at[3]);
  });

  it.each([0, 1, 2, 3, 4, 5])(
    'makes at most retryAttempts + 1 = %i + 1 attempts (the seed made (R+1)^2)',
    async (retryAttempts) => {
      const { clock, transport, client } = setup(
        [],
        { retryAttempts, timeoutMs: 30_000 },
        failWith('connect'),
      );
      const result = await settle(clock, client.ping());
      expect(transport.sends).toHaveLength(retryAttempts + 1);
      expect(result).toMatchObject({
        status: 'unavailable',
        errorCode: 'KERNEL_UNAVAILABLE',
        retryCount: retryAttempts,
        success: false,
      });
    },
  );

  it.each([
    ['connect', 'unavailable', 'KERNEL_UNAVAILABLE', 3],
    ['lost', 'error', 'KERNEL_CONNECTION_LOST', 3],
    ['bad_reply', 'error', 'KERNEL_BAD_REPLY', 1],
    ['too_large', 'error', 'KERNEL_RESPONSE_TOO_LARGE', 1],
    ['http_status', 'error', 'KERNEL_HTTP_STATUS', 1],
    ['closed', 'unavailable', 'KERNEL_CLOSED', 1],
    ['aborted', 'error', 'KERNEL_ABORTED', 1],
  ] as const)(
    'PING failing with %s: %s %s after %i attempt(s)',
    async (kind, status, errorCode, attempts) => {
      const { clock, transport, client } = setup([], {}, failWith(kind, 7));
      const result = await settle(clock, client.ping());
      expect(transport.sends).toHaveLength(attempts);
      expect(result).toMatchObject({
        status,
        errorCode,
        retryCount: attempts - 1,
        payload: null,
        payloadSize: 7,
      });
      expect(result.reason).toContain(`scripted ${kind}`);
    },
  );

  it('never retries a non-idempotent method (APPLY_POLICY, unknown methods)', async () => {
    for (const call of [
      (client: KernelClient) => client.applyPolicy({ mode: 'strict' }),
      (client: KernelClient) => client.call('RESTART'),
      (client: KernelClient) => client.ping({ idempotent: false }),
    ]) {
      const { clock, transport, client } = setup([], {}, failWith('connect'));
      const result = await settle(clock, call(client));
      expect(transport.sends).toHaveLength(1);
      expect(result).toMatchObject({ status: 'unavailable', retryCount: 0 });
    }
  });

  it('retries a method declared idempotent, per call or by option', async () => {
    const perCall = setup([failWith('lost')]);
    expect(await settle(perCall.clock, perCall.client.call('LIST', {}, { idempotent: true }))).toMatchObject({
      status: 'ok',
      retryCount: 1,
    });
    const byOption = setup([failWith('lost')], { idempotentMethods: ['LIST'] });
    expect(await settle(byOption.clock, byOption.client.call('LIST'))).toMatchObject({
      status: 'ok',
      retryCount: 1,
    });
    expect(await settle(byOption.clock, byOption.client.ping())).toMatchObject({
      status: 'ok',
      retryCount: 0,
    });
  });

  it("never retries a daemon's error reply", async () => {
    const { clock, transport, client } = setup(
      [],
      {},
      ok({ error: true, message: 'busy', code: 'E_BUSY' }, 40),
    );
    const result = await settle(clock, client.ping());
    expect(transport.sends).toHaveLength(1);
    expect(result).toEqual({
      status: 'error',
      success: false,
      reason: 'busy',
      latencyMs: 0,
      payloadSize: 40,
      payload: { error: true, message: 'busy', code: 'E_BUSY' },
      errorCode: 'E_BUSY',
      retryCount: 0,
    });
  });

  it('skips a retry whose sleep would pass the deadline and reports the last failure', async () => {
    // Delays with random() = 1: 400, then 800. At t=400 the next sleep would end at 1200 > 1000.
    const { clock, transport, client } = setup(
      [],
      {
        timeoutMs: 1_000,
        retryDelayMs: 400,
        retryAttempts: 5,
        random: () => 1,
      },
      failWith('connect'),
    );
    const result = await settle(clock, client.ping());
    expect(transport.sends.map((send) => send.at - 1_000)).toEqual([0, 400]);
    expect(result).toMatchObject({
      status: 'unavailable',
      errorCode: 'KERNEL_UNAVAILABLE',
      retryCount: 1,
      latencyMs: 400,
    });
  });
});

describe('KernelClient whole-call deadline', () => {
  it('times out at timeoutMs from the start of call()', async () => {
    const { clock, client } = setup([hang], { timeoutMs: 750 });
    const result = await settle(clock, client.ping());
    expect(result).toMatchObject({
      status: 'timeout',
      success: false,
      errorCode: 'KERNEL_TIMEOUT',
      latencyMs: 750,
      payload: null,
      payloadSize: 0,
    });
  });

  it('holds even when the transport ignores the signal', async () => {
    const { clock, client } = setup([deaf], { timeoutMs: 300 });
    expect(await settle(clock, client.ping())).toMatchObject({ status: 'timeout', latencyMs: 300 });
    expect(client.stats().inflight).toBe(0);
  });

  it('covers retries and backoff: the attempt after a sleep ends at the same deadline', async () => {
    const { clock, transport, client } = setup([failWith('connect'), hang], {
      timeoutMs: 1_000,
      random: () => 0,
    });
    const result = await settle(clock, client.ping());
    expect(transport.sends.map((send) => send.at - 1_000)).toEqual([0, 50]);
    expect(result).toMatchObject({ status: 'timeout', latencyMs: 1_000, retryCount: 1 });
  });

  it('covers the wait for an in-flight slot', async () => {
    const { clock, transport, client } = setup([hang, hang], { timeoutMs: 1_000, maxInflight: 1 });
    const first = client.ping();
    clock.advance(400);
    const second = client.ping({ timeoutMs: 300 });
    await flush();
    expect(client.stats()).toMatchObject({ inflight: 1, waiting: 1 });
    clock.advance(300);
    await flush();
    // The second call timed out while waiting: it never reached the transport.
    expect(await second).toMatchObject({ status: 'timeout', latencyMs: 300 });
    expect(transport.sends).toHaveLength(1);
    expect(client.stats()).toMatchObject({ inflight: 1, waiting: 0 });
    expect(await settle(clock, first)).toMatchObject({ status: 'timeout', latencyMs: 1_000 });
  });

  it('reports a caller abort as error KERNEL_ABORTED', async () => {
    const { clock, client } = setup([hang]);
    const controller = new AbortController();
    const call = client.ping({ signal: controller.signal });
    clock.advance(120);
    await flush();
    controller.abort();
    expect(await call).toMatchObject({ status: 'error', errorCode: 'KERNEL_ABORTED', latencyMs: 120 });
    expect(await client.ping({ signal: AbortSignal.abort() })).toMatchObject({ errorCode: 'KERNEL_ABORTED' });
  });

  it('refuses a per-call timeout out of bounds without touching the transport', async () => {
    const { transport, client } = setup([]);
    for (const timeoutMs of [99, 30_001, 1.5]) {
      const result = await client.ping({ timeoutMs });
      expect(result).toMatchObject({ status: 'invalid_request', errorCode: 'KERNEL_INVALID_REQUEST' });
      expect(result.reason).toContain('timeoutMs');
    }
    expect(transport.sends).toHaveLength(0);
  });
});

describe('KernelClient in-flight bound', () => {
  it('keeps at most maxInflight sends at once, in FIFO order, the slot held across retries', async () => {
    const { clock, transport, client } = setup(
      [failWith('connect')],
      { maxInflight: 3 },
      (_request, { signal }) =>
        new Promise((resolve, reject) => {
          const timer = clock.setTimeout(() => resolve({ body: { ok: true }, wireBytes: 11 }), 10);
          signal.addEventListener('abort', () => {
            clock.clearTimeout(timer);
            reject(new KernelTransportError('aborted', 'aborted'));
          });
        }),
    );
    const calls: Promise<KernelResult>[] = [];
    for (let i = 0; i < 10; i++) calls.push(client.call('PING', { i }));
    await flush();
    expect(client.stats()).toMatchObject({ inflight: 3, waiting: 7 });
    const results = await settle(clock, Promise.all(calls));
    expect(results.every((result) => result.status === 'ok')).toBe(true);
    expect(transport.maxActive).toBe(3);
    expect(transport.sends).toHaveLength(11);
    expect(client.stats()).toMatchObject({ inflight: 0, waiting: 0, calls: { ok: 10 }, retries: 1 });
  });
});

describe('KernelClient.close()', () => {
  it('resolves pending and waiting calls at once with unavailable/KERNEL_CLOSED, and later calls too', async () => {
    const { clock, transport, client } = setup([hang, hang], { maxInflight: 1 });
    const sending = client.ping();
    const waiting = client.getStatus();
    await flush();
    const closing = client.close();
    expect(client.close()).toBe(closing);
    const closed = { status: 'unavailable', errorCode: 'KERNEL_CLOSED', success: false };
    expect(await sending).toMatchObject(closed);
    expect(await waiting).toMatchObject(closed);
    await closing;
    expect(clock.now()).toBe(1_000);
    expect(await client.ping()).toMatchObject(closed);
    expect(transport.closes).toBe(1);
    expect(transport.sends).toHaveLength(1);
    expect(await client.isAvailable()).toBe(false);
    expect(client.stats()).toMatchObject({
      closed: true,
      inflight: 0,
      waiting: 0,
      calls: { unavailable: 3 },
    });
  });

  it('resolves a call sleeping before a retry', async () => {
    const { transport, client } = setup([failWith('connect')]);
    const call = client.ping();
    await flush();
    expect(transport.sends).toHaveLength(1);
    await client.close();
    expect(await call).toMatchObject({ status: 'unavailable', errorCode: 'KERNEL_CLOSED', retryCount: 0 });
    expect(transport.sends).toHaveLength(1);
  });
});
