import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type MethodTable, type RpcConnection, RpcMethodError } from './contracts';
import { createLogger } from './log';
import { createMetrics } from './metrics';
import { createRpcChannel, RequestAbortedError } from './rpc';
import { peekId } from './rpc-envelope';
import {
  connect,
  method,
  startTestServer,
  type TestClient,
  type TestServer,
  testConfig,
} from './test-support/protocol-harness';

describe('the JSON-RPC engine over a real WebSocket', () => {
  let t: TestServer;
  let client: TestClient;
  beforeAll(async () => {
    t = await startTestServer(testConfig(), { maxInFlightPerConnection: 5 });
    client = await connect(t.server.url, await t.token());
  });
  afterAll(async () => {
    await client.close();
    await t.server.close();
  });

  it('answers a request with its result and id (string or number)', async () => {
    expect(await client.request('echo', { value: [1, 'two'] }, 7)).toEqual({
      jsonrpc: '2.0',
      id: 7,
      result: { value: [1, 'two'] },
    });
    expect(await client.request('echo', { value: null }, 'abc')).toEqual({
      jsonrpc: '2.0',
      id: 'abc',
      result: { value: null },
    });
  });

  it('parse error: -32700 with id null, and the connection stays usable', async () => {
    client.sendRaw('{"jsonrpc": "2.0", "id": 1, "method": ');
    const reply = await client.next();
    expect(reply).toMatchObject({ id: null, error: { code: -32700, data: { code: 'PARSE_ERROR' } } });
    expect(reply.error?.message).toMatch(/^parse error: /);
    expect((await client.request('echo', { value: 1 })).result).toEqual({ value: 1 });
  });

  it('invalid requests: -32600 (not an object, wrong jsonrpc, bad id, no method, bad params)', async () => {
    for (const text of ['42', '"x"', 'null', 'true']) {
      client.sendRaw(text);
      expect(await client.next()).toMatchObject({
        id: null,
        error: { code: -32600, data: { code: 'INVALID_REQUEST' } },
      });
    }
    for (const id of ['{}', 'true', 'null', '[1]', `"${'x'.repeat(300)}"`]) {
      client.sendRaw(`{"jsonrpc":"2.0","id":${id},"method":"echo"}`);
      const reply = await client.next();
      expect(reply).toMatchObject({ id: null, error: { code: -32600, data: { code: 'INVALID_REQUEST' } } });
      expect(reply.error?.message).toContain('id');
    }
    client.sendRaw('{"jsonrpc":"1.0","id":5,"method":"echo"}');
    expect(await client.next()).toMatchObject({
      id: 5,
      error: {
        code: -32600,
        message: 'invalid request: jsonrpc: expected "2.0"',
        data: { code: 'INVALID_REQUEST' },
      },
    });
    client.sendRaw('{"jsonrpc":"2.0","id":6}');
    expect(await client.next()).toMatchObject({
      id: 6,
      error: { code: -32600, message: expect.stringContaining('method') },
    });
    client.sendRaw('{"jsonrpc":"2.0","id":8,"method":"echo","params":"text"}');
    expect(await client.next()).toMatchObject({
      id: 8,
      error: { code: -32600, message: expect.stringContaining('params') },
    });
  });

  it('batches are refused with -32600 BATCH_UNSUPPORTED', async () => {
    client.sendRaw('[{"jsonrpc":"2.0","id":1,"method":"echo","params":{"value":1}}]');
    expect(await client.next()).toMatchObject({
      id: null,
      error: { code: -32600, data: { code: 'BATCH_UNSUPPORTED' } },
    });
    client.sendRaw('[]');
    expect(await client.next()).toMatchObject({ error: { data: { code: 'BATCH_UNSUPPORTED' } } });
  });

  it('unknown method: -32601 (also for inherited names like toString)', async () => {
    for (const method of ['nope', 'toString', '__proto__', 'constructor']) {
      expect(await client.request(method, {})).toMatchObject({
        error: { code: -32601, data: { code: 'METHOD_NOT_FOUND' } },
      });
    }
  });

  it('invalid params: -32602 with a message naming the field', async () => {
    const reply = await client.request('echo', { value: 1, n: 'seven' });
    expect(reply.error).toMatchObject({
      code: -32602,
      message: 'invalid params: params.n: expected number, received string',
      data: {
        code: 'INVALID_PARAMS',
        issues: [{ path: 'params.n', message: 'expected number, received string' }],
      },
    });
    const positional = await client.request('echo', [1, 2]);
    expect(positional.error).toMatchObject({
      code: -32602,
      message: expect.stringContaining('params: expected object'),
    });
  });

  it('a handler RpcMethodError becomes its code, message and data (data.code always set)', async () => {
    expect((await client.request('fail', {})).error).toEqual({
      code: -32000,
      message: 'open a session first',
      data: { code: 'NO_SESSION', hint: 'session.open' },
    });
  });

  it('any other throw is -32000 INTERNAL with a generic message: no detail, no stack', async () => {
    for (const method of ['boom', 'bigint']) {
      const reply = await client.request(method, {});
      expect(reply.error).toMatchObject({
        code: -32000,
        data: { code: 'INTERNAL', incident: expect.stringMatching(/^[0-9a-f]{12}$/) },
      });
      const text = JSON.stringify(reply);
      expect(text).not.toContain('secret internal detail');
      expect(text).not.toContain('at ');
      expect(text).not.toContain('.ts');
    }
  });

  it('notifications get no reply', async () => {
    client.notify('echo', { value: 'quiet' });
    client.notify('nope', {});
    client.notify('boom', {});
    client.notify('echo', { n: 'bad' });
    expect((await client.request('echo', { value: 'loud' })).result).toEqual({ value: 'loud' });
    expect(client.queued()).toEqual([]);
  });

  it('a message over the limit gets MESSAGE_TOO_LARGE (with its id when it comes first) and the connection stays usable', async () => {
    const big = JSON.stringify({
      jsonrpc: '2.0',
      id: 41,
      method: 'echo',
      params: { value: 'x'.repeat(2000) },
    });
    client.sendRaw(big);
    const reply = await client.next();
    expect(reply).toMatchObject({
      id: 41,
      error: { code: -32000, data: { code: 'MESSAGE_TOO_LARGE', limit: 1024, size: big.length } },
    });
    client.sendRaw(
      JSON.stringify({ jsonrpc: '2.0', method: 'echo', params: { value: 'x'.repeat(2000) }, id: 42 }),
    );
    expect(await client.next()).toMatchObject({ id: null, error: { data: { code: 'MESSAGE_TOO_LARGE' } } });
    expect((await client.request('echo', { value: 'still here' })).result).toEqual({ value: 'still here' });
  });

  it('binary frames are refused with -32600', async () => {
    client.sendRaw(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"echo"}'), { binary: true });
    expect(await client.next()).toMatchObject({
      id: null,
      error: { code: -32600, message: expect.stringContaining('binary'), data: { code: 'INVALID_REQUEST' } },
    });
    expect((await client.request('echo', { value: 2 })).result).toEqual({ value: 2 });
  });

  it('rpc.cancel aborts the signal of that in-flight request', async () => {
    const before = t.app.slowSignals.length;
    const pending = client.request('slow', {}, 'to-cancel');
    await t.app.running(1);
    const signal = t.app.slowSignals[before];
    expect(signal?.aborted).toBe(false);
    client.notify('rpc.cancel', { id: 'to-cancel' });
    expect((await pending).error).toEqual({
      code: -32000,
      message: 'the request was cancelled by rpc.cancel',
      data: { code: 'CANCELLED' },
    });
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBeInstanceOf(RequestAbortedError);
    expect((await client.request('rpc.cancel', { id: 'to-cancel' })).result).toEqual({ cancelled: false });
    expect((await client.request('rpc.cancel', { id: {} })).error).toMatchObject({ code: -32602 });
  });

  it('refuses a second request with an id already in flight', async () => {
    client.sendRaw('{"jsonrpc":"2.0","id":"dup","method":"slow","params":{}}');
    await t.app.running(1);
    client.sendRaw('{"jsonrpc":"2.0","id":"dup","method":"echo","params":{"value":1}}');
    const duplicate = await client.next();
    expect(duplicate).toMatchObject({
      id: 'dup',
      error: { code: -32600, message: expect.stringContaining('already in flight') },
    });
    client.notify('rpc.cancel', { id: 'dup' });
    expect((await client.next()).error?.data.code).toBe('CANCELLED');
  });

  it('caps requests in flight per connection: TOO_MANY_REQUESTS', async () => {
    const ids = ['s1', 's2', 's3', 's4', 's5'];
    const slow = ids.map((id) => client.request('slow', {}, id));
    await t.app.running(5);
    expect((await client.request('echo', { value: 1 })).error).toEqual({
      code: -32000,
      message: 'too many requests in flight on this connection (limit 5)',
      data: { code: 'TOO_MANY_REQUESTS', limit: 5 },
    });
    for (const id of ids) client.notify('rpc.cancel', { id });
    for (const reply of await Promise.all(slow)) expect(reply.error?.data.code).toBe('CANCELLED');
    expect((await client.request('echo', { value: 'after' })).result).toEqual({ value: 'after' });
  });

  it('records calls by method and outcome, and durations', async () => {
    const text = await t.server.metrics.registry.metrics();
    expect(text).toMatch(/trestle_calls_total\{method="echo",outcome="ok"\} \d+/);
    expect(text).toMatch(/trestle_calls_total\{method="fail",outcome="NO_SESSION"\} 1/);
    expect(text).toMatch(/trestle_calls_total\{method="\(unknown\)",outcome="METHOD_NOT_FOUND"\} \d+/);
    expect(text).toMatch(/trestle_calls_total\{method="\(invalid\)",outcome="PARSE_ERROR"\} 1/);
    expect(text).toMatch(/trestle_calls_total\{method="slow",outcome="CANCELLED"\} \d+/);
    expect(text).toMatch(/trestle_call_duration_seconds_count\{method="echo"\} \d+/);
    expect(text).not.toContain('method="nope"');
  });
});

