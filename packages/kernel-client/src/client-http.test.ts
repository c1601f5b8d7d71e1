// KernelClient against a real HTTP daemon on 127.0.0.1 (node:http, started and stopped here), with
// faults: each fault gives its typed result and the next call on the same client succeeds. Real
// clock, short deadlines; timing is only checked against generous upper bounds.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KernelClient } from './client';
import type { KernelClientOptions } from './config';
import { createKernelServer, KernelMethodError } from './server';

/** What the daemon does with one request; `undefined` answers `{ ok: true, method }`. */
type Fault = (req: IncomingMessage, res: ServerResponse) => void;

interface Daemon {
  readonly url: string;
  /** Requests received (`POST /api/call`), by method. */
  readonly methods: string[];
  /** Requests being handled now, and the most at once. */
  active: number;
  maxActive: number;
  /** Faults for the next requests, in order. */
  readonly faults: Fault[];
  /** Holds requests until `count` are held at once (or `total` arrived), then answers them together. */
  gate: { count: number; total: number } | undefined;
  close(): Promise<void>;
}

const answer = (res: ServerResponse, body: unknown) => {
  if (res.destroyed) return;
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};

async function startDaemon(): Promise<Daemon> {
  const sockets = new Set<Socket>();
  const held: (() => void)[] = [];
  let arrived = 0;
  const daemon: Daemon = {
    url: '',
    methods: [],
    active: 0,
    maxActive: 0,
    faults: [],
    gate: undefined,
    close: async () => {},
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.url === '/health') return answer(res, { ok: true });
      const { method } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { method: string };
      daemon.methods.push(method);
      daemon.active++;
      daemon.maxActive = Math.max(daemon.maxActive, daemon.active);
      res.on('close', () => daemon.active--);
      const fault = daemon.faults.shift();
      if (fault) return fault(req, res);
      const gate = daemon.gate;
      if (gate === undefined) return answer(res, { ok: true, method });
      arrived++;
      held.push(() => answer(res, { ok: true, method }));
      if (held.length >= gate.count || arrived >= gate.total)
        // Answer on the next turn, so any extra request already on its way is counted first.
        setImmediate(() => {
          for (const release of held.splice(0)) release();
        });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(daemon, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  });
}

let daemon: Daemon;
let client: KernelClient;
const newClient = (options: KernelClientOptions = {}) =>
  new KernelClient({ enabled: true, endpoint: daemon.url, timeoutMs: 300, retryDelayMs: 10, ...options });

beforeAll(async () => {
  daemon = await startDaemon();
});
afterAll(async () => {
  await daemon.close();
});
afterEach(async () => {
  daemon.faults.length = 0;
  daemon.gate = undefined;
  await client?.close();
});

/** A second call on the same client succeeds. */
async function stillWorks() {
  const result = await client.getStatus();
  expect(result).toMatchObject({ status: 'ok', payload: { ok: true, method: 'STATUS' } });
}

const dies: Fault = (req) => req.socket.destroy();
const silent: Fault = () => {};
const trickle: Fault = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': 10_000 });
  const timer = setInterval(() => res.write(' '), 50);
  res.on('close', () => clearInterval(timer));
};

