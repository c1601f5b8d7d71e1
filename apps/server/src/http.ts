/**
 * The plain HTTP side of the server: `/healthz`, `/readyz`, `/metrics`, 404 for the rest, and the HTTP
 * responses written on the raw socket when a WebSocket upgrade is refused.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { App, Logger, Metrics } from './contracts';

/** The path WebSocket upgrades are accepted on. */
export const RPC_PATH = '/rpc';

/** How long `/readyz` waits for `app.ready()` before answering 503. */
export const READY_TIMEOUT_MS = 5_000;

/** What the HTTP handler needs to know about the server. */
export interface HttpState {
  /** `undefined` while the app is being created. */
  readonly app: App | undefined;
  readonly draining: boolean;
}

/** Options of {@link createRequestHandler}. */
export interface RequestHandlerOptions {
  readonly state: () => HttpState;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** @default {@link READY_TIMEOUT_MS} */
  readonly readyTimeoutMs?: number;
}

/** The pathname of a request URL, or `undefined` when it does not parse. */
export function pathnameOf(url: string | undefined): string | undefined {
  try {
    return new URL(url ?? '/', 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}

function sendJson(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  });
  response.end(request.method === 'HEAD' ? undefined : text);
}

async function readiness(
  app: App,
  timeoutMs: number,
): Promise<{ readonly ok: boolean; readonly detail: Record<string, unknown> }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ ok: boolean; detail: Record<string, unknown> }>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, detail: { error: `app.ready() took over ${timeoutMs} ms` } }),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([
      Promise.resolve()
        .then(() => app.ready())
        .catch((error: unknown) => ({
          ok: false,
          detail: { error: String((error as Error)?.message ?? error) },
        })),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The `request` listener of the HTTP server:
 * - `GET /healthz`: 200 `{"ok":true}` while the process runs;
 * - `GET /readyz`: 200 `{"ok":true,"detail":{...}}` when `app.ready()` says so, else 503 (also while
 *   starting and while draining, with `starting` / `draining: true`);
 * - `GET /metrics`: the registry in the Prometheus text format;
 * - 405 for another method on those paths, 404 `{"error":"NOT_FOUND"}` elsewhere (`/rpc` without an
 *   upgrade is 426).
 */
export function createRequestHandler(
  options: RequestHandlerOptions,
): (request: IncomingMessage, response: ServerResponse) => void {
  const readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = pathnameOf(request.url);
    const known = path === '/healthz' || path === '/readyz' || path === '/metrics';
    if (known && request.method !== 'GET' && request.method !== 'HEAD') {
      sendJson(request, response, 405, { error: 'METHOD_NOT_ALLOWED' }, { Allow: 'GET, HEAD' });
      return;
    }
    if (path === '/healthz') {
      sendJson(request, response, 200, { ok: true });
      return;
    }
    if (path === '/readyz') {
      const { app, draining } = options.state();
      if (draining) {
        sendJson(request, response, 503, { ok: false, draining: true });
        return;
      }
      if (!app) {
        sendJson(request, response, 503, { ok: false, starting: true });
        return;
      }
      const ready = await readiness(app, readyTimeoutMs);
      const drainingNow = options.state().draining;
      sendJson(request, response, ready.ok && !drainingNow ? 200 : 503, {
        ok: ready.ok && !drainingNow,
        ...(drainingNow ? { draining: true } : {}),
        detail: ready.detail,
      });
      return;
    }
    if (path === '/metrics') {
      const text = await options.metrics.registry.metrics();
      response.writeHead(200, {
        'Content-Type': options.metrics.registry.contentType,
        'Content-Length': Buffer.byteLength(text),
        'Cache-Control': 'no-store',
      });
      response.end(request.method === 'HEAD' ? undefined : text);
      return;
    }
    if (path === RPC_PATH) {
      sendJson(
        request,
        response,
        426,
        { error: 'UPGRADE_REQUIRED', message: 'connect with a WebSocket' },
        {
          Upgrade: 'websocket',
        },
      );
      return;
    }
    sendJson(request, response, 404, { error: 'NOT_FOUND' });
  };
  return (request, response) => {
    handle(request, response).catch((error: unknown) => {
      options.logger.error({ err: error, url: request.url }, 'http: request failed');
      if (!response.headersSent) sendJson(request, response, 500, { error: 'INTERNAL' });
      else response.destroy();
    });
  };
}

/** A refusal of an upgrade, written as an HTTP response on the raw socket. */
export interface UpgradeRefusal {
  readonly status: number;
  /** Stable code: the body's `error`. */
  readonly code: string;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A `WWW-Authenticate` value (RFC 6750 §3): no error code when no token was given. */
export function wwwAuthenticate(code: string, message: string): string {
  if (code === 'AUTH_MISSING') return 'Bearer realm="trestle"';
  const description = message.replace(/["\\\r\n]/g, "'");
  return `Bearer realm="trestle", error="invalid_token", error_description="${description}"`;
}

/**
 * Writes `HTTP/1.1 <status> ...` with a JSON body `{ "error": code, "message": ... }` and
 * `Connection: close`, then destroys the socket once written (or after a second if the peer does not
 * read).
 */
export function writeUpgradeRefusal(socket: Duplex, refusal: UpgradeRefusal): void {
  if (socket.destroyed) return;
  const body = `${JSON.stringify({ error: refusal.code, message: refusal.message })}\n`;
  const headers: Record<string, string> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
    Connection: 'close',
    ...refusal.headers,
  };
  const head = [
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value.replace(/[\r\n]/g, ' ')}`),
  ].join('\r\n');
  const timer = setTimeout(() => socket.destroy(), 1_000);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('finish', () => socket.destroy());
  socket.end(`${head}\r\n\r\n${body}`);
}
