// KernelClient over real Unix sockets, in both connection modes: a createKernelServer daemon for the
// happy paths and the in-flight bound, and the scripted fault server of test-support (one fault per
// request, so both modes see the same faults) for the rest. Each fault gives its typed result and the
// next call on the same client succeeds. Real clock with short deadlines; timing only against
// generous upper bounds.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KernelClient } from './client';
import { lineCodec } from './codec-line';
import type { KernelClientOptions, KernelMode } from './config';
import { createKernelServer, KernelMethodError, type KernelServer } from './server';
import {
  type FaultConnection,
  type FaultServer,
  faultBytes,
  startFaultServer,
} from './test-support/fault-server';
import { tempSocketPath } from './test-support/socket-path';
import type { KernelRequest } from './types';

/** What the daemon does with one request, on its connection. */
type Fault = (connection: FaultConnection, request: KernelRequest) => void;

/** A fault server that plays `faults` in order, one per request, and answers the others. */
async function startScriptedDaemon() {
  const methods: string[] = [];
  const faults: Fault[] = [];
  const timers = new Set<ReturnType<typeof setInterval>>();
  const server: FaultServer = await startFaultServer({
    kind: 'script',
    onRequest: (request, connection) => {
      methods.push(request.method);
      const fault = faults.shift();
      if (fault) fault(connection, request);
      else connection.reply({ ok: true, method: request.method }, request.id);
    },
  });
  return {
    path: server.path,
    methods,
    faults,
    /** Announces a 100-byte frame, then writes a byte every 50 ms (until the test ends). */
    trickle: ((connection) => {
      connection.write(Uint8Array.of(0, 0, 0, 100));
      timers.add(setInterval(() => connection.write(Uint8Array.of(0x20)), 50));
    }) satisfies Fault,
    stopTrickles: () => {
      for (const timer of timers) clearInterval(timer);
      timers.clear();
    },
    stop: () => server.stop(),
  };
}

const dies: Fault = (connection) => connection.end();
const silent: Fault = () => {};
const hugePrefix: Fault = (connection) => connection.write(faultBytes.hugePrefix());
const truncated: Fault = (connection) => {
  connection.write(faultBytes.truncated());
  connection.end();
};
const garbage: Fault = (connection) => connection.write(faultBytes.garbage());
const notJson: Fault = (connection) => connection.write(faultBytes.json('this is { not json'));
const nonObject: Fault = (connection) => connection.write(faultBytes.json('[1,2]'));

