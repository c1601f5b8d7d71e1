/**
 * `createKernelServer`: lets a Node process be the daemon, speaking the same protocol as the client
 * (any `KernelCodec` on a Unix socket, JSON over loopback HTTP). Exported on `@trestle/kernel-client/server`.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { lengthPrefixedJson } from './codec-length';
import { KernelConfigError, KernelError, KernelErrorCode } from './errors';
import { Dispatcher, type KernelMethods, type KernelServerErrorContext } from './server-dispatch';
import { handleHttpRequest } from './server-http';
import { listenOnSocketFile, removeSocketFile, type SocketFile } from './server-socket-file';
import { StreamConnection } from './server-stream';
import type { KernelCodec } from './types';
import { checkSocketPath } from './unix-transport';

export { lengthPrefixedJson } from './codec-length';
export { formatLineReply, lineCodec, parseLineRequest } from './codec-line';
export {
  type KernelMethodContext,
  type KernelMethodHandler,
  type KernelMethods,
  KernelServerErrorCode,
  type KernelServerErrorContext,
} from './server-dispatch';
export { HTTP_CALL_PATH, HTTP_HEALTH_PATH } from './server-http';
export { KernelMethodError } from './server-method-error';

/** Options of {@link createKernelServer}. */
export interface KernelServerOptions {
  /** The methods answered, by exact name (`PING`, `GET_STATUS`...). */
  readonly methods: KernelMethods;
  /**
   * The framing spoken on a Unix socket (HTTP always speaks JSON bodies).
   * @default lengthPrefixedJson()
   */
  readonly codec?: KernelCodec;
  /**
   * Largest request accepted, framing included (a frame, a line, or an HTTP body). A larger one is
   * answered `REQUEST_TOO_LARGE` and its connection closed.
   * @default 65536
   */
  readonly maxRequestBytes?: number;
  /**
   * Connections open at once (Unix socket and HTTP together); more are closed at once.
   * @default 256
   */
  readonly maxConnections?: number;
  /**
   * Handlers running at once for one connection. Requests with an `id` run concurrently up to this
   * bound; past it the server stops reading the connection until one finishes (backpressure).
   * Requests without `id` (one-shot framing, line codecs) run one at a time, in order.
   * @default 64
   */
  readonly maxInflightPerConnection?: number;
  /**
   * Longest an asynchronous handler may run: past it the reply is `HANDLER_TIMEOUT` and the handler's
   * `signal` aborts.
   * @default 30000
   */
  readonly handlerTimeoutMs?: number;
  /**
   * Longest `close()` waits for running handlers before aborting them and closing every connection.
   * @default 5000
   */
  readonly closeGraceMs?: number;
  /** Told about handler failures (`INTERNAL` replies) and replies that could not be encoded. */
  readonly onError?: (error: unknown, context: KernelServerErrorContext) => void;
}

/** The defaults of {@link KernelServerOptions}. */
export const defaultKernelServerOptions = Object.freeze({
  maxRequestBytes: 65_536,
  maxConnections: 256,
  maxInflightPerConnection: 64,
  handlerTimeoutMs: 30_000,
  closeGraceMs: 5_000,
});

/** Where to listen: a Unix socket path (speaks the codec) or a TCP port (speaks HTTP). */
export type KernelListenTarget =
  | { readonly path: string }
  | {
      readonly port: number;
      /**
       * Interface to bind. Keep it loopback: the protocol has no authentication.
       * @default '127.0.0.1'
       */
      readonly host?: string;
    };

/** Where a server listens. */
export type KernelServerAddress =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'http'; readonly host: string; readonly port: number; readonly url: string };

/** A daemon speaking the kernel protocol. */
export interface KernelServer {
  /**
   * Starts listening. A stale socket file at `path` (nobody answers on it) is removed first.
   * @throws KernelError code `KERNEL_INVALID_ARGUMENT` when already listening or closed; the listen
   *   error (`EADDRINUSE` when a process answers on the socket, `EACCES`...) otherwise.
   */
  listen(target: KernelListenTarget): Promise<KernelServerAddress>;
  /**
   * Stops listening, stops reading requests, waits for the running handlers (up to `closeGraceMs`),
   * closes every connection and removes the socket file. Idempotent.
   */
  close(): Promise<void>;
  /** Where it listens; `undefined` before `listen` and after `close`. */
  readonly address: KernelServerAddress | undefined;
  /** Connections open now. */
  readonly connections: number;
  /** Handlers running now. */
  readonly inflight: number;
  /** Replies sent: handler results and error replies (unknown method, handler errors, timeouts). */
  readonly served: number;
  /** Refused: connections over `maxConnections`, and requests malformed or too large. */
  readonly rejected: number;
}

