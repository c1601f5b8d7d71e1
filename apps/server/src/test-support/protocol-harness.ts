/**
 * Test support for the protocol layer: a fake {@link App} (echo, slow, fail, boom, gate), a real server
 * on 127.0.0.1 port 0 around it, and a real `ws` client that matches replies to requests.
 */

import { WebSocket } from 'ws';
import { z } from 'zod';
import { signToken } from '../auth';
import { loadConfig } from '../config';
import {
  type App,
  type AppDependencies,
  type MethodSpec,
  type MethodTable,
  type RpcConnection,
  type RpcContext,
  RpcMethodError,
  type ServerConfig,
} from '../contracts';
import { createLogger } from '../log';
import { createMetrics } from '../metrics';
import { type RunningServer, type StartServerOptions, startServer } from '../server';

export const TEST_SECRET = 'test-secret-0123456789abcdef-0123456789';

/** A promise with its resolver. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** The fake domain and what it saw. */
export interface FakeApp extends App {
  readonly deps: AppDependencies[];
  readonly connections: RpcConnection[];
  readonly disconnects: RpcConnection[];
  readonly shutdowns: number[];
  /** Signals of the `slow` calls, in order. */
  readonly slowSignals: AbortSignal[];
  /** Resolves the next (or current) `gate` calls. */
  releaseGate(): void;
  /** Resolves when `onDisconnect` has been called `count` times. */
  disconnected(count: number): Promise<void>;
  /** Resolves when `count` calls of `slow` or `gate` are running. */
  running(count: number): Promise<void>;
  readyAnswer: { ok: boolean; detail: Record<string, unknown> };
}

/** A method spec typed by its schema (the table holds them as `MethodSpec<never>`). */
export function method<S extends z.ZodType>(
  params: S,
  handler: (params: z.infer<S>, context: RpcContext) => unknown,
): MethodSpec<never> {
  return { params, handler } as unknown as MethodSpec<never>;
}