describe('connection-level limits and lifecycle', () => {
  it('a message above maxPayload (4x the limit) closes the socket with 1009', async () => {
    const t = await startTestServer();
    try {
      const client = await connect(t.server.url, await t.token());
      client.sendRaw('x'.repeat(4 * 1024 + 1));
      expect((await client.closed).code).toBe(1009);
      await t.app.disconnected(1);
      expect(t.app.disconnects).toHaveLength(1);
    } finally {
      await t.server.close();
    }
  });

  it('closing the connection aborts the signals of its requests and tells the app', async () => {
    const t = await startTestServer();
    try {
      const client = await connect(t.server.url, await t.token());
      void client.request('slow', {});
      await t.app.running(1);
      const connection = t.app.connections[0];
      await client.close();
      await t.app.disconnected(1);
      expect(connection?.signal.aborted).toBe(true);
      expect(t.app.slowSignals[0]?.aborted).toBe(true);
      expect(t.app.disconnects).toEqual([connection]);
    } finally {
      await t.server.close();
    }
  });

  it('notify sends a JSON-RPC notification and reports false once closed', async () => {
    const t = await startTestServer();
    try {
      const client = await connect(t.server.url, await t.token());
      const connection = t.app.connections[0]!;
      expect(connection.notify('stream.items', { streamId: 's', items: [1] })).toBe(true);
      expect(await client.next()).toEqual({
        jsonrpc: '2.0',
        method: 'stream.items',
        params: { streamId: 's', items: [1] },
      });
      expect(connection.bufferedAmount).toBe(0);
      connection.close(4000, 'bye');
      expect(await client.closed).toEqual({ code: 4000, reason: 'bye' });
      expect(connection.notify('late', {})).toBe(false);
    } finally {
      await t.server.close();
    }
  });

  it('terminates a peer that misses a pong', async () => {
    const t = await startTestServer(testConfig(), { heartbeatMs: 20 });
    try {
      const client = await connect(t.server.url, await t.token(), { autoPong: false });
      let pings = 0;
      client.ws.on('ping', () => pings++);
      expect((await client.closed).code).toBe(1006);
      expect(pings).toBeGreaterThanOrEqual(1);
      await t.app.disconnected(1);
      expect(t.app.disconnects).toHaveLength(1);
    } finally {
      await t.server.close();
    }
  });
});

