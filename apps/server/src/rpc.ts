/**
 * The JSON-RPC 2.0 engine of one WebSocket connection: size check, parse, envelope validation, method
 * dispatch with zod-validated params, replies, `rpc.cancel`, a cap on requests in flight, metrics.
 *
 * Bad input never throws and never closes the connection: every malformed message is answered with an
 * error (or dropped, for a notification). Only `ws` itself closes the socket, with 1009, for a message
 * above its `maxPayload` (the server sets it to {@link payloadLimit}, 4× the message limit), and with
 * 1007 for a text frame that is not UTF-8.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  type Logger,
  type MethodSpec,
  type MethodTable,
  type Metrics,
  type RpcConnection,
  type RpcContext,
  RpcMethodError,
} from './contracts';
import {
  cancelParamsSchema,
  describeIssues,
  errorResponse,
  isRpcId,
  issuesMessage,
  JsonRpcCode,
  type JsonRpcErrorObject,
  peekId,
  RpcErrorCode,
  type RpcId,
  requestEnvelopeSchema,
  resultResponse,
  rpcError,
} from './rpc-envelope';

/** Default cap of requests in flight per connection. */
export const DEFAULT_MAX_IN_FLIGHT = 64;

/** `ws` `maxPayload` for a message limit: messages between the two get `MESSAGE_TOO_LARGE`, above it 1009. */
export function payloadLimit(maxMessageBytes: number): number {
  return maxMessageBytes * 4;
}

/** The method label of calls that never reached a method: unknown names are not used as labels. */
export const INVALID_METHOD_LABEL = '(invalid)';
export const UNKNOWN_METHOD_LABEL = '(unknown)';

/** Options of {@link createRpcChannel}. */
export interface RpcChannelOptions {
  readonly connection: RpcConnection;
  readonly methods: MethodTable;
  /** Writes one text frame (called only while the channel is open). */
  readonly send: (text: string) => void;
  readonly logger: Logger;
  readonly metrics?: Metrics | undefined;
  /** Messages above this many bytes are answered `MESSAGE_TOO_LARGE` without being parsed. */
  readonly maxMessageBytes: number;
  /** @default {@link DEFAULT_MAX_IN_FLIGHT} */
  readonly maxInFlight?: number | undefined;
  /** While true, new requests are answered `SERVER_DRAINING` (`rpc.cancel` still works). */
  readonly isDraining?: (() => boolean) | undefined;
}

/** The engine of one connection. */
export interface RpcChannel {
  /** Handles one inbound WebSocket message (`ws`'s `message` event arguments). */
  receive(data: Buffer | ArrayBuffer | Buffer[] | string, isBinary: boolean): void;
  /** Requests (and notifications) whose handler is running. */
  readonly inFlight: number;
  /** Resolves when nothing is in flight (at once if nothing is). */
  idle(): Promise<void>;
  /** Aborts the signal of every request in flight (their replies, if any, are still sent). */
  abortAll(reason: 'shutdown' | 'closed'): void;
  /** The connection closed: aborts everything in flight; later messages and replies are dropped. */
  close(): void;
}

type AbortKind = 'cancel' | 'shutdown' | 'closed';

/** The `AbortSignal.reason` of a request aborted by the engine. */
export class RequestAbortedError extends Error {
  override readonly name = 'AbortError';
  readonly kind: AbortKind;
  constructor(kind: AbortKind) {
    super(
      kind === 'cancel'
        ? 'the request was cancelled by rpc.cancel'
        : kind === 'shutdown'
          ? 'the server is shutting down'
          : 'the connection closed',
    );
    this.kind = kind;
  }
}

interface InFlight {
  readonly controller: AbortController;
  readonly method: string;
}

function isRpcMethodError(error: unknown): error is RpcMethodError {
  if (error instanceof RpcMethodError) return true;
  const candidate = error as Partial<RpcMethodError> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    candidate.name === 'RpcMethodError' &&
    typeof candidate.code === 'string' &&
    typeof candidate.rpcCode === 'number' &&
    typeof candidate.message === 'string'
  );
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[] | string): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.isBuffer(data) ? data : Buffer.from(data);
}

/** How much of an oversized message {@link peekId} looks at. */
const PEEK_BYTES = 2048;

const keyOf = (id: RpcId): string => `${typeof id}:${id}`;

/**
 * Creates the engine of one connection. Requests run concurrently; each reply is sent when its handler
 * settles. Notifications (no `id`) run too, with no reply (their `RpcContext.requestId` is a
 * synthetic `~notification-<n>` string). `rpc.cancel { id }` aborts the `RpcContext.signal` of the
 * request with that id; as a request it answers `{ cancelled: boolean }`.
 */
