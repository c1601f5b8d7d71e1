/**
 * A JSON-RPC 2.0 client over `@trestle/ws-bridge` (a persistent authenticated WebSocket that
 * reconnects with backoff and checks the peer with a heartbeat).
 *
 * - Every (re)connection first runs `hooks.handshake` (session open/resume) on that connection; requests
 *   made meanwhile wait in the client's own queue and go out, in order, once the handshake is done.
 * - A request whose `signal` aborts is rejected at once with `CancelledError`; if it was already sent, an
 *   `rpc.cancel { id }` notification follows (the server interrupts Python).
 * - A connection that drops rejects the requests in flight on it with `ConnectionLostError` (they may
 *   or may not have run); waiting requests keep waiting for the next connection.
 */
import {
  type Bridge,
  type BridgeOptions,
  createBridge,
  PermanentError,
  type SendFunction,
  staticToken,
} from '@trestle/ws-bridge';
import { BackendClosedError, CancelledError, ConnectionLostError, messageOf, RemoteError } from './errors';

/** Sends one request on the connection being set up. */
export type HandshakeRequest = (method: string, params?: unknown) => Promise<unknown>;

/** What the client's owner plugs in. */
export interface RpcHooks {
  /** Runs on every new connection before queued requests go out. A throw drops the connection. */
  handshake(request: HandshakeRequest): Promise<void>;
  /** The connection dropped (the bridge reconnects by itself). */
  disconnected(why: string): void;
  /** A server notification (`session.ending`, `stream.*`). */
  notification(method: string, params: unknown): void;
  /** The bridge gave up for good (a permanent failure: bad token, retries exhausted). */
  failed(error: Error): void;
}

/** Options of {@link RpcClient}. */
export interface RpcClientOptions {
  readonly url: string;
  readonly token: string;
  readonly hooks: RpcHooks;
  /** Overrides of the bridge's options (retry, heartbeat, dialer, ...). */
  readonly bridge?: Partial<Omit<BridgeOptions, 'url' | 'tokenProvider' | 'handler'>>;
}

interface Pending {
  readonly method: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  /** Its id and the link it went out on, once sent. */
  id?: number;
  send?: SendFunction;
  cleanup?: () => void;
}

interface Waiting {
  readonly method: string;
  readonly params: unknown;
  readonly pending: Pending;
}

/** Retry, heartbeat and connect defaults suited to an interactive tool (quick to come back). */
export const REPL_BRIDGE_DEFAULTS = {
  retry: { minBackoffMs: 250, maxBackoffMs: 5_000, multiplier: 2, jitter: 0.3, stableAfterMs: 10_000 },
  heartbeat: { intervalMs: 15_000, timeoutMs: 5_000 },
  connectTimeoutMs: 10_000,
} as const;

export class RpcClient {
  readonly #hooks: RpcHooks;
  readonly #bridge: Bridge;
  readonly #inflight = new Map<number, Pending>();
  #waiting: Waiting[] = [];
  #nextId = 1;
  /** The link requests go out on, once its handshake is done. */
  #link: SendFunction | undefined;
  #failure: Error | undefined;
  #running: Promise<void> | undefined;

