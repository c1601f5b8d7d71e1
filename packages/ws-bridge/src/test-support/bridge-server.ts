import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Bridge, BridgeEvents } from '../types';

/** One accepted connection as the server sees it. */
export interface Accepted {
  readonly socket: WebSocket;
  readonly authorization: string | undefined;
  readonly url: string;
  readonly messages: string[];
  readonly closed: Promise<{ code: number; reason: string }>;
}

export interface BridgeServerOptions {
  /** Answer the upgrade with an HTTP status instead of accepting it (per request). */
  readonly respond?: (
    request: IncomingMessage,
    index: number,
  ) => { status: number; headers?: Record<string, string> } | 'hang' | undefined;
  readonly autoPong?: boolean;
  readonly onConnection?: (accepted: Accepted, index: number) => void;
  /** Keep every accepted connection in `accepted` (off for soak tests). @default true */
  readonly record?: boolean;
}

/** A real `ws` server on 127.0.0.1, port 0, with a hook to refuse upgrades with an HTTP status. */
export async function startBridgeServer(options: BridgeServerOptions = {}) {
  const http = createServer((_request, response) => response.writeHead(404).end());
  const wss = new WebSocketServer({ noServer: true, autoPong: options.autoPong ?? true });
  const sockets = new Set<Socket>();
  http.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const accepted: Accepted[] = [];
  let upgrades = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  const wake = () => {
    for (const waiter of [...waiters])
      if (accepted.length >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
  };
  http.on('upgrade', (request, socket, head) => {
    const index = upgrades++;
    const answer = options.respond?.(request, index);
    if (answer === 'hang') return; // never answer: a handshake that never completes
    if (answer) {
      const headers = Object.entries(answer.headers ?? {})
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('');
      socket.end(
        `HTTP/1.1 ${answer.status} Refused\r\n${headers}Content-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const messages: string[] = [];
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
      );
      ws.on('error', () => {});
      ws.on('message', (data) => messages.push(data.toString()));
      const entry: Accepted = {
        socket: ws,
        authorization: request.headers.authorization,
        url: request.url ?? '',
        messages,
        closed,
      };
      if (options.record ?? true) accepted.push(entry);
      options.onConnection?.(entry, accepted.length - 1);
      wake();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    port,
    accepted,
    get upgrades() {
      return upgrades;
    },
    /** Resolves once `count` connections were accepted. */
    waitForConnections(count: number): Promise<void> {
      return new Promise((resolve) => {
        waiters.push({ count, resolve });
        wake();
      });
    },
    async close(): Promise<void> {
      for (const client of wss.clients) client.terminate();
      for (const socket of sockets) socket.destroy();
      wss.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
    async [Symbol.asyncDispose]() {
      await this.close();
    },
  };
}

/** Resolves on the next matching event of a bridge. */
export function nextEvent<TEvent extends keyof BridgeEvents>(
  bridge: Bridge,
  event: TEvent,
  predicate: (payload: BridgeEvents[TEvent]) => boolean = () => true,
): Promise<BridgeEvents[TEvent]> {
  return new Promise((resolve) => {
    const off = bridge.on(event, (payload) => {
      if (!predicate(payload)) return;
      off();
      resolve(payload);
    });
  });
}

/** Waits for a condition driven by real I/O (no sleeps as synchronization: polls on setImmediate, bounded). */
export async function until(condition: () => boolean, limit = 5_000): Promise<void> {
  const deadline = Date.now() + limit;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setImmediate(resolve));
  }
}
