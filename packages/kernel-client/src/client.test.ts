// The seed's behaviours of KernelClient (disabled by default, env config, endpoint checks, bounds,
// null echo, applyPolicy, telemetry, timeout, required), and the mapping of replies and requests.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { KernelClient } from './client';
import { KernelConfigError, KernelErrorCode, KernelTransportError, KernelUnavailableError } from './errors';
import { kernelTelemetryChannelName } from './telemetry';
import type { KernelTelemetryEvent, KernelTransport, TransportReply } from './types';

const clients: KernelClient[] = [];
const track = (client: KernelClient) => {
  clients.push(client);
  return client;
};
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

/** A transport that answers every send with `reply` (or throws it) and counts sends. */
function fixed(reply: TransportReply | KernelTransportError): KernelTransport & { sends: number } {
  const transport = {
    name: 'fixed',
    endpoint: 'fixed://',
    sends: 0,
    async send() {
      transport.sends++;
      if (reply instanceof KernelTransportError) throw reply;
      return reply;
    },
    async isAvailable() {
      return !(reply instanceof KernelTransportError);
    },
    async close() {},
  };
  return transport;
}

const configError = (run: () => unknown): KernelConfigError => {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(KernelConfigError);
    return error as KernelConfigError;
  }
  throw new Error('no error');
};

/** A daemon on 127.0.0.1:0 speaking the HTTP protocol: records requests, echoes params. */
async function startHttpDaemon() {
  const requests: { method: string; params: Record<string, unknown> }[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.url === '/health') return res.writeHead(200).end('{"ok":true}');
      const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      requests.push(request);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, applied: request.params }));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('disabled by default (the seed)', () => {
  it('uses the null transport: an echo with mock: true', async () => {
    const client = track(new KernelClient());
    expect(client.config.enabled).toBe(false);
    expect([client.transport.name, client.transport.endpoint]).toEqual(['null', 'null://']);
    const result = await client.call('ECHO', { a: [1, 'two', null] });
    expect(result).toMatchObject({
      status: 'ok',
      success: true,
      reason: null,
      errorCode: null,
      retryCount: 0,
      payload: { method: 'ECHO', params: { a: [1, 'two', null] }, mock: true },
    });
    expect(result.payload?.timestamp).toBeCloseTo(Date.now() / 1000, -1);
    expect(result.payloadSize).toBe(Buffer.byteLength(JSON.stringify(result.payload)));
    expect(await client.isAvailable()).toBe(true);
  });

  it('ignores the endpoint while disabled, but still checks it', async () => {
    const client = track(new KernelClient({ endpoint: 'unix:///tmp/nowhere.sock' }));
    expect(client.transport.name).toBe('null');
    expect((await client.ping()).payload).toMatchObject({ method: 'PING', mock: true });
    expect(configError(() => new KernelClient({ endpoint: 'unix://relative.sock' })).variable).toBe(
      'endpoint',
    );
  });
});