describe('KernelClient over HTTP', () => {
  it('makes a round trip, counting the body bytes', async () => {
    client = newClient();
    const result = await client.ping();
    expect(result).toMatchObject({
      status: 'ok',
      success: true,
      payload: { ok: true, method: 'PING' },
      payloadSize: Buffer.byteLength('{"ok":true,"method":"PING"}'),
      retryCount: 0,
      errorCode: null,
    });
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('retries a PING whose connection dies mid-call (lost), once', async () => {
    client = newClient();
    daemon.faults.push(dies);
    const before = daemon.methods.length;
    expect(await client.ping()).toMatchObject({ status: 'ok', retryCount: 1 });
    expect(daemon.methods.slice(before)).toEqual(['PING', 'PING']);
    await stillWorks();
  });

  it('gives up after retryAttempts when the daemon keeps dying', async () => {
    client = newClient({ retryAttempts: 2 });
    daemon.faults.push(dies, dies, dies);
    expect(await client.ping()).toMatchObject({
      status: 'error',
      errorCode: 'KERNEL_CONNECTION_LOST',
      retryCount: 2,
    });
    await stillWorks();
  });

  it('does not retry APPLY_POLICY when the connection dies mid-call', async () => {
    client = newClient();
    daemon.faults.push(dies);
    const before = daemon.methods.length;
    expect(await client.applyPolicy({ mode: 'strict' })).toMatchObject({
      status: 'error',
      errorCode: 'KERNEL_CONNECTION_LOST',
      retryCount: 0,
    });
    expect(daemon.methods.slice(before)).toEqual(['APPLY_POLICY']);
    await stillWorks();
  });

  it('times out at the deadline when the daemon never answers', async () => {
    client = newClient();
    daemon.faults.push(silent);
    const result = await client.ping();
    expect(result).toMatchObject({ status: 'timeout', errorCode: 'KERNEL_TIMEOUT', retryCount: 0 });
    expect(result.latencyMs).toBeGreaterThanOrEqual(290);
    expect(result.latencyMs).toBeLessThan(3_000);
    await stillWorks();
  });

  it('keeps the whole-call deadline against a daemon that trickles bytes', async () => {
    client = newClient();
    daemon.faults.push(trickle);
    const result = await client.ping();
    expect(result).toMatchObject({ status: 'timeout', errorCode: 'KERNEL_TIMEOUT' });
    expect(result.latencyMs).toBeLessThan(3_000);
    await stillWorks();
  });

  it('refuses a huge Content-Length before reading', async () => {
    client = newClient({ maxResponseBytes: 1_024 });
    daemon.faults.push((_req, res) => {
      res.writeHead(200, { 'content-length': 4 * 1024 ** 3 });
      res.write('{"a":');
    });
    const result = await client.ping();
    expect(result).toMatchObject({ status: 'error', errorCode: 'KERNEL_RESPONSE_TOO_LARGE', retryCount: 0 });
    expect(result.latencyMs).toBeLessThan(3_000);
    await stillWorks();
  });

  it('refuses a chunked body that grows past maxResponseBytes', async () => {
    client = newClient({ maxResponseBytes: 1_024 });
    daemon.faults.push((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`{"a":"${'x'.repeat(2_000)}`);
    });
    expect(await client.ping()).toMatchObject({ status: 'error', errorCode: 'KERNEL_RESPONSE_TOO_LARGE' });
    await stillWorks();
  });

  it.each([
    ['garbage', 'Ceci n’est pas du JSON'],
    ['a non-object JSON [1,2]', '[1,2]'],
    ['JSON null', 'null'],
  ])('reports %s as KERNEL_BAD_REPLY, not retried', async (_name, body) => {
    client = newClient();
    daemon.faults.push((_req, res) => res.writeHead(200).end(body));
    const before = daemon.methods.length;
    const result = await client.ping();
    expect(result).toMatchObject({
      status: 'error',
      errorCode: 'KERNEL_BAD_REPLY',
      retryCount: 0,
      payload: null,
    });
    expect(daemon.methods.length - before).toBe(1);
    await stillWorks();
  });

  it('reports a truncated body as KERNEL_BAD_REPLY', async () => {
    client = newClient();
    daemon.faults.push((req, res) => {
      res.writeHead(200, { 'content-length': 100 });
      res.write('{"ok":', () => req.socket.destroy());
    });
    expect(await client.ping()).toMatchObject({
      status: 'error',
      errorCode: 'KERNEL_BAD_REPLY',
      payloadSize: 6,
    });
    await stillWorks();
  });

  it('reports another HTTP status as KERNEL_HTTP_STATUS, not retried', async () => {
    client = newClient();
    daemon.faults.push((_req, res) => res.writeHead(500).end('kaboom'));
    const result = await client.ping();
    expect(result).toMatchObject({ status: 'error', errorCode: 'KERNEL_HTTP_STATUS', retryCount: 0 });
    expect(result.reason).toBe('HTTP 500: kaboom');
    await stillWorks();
  });

  it("passes a daemon's error reply through, not retried", async () => {
    client = newClient();
    daemon.faults.push((_req, res) =>
      answer(res, { error: true, message: 'policy rejected', code: 'E_POLICY' }),
    );
    expect(await client.ping()).toMatchObject({
      status: 'error',
      reason: 'policy rejected',
      errorCode: 'E_POLICY',
      retryCount: 0,
      payload: { error: true, message: 'policy rejected', code: 'E_POLICY' },
    });
    await stillWorks();
  });

  it('keeps maxInflight requests at the daemon when 20 calls are issued', async () => {
    client = newClient({ maxInflight: 3, timeoutMs: 10_000 });
    daemon.maxActive = 0;
    daemon.gate = { count: 3, total: 20 };
    const calls = Array.from({ length: 20 }, (_, i) => client.call('PING', { i }));
    const results = await Promise.all(calls);
    expect(results.every((result) => result.status === 'ok')).toBe(true);
    expect(daemon.maxActive).toBe(3);
    expect(client.stats().calls.ok).toBe(20);
  });

  it('reports a daemon that is gone as unavailable, after retries for PING', async () => {
    const gone = await startDaemon();
    await gone.close();
    client = new KernelClient({ enabled: true, endpoint: gone.url, timeoutMs: 1_000, retryDelayMs: 10 });
    expect(await client.ping()).toMatchObject({
      status: 'unavailable',
      errorCode: 'KERNEL_UNAVAILABLE',
      retryCount: 2,
    });
    expect(await client.isAvailable()).toBe(false);
    await expect(
      KernelClient.connect({ enabled: true, required: true, endpoint: gone.url, timeoutMs: 1_000 }),
    ).rejects.toMatchObject({ name: 'KernelUnavailableError' });
  });
});

describe('KernelClient and createKernelServer over HTTP', () => {
  it('calls, checks availability and passes method errors through', async () => {
    const policies: unknown[] = [];
    const server = createKernelServer({
      methods: {
        PING: () => ({ pong: true }),
        APPLY_POLICY: (params) => {
          policies.push(params.policy);
          if (typeof params.policy !== 'object')
            throw new KernelMethodError('BAD_POLICY', 'policy must be an object');
          return { applied: true };
        },
      },
    });
    const address = await server.listen({ port: 0, host: '127.0.0.1' });
    if (address.kind !== 'http') throw new Error('expected an HTTP address');
    const kernel = await KernelClient.connect({ enabled: true, required: true, endpoint: address.url });
    try {
      const policy = { mode: 'strict', allow: ['/tmp'] };
      expect(await kernel.ping()).toMatchObject({ status: 'ok', payload: { pong: true } });
      expect(await kernel.applyPolicy(policy)).toMatchObject({ status: 'ok', payload: { applied: true } });
      expect(policies).toEqual([policy]);
      expect(await kernel.call('APPLY_POLICY', { policy: 'nope' })).toMatchObject({
        status: 'error',
        errorCode: 'BAD_POLICY',
        reason: 'policy must be an object',
      });
      expect(await kernel.isAvailable()).toBe(true);
    } finally {
      await kernel.close();
      await server.close();
    }
  });
});
