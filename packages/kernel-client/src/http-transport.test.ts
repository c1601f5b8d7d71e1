// The HTTP transport against real node:http servers on 127.0.0.1:0, one behaviour per test.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { KernelConfigError, KernelTransportError } from './errors';
import { httpTransport } from './http-transport';
import type { KernelRequest, KernelTransport } from './types';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

interface TestServer {
  readonly url: string;
  readonly paths: string[];
  close(): Promise<void>;
}

const servers: TestServer[] = [];
const transports: KernelTransport[] = [];

async function serve(handler: Handler): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const paths: string[] = [];
  const server: Server = createServer((req, res) => {
    paths.push(`${req.method} ${req.url}`);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handler(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const test: TestServer = {
    url: `http://127.0.0.1:${port}`,
    paths,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  servers.push(test);
  return test;
}

const transportFor = (url: string) => {
  const transport = httpTransport({ url });
  transports.push(transport);
  return transport;
};

const request: KernelRequest = { method: 'PING', params: { n: 1 }, timestamp: 1 };
const options = (overrides: { signal?: AbortSignal; maxResponseBytes?: number } = {}) => ({
  signal: overrides.signal ?? new AbortController().signal,
  maxResponseBytes: overrides.maxResponseBytes ?? 65_536,
});

const failure = async (promise: Promise<unknown>): Promise<KernelTransportError> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KernelTransportError);
  return error as KernelTransportError;
};

afterEach(async () => {
  await Promise.all(transports.splice(0).map((t) => t.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('httpTransport', () => {
  it('POSTs the request JSON to <url>/api/call and parses the 200 body', async () => {
    let seen: unknown;
    const server = await serve((req, res, body) => {
      seen = { contentType: req.headers['content-type'], body: JSON.parse(body) };
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    const reply = await transportFor(`${server.url}/kernel/`).send(request, options());
    expect(reply).toEqual({ body: { ok: true }, wireBytes: 11 });
    expect(server.paths).toEqual(['POST /kernel/api/call']);
    expect(seen).toEqual({ contentType: 'application/json', body: request });
  });

  it('names itself without credentials', async () => {
    expect(transportFor('http://[::1]:9/k').endpoint).toBe('http://[::1]:9/k');
    expect(transportFor('http://localhost:9').name).toBe('http');
  });

  it('refuses a non-loopback URL, naming url', () => {
    for (const url of [
      'http://localhost.evil.example',
      'http://localhost@evil.example',
      'unix:///tmp/x.sock',
    ]) {
      expect(() => httpTransport({ url })).toThrow(/url/);
    }
    expect(() => httpTransport({ url: 'http://0.0.0.0' })).toThrow(KernelConfigError);
  });

  it('reports another status as http_status with the start of the body', async () => {
    const server = await serve((_req, res) => res.writeHead(503).end(`busy ${'x'.repeat(500)}`));
    const error = await failure(transportFor(server.url).send(request, options()));
    expect(error.kind).toBe('http_status');
    expect(error.message).toContain('HTTP 503: busy xxx');
    expect(error.message.slice(error.message.indexOf('HTTP 503: ') + 10)).toHaveLength(200);
  });

  it('refuses a Content-Length above the limit before reading', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': 1_000_000_000 });
      res.write('{');
    });
    const error = await failure(transportFor(server.url).send(request, options({ maxResponseBytes: 1_024 })));
    expect(error.kind).toBe('too_large');
    expect(error.message).toContain('1000000000');
  });

  it('counts a streamed (chunked) body against the limit', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200);
      res.write(`{"a":"${'x'.repeat(1_000)}`);
      res.write('x'.repeat(1_000));
    });
    const error = await failure(transportFor(server.url).send(request, options({ maxResponseBytes: 1_024 })));
    expect(error.kind).toBe('too_large');
  });

  it.each([
    ['garbage', 'not json at all'],
    ['bad UTF-8', Buffer.from([0x7b, 0xff, 0x7d])],
    ['an empty body', ''],
  ])('reports %s as bad_reply', async (_name, body) => {
    const server = await serve((_req, res) => res.writeHead(200).end(body));
    expect((await failure(transportFor(server.url).send(request, options()))).kind).toBe('bad_reply');
  });

  it('reports a truncated body as bad_reply', async () => {
    const server = await serve((req, res) => {
      res.writeHead(200, { 'content-length': 100 });
      res.write('{"partial":', () => req.socket.destroy());
    });
    const error = await failure(transportFor(server.url).send(request, options()));
    expect(error.kind).toBe('bad_reply');
    expect(error.wireBytes).toBe(11);
  });

  it('reports a connection closed before the reply as lost', async () => {
    const server = await serve((req) => req.socket.destroy());
    expect((await failure(transportFor(server.url).send(request, options()))).kind).toBe('lost');
  });

  it('reports a refused connection as connect', async () => {
    const server = await serve(() => {});
    await server.close();
    const error = await failure(transportFor(server.url).send(request, options()));
    expect(error.kind).toBe('connect');
    expect(await transportFor(server.url).isAvailable({ signal: new AbortController().signal })).toBe(false);
  });

  it('destroys the request when the signal fires', async () => {
    let closed!: () => void;
    const requestClosed = new Promise<void>((resolve) => {
      closed = resolve;
    });
    const server = await serve((req) => req.socket.on('close', closed));
    const controller = new AbortController();
    const sent = transportFor(server.url).send(request, options({ signal: controller.signal }));
    while (server.paths.length === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    controller.abort();
    expect((await failure(sent)).kind).toBe('aborted');
    await requestClosed;
    expect(server.paths).toHaveLength(1);
  });

  it('rejects pending and later sends with closed after close()', async () => {
    const server = await serve(() => {});
    const transport = transportFor(server.url);
    const pending = transport.send(request, options());
    while (server.paths.length === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    await transport.close();
    expect((await failure(pending)).kind).toBe('closed');
    expect((await failure(transport.send(request, options()))).kind).toBe('closed');
    expect(await transport.isAvailable({ signal: new AbortController().signal })).toBe(false);
  });

  it('is available when GET <url>/health answers 200', async () => {
    let healthy = true;
    const server = await serve((_req, res) => res.writeHead(healthy ? 200 : 500).end('{}'));
    const transport = transportFor(server.url);
    const signal = new AbortController().signal;
    expect(await transport.isAvailable({ signal })).toBe(true);
    healthy = false;
    expect(await transport.isAvailable({ signal })).toBe(false);
    expect(server.paths).toEqual(['GET /health', 'GET /health']);
  });

  it('is not available when /health does not answer within the signal', async () => {
    const server = await serve(() => {});
    const controller = new AbortController();
    const available = transportFor(server.url).isAvailable({ signal: controller.signal });
    while (server.paths.length === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    controller.abort();
    expect(await available).toBe(false);
  });

  it('reuses a kept-alive connection', async () => {
    const remotePorts = new Set<number>();
    const server = await serve((req, res) => {
      remotePorts.add(req.socket.remotePort ?? 0);
      res.writeHead(200).end('{}');
    });
    const transport = transportFor(server.url);
    for (let i = 0; i < 3; i++) await transport.send(request, options());
    expect(remotePorts.size).toBe(1);
  });
});