export function createRpcChannel(options: RpcChannelOptions): RpcChannel {
  const { connection, methods, logger, metrics, maxMessageBytes } = options;
  const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  const isDraining = options.isDraining ?? (() => false);
  const inFlight = new Map<string, InFlight>();
  let idleWaiters: (() => void)[] = [];
  let notificationSeq = 0;
  let closed = false;

  function write(text: string): void {
    if (closed) return;
    try {
      options.send(text);
    } catch (error) {
      logger.warn({ err: error, connectionId: connection.id }, 'rpc: send failed');
    }
  }

  function record(method: string, outcome: string, startedAt?: number): void {
    if (!metrics) return;
    metrics.calls.inc({ method, outcome });
    if (startedAt !== undefined) {
      metrics.callDuration.observe({ method }, (performance.now() - startedAt) / 1000);
    }
  }

  function fail(
    id: RpcId | null,
    error: JsonRpcErrorObject,
    method = INVALID_METHOD_LABEL,
    startedAt?: number,
  ): void {
    record(method, error.data.code, startedAt);
    write(errorResponse(id, error));
  }

  function internal(error: unknown, method: string, id: RpcId | null): JsonRpcErrorObject {
    const incident = randomBytes(6).toString('hex');
    logger.error(
      {
        err: error,
        incident,
        method,
        requestId: id,
        connectionId: connection.id,
        tenant: connection.principal.tenant,
      },
      'rpc: handler failed',
    );
    return rpcError(JsonRpcCode.ServerError, RpcErrorCode.Internal, `internal error (incident ${incident})`, {
      incident,
    });
  }

  function errorFor(
    error: unknown,
    method: string,
    id: RpcId | null,
    signal: AbortSignal,
  ): JsonRpcErrorObject {
    if (isRpcMethodError(error)) {
      return rpcError(error.rpcCode, error.code, error.message, error.data);
    }
    const reason: unknown = signal.aborted ? signal.reason : undefined;
    if (reason instanceof RequestAbortedError && reason.kind === 'cancel') {
      return rpcError(JsonRpcCode.ServerError, RpcErrorCode.Cancelled, reason.message);
    }
    if (reason instanceof RequestAbortedError && reason.kind === 'shutdown') {
      return rpcError(JsonRpcCode.ServerError, RpcErrorCode.ServerDraining, reason.message);
    }
    return internal(error, method, id);
  }

  function settle(key: string): void {
    inFlight.delete(key);
    if (inFlight.size === 0 && idleWaiters.length > 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  function cancel(id: RpcId): boolean {
    const entry = inFlight.get(keyOf(id));
    if (!entry || entry.controller.signal.aborted) return false;
    entry.controller.abort(new RequestAbortedError('cancel'));
    return true;
  }

  async function run(
    spec: MethodSpec<never>,
    method: string,
    id: RpcId | undefined,
    params: unknown,
    key: string,
    controller: AbortController,
    startedAt: number,
  ): Promise<void> {
    const replyId = id ?? null;
    try {
      const parsed = await spec.params.safeParseAsync(params === undefined ? {} : params);
      if (!parsed.success) {
        const issues = describeIssues(parsed.error, 'params');
        const error = rpcError(
          JsonRpcCode.InvalidParams,
          RpcErrorCode.InvalidParams,
          `invalid params: ${issuesMessage(issues)}`,
          { issues },
        );
        record(method, error.data.code, startedAt);
        if (id !== undefined) write(errorResponse(id, error));
        return;
      }
      const requestId = id ?? `~notification-${key.slice(3)}`;
      const context: RpcContext = { connection, requestId, signal: controller.signal };
      let response: string;
      let outcome = 'ok';
      try {
        const result = await spec.handler(parsed.data as never, context);
        if (id === undefined) {
          record(method, outcome, startedAt);
          return;
        }
        try {
          response = resultResponse(id, result);
        } catch (error) {
          const failure = internal(error, method, id);
          outcome = failure.data.code;
          response = errorResponse(id, failure);
        }
      } catch (error) {
        const failure = errorFor(error, method, replyId, controller.signal);
        outcome = failure.data.code;
        if (id === undefined) {
          record(method, outcome, startedAt);
          logger.debug({ method, code: outcome, connectionId: connection.id }, 'rpc: notification failed');
          return;
        }
        try {
          response = errorResponse(id, failure);
        } catch (serializeError) {
          const fallback = internal(serializeError, method, id);
          outcome = fallback.data.code;
          response = errorResponse(id, fallback);
        }
      }
      record(method, outcome, startedAt);
      write(response);
    } catch (error) {
      // safeParseAsync itself threw (a buggy schema): still answer.
      const failure = internal(error, method, replyId);
      record(method, failure.data.code, startedAt);
      if (id !== undefined) write(errorResponse(id, failure));
    } finally {
      settle(key);
    }
  }

  function handleText(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch (error) {
      fail(
        null,
        rpcError(JsonRpcCode.ParseError, RpcErrorCode.ParseError, `parse error: ${(error as Error).message}`),
      );
      return;
    }
    if (Array.isArray(message)) {
      fail(
        null,
        rpcError(
          JsonRpcCode.InvalidRequest,
          RpcErrorCode.BatchUnsupported,
          'batch requests are not supported: send one request per message',
        ),
      );
      return;
    }
    if (typeof message !== 'object' || message === null) {
      fail(
        null,
        rpcError(
          JsonRpcCode.InvalidRequest,
          RpcErrorCode.InvalidRequest,
          'invalid request: expected a JSON object',
        ),
      );
      return;
    }
    const rawId = (message as { id?: unknown }).id;
    const hasId = Object.hasOwn(message, 'id');
    if (hasId && !isRpcId(rawId)) {
      fail(
        null,
        rpcError(
          JsonRpcCode.InvalidRequest,
          RpcErrorCode.InvalidRequest,
          `invalid request: id: expected a string (at most 256 characters) or a number`,
        ),
      );
      return;
    }
    const id = hasId ? (rawId as RpcId) : undefined;
    const envelope = requestEnvelopeSchema.safeParse(message);
    if (!envelope.success) {
      const issues = describeIssues(envelope.error, '');
      fail(
        id ?? null,
        rpcError(
          JsonRpcCode.InvalidRequest,
          RpcErrorCode.InvalidRequest,
          `invalid request: ${issuesMessage(issues)}`,
        ),
      );
      return;
    }
    const { method, params } = envelope.data;

    if (method === 'rpc.cancel') {
      const parsed = cancelParamsSchema.safeParse(params);
      if (!parsed.success) {
        const issues = describeIssues(parsed.error, 'params');
        if (id === undefined) {
          record(method, RpcErrorCode.InvalidParams);
          logger.debug({ connectionId: connection.id, issues }, 'rpc: ignored an invalid rpc.cancel');
          return;
        }
        fail(
          id,
          rpcError(
            JsonRpcCode.InvalidParams,
            RpcErrorCode.InvalidParams,
            `invalid params: ${issuesMessage(issues)}`,
            {
              issues,
            },
          ),
          method,
        );
        return;
      }
      const cancelled = cancel(parsed.data.id);
      record(method, 'ok');
      if (id !== undefined) write(resultResponse(id, { cancelled }));
      return;
    }

    const key = id === undefined ? `~n:${++notificationSeq}` : keyOf(id);
    if (id !== undefined && inFlight.has(key)) {
      fail(
        id,
        rpcError(
          JsonRpcCode.InvalidRequest,
          RpcErrorCode.InvalidRequest,
          `invalid request: id ${JSON.stringify(id)} is already in flight on this connection`,
        ),
      );
      return;
    }
    if (isDraining()) {
      if (id === undefined) return;
      fail(
        id,
        rpcError(
          JsonRpcCode.ServerError,
          RpcErrorCode.ServerDraining,
          'the server is shutting down: no new calls',
        ),
        Object.hasOwn(methods, method) ? method : UNKNOWN_METHOD_LABEL,
      );
      return;
    }
    const spec = Object.hasOwn(methods, method) ? methods[method] : undefined;
    if (!spec) {
      if (id === undefined) {
        record(UNKNOWN_METHOD_LABEL, RpcErrorCode.MethodNotFound);
        return;
      }
      fail(
        id,
        rpcError(
          JsonRpcCode.MethodNotFound,
          RpcErrorCode.MethodNotFound,
          `method not found: ${method.slice(0, 64)}`,
        ),
        UNKNOWN_METHOD_LABEL,
      );
      return;
    }
    if (inFlight.size >= maxInFlight) {
      if (id === undefined) {
        record(method, RpcErrorCode.TooManyRequests);
        logger.warn(
          { connectionId: connection.id, method },
          'rpc: dropped a notification over the in-flight cap',
        );
        return;
      }
      fail(
        id,
        rpcError(
          JsonRpcCode.ServerError,
          RpcErrorCode.TooManyRequests,
          `too many requests in flight on this connection (limit ${maxInFlight})`,
          { limit: maxInFlight },
        ),
        method,
      );
      return;
    }
    const controller = new AbortController();
    inFlight.set(key, { controller, method });
    void run(spec, method, id, params, key, controller, performance.now());
  }

  function abortAll(reason: 'shutdown' | 'closed'): void {
    for (const entry of inFlight.values()) {
      if (!entry.controller.signal.aborted) entry.controller.abort(new RequestAbortedError(reason));
    }
  }

  return {
    get inFlight() {
      return inFlight.size;
    },
    receive(data, isBinary) {
      if (closed) return;
      try {
        if (isBinary) {
          fail(
            null,
            rpcError(
              JsonRpcCode.InvalidRequest,
              RpcErrorCode.InvalidRequest,
              'invalid request: binary frames are not supported, send JSON as a text frame',
            ),
          );
          return;
        }
        const buffer = toBuffer(data);
        const bytes = buffer.length;
        if (bytes > maxMessageBytes) {
          fail(
            peekId(buffer.subarray(0, PEEK_BYTES).toString('utf8')),
            rpcError(
              JsonRpcCode.ServerError,
              RpcErrorCode.MessageTooLarge,
              `message too large: ${bytes} bytes, the limit is ${maxMessageBytes}`,
              { limit: maxMessageBytes, size: bytes },
            ),
          );
          return;
        }
        handleText(buffer.toString('utf8'));
      } catch (error) {
        // Defensive: nothing above should throw, but a bad message must never take the process down.
        fail(null, internal(error, INVALID_METHOD_LABEL, null));
      }
    },
    idle() {
      if (inFlight.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    abortAll,
    close() {
      if (closed) return;
      abortAll('closed');
      closed = true;
    },
  };
}
