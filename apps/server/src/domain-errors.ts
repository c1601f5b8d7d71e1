/**
 * One place that turns what the domain's libraries throw (python-adapter, ref-registry, bridge) into
 * the `RpcMethodError`s of the README ("Error codes").
 */
import { RpcMethodError } from './contracts';

interface Coded {
  readonly code?: unknown;
  readonly message?: unknown;
}

/** The string `code` of an error-like value, if it has one. */
export function codeOf(error: unknown): string | undefined {
  const code = (error as Coded | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The message without the libraries' `[python-adapter] ` / `[ref-registry] ` prefixes. */
const messageOf = (error: unknown): string =>
  (error instanceof Error ? error.message : typeof error === 'string' ? error : 'unknown failure').replace(
    /^\[[a-z-]+\] /,
    '',
  );

/**
 * The `RpcMethodError` of a failure. Unknown failures become `INTERNAL` with a generic message
 * (`internal` is true: log the original).
 */
export function toRpcError(error: unknown): { readonly error: RpcMethodError; readonly internal: boolean } {
  if (error instanceof RpcMethodError) return { error, internal: false };
  const code = codeOf(error);
  const message = messageOf(error);
  const known = (rpc: string, data?: Record<string, unknown>, rpcCode?: number) => ({
    error: new RpcMethodError(rpc, message, data, rpcCode),
    internal: false,
  });
  switch (code) {
    case 'PY_EXCEPTION': {
      const e = error as { type?: string; module?: string; pythonMessage?: string; traceback?: string };
      return known('PY_EXCEPTION', {
        type: e.type,
        module: e.module,
        message: e.pythonMessage,
        traceback: e.traceback,
      });
    }
    case 'PY_TIMEOUT':
    case 'PY_ABORTED':
    case 'PY_FORBIDDEN':
    case 'PY_WORKER_CRASHED':
      return known(code);
    case 'PY_WORKER_RESTARTED':
      return known('PY_WORKER_CRASHED', { restarted: true });
    case 'PY_QUEUE_FULL':
    case 'PY_QUEUE_TIMEOUT':
      // Beyond the core list: the tenant's Python is saturated. Passed through with their own codes.
      return known(code);
    case 'PY_INVALID_ARGUMENT':
    case 'PY_UNENCODABLE':
      return known('INVALID_PARAMS', undefined, -32602);
    case 'REF_NOT_FOUND': {
      const e = error as { reason?: string; refId?: string };
      return known('REF_NOT_FOUND', { reason: e.reason, refId: e.refId });
    }
    case 'REF_SESSION_MISMATCH': {
      const e = error as { refId?: string };
      return known('REF_SESSION_MISMATCH', { refId: e.refId });
    }
    case 'REF_INVALID': {
      const e = error as { reason?: string };
      return known('REF_INVALID', { reason: e.reason });
    }
    case 'REF_SESSION_NOT_FOUND':
    case 'BRIDGE_SESSION_ENDED':
      return {
        error: new RpcMethodError('SESSION_NOT_FOUND', `the session ended: ${message}`),
        internal: false,
      };
    case 'BRIDGE_TOO_MANY_SESSIONS':
      return known('TOO_MANY_SESSIONS');
    case 'PY_CLOSED':
      return { error: new RpcMethodError('SERVER_DRAINING', 'the server is shutting down'), internal: false };
    default:
      return { error: new RpcMethodError('INTERNAL', 'internal error'), internal: true };
  }
}