  constructor(options: RpcClientOptions) {
    this.#hooks = options.hooks;
    this.#bridge = createBridge({
      ...REPL_BRIDGE_DEFAULTS,
      ...options.bridge,
      url: options.url,
      tokenProvider: staticToken(options.token),
      handler: {
        onConnect: (send) => this.#connected(send),
        onMessage: (data) => this.#message(data),
        onDisconnect: (error) => this.#disconnected(error),
      },
    });
  }

  /** Whether requests go out now (connected, handshake done). */
  get ready(): boolean {
    return this.#link !== undefined;
  }

  /** Starts connecting (and reconnecting) in the background. */
  start(): void {
    this.#running ??= this.#bridge.run().then(
      () => this.#fail(new BackendClosedError('the connection was closed')),
      (error: unknown) => {
        const failure = error instanceof Error ? error : new Error(String(error));
        this.#fail(failure);
        this.#hooks.failed(failure);
      },
    );
  }

  /**
   * Sends a request once the connection is ready, and resolves with its result.
   * @throws RemoteError for an error answer; CancelledError when `signal` aborts; ConnectionLostError
   *   when the connection drops while it is in flight; the bridge's PermanentError after it gave up.
   */
  request(method: string, params?: unknown, signal?: AbortSignal): Promise<unknown> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (signal?.aborted) return Promise.reject(new CancelledError());
    return new Promise<unknown>((resolve, reject) => {
      const pending: Pending = { method, resolve, reject };
      if (signal !== undefined) {
        const onAbort = () => {
          const queued = this.#waiting.findIndex((entry) => entry.pending === pending);
          if (queued !== -1) this.#waiting.splice(queued, 1);
          const id = pending.id;
          if (id !== undefined && this.#inflight.delete(id)) {
            pending.send?.(JSON.stringify({ jsonrpc: '2.0', method: 'rpc.cancel', params: { id } }));
          }
          this.#settle(pending, () => reject(new CancelledError()));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        pending.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      if (this.#link === undefined) this.#waiting.push({ method, params, pending });
      else this.#send(this.#link, method, params, pending);
    });
  }

  /** Sends a notification on the ready connection (dropped when there is none). */
  notify(method: string, params?: unknown): void {
    this.#link?.(JSON.stringify({ jsonrpc: '2.0', method, params }));
  }

  /** Stops: rejects everything pending and closes the socket. */
  async close(): Promise<void> {
    this.#fail(new BackendClosedError('the connection was closed'));
    await this.#bridge.close();
    await this.#running;
  }

  async #connected(send: SendFunction): Promise<void> {
    const handshake: HandshakeRequest = (method, params) =>
      new Promise((resolve, reject) => {
        this.#send(send, method, params, { method, resolve, reject });
      });
    try {
      await this.#hooks.handshake(handshake);
    } catch (error) {
      // The connection dropped during the handshake: the bridge reconnects and runs it again.
      if (error instanceof ConnectionLostError) return;
      // Anything else (the server refuses to open a session) will not get better by reconnecting.
      const failure = new Error(`could not open a session: ${messageOf(error)}`, { cause: error });
      this.#fail(failure);
      this.#hooks.failed(failure);
      void this.#bridge.close();
      return;
    }
    if (this.#failure !== undefined) return;
    this.#link = send;
    this.#flush(send);
  }

  #flush(send: SendFunction): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const entry of waiting) this.#send(send, entry.method, entry.params, entry.pending);
  }

  /** Writes a request on `send`; returns its id, or `undefined` when it was rejected at once. */
  #send(send: SendFunction, method: string, params: unknown, pending: Pending): number | undefined {
    const id = this.#nextId++;
    let text: string;
    try {
      text = JSON.stringify({ jsonrpc: '2.0', id, method, params: params ?? {} });
    } catch (error) {
      this.#settle(pending, () => pending.reject(error instanceof Error ? error : new Error(String(error))));
      return undefined;
    }
    pending.id = id;
    pending.send = send;
    this.#inflight.set(id, pending);
    const result = send(text);
    if (result.status === 'rejected') {
      this.#inflight.delete(id);
      this.#settle(pending, () => pending.reject(new ConnectionLostError(method, result.reason)));
      return undefined;
    }
    return id;
  }

  #message(data: unknown): void {
    if (typeof data !== 'string') return;
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(data) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null) return;
    const id = message.id;
    if (typeof id === 'number' && ('result' in message || 'error' in message)) {
      const pending = this.#inflight.get(id);
      if (pending === undefined) return;
      this.#inflight.delete(id);
      if ('error' in message) this.#settle(pending, () => pending.reject(remoteError(message.error)));
      else this.#settle(pending, () => pending.resolve(message.result));
      return;
    }
    if (typeof message.method === 'string' && id === undefined) {
      this.#hooks.notification(message.method, message.params);
    }
  }

  #disconnected(error: Error): void {
    const wasReady = this.#link !== undefined;
    this.#link = undefined;
    const why = codeOrMessage(error);
    for (const [id, pending] of this.#inflight) {
      this.#inflight.delete(id);
      this.#settle(pending, () => pending.reject(new ConnectionLostError(pending.method, why)));
    }
    if (wasReady && !PermanentError.isInstance(error)) this.#hooks.disconnected(why);
  }

  #fail(error: Error): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    this.#link = undefined;
    for (const [id, pending] of this.#inflight) {
      this.#inflight.delete(id);
      this.#settle(pending, () => pending.reject(error));
    }
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const entry of waiting) this.#settle(entry.pending, () => entry.pending.reject(error));
  }

  #settle(pending: Pending, action: () => void): void {
    pending.cleanup?.();
    action();
  }
}

function codeOrMessage(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : error.message;
}

/** The error of a JSON-RPC error answer. */
function remoteError(error: unknown): RemoteError {
  const record = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const data = (typeof record.data === 'object' && record.data !== null ? record.data : {}) as Record<
    string,
    unknown
  >;
  const code = typeof data.code === 'string' ? data.code : `RPC_${String(record.code ?? 'ERROR')}`;
  const message = typeof record.message === 'string' ? record.message : 'the server answered an error';
  return new RemoteError(code, message, typeof record.code === 'number' ? record.code : -32000, data);
}