describe('configuration', () => {
  it.each(['KERNEL_', 'HEIDI_KERNEL_'])('is enabled from the environment with the prefix %s', (prefix) => {
    const env = { [`${prefix}ENABLED`]: 'true', [`${prefix}ENDPOINT`]: 'unix:///tmp/heidi-kernel.sock' };
    const client = track(KernelClient.fromEnv({ env, prefix }));
    expect(client.config).toMatchObject({ enabled: true, endpoint: 'unix:///tmp/heidi-kernel.sock' });
    expect([client.transport.name, client.transport.endpoint]).toEqual([
      'unix',
      'unix:///tmp/heidi-kernel.sock',
    ]);
  });

  it('builds an HTTP transport for a loopback URL, [::1] included', () => {
    for (const endpoint of ['http://127.0.0.1:8080', 'http://localhost:8080', 'http://[::1]:8080']) {
      const client = track(new KernelClient({ enabled: true, endpoint }));
      expect([client.transport.name, client.transport.endpoint]).toEqual(['http', endpoint]);
    }
  });

  it.each(['unix://relative.sock', 'unix:relative'])('refuses the relative unix path %s', (endpoint) => {
    const error = configError(() => new KernelClient({ enabled: true, endpoint }));
    expect(error.code).toBe(KernelErrorCode.EndpointInvalid);
    expect(error.variable).toBe('endpoint');
    const fromEnv = configError(() =>
      KernelClient.fromEnv({
        env: { HEIDI_KERNEL_ENABLED: '1', HEIDI_KERNEL_ENDPOINT: endpoint },
        prefix: 'HEIDI_KERNEL_',
      }),
    );
    expect(fromEnv.variable).toBe('HEIDI_KERNEL_ENDPOINT');
  });

  it.each([
    'http://localhost.evil.example',
    'http://localhost@evil.example',
    'http://127.0.0.1.nip.io',
    'http://0.0.0.0:8080',
    'http://[::ffff:127.0.0.1]',
    'http://example.com',
  ])('refuses the non-loopback endpoint %s', (endpoint) => {
    const error = configError(() => new KernelClient({ enabled: true, endpoint }));
    expect(error.code).toBe(KernelErrorCode.EndpointInvalid);
  });

  it.each([
    ['TIMEOUT_MS', '99'],
    ['TIMEOUT_MS', '30001'],
    ['TIMEOUT_MS', '1000.5'],
    ['MAX_INFLIGHT', '0'],
    ['MAX_INFLIGHT', '257'],
    ['MAX_INFLIGHT', 'three'],
  ])('refuses %s=%s, naming the variable', (suffix, value) => {
    const env = { HEIDI_KERNEL_ENABLED: 'false', [`HEIDI_KERNEL_${suffix}`]: value };
    const error = configError(() => KernelClient.fromEnv({ env, prefix: 'HEIDI_KERNEL_' }));
    expect(error.variable).toBe(`HEIDI_KERNEL_${suffix}`);
    expect(error.message).toContain(`HEIDI_KERNEL_${suffix}: must be an integer between`);
  });

  it.each([
    [{ timeoutMs: 99 }, 'timeoutMs'],
    [{ timeoutMs: 30_001 }, 'timeoutMs'],
    [{ timeoutMs: 2.5 }, 'timeoutMs'],
    [{ maxInflight: 0 }, 'maxInflight'],
    [{ maxInflight: 257 }, 'maxInflight'],
    [{ maxInflight: 1.5 }, 'maxInflight'],
  ])('refuses the option %j, naming it', (options, variable) => {
    expect(configError(() => new KernelClient(options)).variable).toBe(variable);
  });

  it('lets fromEnv overrides win over the environment', () => {
    const client = track(KernelClient.fromEnv({ env: { KERNEL_TIMEOUT_MS: '1000' }, timeoutMs: 2_000 }));
    expect(client.config.timeoutMs).toBe(2_000);
  });

  it('requires an endpoint or a transport when enabled', () => {
    expect(configError(() => new KernelClient({ enabled: true })).variable).toBe('endpoint');
    expect(configError(() => KernelClient.fromEnv({ env: { KERNEL_ENABLED: 'yes' } })).variable).toBe(
      'KERNEL_ENDPOINT',
    );
  });
});

describe('a real daemon', () => {
  it('receives applyPolicy(p) as params.policy == p', async () => {
    const daemon = await startHttpDaemon();
    try {
      const client = track(new KernelClient({ enabled: true, endpoint: daemon.url }));
      const policy = { mode: 'strict', limits: { cpu: 2, paths: ['/tmp'] } };
      const result = await client.applyPolicy(policy);
      expect(result).toMatchObject({ status: 'ok', payload: { ok: true, applied: { policy } } });
      expect(daemon.requests).toHaveLength(1);
      expect(daemon.requests[0]).toMatchObject({ method: 'APPLY_POLICY', params: { policy } });
      expect(await client.isAvailable()).toBe(true);
      expect((await client.getStatus()).status).toBe('ok');
      expect(daemon.requests.map((request) => request.method)).toEqual(['APPLY_POLICY', 'STATUS']);
    } finally {
      await daemon.close();
    }
  });
});

