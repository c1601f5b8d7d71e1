/**
 * `startServer`: the `node:http` server, WebSocket upgrades on `/rpc` (authenticated first), one
 * {@link RpcConnection} and one JSON-RPC channel per socket, a ping/pong heartbeat, draining and close.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { type Authenticator, createAuthenticator } from './auth';
import type {
  App,
  AppDependencies,
  Logger,
  Metrics,
  Principal,
  RpcConnection,
  ServerConfig,
} from './contracts';
import { createRequestHandler, pathnameOf, RPC_PATH, writeUpgradeRefusal, wwwAuthenticate } from './http';
import { createLogger } from './log';
import { createMetrics } from './metrics';
import { createRpcChannel, DEFAULT_MAX_IN_FLIGHT, payloadLimit, type RpcChannel } from './rpc';
import { notification } from './rpc-envelope';

/** Default interval of the WebSocket ping; a peer that misses one pong is terminated. */
export const DEFAULT_HEARTBEAT_MS = 30_000;

/** The close code sent when the connection's token expires (the client reconnects with a fresh one). */
export const TOKEN_EXPIRED_CLOSE_CODE = 4401;

/** Options of {@link startServer}. */
export interface StartServerOptions {
  /** Builds the domain once the server listens (the real one is `createApp` from `./app`). */
  readonly createApp: (deps: AppDependencies) => App | Promise<App>;
  /** @default createLogger(config.logLevel) */
  readonly logger?: Logger;
  /** @default createMetrics() */
  readonly metrics?: Metrics;
  /** @default createAuthenticator(config.auth, config.tiers) */
  readonly authenticator?: Authenticator;
  /** Requests in flight per connection. @default 64 */
  readonly maxInFlightPerConnection?: number;
  /** Ping interval; a peer that has not answered the previous ping is terminated. 0 disables. @default 30_000 */
  readonly heartbeatMs?: number;
  /** Close a connection (code 4401) when its token expires. @default true */
  readonly closeOnTokenExpiry?: boolean;
}

/** A listening server. */
export interface RunningServer {
  /** Where a local client connects: `ws://127.0.0.1:<port>/rpc` (loopback for a wildcard host). */
  readonly url: string;
  /** `http://127.0.0.1:<port>` (health, readiness, metrics). */
  readonly httpUrl: string;
  /** What clients are told to reach this replica at (`config.publicUrl` or {@link url}). */
  readonly publicUrl: string;
  readonly host: string;
  readonly port: number;
  readonly config: ServerConfig;
  readonly app: App;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly authenticator: Authenticator;
  /** The HTTP server (for embedding; do not close it directly, use {@link close}). */
  readonly httpServer: Server;
  readonly draining: boolean;
  /** Open WebSocket connections. */
  readonly connectionCount: number;
  /** Requests in flight on all connections. */
  readonly inFlight: number;
  /** From now on: upgrades and `/readyz` answer 503, new requests `SERVER_DRAINING`. Idempotent. */
  startDraining(): void;
  /** Resolves true when no request is in flight on any connection, false after `timeoutMs`. */
  waitForIdle(timeoutMs: number): Promise<boolean>;
  /** Aborts the signal of every request in flight (their replies are `SERVER_DRAINING` unless the handler answers). */
  abortInFlight(): void;
  /**
   * Drains, closes every WebSocket (1001, terminated after a second), the WebSocket server and the HTTP
   * server. Does not call `app.shutdown` (see `shutdown.ts`). Idempotent.
   */
  close(): Promise<void>;
}

