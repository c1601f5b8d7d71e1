import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type RequestOptions,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { abortWatchOf } from './abort-watch';
import { honoursStop } from './call-control';
import { parseEndpoint, redactEndpoint } from './endpoint';
import { KernelError, KernelErrorCode, KernelTransportError } from './errors';
import { requestJson } from './request-json';
import type {
  AvailabilityOptions,
  KernelRequest,
  KernelTransport,
  SendOptions,
  TransportReply,
} from './types';

/** Options of {@link httpTransport}. */
export interface HttpTransportOptions {
  /**
   * The daemon's base URL: `http://` or `https://` with host exactly `127.0.0.1`, `[::1]` or `localhost`
   * (see `parseEndpoint`). Requests go to `<url>/api/call`, availability to `<url>/health`.
   */
  readonly url: string;
  /**
   * An agent to use instead of the transport's own (it must match the URL's protocol). The transport
   * does not destroy it on `close()`.
   * @default a keep-alive agent with `maxSockets`
   */
  readonly agent?: HttpAgent;
  /**
   * Sockets of the transport's own keep-alive agent; keep it at least the client's `maxInflight` (the
   * client passes it) so calls never queue inside the agent.
   * @default 256
   */
  readonly maxSockets?: number;
}

/** Error codes of a socket that never reached the daemon. */
const connectCodes = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EACCES',
  'EPERM',
  'EADDRNOTAVAIL',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** How much of a non-200 body is read for the message. */
const statusBodyBytes = 1_024;
/** How much of a `/health` body is drained before the socket is dropped instead. */
const healthBodyBytes = 65_536;

/**
 * A transport to a daemon on loopback HTTP(S): `POST <url>/api/call` with the request JSON; a 200 reply
 * is the JSON body. Uses `node:http`/`node:https` with a keep-alive agent (no global `fetch`, for exact
 * control of sizes and aborts). Failures, as `KernelTransportError` kinds:
 * - `connect`: nothing listens (ECONNREFUSED...);
 * - `lost`: the connection closed or reset before any reply byte;
 * - `bad_reply`: not UTF-8 JSON, or truncated (the connection closed after part of the body);
 * - `too_large`: `Content-Length` above `maxResponseBytes` (refused before reading), or a streamed
 *   (chunked) body that passes it;
 * - `http_status`: a status other than 200 (`HTTP <status>: <first 200 characters of the body>`);
 * - `aborted` (the send's signal), `closed` (`close()`).
 *
 * `wireBytes` counts the body (headers are not counted).
 * @throws KernelConfigError (`KERNEL_ENDPOINT_INVALID`) naming `url` when the URL is not loopback HTTP(S).
 * @example
 * ```ts
 * const client = new KernelClient({ enabled: true, transport: httpTransport({ url: 'http://127.0.0.1:8765' }) });
 * ```
 */
