/**
 * How the REPL shows errors from Python and from the bridge: a Python exception as its Python
 * traceback (trimmed), never a Node stack; a cancelled call as `cancelled`; bridge errors as
 * `CODE: message`.
 */
import { BackendClosedError, ConnectionLostError, isCancellation, RemoteError } from './errors';
import type { Style } from './style';

/** What a Python exception carries (python-adapter's `PythonError`). */
interface PythonErrorLike {
  readonly code: 'PY_EXCEPTION';
  readonly type: string;
  readonly module: string;
  readonly pythonMessage: string;
  readonly traceback: string;
  readonly fn?: string;
}

/** Error code prefixes of the packages behind the REPL. */
const OWN_CODE =
  /^(PY_|REF_|BRIDGE_|BUDGET_|HANDLE_|WS_|SESSION_|NO_SESSION$|CONNECTION_LOST$|BACKEND_CLOSED$)/;

export function isPythonError(error: unknown): error is PythonErrorLike {
  const candidate = error as Partial<PythonErrorLike> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    candidate.code === 'PY_EXCEPTION' &&
    typeof candidate.type === 'string' &&
    typeof candidate.traceback === 'string'
  );
}

/** Whether the REPL formats `error` itself (rather than node:repl's `Uncaught ...`). */
export function isBridgeError(error: unknown): boolean {
  if (isPythonError(error) || isCancellation(error)) return true;
  if (error instanceof RemoteError || error instanceof ConnectionLostError) return true;
  if (error instanceof BackendClosedError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && OWN_CODE.test(code) && error instanceof Error;
}

/** Options of {@link trimTraceback}. */
export interface TrimOptions {
  /** Frames kept: the first 2 and the last `maxFrames - 2`. @default 12 */
  readonly maxFrames?: number;
}

/**
 * A Python traceback made shorter: the caret lines (`^^^^`) go, and when there are more than
 * `maxFrames` frames the middle ones are replaced by `[... N frames hidden ...]`. Chained exceptions
 * ("During handling of the above exception ...") are trimmed part by part.
 */
export function trimTraceback(traceback: string, options: TrimOptions = {}): string {
  const maxFrames = Math.max(3, options.maxFrames ?? 12);
  const lines = traceback.replace(/\s+$/, '').split('\n');
  const out: string[] = [];
  let frames: string[][] = [];
  const flush = () => {
    if (frames.length > maxFrames) {
      const hidden = frames.length - maxFrames;
      frames = [
        ...frames.slice(0, 2),
        [`  [... ${hidden} frame${hidden === 1 ? '' : 's'} hidden ...]`],
        ...frames.slice(frames.length - (maxFrames - 2)),
      ];
    }
    for (const frame of frames) out.push(...frame);
    frames = [];
  };
  for (const line of lines) {
    if (/^\s+[~^]+\s*$/.test(line)) continue;
    if (/^ {2}File "/.test(line)) {
      frames.push([line]);
    } else if (frames.length > 0 && /^ {4}/.test(line)) {
      frames[frames.length - 1]?.push(line);
    } else {
      flush();
      out.push(line);
    }
  }
  flush();
  return out.join('\n');
}

/** The text the REPL prints for a Python exception. */
export function formatPythonError(error: PythonErrorLike, style: Style): string {
  const qualified =
    error.module && error.module !== 'builtins' && !error.module.startsWith('__')
      ? `${error.module}.${error.type}`
      : error.type;
  const summary = `${qualified}: ${error.pythonMessage}`;
  const traceback = trimTraceback(error.traceback);
  const body = traceback.includes('\n') ? traceback : summary;
  const lines = body.split('\n');
  const last = lines.pop() ?? summary;
  const where = error.fn ? style.dim(`  (in ${error.fn})`) : '';
  return [...lines.map((line) => style.dim(line)), `${style.red(last)}${where}`].join('\n');
}

/** The text for an error the REPL formats itself (see {@link isBridgeError}). */
export function formatError(error: unknown, style: Style): string {
  if (isCancellation(error)) return style.yellow('cancelled');
  if (isPythonError(error)) return formatPythonError(error, style);
  const code = (error as { code?: unknown } | null)?.code;
  const message = (error instanceof Error ? error.message : String(error)).replace(/^\[[a-z-]+\] /, '');
  return style.red(typeof code === 'string' ? `${code}: ${message}` : message);
}