interface Live {
  readonly ws: WebSocket;
  readonly connection: RpcConnection;
  readonly channel: RpcChannel;
  readonly closed: Promise<void>;
  alive: boolean;
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function localHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

function delay(ms: number): { promise: Promise<void>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      const reason =
        error.code === 'EADDRINUSE'
          ? 'the address is already in use: pick another port (--port / TRESTLE_PORT)'
          : error.code === 'EADDRNOTAVAIL'
            ? 'the address is not available on this machine (--host / TRESTLE_HOST)'
            : error.code === 'EACCES'
              ? 'permission denied (ports below 1024 need privileges)'
              : error.message;
      reject(
        new Error(`cannot listen on ${urlHost(host)}:${port}: ${reason} (${error.code ?? 'error'})`, {
          cause: error,
        }),
      );
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/**
 * Starts the server: listens on `config.host:config.port`, then builds the app with
 * `options.createApp({ config, metrics, logger, publicUrl })`. While the app is being built, `/readyz`
 * and upgrades answer 503.
 * @throws Error when it cannot listen (the message names the address and the setting to change), or
 *   what `createApp` throws (the HTTP server is closed first).
 */
export async function startServer(config: ServerConfig, options: StartServerOptions): Promise<RunningServer> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const metrics = options.metrics ?? createMetrics();
  const authenticator = options.authenticator ?? createAuthenticator(config.auth, config.tiers);
  const maxInFlight = options.maxInFlightPerConnection ?? DEFAULT_MAX_IN_FLIGHT;
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const closeOnTokenExpiry = options.closeOnTokenExpiry ?? true;

  let app: App | undefined;
  let draining = false;
  let closing: Promise<void> | undefined;
  const live = new Set<Live>();

  const httpServer = createServer(
    createRequestHandler({ state: () => ({ app, draining }), metrics, logger }),
  );
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: payloadLimit(config.maxMessageBytes),
    perMessageDeflate: false,
    clientTracking: false,
  });

  function accept(ws: WebSocket, request: IncomingMessage, principal: Principal, current: App): void {
    const controller = new AbortController();
    const id = randomUUID();
    const remoteAddress = request.socket.remoteAddress ?? 'unknown';
    const connection: RpcConnection = {
      id,
      principal,
      remoteAddress,
      signal: controller.signal,
      notify(method, params) {
        if (ws.readyState !== WebSocket.OPEN) return false;
        let text: string;
        try {
          text = notification(method, params);
        } catch (error) {
          logger.error({ err: error, method, connectionId: id }, 'rpc: a notification is not serializable');
          return false;
        }
        ws.send(text);
        return true;
      },
      get bufferedAmount() {
        return ws.bufferedAmount;
      },
      close(code = 1000, reason = '') {
        ws.close(code, reason);
      },
    };
    const channel = createRpcChannel({
      connection,
      methods: current.methods,
      send: (text) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(text);
      },
      logger,
      metrics,
      maxMessageBytes: config.maxMessageBytes,
      maxInFlight,
      isDraining: () => draining,
    });
    let expiry: NodeJS.Timeout | undefined;
    const closed = new Promise<void>((resolve) => {
      ws.once('close', (code: number, reason: Buffer) => {
        live.delete(entry);
        clearTimeout(expiry);
        controller.abort(new Error('the connection closed'));
        channel.close();
        metrics.connections.dec();
        try {
          current.onDisconnect(connection);
        } catch (error) {
          logger.error({ err: error, connectionId: id }, 'app.onDisconnect threw');
        }
        logger.info(
          { connectionId: id, tenant: principal.tenant, code, reason: reason.toString('utf8').slice(0, 123) },
          'connection closed',
        );
        resolve();
      });
    });
    const entry: Live = { ws, connection, channel, closed, alive: true };
    live.add(entry);
    metrics.connections.inc();
    logger.info(
      { connectionId: id, tenant: principal.tenant, tier: principal.tier, remoteAddress },
      'connection opened',
    );

    ws.on('error', (error) => {
      logger.info({ connectionId: id, err: error }, 'connection error (ws closes the socket)');
    });
    ws.on('pong', () => {
      entry.alive = true;
    });
    ws.on('message', (data, isBinary) => channel.receive(data, isBinary));
    if (closeOnTokenExpiry) {
      const remainingMs = principal.expiresAt * 1000 - Date.now();
      if (remainingMs <= 2_147_483_647) {
        expiry = setTimeout(
          () => ws.close(TOKEN_EXPIRED_CLOSE_CODE, 'token expired'),
          Math.max(0, remainingMs),
        );
        expiry.unref();
      }
    }
    try {
      current.onConnection(connection);
    } catch (error) {
      logger.error({ err: error, connectionId: id }, 'app.onConnection threw');
      ws.close(1011, 'internal error');
    }
  }

  async function upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const onError = (error: Error): void => {
      logger.debug({ err: error }, 'upgrade socket error');
    };
    socket.on('error', onError);
    if (pathnameOf(request.url) !== RPC_PATH) {
      writeUpgradeRefusal(socket, {
        status: 404,
        code: 'NOT_FOUND',
        message: `WebSocket upgrades are on ${RPC_PATH}`,
      });
      return;
    }
    const refuseUnavailable = (): void => {
      writeUpgradeRefusal(socket, {
        status: 503,
        code: draining ? 'SERVER_DRAINING' : 'SERVER_STARTING',
        message: draining ? 'the server is shutting down' : 'the server is starting',
        headers: { 'Retry-After': '1' },
      });
    };
    if (draining || !app) {
      refuseUnavailable();
      return;
    }
    const result = await authenticator.authenticate(request);
    if (socket.destroyed) return;
    if (!result.ok) {
      logger.info(
        { code: result.code, status: result.status, remoteAddress: request.socket.remoteAddress },
        'upgrade refused',
      );
      writeUpgradeRefusal(socket, {
        status: result.status,
        code: result.code,
        message: result.message,
        headers: { 'WWW-Authenticate': wwwAuthenticate(result.code, result.message) },
      });
      return;
    }
    const current = app;
    if (draining || !current) {
      refuseUnavailable();
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      socket.off('error', onError);
      accept(ws, request, result.principal, current);
    });
  }

  httpServer.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgrade(request, socket, head).catch((error: unknown) => {
      logger.error({ err: error }, 'upgrade failed');
      writeUpgradeRefusal(socket, { status: 500, code: 'INTERNAL', message: 'internal error' });
    });
  });
  httpServer.on('clientError', (error, socket) => {
    logger.debug({ err: error }, 'http client error');
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await listen(httpServer, config.host, config.port);
  const port = (httpServer.address() as AddressInfo).port;
  const url = `ws://${urlHost(localHost(config.host))}:${port}${RPC_PATH}`;
  const httpUrl = `http://${urlHost(localHost(config.host))}:${port}`;
  const publicUrl = config.publicUrl ?? url;

  try {
    app = await options.createApp({ config, metrics, logger, publicUrl });
  } catch (error) {
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    throw error;
  }
  const current: App = app;

  const heartbeat =
    heartbeatMs > 0
      ? setInterval(() => {
          for (const entry of live) {
            if (!entry.alive) {
              logger.info(
                { connectionId: entry.connection.id },
                'heartbeat missed: terminating the connection',
              );
              entry.ws.terminate();
              continue;
            }
            entry.alive = false;
            try {
              entry.ws.ping();
            } catch {
              entry.ws.terminate();
            }
          }
        }, heartbeatMs)
      : undefined;
  heartbeat?.unref();

  logger.info({ url, publicUrl, replica: config.replicaId }, 'listening');

  const startDraining = (): void => {
    if (draining) return;
    draining = true;
    logger.info({ connections: live.size }, 'draining: no new connections or calls');
  };

  const inFlight = (): number => {
    let total = 0;
    for (const entry of live) total += entry.channel.inFlight;
    return total;
  };

  return {
    url,
    httpUrl,
    publicUrl,
    host: config.host,
    port,
    config,
    app: current,
    metrics,
    logger,
    authenticator,
    httpServer,
    get draining() {
      return draining;
    },
    get connectionCount() {
      return live.size;
    },
    get inFlight() {
      return inFlight();
    },
    startDraining,
    async waitForIdle(timeoutMs) {
      const timer = delay(timeoutMs);
      const idle = Promise.all([...live].map((entry) => entry.channel.idle())).then(() => true);
      try {
        return await Promise.race([idle, timer.promise.then(() => false)]);
      } finally {
        timer.cancel();
      }
    },
    abortInFlight() {
      for (const entry of live) entry.channel.abortAll('shutdown');
    },
    close() {
      closing ??= (async () => {
        startDraining();
        if (heartbeat) clearInterval(heartbeat);
        const entries = [...live];
        for (const entry of entries) {
          entry.channel.abortAll('shutdown');
          entry.ws.close(1001, 'server shutting down');
        }
        const grace = delay(1_000);
        await Promise.race([Promise.all(entries.map((entry) => entry.closed)), grace.promise]);
        grace.cancel();
        for (const entry of live) entry.ws.terminate();
        await Promise.all(entries.map((entry) => entry.closed));
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        await new Promise<void>((resolve) => {
          httpServer.close(() => resolve());
          httpServer.closeAllConnections();
        });
        logger.info('server closed');
      })();
      return closing;
    },
  };
}