/** A fake App: `echo`, `slow` (awaits its signal), `fail` (RpcMethodError), `boom` (a plain Error), `gate`. */
export function fakeApp(): FakeApp {
  const slowSignals: AbortSignal[] = [];
  let gate = deferred();
  let runningNow = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  const disconnectWaiters: { count: number; resolve: () => void }[] = [];
  const enter = (): void => {
    runningNow++;
    for (const waiter of [...waiters]) {
      if (runningNow >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };
  const methods: MethodTable = {
    echo: method(z.object({ value: z.unknown(), n: z.number().optional() }), (params) => ({
      value: params.value,
    })),
    whoami: method(z.object({}), (_params, context) => ({
      tenant: context.connection.principal.tenant,
      tier: context.connection.principal.tier,
      requestId: context.requestId,
    })),
    slow: method(z.object({}), (_params, context) => {
      slowSignals.push(context.signal);
      enter();
      return new Promise((_resolve, reject) => {
        const onAbort = (): void => {
          runningNow--;
          reject(context.signal.reason);
        };
        if (context.signal.aborted) onAbort();
        else context.signal.addEventListener('abort', onAbort, { once: true });
      });
    }),
    gate: method(z.object({}), async () => {
      enter();
      await gate.promise;
      runningNow--;
      return { released: true };
    }),
    fail: method(z.object({}), () => {
      throw new RpcMethodError('NO_SESSION', 'open a session first', { hint: 'session.open' });
    }),
    boom: method(z.object({}), () => {
      throw new Error('secret internal detail');
    }),
    bigint: method(z.object({}), () => ({ value: 1n })),
  };
  const app: FakeApp = {
    deps: [],
    connections: [],
    disconnects: [],
    shutdowns: [],
    slowSignals,
    readyAnswer: { ok: true, detail: { python: 'ok' } },
    methods,
    onConnection(connection) {
      app.connections.push(connection);
    },
    onDisconnect(connection) {
      app.disconnects.push(connection);
      for (const waiter of [...disconnectWaiters]) {
        if (app.disconnects.length >= waiter.count) {
          disconnectWaiters.splice(disconnectWaiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
    },
    disconnected(count) {
      if (app.disconnects.length >= count) return Promise.resolve();
      return new Promise((resolve) => disconnectWaiters.push({ count, resolve }));
    },
    async ready() {
      return app.readyAnswer;
    },
    async shutdown(deadlineMs) {
      app.shutdowns.push(deadlineMs);
    },
    releaseGate() {
      gate.resolve();
      gate = deferred();
    },
    running(count) {
      if (runningNow >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
  };
  return app;
}

/** A config for tests: port 0, a fixed secret, small limits unless overridden by `argv`. */
export function testConfig(argv: readonly string[] = [], env: Record<string, string> = {}): ServerConfig {
  return loadConfig({
    argv: ['--port', '0', '--max-message-bytes', '1024', ...argv],
    env: { TRESTLE_JWT_SECRET: TEST_SECRET, TRESTLE_LOG_LEVEL: 'silent', ...env },
  });
}

export interface TestServer {
  readonly server: RunningServer;
  readonly app: FakeApp;
  token(overrides?: { tenant?: string; tier?: string; ttlSeconds?: number }): Promise<string>;
}

/** A real server around a fake app. Remember to `server.close()`. */
export async function startTestServer(
  config: ServerConfig = testConfig(),
  options: Partial<StartServerOptions> = {},
): Promise<TestServer> {
  const app = fakeApp();
  const server = await startServer(config, {
    logger: createLogger('silent'),
    metrics: createMetrics({ defaultMetrics: false }),
    heartbeatMs: 0,
    ...options,
    createApp: (deps) => {
      app.deps.push(deps);
      return app;
    },
  });
  return {
    server,
    app,
    token: (overrides = {}) =>
      signToken({
        tenant: overrides.tenant ?? 'acme',
        tier: overrides.tier ?? 'free',
        ttlSeconds: overrides.ttlSeconds ?? 3600,
        secret: config.auth.secret ?? TEST_SECRET,
      }),
  };
}

/** A JSON-RPC response or notification as the client sees it. */
export interface Message {
  readonly jsonrpc: '2.0';
  readonly id?: string | number | null;
  readonly result?: unknown;
  readonly error?: { code: number; message: string; data: { code: string; [key: string]: unknown } };
  readonly method?: string;
  readonly params?: unknown;
}

/** A real `ws` client with a message queue. */
export interface TestClient {
  readonly ws: WebSocket;
  /** Sends raw text (or a binary frame). */
  sendRaw(data: string | Buffer, options?: { binary?: boolean }): void;
  /** Sends a request and resolves with its response (matched by id). */
  request(method: string, params?: unknown, id?: string | number): Promise<Message>;
  notify(method: string, params?: unknown): void;
  /** The next message not claimed by `request`. */
  next(): Promise<Message>;
  /** Messages received and not claimed by `request` or `next` yet. */
  queued(): readonly Message[];
  readonly closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

let nextId = 1;

/** Connects to `url` with a bearer token. Rejects on a refused upgrade. */
export function connect(
  url: string,
  token: string | undefined,
  options: { query?: boolean; autoPong?: boolean } = {},
): Promise<TestClient> {
  const target = options.query && token ? `${url}?access_token=${encodeURIComponent(token)}` : url;
  const ws = new WebSocket(target, {
    headers: token && !options.query ? { Authorization: `Bearer ${token}` } : {},
    autoPong: options.autoPong ?? true,
  });
  const pending = new Map<string, (message: Message) => void>();
  const queue: Message[] = [];
  const readers: ((message: Message) => void)[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on('message', (data) => {
    const message = JSON.parse(data.toString()) as Message;
    const key =
      message.id === undefined || message.id === null ? undefined : `${typeof message.id}:${message.id}`;
    const waiter = key === undefined ? undefined : pending.get(key);
    if (waiter && key !== undefined) {
      pending.delete(key);
      waiter(message);
      return;
    }
    const reader = readers.shift();
    if (reader) reader(message);
    else queue.push(message);
  });
  const client: TestClient = {
    ws,
    closed,
    sendRaw(data, sendOptions) {
      ws.send(data, { binary: sendOptions?.binary ?? false });
    },
    request(method, params, id = nextId++) {
      return new Promise((resolve) => {
        pending.set(`${typeof id}:${id}`, resolve);
        ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }));
      });
    },
    notify(method, params) {
      ws.send(JSON.stringify({ jsonrpc: '2.0', method, ...(params === undefined ? {} : { params }) }));
    },
    queued: () => [...queue],
    next() {
      const queued = queue.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve) => readers.push(resolve));
    },
    async close() {
      if (ws.readyState !== WebSocket.CLOSED) ws.close();
      await closed;
    },
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('error', reject);
    ws.once('unexpected-response', (_request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => {
        reject(
          Object.assign(new Error(`refused ${response.statusCode}`), {
            status: response.statusCode,
            headers: response.headers,
            body,
          }),
        );
        ws.terminate();
      });
    });
  });
}

/** An upgrade refusal as `connect` rejects with it. */
export interface Refused {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** Expects `connect` to be refused and returns the HTTP response. */
export async function refused(attempt: Promise<TestClient>): Promise<Refused> {
  try {
    const client = await attempt;
    await client.close();
  } catch (error) {
    if (typeof (error as Refused).status === 'number') return error as Refused;
    throw error;
  }
  throw new Error('expected the upgrade to be refused, but it was accepted');
}
