import { Socket } from 'node:net';
import { isAbsolute } from 'node:path';
import { abortWatchOf } from './abort-watch';
import { honoursStop } from './call-control';
import { lengthPrefixedJson } from './codec-length';
import { ConnectWatchdog } from './connect-watchdog';
import { maxSocketPathBytes, redactEndpoint } from './endpoint';
import { KernelConfigError, KernelErrorCode } from './errors';
import type {
  AvailabilityOptions,
  KernelCodec,
  KernelRequest,
  KernelTransport,
  SendOptions,
  TransportReply,
} from './types';
import { PersistentConnection } from './unix-connection';
import { OneshotCall } from './unix-oneshot';
import { abortedError, closedError, type UnixContext } from './unix-socket';

/** How the Unix transport uses connections. */
export type UnixTransportMode = 'oneshot' | 'persistent';

/** Options of {@link unixTransport}. */
export interface UnixTransportOptions {
  /** Absolute path of the daemon's socket; must fit `sun_path` (107 bytes on Linux, 103 on macOS/BSD). */
  readonly path: string;
  /**
   * How requests and replies are framed.
   * @default lengthPrefixedJson()
   */
  readonly codec?: KernelCodec;
  /**
   * `oneshot`: a new connection per request (write one frame, read one reply, close), as the seed
   * does. `persistent`: one connection, opened at the first send and again after it dies; many
   * requests in flight, matched by id or by order as the codec says.
   * @default 'oneshot'
   */
  readonly mode?: UnixTransportMode;
  /**
   * Longest wait for a connection to open before the attempt fails with kind `connect`; 0 for no
   * limit of its own (the send's signal still ends it). One timer serves every connect in progress.
   * @default 1000
   */
  readonly connectTimeoutMs?: number;
}

/** The defaults of {@link UnixTransportOptions}. */
export const defaultUnixTransportOptions = Object.freeze({
  mode: 'oneshot' as UnixTransportMode,
  connectTimeoutMs: 1_000,
});

/**
 * A transport over a Unix domain socket (name `unix`, endpoint `unix://<path>` with the home directory
 * shown as `~`).
 *
 * Failures reject with a `KernelTransportError` whose `kind` is: `connect` (never reached: ENOENT,
 * ECONNREFUSED, EACCES, connect timeout), `lost` (closed or reset before any byte of the reply),
 * `bad_reply` (a frame that cannot be decoded, or truncated by the end of the stream; `wireBytes` is
 * what came), `too_large` (over `maxResponseBytes`, refused before allocating), `aborted` (the send's
 * signal fired), `closed` (after `close()`). The transport never retries and sets no timer per call:
 * the deadline is the caller's signal.
 *
 * In `persistent` mode, the first send of a tick is written at once and the sends that follow in
 * the same tick go out together in one write at the end of it. With an `id` codec, an aborted call
 * is forgotten and its late reply dropped; only when no other call waits on the connection is it
 * closed (the daemon may be wedged on it, or a trickling reply would hold up later ones). With an
 * `order` codec, a call aborted while its reply is outstanding destroys the connection (the order
 * would be lost): the other calls on it fail with `lost`. A bad frame fails every call on its
 * connection with `bad_reply` (or `too_large`) after delivering the replies that came before it; a
 * reply without an id on an `id` connection counts as a bad frame. An idle persistent connection
 * does not keep the process alive.
 *
 * @throws KernelConfigError code `KERNEL_ENDPOINT_INVALID` (variable `path`) for a relative path or one
 *   that does not fit `sun_path`; code `KERNEL_CONFIG_INVALID` for a bad `mode`, `codec` or
 *   `connectTimeoutMs`.
 * @example
 * ```ts
 * const transport = unixTransport({ path: '/run/user/1000/kernel.sock', mode: 'persistent' });
 * const reply = await transport.send(
 *   { method: 'PING', params: {}, timestamp: Date.now() / 1000 },
 *   { signal: AbortSignal.timeout(1_000), maxResponseBytes: 1_048_576 },
 * );
 * await transport.close();
 * ```
 */
