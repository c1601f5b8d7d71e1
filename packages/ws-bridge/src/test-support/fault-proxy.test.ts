import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { type ClientOptions, WebSocket } from 'ws';
import { type FaultProxy, startFaultProxy } from './fault-proxy';
import { startWsServer, type TestWsServer } from './ws-server';

/** Everything a test opens, closed after it (clients first). */
const clients: WebSocket[] = [];
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const ws of clients.splice(0)) ws.terminate();
  for (const close of closers.splice(0).reverse()) await close();
});

async function server(options?: Parameters<typeof startWsServer>[0]): Promise<TestWsServer> {
  const s = await startWsServer(options);
  closers.push(() => s.close());
  return s;
}

async function proxyTo(s: TestWsServer): Promise<FaultProxy> {
  const p = await startFaultProxy({ target: { host: '127.0.0.1', port: s.port } });
  closers.push(() => p.close());
  return p;
}

/** The first `event` from `emitter` within `ms`, else a rejection naming it. */
function next<T extends unknown[]>(emitter: NodeJS.EventEmitter, event: string, ms = 2_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`no '${event}' within ${ms} ms`));
    }, ms);
    const on = (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args as T);
    };
    emitter.once(event, on);
  });
}

/** Whether `event` happens within `ms` (false is the expected answer for a frozen peer). */
async function happensWithin(emitter: NodeJS.EventEmitter, event: string, ms: number): Promise<boolean> {
  try {
    await next(emitter, event, ms);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A client that records its errors and close; never throws an unhandled 'error'. */
function client(url: string, options?: ClientOptions) {
  const ws = new WebSocket(url, options);
  clients.push(ws);
  const errors: Error[] = [];
  ws.on('error', (error) => errors.push(error));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  const received: Buffer[] = [];
  ws.on('message', (data, isBinary) => {
    received.push(isBinary ? (data as Buffer) : Buffer.from(data.toString()));
  });
  return { ws, errors, closed, received };
}

async function openClient(url: string, options?: ClientOptions) {
  const c = client(url, options);
  await next(c.ws, 'open');
  return c;
}

async function echoRoundTrip(ws: WebSocket, text: string): Promise<string> {
  const reply = next<[Buffer, boolean]>(ws, 'message');
  ws.send(text);
  const [data] = await reply;
  return data.toString();
}

async function portIsFree(port: number): Promise<boolean> {
  const probe = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(port, '127.0.0.1', () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  }
}

async function waitUntil(condition: () => boolean, ms = 2_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await sleep(5);
  }
}

describe('fault proxy: pass', () => {
  it('forwards an echo both ways, text and binary, and counts bytes and connections', async () => {
    const s = await server();
    const p = await proxyTo(s);
    const { ws } = await openClient(p.url('/echo'));
    expect(await echoRoundTrip(ws, 'hello')).toBe('hello');
    const binary = next<[Buffer, boolean]>(ws, 'message');
    ws.send(Buffer.from([0, 1, 2, 255]));
    const [data, isBinary] = await binary;
    expect(isBinary).toBe(true);
    expect([...data]).toEqual([0, 1, 2, 255]);

    expect(p.connections()).toBe(1);
    expect(p.openConnections()).toBe(1);
    const stats = p.stats();
    expect(stats.bytesFromClient).toBe(stats.bytesToServer);
    expect(stats.bytesFromServer).toBe(stats.bytesToClient);
    expect(stats.bytesFromClient).toBeGreaterThan(0);
    expect(s.messages.map((m) => [m.connectionId, m.text, m.isBinary])).toEqual([
      [1, 'hello', false],
      [1, '\u0000\u0001\u0002\uFFFD', true],
    ]);
    expect(s.upgrades).toMatchObject([{ attempt: 1, url: '/echo', status: 101, connectionId: 1 }]);
    expect(s.stats()).toEqual({ attempted: 1, refused: 0, accepted: 1, closed: 0 });
  });
});

describe('fault proxy: blackhole', () => {
  it('freezes an open connection: no pong, no echo, no close, the server hears nothing', async () => {
    const s = await server();
    const p = await proxyTo(s);
    const { ws } = await openClient(p.url());
    expect(await echoRoundTrip(ws, 'before')).toBe('before');
    const serverBytes = p.stats().bytesToServer;

    p.setMode('blackhole');
    ws.ping();
    ws.send('into the void');
    const pong = happensWithin(ws, 'pong', 300);
    const message = happensWithin(ws, 'message', 300);
    const close = happensWithin(ws, 'close', 300);
    expect(await pong).toBe(false);
    expect(await message).toBe(false);
    expect(await close).toBe(false);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    expect(s.messages.map((m) => m.text)).toEqual(['before']);
    expect(p.stats().bytesToServer).toBe(serverBytes);
    expect(p.stats().bytesFromClient).toBeGreaterThan(serverBytes);
    expect(s.clients()).toBe(1);
  });

  it('hides the server going away: the client is never told', async () => {
    const s = await server();
    const p = await proxyTo(s);
    const { ws } = await openClient(p.url());
    p.setMode('blackhole');
    s.closeAll(1001, 'going away');
    expect(await happensWithin(ws, 'close', 200)).toBe(false);
    // The server waits for a closing handshake that never comes (ws's own 30 s close timeout).
    expect(s.connections()[0]?.socket.readyState).toBe(WebSocket.CLOSING);
    s.terminateAll();
    await waitUntil(() => s.clients() === 0);
    expect(await happensWithin(ws, 'close', 200)).toBe(false);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    expect(p.openConnections()).toBe(1);
  });

  it('accepts new connections and never answers the handshake', async () => {
    const s = await server();
    const p = await proxyTo(s);
    p.setMode('blackhole');
    const c = client(p.url(), { handshakeTimeout: 200 });
    await sleep(100);
    expect(c.ws.readyState).toBe(WebSocket.CONNECTING);
    await c.closed;
    expect(c.errors.map((e) => e.message)).toEqual(['Opening handshake has timed out']);
    expect(p.connections()).toBe(1);
    expect(s.stats().attempted).toBe(0);
  });
});

describe('fault proxy: reset and refuse', () => {
  it('reset: existing connections are reset when the mode is set (close 1006)', async () => {
    const s = await server();
    const p = await proxyTo(s);
    const c = await openClient(p.url());
    p.setMode('reset');
    const { code } = await c.closed;
    expect(code).toBe(1006);
    // ws reports a socket error on an open connection only as close 1006 (no 'error' event).
    await waitUntil(() => s.clients() === 0);
  });

  it('reset sends a TCP RST (ECONNRESET); refuse sends a FIN (end, no error)', async () => {
    const s = await server();
    const p = await proxyTo(s);
    const raw = (): Promise<{ error?: string; ended: boolean }> =>
      new Promise((resolve) => {
        const socket = net.connect(p.port, '127.0.0.1');
        let ended = false;
        let error: string | undefined;
        socket.on('end', () => {
          ended = true;
        });
        socket.on('error', (e: NodeJS.ErrnoException) => {
          error = e.code;
        });
        const guard = setTimeout(() => socket.destroy(), 1_000);
        socket.on('close', () => {
          clearTimeout(guard);
          resolve(error === undefined ? { ended } : { error, ended });
        });
        socket.on('data', () => {});
        socket.on('connect', () => socket.write('GET / HTTP/1.1\r\n'));
      });
    p.setMode('reset');
    expect(await raw()).toEqual({ error: 'ECONNRESET', ended: false });
    p.setMode('refuse');
    expect(await raw()).toEqual({ ended: true });

    p.setMode('pass');
    const open = net.connect(p.port, '127.0.0.1');
    const error = next<[NodeJS.ErrnoException]>(open, 'error');
    await next(open, 'connect');
    await waitUntil(() => p.openConnections() === 1);
    p.setMode('reset');
    expect((await error)[0].code).toBe('ECONNRESET');
  });

  it('reset: new connections are reset at once', async () => {
    const s = await server();
    const p = await proxyTo(s);
    p.setMode('reset');
    const c = client(p.url());
    const { code } = await c.closed;
    expect(code).toBe(1006);
    expect(c.errors).toHaveLength(1);
    expect(p.connections()).toBe(1);
    expect(s.stats().attempted).toBe(0);
  });

  it('resetAll resets open connections in pass mode; new ones still pass', async () => {
    const s = await server();
    const p = await proxyTo(s);
    const a = await openClient(p.url());
    const b = await openClient(p.url());
    p.resetAll();
    expect((await a.closed).code).toBe(1006);
    expect((await b.closed).code).toBe(1006);
    const c = await openClient(p.url());
    expect(await echoRoundTrip(c.ws, 'again')).toBe('again');
    expect(p.connections()).toBe(3);
  });

  it('refuse: new connections close at once; existing ones keep passing', async () => {
    const s = await server();
    const p = await proxyTo(s);
    const old = await openClient(p.url());
    p.setMode('refuse');
    const c = client(p.url());
    expect((await c.closed).code).toBe(1006);
    expect(c.errors).toHaveLength(1);
    expect(await echoRoundTrip(old.ws, 'still here')).toBe('still here');
    expect(s.stats().attempted).toBe(1);
  });
});

describe('fault proxy: stall-handshake', () => {
  it('leaves the client CONNECTING until its own handshakeTimeout fires', async () => {
    const s = await server();
    const p = await proxyTo(s);
    p.setMode('stall-handshake');
    const started = performance.now();
    const c = client(p.url(), { handshakeTimeout: 200 });
    await sleep(120);
    expect(c.ws.readyState).toBe(WebSocket.CONNECTING);
    const { code } = await c.closed;
    expect(code).toBe(1006);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    expect(c.errors.map((e) => e.message)).toEqual(['Opening handshake has timed out']);
    // The server did receive the request and upgrade it; the client never heard.
    expect(s.stats().attempted).toBe(1);
    expect(s.stats().accepted).toBe(1);
    await waitUntil(() => s.clients() === 0);
  });

  it('releases the held response when switched back to pass (a slow handshake), and spares open ones', async () => {
    const s = await server();
    const p = await proxyTo(s);
    const old = await openClient(p.url());
    p.setMode('stall-handshake');
    expect(await echoRoundTrip(old.ws, 'established')).toBe('established');
    const c = client(p.url());
    expect(await happensWithin(c.ws, 'open', 150)).toBe(false);
    p.setMode('pass');
    await next(c.ws, 'open');
    expect(await echoRoundTrip(c.ws, 'late')).toBe('late');
  });
});

describe('fault proxy: slow', () => {
  it('delivers every byte in order, later than pass', async () => {
    const s = await server();
    const p = await proxyTo(s);
    const { ws, received } = await openClient(p.url());
    const payloads = Array.from({ length: 10 }, (_, i) => `${i}:`.padEnd(200, String.fromCharCode(97 + i)));

    const roundTrip = async (): Promise<number> => {
      received.length = 0;
      const started = performance.now();
      for (const payload of payloads) ws.send(payload);
      await waitUntil(() => received.length === payloads.length, 5_000);
      return performance.now() - started;
    };

    const passMs = await roundTrip();
    expect(received.map((b) => b.toString())).toEqual(payloads);

    const before = p.stats();
    p.setMode({ kind: 'slow', bytesPerSecond: 20_000 });
    const slowMs = await roundTrip();
    expect(received.map((b) => b.toString())).toEqual(payloads);
    const after = p.stats();
    // About 2 KB each way at 20 KB/s: at least ~100 ms each way in theory; assert loosely.
    const movedBytes = after.bytesToServer - before.bytesToServer;
    expect(movedBytes).toBeGreaterThanOrEqual(2_000);
    expect(after.bytesToClient - before.bytesToClient).toBeGreaterThanOrEqual(2_000);
    expect(slowMs).toBeGreaterThan(passMs);
    expect(slowMs).toBeGreaterThan(100);
    expect(s.messages.map((m) => m.text)).toEqual([...payloads, ...payloads]);
  });

  it('throttles the handshake of new connections too', async () => {
    const s = await server();
    const p = await proxyTo(s);
    p.setMode({ kind: 'slow', bytesPerSecond: 1_000 });
    const c = client(p.url());
    expect(await happensWithin(c.ws, 'open', 80)).toBe(false);
    await next(c.ws, 'open', 3_000);
  });
});

describe('fault proxy: drop-after', () => {
  it('cuts an open connection after N bytes (both directions together)', async () => {
    const s = await server();
    const p = await proxyTo(s);
    const c = await openClient(p.url());
    const before = p.stats();
    p.setMode({ kind: 'drop-after', bytes: 50 });
    // 10-byte text frames: 16 bytes client to server (masked), 12 back.
    for (let i = 0; i < 5; i++) c.ws.send(`message-${i}`);
    const { code } = await c.closed;
    expect(code).toBe(1006);
    const after = p.stats();
    expect(after.bytesToServer - before.bytesToServer + (after.bytesToClient - before.bytesToClient)).toBe(
      50,
    );
    expect(s.messages.length).toBeLessThan(5);
    expect(c.received.length).toBeLessThan(s.messages.length + 1);
    await waitUntil(() => s.clients() === 0);
  });

  it('cuts a new connection during its handshake', async () => {
    const s = await server();
    const p = await proxyTo(s);
    p.setMode({ kind: 'drop-after', bytes: 20 });
    const c = client(p.url());
    expect((await c.closed).code).toBe(1006);
    expect(c.errors).toHaveLength(1);
    expect(s.stats().attempted).toBe(0);
  });
});

describe('ws server: upgrade responses', () => {
  const cases: [number, Record<string, string>][] = [
    [401, { 'WWW-Authenticate': 'Bearer error="invalid_token"' }],
    [403, {}],
    [429, { 'Retry-After': '7' }],
    [503, { 'Retry-After': '3' }],
  ];

  it.each(cases)('%i reaches the client as unexpected-response with its headers', async (status, headers) => {
    const s = await server();
    const p = await proxyTo(s);
    s.setUpgradeResponse(status, headers);
    const c = client(p.url());
    const [, response] = await next<[unknown, IncomingMessage]>(c.ws, 'unexpected-response');
    expect(response.statusCode).toBe(status);
    for (const [name, value] of Object.entries(headers))
      expect(response.headers[name.toLowerCase()]).toBe(value);
    response.resume();
    c.ws.terminate();
    expect((await c.closed).code).toBe(1006);
    expect(s.stats()).toMatchObject({ attempted: 1, refused: 1, accepted: 0 });
    expect(s.upgrades).toMatchObject([{ attempt: 1, status }]);
  });

  it('without an unexpected-response listener the client sees an error naming the status', async () => {
    const s = await server();
    s.setUpgradeResponse(503, { 'Retry-After': '1' });
    const c = client(s.url());
    await c.closed;
    expect(c.errors.map((e) => e.message)).toEqual(['Unexpected server response: 503']);
  });

  it('times: 1 answers only the next upgrade; null restores upgrades', async () => {
    const s = await server();
    s.setUpgradeResponse(429, { 'Retry-After': '1' }, { times: 1 });
    const first = client(s.url());
    await first.closed;
    expect(first.errors.map((e) => e.message)).toEqual(['Unexpected server response: 429']);
    const second = await openClient(s.url());
    expect(await echoRoundTrip(second.ws, 'ok')).toBe('ok');
    s.setUpgradeResponse(403);
    const third = client(s.url());
    await third.closed;
    s.setUpgradeResponse(null);
    await openClient(s.url());
    expect(s.upgrades.map((u) => u.status)).toEqual([429, 101, 403, 101]);
    expect(s.stats()).toMatchObject({ attempted: 4, refused: 2, accepted: 2 });
  });

  it('expectToken: a missing or wrong bearer token answers 401; the right one upgrades', async () => {
    const s = await server({ expectToken: 'good' });
    const missing = client(s.url());
    const [, noToken] = await next<[unknown, IncomingMessage]>(missing.ws, 'unexpected-response');
    expect(noToken.statusCode).toBe(401);
    expect(noToken.headers['www-authenticate']).toContain('Bearer');
    missing.ws.terminate();

    const wrong = client(s.url(), { headers: { Authorization: 'Bearer bad' } });
    await wrong.closed;
    expect(wrong.errors.map((e) => e.message)).toEqual(['Unexpected server response: 401']);

    await openClient(s.url(), { headers: { Authorization: 'Bearer good' } });
    s.expectToken((token) => token?.startsWith('v2-') === true);
    await openClient(s.url(), { headers: { Authorization: 'Bearer v2-abc' } });
    expect(s.upgrades.map((u) => [u.token, u.status])).toEqual([
      [undefined, 401],
      ['bad', 401],
      ['good', 101],
      ['v2-abc', 101],
    ]);
  });
});

describe('ws server: server-initiated closes', () => {
  it.each([1000, 1001, 1008, 1011, 1012, 4000, 4401, 4999])(
    'closeAll(%i) reaches the client through the proxy with that code',
    async (code) => {
      const s = await server();
      const p = await proxyTo(s);
      const c = await openClient(p.url());
      s.closeAll(code, `reason ${code}`);
      expect(await c.closed).toEqual({ code, reason: `reason ${code}` });
      expect(c.errors).toEqual([]);
      await waitUntil(() => s.clients() === 0 && p.openConnections() === 0);
    },
  );

  it('terminateAll drops every connection without a close frame (1006)', async () => {
    const s = await server();
    const a = await openClient(s.url());
    const b = await openClient(s.url());
    s.terminateAll();
    expect((await a.closed).code).toBe(1006);
    expect((await b.closed).code).toBe(1006);
    await waitUntil(() => s.clients() === 0);
    expect(s.stats().closed).toBe(2);
  });
});

describe('ws server: controls', () => {
  it('autoPong can be switched off and on at runtime', async () => {
    const s = await server({ autoPong: false });
    const { ws } = await openClient(s.url());
    ws.ping();
    expect(await happensWithin(ws, 'pong', 200)).toBe(false);
    s.setAutoPong(true);
    ws.ping('x');
    const [data] = await next<[Buffer]>(ws, 'pong');
    expect(data.toString()).toBe('x');
  });

  it('logs messages with per-connection ids, calls hooks, and echoes only when asked', async () => {
    const s = await server({ echo: false });
    const seen: string[] = [];
    const unsubscribe = s.onMessage((m, conn) => seen.push(`${conn.id}:${m.text}`));
    const a = await openClient(s.url());
    const b = await openClient(s.url());
    a.ws.send('from a');
    b.ws.send('from b');
    await waitUntil(() => s.messages.length === 2);
    expect(await happensWithin(a.ws, 'message', 100)).toBe(false);
    expect(s.messages.map((m) => `${m.connectionId}:${m.text}`).sort()).toEqual(['1:from a', '2:from b']);
    expect(seen.sort()).toEqual(['1:from a', '2:from b']);
    unsubscribe();
    s.setEcho(true);
    expect(await echoRoundTrip(a.ws, 'echo now')).toBe('echo now');
    expect(seen).toHaveLength(2);
    expect(s.clients()).toBe(2);
    s.broadcast('to all');
    expect((await next<[Buffer]>(b.ws, 'message'))[0].toString()).toBe('to all');
  });

  it('restarts on the same port after close', async () => {
    const first = await startWsServer();
    const port = first.port;
    await first.close();
    const second = await server({ port });
    const c = await openClient(second.url());
    expect(await echoRoundTrip(c.ws, 'back')).toBe('back');
  });
});

describe('close() leaves nothing behind', () => {
  it('with open, frozen, stalled and refused connections: clients gone, ports free, idempotent', async () => {
    const s = await startWsServer();
    const p = await startFaultProxy({ target: { host: '127.0.0.1', port: s.port } });
    const open = await openClient(p.url());
    const frozen = await openClient(p.url());
    p.setMode('blackhole');
    frozen.ws.ping();
    p.setMode('stall-handshake');
    const stalled = client(p.url());
    await waitUntil(() => s.stats().accepted === 3);
    p.setMode({ kind: 'slow', bytesPerSecond: 100 });
    open.ws.send('x'.repeat(1_000));
    s.setUpgradeResponse(503);
    const refused = client(s.url());
    await refused.closed;
    expect(s.wss.clients.size).toBe(3);

    await Promise.all([p.close(), s.close()]);
    await p.close();
    await s.close();
    expect(s.wss.clients.size).toBe(0);
    expect(s.clients()).toBe(0);
    expect(p.openConnections()).toBe(0);
    expect(s.http.listening).toBe(false);
    expect(await portIsFree(s.port)).toBe(true);
    expect(await portIsFree(p.port)).toBe(true);
    for (const c of [open, frozen, stalled]) expect((await c.closed).code).toBe(1006);
  });

  it('with the target down, the proxy resets its clients and still closes', async () => {
    const s = await startWsServer();
    const port = s.port;
    await s.close();
    const p = await startFaultProxy({ target: { host: '127.0.0.1', port } });
    const c = client(p.url());
    expect((await c.closed).code).toBe(1006);
    expect(c.errors).toHaveLength(1);
    await p.close();
    expect(await portIsFree(p.port)).toBe(true);
  });
});