describe.each(['oneshot', 'persistent'] as const)(
  'KernelClient over a Unix socket (%s)',
  (mode: KernelMode) => {
    let raw: Awaited<ReturnType<typeof startScriptedDaemon>>;
    let client: KernelClient;
    const newClient = (options: KernelClientOptions = {}) => {
      client = new KernelClient({
        enabled: true,
        endpoint: `unix://${raw.path}`,
        mode,
        timeoutMs: 300,
        retryDelayMs: 10,
        ...options,
      });
      return client;
    };
    const stillWorks = async () => {
      expect(await client.getStatus()).toMatchObject({
        status: 'ok',
        payload: { ok: true, method: 'STATUS' },
      });
    };

    beforeAll(async () => {
      raw = await startScriptedDaemon();
    });
    afterAll(async () => {
      await raw.stop();
    });
    afterEach(async () => {
      raw.faults.length = 0;
      raw.stopTrickles();
      await client?.close();
    });

    it('makes a round trip; payloadSize counts the framing; no id leaks into the payload', async () => {
      newClient();
      const result = await client.ping();
      const json = JSON.stringify(
        mode === 'persistent' ? { ok: true, method: 'PING', id: 1 } : { ok: true, method: 'PING' },
      );
      expect(result).toMatchObject({ status: 'ok', retryCount: 0, payloadSize: 4 + Buffer.byteLength(json) });
      expect(result.payload).toEqual({ ok: true, method: 'PING' });
      expect(client.transport.name).toBe('unix');
      expect(await client.isAvailable()).toBe(true);
    });

    it('refuses a 4 GiB length prefix at once, without allocating', async () => {
      newClient();
      raw.faults.push(hugePrefix);
      const before = process.memoryUsage().arrayBuffers;
      const result = await client.ping();
      expect(result).toMatchObject({
        status: 'error',
        errorCode: 'KERNEL_RESPONSE_TOO_LARGE',
        retryCount: 0,
      });
      expect(result.latencyMs).toBeLessThan(250);
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
      await stillWorks();
    });

    it.each([
      ['a truncated frame', truncated],
      ['garbage (not UTF-8)', garbage],
      ['a frame that is not JSON', notJson],
      ['non-object JSON [1,2]', nonObject],
    ])('reports %s as KERNEL_BAD_REPLY, not retried', async (_name, fault) => {
      newClient();
      raw.faults.push(fault);
      const before = raw.methods.length;
      expect(await client.ping()).toMatchObject({
        status: 'error',
        errorCode: 'KERNEL_BAD_REPLY',
        retryCount: 0,
      });
      expect(raw.methods.length - before).toBe(1);
      await stillWorks();
    });

    it('retries a PING whose daemon dies mid-call', async () => {
      newClient();
      raw.faults.push(dies);
      const before = raw.methods.length;
      expect(await client.ping()).toMatchObject({ status: 'ok', retryCount: 1 });
      expect(raw.methods.slice(before)).toEqual(['PING', 'PING']);
      await stillWorks();
    });

    it('does not retry APPLY_POLICY when the daemon dies mid-call', async () => {
      newClient();
      raw.faults.push(dies);
      const before = raw.methods.length;
      expect(await client.applyPolicy({ mode: 'strict' })).toMatchObject({
        status: 'error',
        errorCode: 'KERNEL_CONNECTION_LOST',
        retryCount: 0,
      });
      expect(raw.methods.slice(before)).toEqual(['APPLY_POLICY']);
      await stillWorks();
    });

    it('times out at the deadline when the daemon never answers', async () => {
      newClient();
      raw.faults.push(silent);
      const result = await client.ping();
      expect(result).toMatchObject({ status: 'timeout', errorCode: 'KERNEL_TIMEOUT' });
      expect(result.latencyMs).toBeGreaterThanOrEqual(290);
      expect(result.latencyMs).toBeLessThan(3_000);
      await stillWorks();
    });

    it('keeps the whole-call deadline against a daemon that trickles a byte at a time', async () => {
      newClient();
      raw.faults.push(raw.trickle);
      const result = await client.ping();
      expect(result).toMatchObject({ status: 'timeout', errorCode: 'KERNEL_TIMEOUT' });
      expect(result.latencyMs).toBeLessThan(3_000);
    });

    // In persistent mode the trickled frame is still arriving on the shared connection after the
    // deadline: every later reply queues behind it. The transport must not keep using a connection
    // stalled in the middle of a frame once the call it was for has given up.
    it('keeps working after a trickled reply timed out', async () => {
      newClient();
      raw.faults.push(raw.trickle);
      expect(await client.ping()).toMatchObject({ status: 'timeout' });
      await stillWorks();
    });

    it('reports a missing socket as unavailable after retries for PING', async () => {
      client = new KernelClient({
        enabled: true,
        endpoint: `unix://${tempSocketPath('nobody')}`,
        mode,
        retryDelayMs: 10,
      });
      expect(await client.ping()).toMatchObject({
        status: 'unavailable',
        errorCode: 'KERNEL_UNAVAILABLE',
        retryCount: 2,
      });
      expect(await client.isAvailable()).toBe(false);
    });
  },
);