/**
 * Creates a daemon that speaks the kernel protocol. A handler's returned plain object is the reply
 * body; any other value is sent as `{ result: value }`. A thrown `KernelMethodError(code, message)` is
 * sent as `{ error: true, code, message }`; any other throw as `{ error: true, code: 'INTERNAL',
 * message }` (no stack); an unknown method as `{ error: true, code: 'UNKNOWN_METHOD', message }`.
 *
 * @throws KernelConfigError for a missing `methods` or a limit that is not a positive integer.
 * @example
 * ```ts
 * import { createKernelServer, KernelMethodError } from '@trestle/kernel-client/server';
 *
 * const server = createKernelServer({
 *   methods: {
 *     PING: () => ({ pong: true }),
 *     GET_STATUS: () => ({ state: 'running', queue: 0 }),
 *     APPLY_POLICY: (params) => {
 *       if (!params.policy) throw new KernelMethodError('BAD_POLICY', 'policy is required');
 *       return { applied: true };
 *     },
 *   },
 * });
 * await server.listen({ path: '/run/user/1000/kernel.sock' });
 * // later
 * await server.close();
 * ```
 */
export function createKernelServer(options: KernelServerOptions): KernelServer {
  if (typeof options?.methods !== 'object' || options.methods === null)
    throw new KernelConfigError('methods', 'must be an object of method handlers');
  for (const [name, handler] of Object.entries(options.methods))
    if (typeof handler !== 'function') throw new KernelConfigError(`methods.${name}`, 'must be a function');
  const limit = (name: keyof typeof defaultKernelServerOptions): number => {
    const value = options[name] ?? defaultKernelServerOptions[name];
    if (!Number.isSafeInteger(value) || value < 1)
      throw new KernelConfigError(name, `must be a positive integer (got ${String(value)})`);
    return value;
  };
  return new Server(options, {
    maxRequestBytes: limit('maxRequestBytes'),
    maxConnections: limit('maxConnections'),
    maxInflightPerConnection: limit('maxInflightPerConnection'),
    handlerTimeoutMs: limit('handlerTimeoutMs'),
    closeGraceMs: limit('closeGraceMs'),
  });
}

type Limits = { -readonly [K in keyof typeof defaultKernelServerOptions]: number };

class Server implements KernelServer {
  readonly #codec: KernelCodec;
  readonly #limits: Limits;
  readonly #dispatcher: Dispatcher;
  readonly #streams = new Set<StreamConnection>();
  readonly #httpSockets = new Set<Socket>();
  #netServer: NetServer | undefined;
  #httpServer: HttpServer | undefined;
  #socketFile: SocketFile | undefined;
  #address: KernelServerAddress | undefined;
  #exchanges = 0;
  #rejected = 0;
  #listening = false;
  #closing: Promise<void> | undefined;
  /** Resolves the wait of `close()` when every connection is done. */
  #onDrained: (() => void) | undefined;

  constructor(options: KernelServerOptions, limits: Limits) {
    this.#codec = options.codec ?? lengthPrefixedJson();
    this.#limits = limits;
    this.#dispatcher = new Dispatcher(options.methods, limits.handlerTimeoutMs, options.onError);
  }

  get address(): KernelServerAddress | undefined {
    return this.#address;
  }
  get connections(): number {
    return this.#streams.size + this.#httpSockets.size;
  }
  get inflight(): number {
    return this.#dispatcher.inflight;
  }
  get served(): number {
    return this.#dispatcher.served;
  }
  get rejected(): number {
    return this.#rejected;
  }

