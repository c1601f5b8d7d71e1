import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { httpTransport } from './http-transport';
import { createKernelServer, type KernelServer, type KernelServerOptions } from './server';
import { testKernelTransport } from './testing';

interface HttpReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: unknown;
}

/** One HTTP exchange on a fresh connection (no agent: nothing pooled between tests). */
function exchange(
  url: string,
  options: {
    method?: string;
    path?: string;
    body?: string | Buffer | Buffer[];
    headers?: Record<string, string>;
  } = {},
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${url}${options.path ?? '/api/call'}`,
      { method: options.method ?? 'POST', agent: false, headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text === '' ? undefined : JSON.parse(text),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (Array.isArray(options.body)) {
      // Chunked: no Content-Length, the size is only known while streaming.
      for (const chunk of options.body) req.write(chunk);
      req.end();
    } else req.end(options.body);
  });
}

const servers: KernelServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function start(
  options: Omit<KernelServerOptions, 'methods'> = {},
): Promise<{ server: KernelServer; url: string }> {
  const server = createKernelServer({
    methods: {
      ECHO: (params) => params,
      SLOW: async (params) => ({ slow: params.n }),
    },
    ...options,
  });
  servers.push(server);
  const address = await server.listen({ port: 0 });
  if (address.kind !== 'http') throw new Error('expected an http address');
  return { server, url: address.url };
}

describe('createKernelServer over HTTP', () => {
  it('listens on loopback and answers POST /api/call with the JSON reply body', async () => {
    const { server, url } = await start();
    expect(server.address).toMatchObject({ kind: 'http', host: '127.0.0.1' });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const reply = await exchange(url, {
      body: JSON.stringify({ method: 'ECHO', params: { a: 1, s: 'é' }, timestamp: 1 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json');
    expect(reply.body).toEqual({ a: 1, s: 'é' });
    expect(server.served).toBe(1);
  });

  it('answers an unknown method with 200 and an error body, like the socket does', async () => {
    const { url } = await start();
    const reply = await exchange(url, { body: JSON.stringify({ method: 'NOPE', params: {} }) });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ error: true, code: 'UNKNOWN_METHOD' });
  });

  it('answers GET /health with {"ok":true}, and anything else with 404', async () => {
    const { url } = await start();
    expect(await exchange(url, { method: 'GET', path: '/health' })).toMatchObject({
      status: 200,
      body: { ok: true },
    });
    expect(await exchange(url, { method: 'GET', path: '/health?probe=1' })).toMatchObject({ status: 200 });
    expect(await exchange(url, { method: 'GET', path: '/api/call' })).toMatchObject({
      status: 404,
      body: { error: true, code: 'NOT_FOUND' },
    });
    expect(await exchange(url, { method: 'POST', path: '/other', body: '{}' })).toMatchObject({
      status: 404,
    });
  });

  it('refuses a body over maxRequestBytes from its Content-Length', async () => {
    const { server, url } = await start({ maxRequestBytes: 1_024 });
    const reply = await exchange(url, {
      body: JSON.stringify({ method: 'ECHO', params: { blob: 'x'.repeat(2_000) } }),
    });
    expect(reply.status).toBe(413);
    expect(reply.headers.connection).toBe('close');
    expect(reply.body).toMatchObject({ error: true, code: 'REQUEST_TOO_LARGE' });
    expect(server.rejected).toBe(1);
    expect(server.served).toBe(0);
  });

  it('refuses a chunked body once it streams past maxRequestBytes', async () => {
    const { server, url } = await start({ maxRequestBytes: 1_024 });
    const text = JSON.stringify({ method: 'ECHO', params: { blob: 'y'.repeat(2_000) } });
    const reply = await exchange(url, {
      body: [Buffer.from(text.slice(0, 600)), Buffer.from(text.slice(600))],
    });
    expect(reply.status).toBe(413);
    expect(reply.body).toMatchObject({ error: true, code: 'REQUEST_TOO_LARGE' });
    expect(server.rejected).toBe(1);
  });

  it.each([
    ['malformed JSON', '{"method":'],
    ['bad UTF-8', Buffer.from([0x7b, 0xff, 0x7d])],
    ['not a request', '[1,2]'],
    ['params that are not an object', '{"method":"ECHO","params":"x"}'],
  ])('refuses %s with 400 BAD_REQUEST', async (_what, body) => {
    const { server, url } = await start();
    const reply = await exchange(url, { body });
    expect(reply.status).toBe(400);
    expect(reply.body).toMatchObject({ error: true, code: 'BAD_REQUEST' });
    expect(server.rejected).toBe(1);
  });

  it('stays usable after bad requests, and serves concurrent ones', async () => {
    const { server, url } = await start({ maxRequestBytes: 512 });
    await exchange(url, { body: '{' });
    await exchange(url, { body: 'z'.repeat(1_000) });
    const replies = await Promise.all(
      Array.from({ length: 8 }, (_, n) =>
        exchange(url, { body: JSON.stringify({ method: 'SLOW', params: { n } }) }),
      ),
    );
    expect(replies.map((reply) => reply.body)).toEqual(Array.from({ length: 8 }, (_, n) => ({ slow: n })));
    expect(server.rejected).toBe(2);
    expect(server.served).toBe(8);
  });

  it('closes with connections open and stops answering', async () => {
    const { server, url } = await start();
    expect((await exchange(url, { method: 'GET', path: '/health' })).status).toBe(200);
    await server.close();
    expect(server.connections).toBe(0);
    await expect(exchange(url, { method: 'GET', path: '/health' })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });
});

// The transport conformance suite, against this HTTP face, through the package's HTTP transport.
testKernelTransport('http (loopback) against createKernelServer', {
  async start(methods) {
    const server = createKernelServer({ methods });
    const address = await server.listen({ port: 0 });
    if (address.kind !== 'http') throw new Error('expected an http address');
    return { transport: httpTransport({ url: address.url }), stop: () => server.close() };
  },
});