describe('telemetry', () => {
  it('publishes exactly one event per call, on the channel and the callback, without params', async () => {
    const channel: unknown[] = [];
    const callback: KernelTelemetryEvent[] = [];
    const onMessage = (message: unknown) => channel.push(message);
    subscribe(kernelTelemetryChannelName, onMessage);
    try {
      const client = track(
        new KernelClient({
          enabled: true,
          transport: fixed({ body: { ok: true }, wireBytes: 11 }),
          onTelemetry: (event) => callback.push(event),
        }),
      );
      await client.call('SECRET_METHOD', { password: 'hunter2' });
      await client.call('bad method');
      expect(callback).toEqual(channel);
      expect(callback).toHaveLength(2);
      expect(callback[0]).toEqual({
        op: 'kernel_client.call',
        method: 'SECRET_METHOD',
        endpoint: 'fixed://',
        transport: 'fixed',
        latencyMs: expect.any(Number),
        success: true,
        status: 'ok',
        retryCount: 0,
        payloadSize: 11,
        errorCode: null,
        reason: null,
      });
      expect(callback[1]).toMatchObject({ method: '<invalid>', status: 'invalid_request', success: false });
      expect(JSON.stringify(callback)).not.toContain('hunter2');
    } finally {
      unsubscribe(kernelTelemetryChannelName, onMessage);
    }
  });

  it('survives a throwing callback', async () => {
    let calls = 0;
    const client = track(
      new KernelClient({
        onTelemetry: () => {
          calls++;
          throw new Error('sink down');
        },
      }),
    );
    expect((await client.ping()).status).toBe('ok');
    expect(calls).toBe(1);
  });

  it('publishes the event before a required client rejects', async () => {
    const events: KernelTelemetryEvent[] = [];
    const client = track(
      new KernelClient({
        enabled: true,
        required: true,
        transport: fixed(new KernelTransportError('connect', 'ECONNREFUSED')),
        retryAttempts: 0,
        onTelemetry: (event) => events.push(event),
      }),
    );
    await expect(client.ping()).rejects.toBeInstanceOf(KernelUnavailableError);
    expect(events).toMatchObject([{ status: 'unavailable', errorCode: 'KERNEL_UNAVAILABLE' }]);
  });
});

describe('timeout', () => {
  it('resolves status timeout with KERNEL_TIMEOUT near timeoutMs (real clock)', async () => {
    const transport: KernelTransport = {
      name: 'silent',
      endpoint: 'silent://',
      send: (_request, { signal }) =>
        new Promise((_resolve, reject) =>
          signal.addEventListener('abort', () => reject(new KernelTransportError('aborted', 'aborted'))),
        ),
      isAvailable: async () => true,
      close: async () => {},
    };
    const client = track(new KernelClient({ enabled: true, transport, timeoutMs: 150 }));
    const result = await client.ping();
    expect(result).toMatchObject({
      status: 'timeout',
      success: false,
      errorCode: 'KERNEL_TIMEOUT',
      payload: null,
    });
    expect(result.latencyMs).toBeGreaterThanOrEqual(140);
    expect(result.latencyMs).toBeLessThan(2_000);
  });
});

describe('required', () => {
  it('connect() throws KernelUnavailableError when the daemon is unavailable', async () => {
    const transport = fixed(new KernelTransportError('connect', 'ECONNREFUSED'));
    await expect(KernelClient.connect({ enabled: true, required: true, transport })).rejects.toBeInstanceOf(
      KernelUnavailableError,
    );
    const lenient = track(await KernelClient.connect({ enabled: true, transport }));
    expect((await lenient.ping({ idempotent: false })).status).toBe('unavailable');
  });

  it('rejects an unavailable call with the result attached; other failures resolve', async () => {
    const down = track(
      new KernelClient({
        enabled: true,
        required: true,
        retryAttempts: 0,
        transport: fixed(new KernelTransportError('connect', 'nobody home')),
      }),
    );
    const error = await down.ping().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KernelUnavailableError);
    expect((error as KernelUnavailableError).result).toMatchObject({ status: 'unavailable' });
    const broken = track(
      new KernelClient({
        enabled: true,
        required: true,
        transport: fixed({ body: { error: true, message: 'no' }, wireBytes: 5 }),
      }),
    );
    expect(await broken.ping()).toMatchObject({ status: 'error', errorCode: 'KERNEL_DAEMON_ERROR' });
    await broken.close();
    expect(await broken.ping()).toMatchObject({ status: 'unavailable', errorCode: 'KERNEL_CLOSED' });
  });

  it('connect() succeeds when the daemon answers', async () => {
    const client = track(
      await KernelClient.connect({
        enabled: true,
        required: true,
        transport: fixed({ body: {}, wireBytes: 2 }),
      }),
    );
    expect((await client.ping()).success).toBe(true);
  });
});

