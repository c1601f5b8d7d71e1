/**
 * The JSON-RPC 2.0 wire: error codes, the request envelope (zod), response builders, and the formatting
 * of zod issues into messages that name the field (`params.module: expected string, received number`).
 */
import { z } from 'zod';

/** The numeric `error.code`s used by the server. */
export const JsonRpcCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  /** Every server-defined error: the stable string code is in `error.data.code`. */
  ServerError: -32000,
} as const;

/** The protocol layer's stable `error.data.code`s (the domain adds its own, e.g. `NO_SESSION`). */
export const RpcErrorCode = {
  /** -32700: the message is not JSON. */
  ParseError: 'PARSE_ERROR',
  /** -32600: not a JSON-RPC 2.0 request object (or a binary frame, or an id already in flight). */
  InvalidRequest: 'INVALID_REQUEST',
  /** -32600: a batch (JSON array); send one request per message. */
  BatchUnsupported: 'BATCH_UNSUPPORTED',
  /** -32601 */
  MethodNotFound: 'METHOD_NOT_FOUND',
  /** -32602: `error.message` names the field; `data.issues` lists `{ path, message }`. */
  InvalidParams: 'INVALID_PARAMS',
  /** -32000: the message is larger than the limit (`data: { limit, size }`); the connection stays open. */
  MessageTooLarge: 'MESSAGE_TOO_LARGE',
  /** -32000: more requests in flight on this connection than allowed (`data: { limit }`). */
  TooManyRequests: 'TOO_MANY_REQUESTS',
  /** -32000: the server is shutting down and takes no new calls. */
  ServerDraining: 'SERVER_DRAINING',
  /** -32000: the request was cancelled by `rpc.cancel` and its handler gave up. */
  Cancelled: 'CANCELLED',
  /** -32000: a bug on the server; `data.incident` is in the server log with the details. */
  Internal: 'INTERNAL',
} as const;
export type RpcErrorCode = (typeof RpcErrorCode)[keyof typeof RpcErrorCode];

/** A JSON-RPC id as the server accepts it: a string (≤ 256 chars) or a finite number. */
export type RpcId = string | number;

/** The `error` member of a response. */
export interface JsonRpcErrorObject {
  readonly code: number;
  readonly message: string;
  readonly data: { readonly code: string; readonly [key: string]: unknown };
}

/** Longest accepted string id. */
export const MAX_ID_LENGTH = 256;
/** Longest accepted method name. */
export const MAX_METHOD_LENGTH = 256;

const idSchema = z.union([z.string().max(MAX_ID_LENGTH), z.number()]);

const plainObject = z.custom<Record<string, unknown>>(
  (value) => typeof value === 'object' && value !== null && !Array.isArray(value),
  { error: 'expected an object (by-name params) or an array' },
);

/** The request envelope. Extra members are ignored. */
export const requestEnvelopeSchema = z.object({
  jsonrpc: z.literal('2.0', { error: 'expected "2.0"' }),
  method: z
    .string({ error: 'expected a string' })
    .min(1, { error: 'expected a non-empty string' })
    .max(MAX_METHOD_LENGTH, { error: `expected at most ${MAX_METHOD_LENGTH} characters` }),
  id: idSchema.optional(),
  params: z
    .union([plainObject, z.array(z.unknown())], { error: 'expected an object or an array' })
    .optional(),
});
export type RequestEnvelope = z.infer<typeof requestEnvelopeSchema>;

/** The params of `rpc.cancel`. */
export const cancelParamsSchema = z.object({ id: idSchema });

/** True for an id the server accepts. */
export function isRpcId(value: unknown): value is RpcId {
  return (
    (typeof value === 'string' && value.length <= MAX_ID_LENGTH) ||
    (typeof value === 'number' && Number.isFinite(value))
  );
}

function formatPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && /^[A-Za-z_$][\w$]*$/.test(part))
      out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

/** One zod issue as `{ path, message }`, the path prefixed (`params.args[0]`). */
export function describeIssues(
  error: z.ZodError,
  prefix: string,
  max = 20,
): { readonly path: string; readonly message: string }[] {
  return error.issues.slice(0, max).map((issue) => ({
    path: formatPath(prefix, issue.path),
    message: issue.message.replace(/^Invalid input: /, ''),
  }));
}

/** `"params.module: expected string, received number; params.fn: ..."` (at most 3 issues). */
export function issuesMessage(issues: readonly { path: string; message: string }[]): string {
  const shown = issues
    .slice(0, 3)
    .map((issue) => `${issue.path || 'request'}: ${issue.message}`)
    .join('; ');
  return issues.length > 3 ? `${shown}; and ${issues.length - 3} more` : shown;
}

/** An error object with `data.code` set (last, so it always wins). */
export function rpcError(
  code: number,
  dataCode: string,
  message: string,
  data?: Record<string, unknown>,
): JsonRpcErrorObject {
  return { code, message, data: { ...data, code: dataCode } };
}

/** `{"jsonrpc":"2.0","id":...,"result":...}` (an `undefined` result is sent as `null`). */
export function resultResponse(id: RpcId, result: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', id, result: result === undefined ? null : result });
}

/** `{"jsonrpc":"2.0","id":...,"error":{...}}`. */
export function errorResponse(id: RpcId | null, error: JsonRpcErrorObject): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error });
}

/** A notification `{"jsonrpc":"2.0","method":...,"params":...}`. */
export function notification(method: string, params: unknown): string {
  return JSON.stringify(
    params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params },
  );
}

const LEADING_MEMBER =
  /^\s*"(jsonrpc|method|id)"\s*:\s*("(?:[^"\\\n]|\\.){0,256}"|-?\d{1,16}(?:\.\d+)?)\s*(,?)/;

/**
 * The id of a message too large to parse, when it is among its first members (before `params`):
 * `{"jsonrpc":"2.0","id":7,"method":...}`. Scans only the first few hundred characters and only
 * top-level scalar members, so it never misreads a nested `id`. `null` when not found.
 */
export function peekId(text: string): RpcId | null {
  let rest = text.slice(0, 2048);
  const open = /^\s*\{/.exec(rest);
  if (!open) return null;
  rest = rest.slice(open[0].length);
  for (let i = 0; i < 3; i++) {
    const match = LEADING_MEMBER.exec(rest);
    if (!match) return null;
    const [whole, key, value, comma] = match;
    if (key === 'id' && value !== undefined) {
      try {
        const id: unknown = JSON.parse(value);
        return isRpcId(id) ? id : null;
      } catch {
        return null;
      }
    }
    if (!comma) return null;
    rest = rest.slice(whole.length);
  }
  return null;
}