  async listen(target: KernelListenTarget): Promise<KernelServerAddress> {
    if (this.#listening || this.#closing !== undefined)
      throw new KernelError(KernelErrorCode.InvalidArgument, 'the server is already listening, or closed');
    if (typeof target !== 'object' || target === null)
      throw new KernelConfigError('target', 'must be { path } or { port, host? }');
    this.#listening = true;
    try {
      if ('path' in target) return await this.#listenUnix(checkSocketPath(target.path));
      return await this.#listenHttp(target.port, target.host ?? '127.0.0.1');
    } catch (error) {
      this.#listening = false;
      this.#netServer = undefined;
      this.#httpServer = undefined;
      throw error;
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #listenUnix(path: string): Promise<KernelServerAddress> {
    const server = createNetServer({ allowHalfOpen: true });
    this.#netServer = server;
    server.on('connection', (socket) => {
      if (this.#closing !== undefined || this.connections >= this.#limits.maxConnections) {
        this.#rejected++;
        socket.destroy();
        return;
      }
      const connection = new StreamConnection(socket, {
        codec: this.#codec,
        dispatcher: this.#dispatcher,
        maxRequestBytes: this.#limits.maxRequestBytes,
        maxInflight: this.#limits.maxInflightPerConnection,
        onRejected: () => this.#rejected++,
        onClosed: (closed) => {
          this.#streams.delete(closed);
          this.#checkDrained();
        },
      });
      this.#streams.add(connection);
    });
    this.#socketFile = await listenOnSocketFile(server, path);
    this.#address = { kind: 'unix', path };
    return this.#address;
  }

  async #listenHttp(port: number, host: string): Promise<KernelServerAddress> {
    if (!Number.isInteger(port) || port < 0 || port > 65_535)
      throw new KernelConfigError('port', `must be an integer from 0 to 65535 (got ${String(port)})`);
    const server = createHttpServer({ keepAliveTimeout: 5_000 });
    this.#httpServer = server;
    const context = {
      dispatcher: this.#dispatcher,
      maxRequestBytes: this.#limits.maxRequestBytes,
      onRejected: () => this.#rejected++,
      onExchange: (delta: 1 | -1) => {
        this.#exchanges += delta;
        if (this.#exchanges === 0) this.#checkDrained();
      },
    };
    server.on('connection', (socket: Socket) => {
      if (this.#closing !== undefined || this.connections >= this.#limits.maxConnections) {
        this.#rejected++;
        socket.destroy();
        return;
      }
      this.#httpSockets.add(socket);
      socket.once('close', () => {
        this.#httpSockets.delete(socket);
        this.#checkDrained();
      });
    });
    server.on('request', (req, res) => handleHttpRequest(context, req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const bound = server.address();
    const actualPort = typeof bound === 'object' && bound !== null ? bound.port : port;
    const shownHost = host.includes(':') ? `[${host}]` : host;
    this.#address = { kind: 'http', host, port: actualPort, url: `http://${shownHost}:${actualPort}` };
    return this.#address;
  }

  async #close(): Promise<void> {
    const netServer = this.#netServer;
    const httpServer = this.#httpServer;
    const stopped: Promise<void>[] = [];
    if (netServer?.listening) stopped.push(new Promise((resolve) => netServer.close(() => resolve())));
    if (httpServer?.listening) {
      stopped.push(new Promise((resolve) => httpServer.close(() => resolve())));
      httpServer.closeIdleConnections();
    }
    for (const stream of this.#streams) stream.shutdown();
    if (!this.#drained()) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#onDrained = resolve;
        timer = setTimeout(resolve, this.#limits.closeGraceMs);
      });
      clearTimeout(timer);
      this.#onDrained = undefined;
    }
    // Past the grace period (or drained): nothing may keep running.
    this.#dispatcher.abortAll(new Error('the kernel server is closing'));
    for (const stream of this.#streams) stream.destroy();
    for (const socket of this.#httpSockets) socket.destroy();
    httpServer?.closeAllConnections();
    await Promise.all(stopped);
    this.#dispatcher.stop();
    if (this.#socketFile !== undefined) removeSocketFile(this.#socketFile);
    this.#socketFile = undefined;
    this.#address = undefined;
  }

  #drained(): boolean {
    return this.#streams.size === 0 && this.#exchanges === 0;
  }

  #checkDrained(): void {
    if (this.#onDrained !== undefined && this.#drained()) this.#onDrained();
    else if (this.#closing !== undefined && this.#httpServer !== undefined && this.#exchanges === 0)
      this.#httpServer.closeIdleConnections();
  }
}
