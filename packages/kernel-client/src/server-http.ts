/**
 * The HTTP face of `createKernelServer` (loopback TCP): `POST /api/call` with a JSON request body →
 * 200 and the JSON reply body; `GET /health` → 200 `{"ok":true}`; anything else → 404. Bodies over
 * `maxRequestBytes` are refused from `Content-Length` or while streaming (413, connection closed);
 * bodies that are not a JSON request are refused with 400. Internal.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KernelFrameError } from './errors';
import {
  type Call,
  type Dispatcher,
  KernelServerErrorCode,
  type ReplyBody,
  type ReplyTarget,
} from './server-dispatch';
import { parseJsonBytes, toKernelRequest } from './wire-json';

/** What the HTTP handler needs from its server. */
export interface HttpServerContext {
  readonly dispatcher: Dispatcher;
  readonly maxRequestBytes: number;
  /** A request was refused (too large or malformed). */
  onRejected(): void;
  /** An exchange (request and its response) started, or is over (response finished or connection gone). */
  onExchange(delta: 1 | -1): void;
}

/** The path of calls. */
export const HTTP_CALL_PATH = '/api/call';
/** The path of the health check. */
export const HTTP_HEALTH_PATH = '/health';

const HEALTH_BODY = '{"ok":true}';

/** Handles one HTTP request. */
export function handleHttpRequest(
  context: HttpServerContext,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  context.onExchange(1);
  res.once('close', () => context.onExchange(-1));
  req.on('error', () => {});
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  const path = query === -1 ? url : url.slice(0, query);
  if (path === HTTP_HEALTH_PATH && (req.method === 'GET' || req.method === 'HEAD')) {
    req.resume();
    sendText(res, 200, HEALTH_BODY);
    return;
  }
  if (path !== HTTP_CALL_PATH || req.method !== 'POST') {
    req.resume();
    sendJson(res, 404, {
      error: true,
      code: KernelServerErrorCode.NotFound,
      message: `no route for ${req.method ?? '?'} ${path} (use POST ${HTTP_CALL_PATH} or GET ${HTTP_HEALTH_PATH})`,
    });
    return;
  }
  new HttpExchange(context, req, res).read();
}

/** One `POST /api/call`: reads the body, runs the call, sends the reply. */
class HttpExchange implements ReplyTarget {
  readonly #context: HttpServerContext;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  #watched: Call | undefined;

  constructor(context: HttpServerContext, req: IncomingMessage, res: ServerResponse) {
    this.#context = context;
    this.#req = req;
    this.#res = res;
  }

  read(): void {
    const max = this.#context.maxRequestBytes;
    const declared = this.#req.headers['content-length'];
    if (declared !== undefined && Number(declared) > max) {
      this.#tooLarge(`request body of ${declared} bytes exceeds the limit of ${max} bytes`);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    this.#req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > max) {
        refused = true;
        chunks.length = 0;
        this.#tooLarge(`request body exceeds the limit of ${max} bytes`);
        return;
      }
      chunks.push(chunk);
    });
    this.#req.on('end', () => {
      if (!refused) this.#dispatch(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
  }

  reply(call: Call, body: ReplyBody): void {
    let json: string;
    try {
      json = JSON.stringify(body);
    } catch (error) {
      json = JSON.stringify(this.#context.dispatcher.replyFailed(call, error));
    }
    sendText(this.#res, 200, json);
  }

  watch(call: Call): void {
    if (this.#res.destroyed && !this.#res.writableFinished) call.abort(new Error('connection closed'));
    else {
      this.#watched = call;
      this.#res.once('close', () => {
        if (!this.#res.writableFinished) this.#watched?.abort(new Error('connection closed'));
      });
    }
  }

  unwatch(): void {
    this.#watched = undefined;
  }

  #dispatch(bytes: Buffer): void {
    let request: ReturnType<typeof toKernelRequest>;
    try {
      request = toKernelRequest(parseJsonBytes(bytes, 'request body'), 'request body');
    } catch (error) {
      this.#context.onRejected();
      const message = KernelFrameError.isInstance(error)
        ? error.message.replace(/^\[kernel-client\] /, '')
        : 'request body is not a JSON request';
      sendJson(this.#res, 400, { error: true, code: KernelServerErrorCode.BadRequest, message });
      return;
    }
    this.#context.dispatcher.run(request, this);
  }

  #tooLarge(message: string): void {
    this.#context.onRejected();
    sendJson(this.#res, 413, { error: true, code: KernelServerErrorCode.RequestTooLarge, message }, true);
  }
}

function sendJson(res: ServerResponse, status: number, body: ReplyBody, close = false): void {
  sendText(res, status, JSON.stringify(body), close);
}

function sendText(res: ServerResponse, status: number, json: string, close = false): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(json),
  };
  if (close) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(json);
}