describe('reply mapping', () => {
  it.each([
    [[1, 2], 'an array'],
    [null, 'null'],
    ['text', 'a string'],
    [42, 'a number'],
    [true, 'a boolean'],
  ])('refuses the non-object reply %j as KERNEL_BAD_REPLY', async (body, what) => {
    const client = track(new KernelClient({ enabled: true, transport: fixed({ body, wireBytes: 9 }) }));
    const result = await client.ping();
    expect(result).toMatchObject({
      status: 'error',
      errorCode: 'KERNEL_BAD_REPLY',
      payload: null,
      payloadSize: 9,
    });
    expect(result.reason).toContain(what);
  });

  it.each([
    [{ error: true, message: 'denied', code: 'E_DENIED' }, 'denied', 'E_DENIED'],
    [{ error: 'yes', code: 403 }, 'daemon error', '403'],
    [{ error: 1 }, 'daemon error', 'KERNEL_DAEMON_ERROR'],
    [{ error: true, message: '', code: { nested: 1 } }, 'daemon error', 'KERNEL_DAEMON_ERROR'],
  ])('maps the error reply %j', async (body, reason, errorCode) => {
    const client = track(new KernelClient({ enabled: true, transport: fixed({ body, wireBytes: 30 }) }));
    expect(await client.ping()).toMatchObject({
      status: 'error',
      success: false,
      reason,
      errorCode,
      payload: body,
    });
  });

  it('treats a falsy error field as success', async () => {
    const body = { error: false, ok: 1 };
    const client = track(new KernelClient({ enabled: true, transport: fixed({ body, wireBytes: 30 }) }));
    expect(await client.ping()).toMatchObject({ status: 'ok', payload: body, payloadSize: 30 });
  });
});

describe('invalid requests never reach the transport', () => {
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  it.each([
    ['a method with a space', 'bad method', {}],
    ['an empty method', '', {}],
    ['a method starting with a digit', '1PING', {}],
    ['a method of 129 characters', `A${'b'.repeat(128)}`, {}],
    ['array params', 'PING', [1]],
    ['null params', 'PING', null],
    ['a Date', 'PING', { when: new Date(0) }],
    ['a BigInt', 'PING', { n: 1n }],
    ['a cycle', 'PING', cycle],
    ['a function', 'PING', { f: () => 1 }],
    ['NaN', 'PING', { n: Number.NaN }],
    ['a Map', 'PING', { m: new Map() }],
  ])('refuses %s as KERNEL_INVALID_REQUEST', async (_name, method, params) => {
    const transport = fixed({ body: {}, wireBytes: 2 });
    const client = track(new KernelClient({ enabled: true, transport }));
    const result = await client.call(method, params as never);
    expect(result).toMatchObject({
      status: 'invalid_request',
      errorCode: 'KERNEL_INVALID_REQUEST',
      retryCount: 0,
    });
    expect(transport.sends).toBe(0);
  });

  it('refuses a request over maxRequestBytes as KERNEL_REQUEST_TOO_LARGE', async () => {
    const transport = fixed({ body: {}, wireBytes: 2 });
    const client = track(new KernelClient({ enabled: true, transport, maxRequestBytes: 1_024 }));
    const result = await client.call('PING', { blob: 'x'.repeat(1_024) });
    expect(result).toMatchObject({ status: 'invalid_request', errorCode: 'KERNEL_REQUEST_TOO_LARGE' });
    expect(transport.sends).toBe(0);
    expect((await client.call('PING', { blob: 'x'.repeat(900) })).status).toBe('ok');
  });

  it('accepts method names with . : / - _', async () => {
    const client = track(new KernelClient());
    for (const method of ['policy.apply', 'v1/status', 'a:b', 'x-y_z'])
      expect((await client.call(method)).status).toBe('ok');
  });
});