export function unixTransport(options: UnixTransportOptions): KernelTransport {
  const path = checkSocketPath(options?.path);
  const mode = options.mode ?? defaultUnixTransportOptions.mode;
  if (mode !== 'oneshot' && mode !== 'persistent')
    throw new KernelConfigError('mode', `must be 'oneshot' or 'persistent' (got ${String(mode)})`);
  const codec = options.codec ?? lengthPrefixedJson();
  if (
    typeof codec !== 'object' ||
    codec === null ||
    typeof codec.encodeRequest !== 'function' ||
    typeof codec.replyDecoder !== 'function' ||
    (codec.matching !== 'id' && codec.matching !== 'order')
  )
    throw new KernelConfigError('codec', 'must be a KernelCodec');
  const connectTimeoutMs = options.connectTimeoutMs ?? defaultUnixTransportOptions.connectTimeoutMs;
  if (!Number.isFinite(connectTimeoutMs) || connectTimeoutMs < 0)
    throw new KernelConfigError(
      'connectTimeoutMs',
      `must be a finite number of milliseconds >= 0 (got ${String(connectTimeoutMs)})`,
    );
  return new UnixTransport(
    {
      path,
      endpoint: redactEndpoint(`unix://${path}`),
      codec,
      connectTimeoutMs,
      watchdog: connectTimeoutMs > 0 ? new ConnectWatchdog(connectTimeoutMs) : undefined,
    },
    mode,
  );
}

/**
 * Checks a socket path: a string, absolute, without NUL, and short enough for `sun_path`
 * ({@link maxSocketPathBytes}).
 * @throws KernelConfigError code `KERNEL_ENDPOINT_INVALID`, variable `path`.
 */
export function checkSocketPath(path: unknown, variable = 'path'): string {
  const fail = (why: string): never => {
    throw new KernelConfigError(variable, why, KernelErrorCode.EndpointInvalid);
  };
  if (typeof path !== 'string' || path === '') return fail('must be an absolute socket path');
  if (!isAbsolute(path) || !path.startsWith('/'))
    return fail(`must be an absolute socket path (got ${JSON.stringify(redactEndpoint(path))})`);
  if (path.includes('\0')) return fail('must not contain NUL');
  const bytes = Buffer.byteLength(path);
  const max = maxSocketPathBytes();
  if (bytes > max) return fail(`is ${bytes} bytes, more than the ${max} that fit sun_path`);
  return path;
}

class UnixTransport implements KernelTransport {
  readonly [honoursStop] = true;
  readonly name = 'unix';
  readonly endpoint: string;
  readonly #context: UnixContext;
  readonly #persistent: boolean;
  readonly #calls = new Set<OneshotCall>();
  #connection: PersistentConnection | undefined;
  #closed = false;
  readonly #forget = (connection: PersistentConnection): void => {
    if (this.#connection === connection) this.#connection = undefined;
  };

  constructor(context: UnixContext, mode: UnixTransportMode) {
    this.#context = context;
    this.endpoint = context.endpoint;
    this.#persistent = mode === 'persistent';
  }

  send(request: KernelRequest, options: SendOptions): Promise<TransportReply> {
    if (this.#closed) return Promise.reject(closedError(this.#context));
    const watch = abortWatchOf(options);
    if (watch.aborted) return Promise.reject(abortedError(this.#context, watch));
    try {
      if (!this.#persistent)
        return new OneshotCall(this.#context, request, options, watch, this.#calls).promise;
      let connection = this.#connection;
      if (connection === undefined || connection.dead) {
        connection = new PersistentConnection(this.#context, options.maxResponseBytes, this.#forget);
        this.#connection = connection;
      }
      return connection.send(request, options, watch);
    } catch (error) {
      // The codec could not encode the request.
      return Promise.reject(error);
    }
  }

  isAvailable(options: AvailabilityOptions): Promise<boolean> {
    if (this.#closed || options.signal.aborted) return Promise.resolve(false);
    return probe(this.#context, options.signal);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closing: Promise<void>[] = [];
    for (const call of [...this.#calls]) closing.push(call.close());
    if (this.#connection !== undefined) closing.push(this.#connection.close());
    this.#connection = undefined;
    this.#context.watchdog?.stop();
    await Promise.all(closing);
  }
}

/** Opens a connection and closes it at once: `true` when it opened. Never rejects. */
function probe(context: UnixContext, signal: AbortSignal): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let done = false;
    const probe = {
      connectStartedAt: 0,
      connectTimedOut: () => finish(false),
      handleEvent: () => finish(false),
    };
    const socket = new Socket();
    const finish = (available: boolean) => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', probe);
      context.watchdog?.forget(probe);
      socket.destroy();
      resolve(available);
    };
    socket.once('connect', () => finish(true));
    socket.on('error', () => finish(false));
    socket.once('close', () => finish(false));
    signal.addEventListener('abort', probe);
    context.watchdog?.watch(probe);
    socket.connect({ path: context.path });
  });
}
