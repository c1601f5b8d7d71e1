/**
 * Tab completion of Python names: after `x.` where `x` is a ref proxy or a module proxy, the names come
 * from Python `dir()` (cached per ref / module). Names starting with `_` are offered only once `_` is
 * typed. Anything else goes to node:repl's own completer.
 */
import { completionTarget, PY_HELPERS, REF_HELPERS } from './proxies';
import type { ReplRuntime } from './runtime';

type Callback = (error: Error | null, result?: [string[], string]) => void;
/** A node:repl / readline completer. */
export type Completer = (line: string, callback: Callback) => void;

/** An identifier path before a dot, and the partial name after it, at the end of the line. */
const TAIL = /(?:^|[^\w$.\]])((?:[A-Za-z_$][\w$]*)(?:\.[A-Za-z_$][\w$]*)*)\.([A-Za-z_$][\w$]*)?$/;

/** How long a completion may wait for Python. */
const DIR_TIMEOUT_MS = 5_000;

/** Options of {@link createCompleter}. */
export interface CompleterOptions {
  readonly runtime: ReplRuntime;
  /** Evaluates an identifier path (`p`, `py.os.path`) in the REPL's context. */
  readonly evaluate: (expression: string) => unknown;
  /** node:repl's own completer. */
  readonly fallback: Completer;
}

/** The REPL's completer. */
export function createCompleter(options: CompleterOptions): Completer {
  const { runtime, evaluate, fallback } = options;
  return (line, callback) => {
    const match = TAIL.exec(line);
    if (match === null) return fallback(line, callback);
    const expression = match[1] as string;
    const partial = match[2] ?? '';
    let value: unknown;
    try {
      value = evaluate(expression);
    } catch {
      return fallback(line, callback);
    }
    const target = completionTarget(value);
    if (target === undefined) return fallback(line, callback);
    pythonNames(runtime, target).then(
      (names) => callback(null, [filterNames(names, partial), partial]),
      () => callback(null, [[], partial]),
    );
  };
}

/** The names offered after `x.` for a completion target. */
async function pythonNames(
  runtime: ReplRuntime,
  target: NonNullable<ReturnType<typeof completionTarget>>,
): Promise<string[]> {
  const signal = AbortSignal.timeout(DIR_TIMEOUT_MS);
  if (target.kind === 'ref') {
    return [...(await runtime.dirs.names(target.ref, signal)), ...REF_HELPERS];
  }
  if (target.kind === 'module') {
    const names = await runtime.dirs.names(target.module, signal);
    runtime.modulesSeen.add(target.module.split('.')[0] ?? target.module);
    return names;
  }
  let modules: string[] = [...runtime.modulesSeen];
  if (runtime.backend.modules !== undefined) {
    modules = await modulesOnce(runtime, signal).catch(() => modules);
  }
  return [...new Set([...PY_HELPERS, ...modules])];
}

const moduleLists = new WeakMap<ReplRuntime, Promise<string[]>>();

function modulesOnce(runtime: ReplRuntime, signal: AbortSignal): Promise<string[]> {
  let list = moduleLists.get(runtime);
  if (list === undefined) {
    list = runtime.backend.modules?.({ signal }) ?? Promise.resolve([]);
    moduleLists.set(runtime, list);
    list.catch(() => moduleLists.delete(runtime));
  }
  return list;
}

/**
 * Names starting with `partial`, sorted; `_` names only when `partial` starts with `_`, the `$`
 * helpers of ref proxies only when it starts with `$`.
 */
export function filterNames(names: readonly string[], partial: string): string[] {
  const hidden = (name: string) => (name.startsWith('_') || name.startsWith('$')) && name[0] !== partial[0];
  return [...new Set(names)].filter((name) => name.startsWith(partial) && !hidden(name)).sort();
}
