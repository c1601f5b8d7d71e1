/**
 * A real `ws` WebSocketServer on 127.0.0.1 (an `http` server, port 0) with controls for fault tests:
 * refused upgrades with any status and headers, bearer-token checks, server-initiated closes with a
 * code, terminate, a runtime pong switch, echo, a message log and counters. Test support only.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, WebSocket, WebSocketServer } from 'ws';

export type TokenCheck = string | ((token: string | undefined, request: http.IncomingMessage) => boolean);

export interface WsServerOptions {
  /** Echo every message back on its connection (default `true`). */
  readonly echo?: boolean;
  /** Answer pings with pongs (default `true`); switch at runtime with `setAutoPong`. */
  readonly autoPong?: boolean;
  /** Require `Authorization: Bearer <token>` (a mismatch answers 401). Default: no check. */
  readonly expectToken?: TokenCheck;
  /** Passed to `ws` (default 100 MiB, the `ws` default). */
  readonly maxPayload?: number;
  /** Port to listen on (default 0: any free port). Use the old port to "restart" a server. */
  readonly port?: number;
}

export interface UpgradeRecord {
  /** Sequence number of the attempt (1-based). */
  readonly attempt: number;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  /** The bearer token from the `Authorization` header, if any. */
  readonly token: string | undefined;
  /** The HTTP status it was answered with (101 when upgraded). */
  readonly status: number;
  /** The connection id when upgraded. */
  readonly connectionId?: number;
}

export interface ReceivedMessage {
  readonly connectionId: number;
  readonly data: Buffer;
  readonly isBinary: boolean;
  /** `data` as UTF-8. */
  readonly text: string;
}

export interface WsServerStats {
  /** Upgrade requests received. */
  readonly attempted: number;
  /** Upgrades answered with a non-101 status (scripted responses and token mismatches). */
  readonly refused: number;
  /** Upgrades completed (connections opened). */
  readonly accepted: number;
  /** Connections the server saw close (any side, any reason). */
  readonly closed: number;
}

export interface ServerConnection {
  readonly id: number;
  readonly socket: WebSocket;
  readonly request: http.IncomingMessage;
}

export interface UpgradeResponseOptions {
  /** Answer only this many upgrades this way, then upgrade normally again (default: all, until `null`). */
  readonly times?: number;
  /** Response body (default: the status text). */
  readonly body?: string;
}

export interface TestWsServer {
  readonly port: number;
  /** `ws://127.0.0.1:<port><path>`. */
  url(path?: string): string;
  readonly wss: WebSocketServer;
  readonly http: http.Server;
  /**
   * Answers upgrades with `status` and `headers` (e.g. 429 + `Retry-After`) instead of upgrading; `null`
   * restores normal upgrades. Status 101 is not allowed here.
   */
  setUpgradeResponse(
    status: number | null,
    headers?: Readonly<Record<string, string>>,
    options?: UpgradeResponseOptions,
  ): void;
  /** Requires this bearer token (or a predicate over it) from now on; `null` removes the check. */
  expectToken(check: TokenCheck | null): void;
  /** Closes every open connection from the server side with `code` and `reason`. */
  closeAll(code?: number, reason?: string): void;
  /** Destroys every open connection's socket (no close frame). */
  terminateAll(): void;
  setAutoPong(on: boolean): void;
  setEcho(on: boolean): void;
  /** Called for every message; returns an unsubscribe function. */
  onMessage(hook: (message: ReceivedMessage, connection: ServerConnection) => void): () => void;
  /** Called for every opened connection; returns an unsubscribe function. */
  onConnection(hook: (connection: ServerConnection) => void): () => void;
  /** Every message received, in order. Cleared by `clearMessages()`. */
  readonly messages: readonly ReceivedMessage[];
  clearMessages(): void;
  /** Every upgrade attempt, in order. */
  readonly upgrades: readonly UpgradeRecord[];
  /** Open connections. */
  clients(): number;
  /** Open connections by id. */
  connections(): readonly ServerConnection[];
  /** Sends `data` on every open connection. */
  broadcast(data: string | Buffer): void;
  stats(): WsServerStats;
  /** Terminates every connection and refused socket, closes the servers; resolves when all are closed. */
  close(): Promise<void>;
}

const bearer = (header: string | undefined): string | undefined => {
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return match?.[1];
};

const toBuffer = (data: RawData): Buffer =>
  Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);

/** Writes a raw HTTP response on an upgrade socket and closes it. */
function refuse(socket: Duplex, status: number, headers: Readonly<Record<string, string>>, body?: string) {
  const text = body ?? http.STATUS_CODES[status] ?? 'Error';
  const lines = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Unknown'}`];
  const all: Record<string, string> = {
    Connection: 'close',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text)),
    ...headers,
  };
  for (const [name, value] of Object.entries(all)) lines.push(`${name}: ${value}`);
  socket.end(`${lines.join('\r\n')}\r\n\r\n${text}`);
  socket.once('finish', () => socket.destroy());
}