describe('createRpcChannel (unit)', () => {
  const connection: RpcConnection = {
    id: 'c1',
    principal: { tenant: 't', tier: 'free', expiresAt: 0 },
    remoteAddress: '127.0.0.1',
    signal: new AbortController().signal,
    notify: () => true,
    bufferedAmount: 0,
    close: () => {},
  };
  const methods: MethodTable = {
    echo: method(z.object({ v: z.unknown() }), (p) => p.v),
    throws: method(z.object({}), () => {
      throw new RpcMethodError('X', 'x', { code: 'OVERRIDDEN?' });
    }),
  };

  it('data.code is the error code even when data carries another code', async () => {
    const sent: string[] = [];
    const channel = createRpcChannel({
      connection,
      methods,
      send: (text) => sent.push(text),
      logger: createLogger('silent'),
      maxMessageBytes: 1024,
    });
    channel.receive('{"jsonrpc":"2.0","id":1,"method":"throws"}', false);
    await channel.idle();
    expect(JSON.parse(sent[0]!).error.data.code).toBe('X');
  });

  it('never throws on arbitrary input and answers at most once per message', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc
            .record({
              jsonrpc: fc.constantFrom('2.0', '1.0', 2),
              id: fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.boolean()),
              method: fc.constantFrom('echo', 'throws', 'rpc.cancel', 'nope', ''),
              params: fc.anything(),
            })
            .map((value) => JSON.stringify(value)),
        ),
        async (text) => {
          const sent: string[] = [];
          const channel = createRpcChannel({
            connection,
            methods,
            send: (reply) => sent.push(reply),
            logger: createLogger('silent'),
            metrics: createMetrics({ defaultMetrics: false }),
            maxMessageBytes: 1024,
          });
          channel.receive(text, false);
          await channel.idle();
          expect(sent.length).toBeLessThanOrEqual(1);
          for (const reply of sent) {
            const parsed = JSON.parse(reply);
            expect(parsed.jsonrpc).toBe('2.0');
            if (parsed.error) expect(typeof parsed.error.data.code).toBe('string');
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('peekId reads a leading id and nothing nested', () => {
    expect(peekId('{"jsonrpc":"2.0","id":7,"method":"x","params":{}}')).toBe(7);
    expect(peekId('{ "id" : "a\\"b" , "method":"x"}')).toBe('a"b');
    expect(peekId('{"method":"x","jsonrpc":"2.0","id":-3}')).toBe(-3);
    expect(peekId('{"params":{"id":5},"id":1}')).toBeNull();
    expect(peekId('{"jsonrpc":"2.0","method":"x","params":{"id":5}}')).toBeNull();
    expect(peekId('[{"id":1}]')).toBeNull();
    expect(peekId('{"id":null}')).toBeNull();
  });
});