describe.each(['oneshot', 'persistent'] as const)(
  'KernelClient and createKernelServer (%s)',
  (mode: KernelMode) => {
    let server: KernelServer;
    let path: string;
    let active = 0;
    let maxActive = 0;
    let gate: { count: number; total: number } | undefined;
    let arrived = 0;
    const held: (() => void)[] = [];
    const policies: unknown[] = [];

    beforeAll(async () => {
      path = tempSocketPath('server');
      server = createKernelServer({
        methods: {
          PING: () => ({ pong: true }),
          STATUS: () => ({ state: 'running' }),
          APPLY_POLICY: (params) => {
            policies.push(params.policy);
            if (params.policy === null) throw new KernelMethodError('BAD_POLICY', 'policy is required');
            return { applied: true };
          },
          WORK: async () => {
            active++;
            maxActive = Math.max(maxActive, active);
            arrived++;
            if (gate !== undefined) {
              const { count, total } = gate;
              await new Promise<void>((resolve) => {
                held.push(resolve);
                if (held.length >= count || arrived >= total)
                  setImmediate(() => {
                    for (const release of held.splice(0)) release();
                  });
              });
            }
            active--;
            return { done: true };
          },
        },
      });
      await server.listen({ path });
    });
    afterAll(async () => {
      await server.close();
    });

    it('sends applyPolicy(p) as params.policy == p, and passes a method error through', async () => {
      const client = new KernelClient({ enabled: true, endpoint: `unix://${path}`, mode });
      try {
        const policy = { mode: 'strict', limits: { cpu: 2 } };
        expect(await client.applyPolicy(policy)).toMatchObject({ status: 'ok', payload: { applied: true } });
        expect(policies.at(-1)).toEqual(policy);
        expect(await client.call('APPLY_POLICY', { policy: null })).toMatchObject({
          status: 'error',
          errorCode: 'BAD_POLICY',
          reason: 'policy is required',
          retryCount: 0,
        });
        expect(await client.call('NOPE')).toMatchObject({ status: 'error', errorCode: 'UNKNOWN_METHOD' });
        expect(await client.ping()).toMatchObject({ status: 'ok', payload: { pong: true } });
      } finally {
        await client.close();
      }
    });

    it('keeps maxInflight calls at the daemon when 20 are issued', async () => {
      const client = new KernelClient({
        enabled: true,
        endpoint: `unix://${path}`,
        mode,
        maxInflight: 3,
        timeoutMs: 10_000,
      });
      try {
        maxActive = 0;
        arrived = 0;
        gate = { count: 3, total: 20 };
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => client.call('WORK', { i })));
        expect(results.every((result) => result.status === 'ok')).toBe(true);
        expect(maxActive).toBe(3);
        expect(client.stats()).toMatchObject({ inflight: 0, waiting: 0, calls: { ok: 20 } });
      } finally {
        gate = undefined;
        await client.close();
      }
    });

    it('connects when required and the daemon answers', async () => {
      const client = await KernelClient.connect({
        enabled: true,
        required: true,
        endpoint: `unix://${path}`,
        mode,
      });
      try {
        expect((await client.getStatus()).payload).toEqual({ state: 'running' });
      } finally {
        await client.close();
      }
    });
  },
);

describe.each(['oneshot', 'persistent'] as const)(
  'KernelClient with codec "lines" (%s)',
  (mode: KernelMode) => {
    it('talks to a line daemon built with lineCodec()', async () => {
      const server = createKernelServer({
        codec: lineCodec(),
        methods: { PING: () => ({ pong: true }), APPLY_POLICY: (params) => ({ applied: params.policy }) },
      });
      const path = tempSocketPath('lines');
      await server.listen({ path });
      const client = new KernelClient({ enabled: true, endpoint: `unix://${path}`, codec: 'lines', mode });
      try {
        expect(await client.ping()).toMatchObject({ status: 'ok', payload: { pong: true } });
        const policy = { mode: 'strict' };
        expect(await client.applyPolicy(policy)).toMatchObject({
          status: 'ok',
          payload: { applied: policy },
        });
      } finally {
        await client.close();
        await server.close();
      }
    });
  },
);