export function httpTransport(options: HttpTransportOptions): KernelTransport {
  const parsed = parseEndpoint(options.url, 'url');
  if (parsed.kind !== 'http')
    throw new KernelError(
      KernelErrorCode.EndpointInvalid,
      'url: httpTransport needs an http:// or https:// URL',
    );
  const base = parsed.url;
  const secure = base.protocol === 'https:';
  const maxSockets = options.maxSockets ?? 256;
  if (!Number.isSafeInteger(maxSockets) || maxSockets < 1)
    throw new KernelError(
      KernelErrorCode.InvalidArgument,
      `maxSockets must be a positive integer (got ${String(maxSockets)})`,
    );
  const ownAgent =
    options.agent === undefined
      ? new (secure ? HttpsAgent : HttpAgent)({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets })
      : undefined;
  const agent = options.agent ?? ownAgent;
  const basePath = base.pathname.replace(/\/+$/, '');
  const hostname = base.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = base.port === '' ? undefined : Number(base.port);
  const pending = new Set<(error: KernelTransportError) => void>();
  let closed = false;

  const requestOptions = (method: 'GET' | 'POST', path: string, headers: Record<string, string | number>) =>
    ({ method, hostname, port, path: `${basePath}${path}`, agent, headers }) satisfies RequestOptions;
  const open = (options: RequestOptions): ClientRequest =>
    secure ? httpsRequest(options) : httpRequest(options);

  const send = (request: KernelRequest, options: SendOptions): Promise<TransportReply> =>
    new Promise<TransportReply>((resolve, reject) => {
      if (closed) return reject(new KernelTransportError('closed', 'the transport is closed'));
      const { maxResponseBytes } = options;
      const watch = abortWatchOf(options);
      if (watch.aborted) return reject(new KernelTransportError('aborted', 'the send was aborted'));
      const json = Buffer.from(requestJson(request));
      const req = open(
        requestOptions('POST', '/api/call', {
          'content-type': 'application/json',
          'content-length': json.length,
          accept: 'application/json',
        }),
      );
      let settled = false;
      let received = 0;
      const finish = (outcome: { reply: TransportReply } | { error: KernelTransportError }) => {
        if (settled) return;
        settled = true;
        unwatch();
        pending.delete(onClose);
        if ('reply' in outcome) resolve(outcome.reply);
        else {
          reject(outcome.error);
          req.destroy();
        }
      };
      const fail = (kind: KernelTransportError['kind'], message: string, cause?: unknown) =>
        finish({ error: new KernelTransportError(kind, message, { cause, wireBytes: received }) });
      const onAbort = () => fail('aborted', 'the send was aborted', watch.reason);
      const onClose = (error: KernelTransportError) => finish({ error });
      const unwatch = watch.onAbort(onAbort);
      pending.add(onClose);

      req.on('error', (error: NodeJS.ErrnoException) => {
        if (settled) return;
        if (connectCodes.has(error.code ?? ''))
          fail('connect', `cannot reach the daemon: ${error.message}`, error);
        else fail('lost', `the connection was lost before the reply: ${error.message}`, error);
      });
      req.on('response', (res: IncomingMessage) => {
        if (settled) return res.destroy();
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        res.on('error', () => {}); // Reported through 'close' without 'end'.
        if (status !== 200) {
          const done = () => {
            const text = Buffer.concat(chunks).toString('utf8').slice(0, 200);
            fail('http_status', `HTTP ${status}: ${text}`);
          };
          let kept = 0;
          res.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (kept < statusBodyBytes) {
              chunks.push(chunk.subarray(0, statusBodyBytes - kept));
              kept += Math.min(chunk.length, statusBodyBytes - kept);
            }
            if (kept >= statusBodyBytes) done();
          });
          res.on('end', done);
          res.on('close', done);
          return;
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxResponseBytes)
          return fail(
            'too_large',
            `the reply announces ${declared} bytes, more than maxResponseBytes (${maxResponseBytes})`,
          );
        res.on('data', (chunk: Buffer) => {
          if (settled) return;
          received += chunk.length;
          if (received > maxResponseBytes)
            return fail(
              'too_large',
              `the reply passed maxResponseBytes (${maxResponseBytes}) while streaming`,
            );
          chunks.push(chunk);
        });
        res.on('end', () => {
          if (settled) return;
          let body: unknown;
          try {
            const text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
            body = JSON.parse(text);
          } catch (error) {
            return fail('bad_reply', `the reply is not UTF-8 JSON: ${(error as Error).message}`, error);
          }
          finish({ reply: { body, wireBytes: received } });
        });
        res.on('close', () => {
          if (settled || res.complete) return;
          if (received > 0) fail('bad_reply', `the reply was truncated after ${received} bytes`);
          else fail('lost', 'the connection closed before the reply body');
        });
      });
      req.end(json);
    });

  const isAvailable = ({ signal }: AvailabilityOptions): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      if (closed || signal.aborted) return resolve(false);
      let req: ClientRequest;
      try {
        req = open(requestOptions('GET', '/health', { accept: 'application/json' }));
      } catch {
        return resolve(false);
      }
      let settled = false;
      const answer = (value: boolean) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        pending.delete(onClose);
        resolve(value);
        if (!value) req.destroy();
      };
      const onAbort = () => answer(false);
      const onClose = () => answer(false);
      signal.addEventListener('abort', onAbort, { once: true });
      pending.add(onClose);
      req.on('error', () => answer(false));
      req.on('response', (res) => {
        res.on('error', () => {});
        let drained = 0;
        // Drain a small body so the socket can be reused; drop the socket if it is large.
        res.on('data', (chunk: Buffer) => {
          drained += chunk.length;
          if (drained > healthBodyBytes) res.destroy();
        });
        answer(res.statusCode === 200);
      });
      req.end();
    });

  const transport: KernelTransport & { readonly [honoursStop]: true } = {
    [honoursStop]: true,
    name: 'http',
    endpoint: redactEndpoint(base.href),
    send,
    isAvailable,
    async close() {
      if (closed) return;
      closed = true;
      for (const reject of [...pending])
        reject(new KernelTransportError('closed', 'the transport was closed'));
      ownAgent?.destroy();
    },
  };
  return transport;
}
