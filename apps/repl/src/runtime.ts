/**
 * What the REPL layer shares (proxies, completer, dot-commands): the backend, the evaluation in
 * progress (its AbortController, on AsyncLocalStorage so every Python call started while it runs
 * picks up its signal), session labels (`s1`, `s2`), short ref ids (`#ab12`), a `dir()` cache.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import type { Ref } from '@trestle/ref-registry';
import type { Backend } from './backend';

/** The REPL's shared state. */
export interface ReplRuntime {
  readonly backend: Backend;
  /** The AbortController of the evaluation in progress, if any. */
  readonly evaluation: AsyncLocalStorage<AbortController>;
  /** Session id → `s1`, `s2`, ... in order of appearance. */
  readonly labels: SessionLabels;
  /** Every ref the REPL handed out, by id. */
  readonly known: Map<string, Ref>;
  /** Ids of refs released from the REPL (they print as released). */
  readonly released: Set<string>;
  /** Ids of refs lost with a session that could not be resumed. */
  readonly lost: Set<string>;
  readonly dirs: DirCache;
  /** Module names used so far (completion of `py.` when the backend cannot list modules). */
  readonly modulesSeen: Set<string>;
}

/** Creates the runtime over a backend. */
export function createRuntime(backend: Backend): ReplRuntime {
  return {
    backend,
    evaluation: new AsyncLocalStorage<AbortController>(),
    labels: new SessionLabels(),
    known: new Map(),
    released: new Set(),
    lost: new Set(),
    dirs: new DirCache(backend),
    modulesSeen: new Set(),
  };
}

/** The signal of the evaluation in progress (`undefined` outside one, e.g. in the completer). */
export function currentSignal(runtime: ReplRuntime): AbortSignal | undefined {
  return runtime.evaluation.getStore()?.signal;
}

/** Short, stable labels for session ids. */
export class SessionLabels {
  readonly #labels = new Map<string, string>();

  /** `s1` for the first session seen, `s2` for the next, ... */
  label(sessionId: string): string {
    let label = this.#labels.get(sessionId);
    if (label === undefined) {
      label = `s${this.#labels.size + 1}`;
      this.#labels.set(sessionId, label);
    }
    return label;
  }
}

/** A short id for a ref: 4 hex digits of a hash of its id (`ab12`). */
export function shortRefId(id: string): string {
  return createHash('sha1').update(id).digest('hex').slice(0, 4);
}

/** `re.Pattern`, or `int` for builtins. */
export function typeLabel(ref: Ref): string {
  return ref.module === 'builtins' || ref.module === '' ? ref.typeName : `${ref.module}.${ref.typeName}`;
}

/** `<ref re.Pattern #ab12 session s1>` (plus `released` / `lost` when it is). */
export function refLabel(runtime: ReplRuntime, ref: Ref): string {
  const state = runtime.released.has(ref.id) ? ' released' : runtime.lost.has(ref.id) ? ' lost' : '';
  return `<ref ${typeLabel(ref)} #${shortRefId(ref.id)} session ${runtime.labels.label(ref.sessionId)}${state}>`;
}

/** `dir()` results, cached per ref and per module; failures are not cached. */
export class DirCache {
  readonly #backend: Backend;
  readonly #cache = new Map<string, Promise<string[]>>();

  constructor(backend: Backend) {
    this.#backend = backend;
  }

  /** The names of a ref (by id) or of a module (by name). */
  names(target: Ref | string, signal?: AbortSignal): Promise<string[]> {
    const key = typeof target === 'string' ? `module:${target}` : `ref:${target.id}`;
    let names = this.#cache.get(key);
    if (names === undefined) {
      names = this.#backend.dir(target, { signal });
      this.#cache.set(key, names);
      names.catch(() => {
        if (this.#cache.get(key) === names) this.#cache.delete(key);
      });
    }
    return names;
  }

  /** Fills the cache with names already fetched. */
  seed(target: Ref | string, names: readonly string[]): void {
    const key = typeof target === 'string' ? `module:${target}` : `ref:${target.id}`;
    this.#cache.set(key, Promise.resolve([...names]));
  }
}