export async function startWsServer(options: WsServerOptions = {}): Promise<TestWsServer> {
  let echo = options.echo ?? true;
  let autoPong = options.autoPong ?? true;
  let tokenCheck: TokenCheck | null = options.expectToken ?? null;
  let scripted:
    | { status: number; headers: Readonly<Record<string, string>>; body?: string; left: number }
    | undefined;
  let nextId = 1;
  let attempted = 0;
  let refused = 0;
  let accepted = 0;
  let closed = 0;
  let closing: Promise<void> | undefined;

  const messages: ReceivedMessage[] = [];
  const upgrades: UpgradeRecord[] = [];
  const open = new Map<number, ServerConnection>();
  const socketClosed = new Map<WebSocket, Promise<void>>();
  /** Raw sockets we refused, until they close. */
  const rawSockets = new Map<Duplex, Promise<void>>();
  const messageHooks = new Set<(message: ReceivedMessage, connection: ServerConnection) => void>();
  const connectionHooks = new Set<(connection: ServerConnection) => void>();

  // `autoPong: false` always (ws >= 8.17): pongs are sent by hand so the switch works at runtime.
  const wss = new WebSocketServer({
    noServer: true,
    autoPong: false,
    clientTracking: true,
    maxPayload: options.maxPayload ?? 100 * 1024 * 1024,
  });
  const server = http.createServer((_request, response) => {
    response.writeHead(426, { 'Content-Type': 'text/plain', Connection: 'close' });
    response.end('Upgrade Required');
  });

  const trackRaw = (socket: Duplex): void => {
    socket.on('error', () => {});
    rawSockets.set(
      socket,
      new Promise<void>((resolve) => {
        socket.once('close', () => {
          rawSockets.delete(socket);
          resolve();
        });
      }),
    );
  };

  server.on('upgrade', (request: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    attempted += 1;
    const attempt = attempted;
    const token = bearer(request.headers.authorization);
    const record = (status: number, connectionId?: number): void => {
      upgrades.push({
        attempt,
        url: request.url ?? '/',
        headers: request.headers,
        token,
        status,
        ...(connectionId === undefined ? {} : { connectionId }),
      });
    };
    trackRaw(socket);
    if (closing !== undefined) {
      socket.destroy();
      return;
    }
    if (scripted !== undefined) {
      const { status, headers, body } = scripted;
      scripted.left -= 1;
      if (scripted.left <= 0) scripted = undefined;
      refused += 1;
      record(status);
      refuse(socket, status, headers, body);
      return;
    }
    if (tokenCheck !== null) {
      const ok = typeof tokenCheck === 'string' ? token === tokenCheck : tokenCheck(token, request);
      if (!ok) {
        refused += 1;
        record(401);
        refuse(socket, 401, {
          'WWW-Authenticate':
            token === undefined ? 'Bearer realm="test"' : 'Bearer realm="test", error="invalid_token"',
        });
        return;
      }
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const id = nextId++;
      accepted += 1;
      record(101, id);
      const connection: ServerConnection = { id, socket: ws, request };
      open.set(id, connection);
      socketClosed.set(
        ws,
        new Promise<void>((resolve) => {
          ws.once('close', () => {
            closed += 1;
            open.delete(id);
            socketClosed.delete(ws);
            resolve();
          });
        }),
      );
      ws.on('error', () => {});
      ws.on('ping', (data) => {
        if (autoPong && ws.readyState === WebSocket.OPEN) ws.pong(data);
      });
      ws.on('message', (raw, isBinary) => {
        const data = toBuffer(raw);
        const message: ReceivedMessage = { connectionId: id, data, isBinary, text: data.toString('utf8') };
        messages.push(message);
        for (const hook of messageHooks) hook(message, connection);
        if (echo && ws.readyState === WebSocket.OPEN) ws.send(data, { binary: isBinary });
      });
      for (const hook of connectionHooks) hook(connection);
      wss.emit('connection', ws, request);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('ws server: no TCP address');
  const port = address.port;

  return {
    port,
    url: (path = '/') => `ws://127.0.0.1:${port}${path.startsWith('/') ? path : `/${path}`}`,
    wss,
    http: server,
    setUpgradeResponse: (status, headers = {}, upgradeOptions = {}) => {
      if (status === null) {
        scripted = undefined;
        return;
      }
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        throw new RangeError(`setUpgradeResponse: status must be 200..599, got ${status}`);
      }
      scripted = {
        status,
        headers,
        left: upgradeOptions.times ?? Number.POSITIVE_INFINITY,
        ...(upgradeOptions.body === undefined ? {} : { body: upgradeOptions.body }),
      };
    },
    expectToken: (check) => {
      tokenCheck = check;
    },
    closeAll: (code = 1000, reason = '') => {
      for (const { socket } of open.values()) {
        if (socket.readyState === WebSocket.OPEN) socket.close(code, reason);
      }
    },
    terminateAll: () => {
      for (const { socket } of open.values()) socket.terminate();
    },
    setAutoPong: (on) => {
      autoPong = on;
    },
    setEcho: (on) => {
      echo = on;
    },
    onMessage: (hook) => {
      messageHooks.add(hook);
      return () => messageHooks.delete(hook);
    },
    onConnection: (hook) => {
      connectionHooks.add(hook);
      return () => connectionHooks.delete(hook);
    },
    messages,
    clearMessages: () => {
      messages.length = 0;
    },
    upgrades,
    clients: () => open.size,
    connections: () => [...open.values()],
    broadcast: (data) => {
      for (const { socket } of open.values()) {
        if (socket.readyState === WebSocket.OPEN) socket.send(data);
      }
    },
    stats: () => ({ attempted, refused, accepted, closed }),
    close: () => {
      closing ??= (async () => {
        for (const { socket } of open.values()) socket.terminate();
        for (const socket of rawSockets.keys()) socket.destroy();
        const wssClosed = new Promise<void>((resolve) => wss.close(() => resolve()));
        const httpClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await Promise.all([wssClosed, httpClosed, ...socketClosed.values(), ...rawSockets.values()]);
        messageHooks.clear();
        connectionHooks.clear();
      })();
      return closing;
    },
  };
}
