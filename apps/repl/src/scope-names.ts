/**
 * Which names in the REPL's scope hold which refs, so `.refs` and lost-ref messages can say `p` rather
 * than only `#ab12`. Top-level `const`/`let` bindings are not properties of the context object, so
 * the names are collected from the code the user evaluates (`p = ...`, `const p = ...`) plus the
 * context's own properties, and looked up when needed.
 */
import { refOf } from './proxies';

const ASSIGNMENT = /(?:^|[^\w$.])(?:(?:const|let|var)\s+)?([A-Za-z_$][\w$]*)\s*=(?![=>])/g;
/** Names never reported. */
const SKIP = new Set(['py', 'kw', 'tuple']);

export class ScopeNames {
  readonly #names = new Set<string>();

  /** Notes the names `code` assigns. */
  note(code: string): void {
    for (const match of code.matchAll(ASSIGNMENT)) {
      const name = match[1];
      if (name !== undefined && !SKIP.has(name)) this.#names.add(name);
    }
  }

  /**
   * Ref id → the names that hold it now.
   * @param evaluate looks a name up in the REPL's scope (throws for an unknown name).
   * @param extra more candidate names (the context's own properties).
   */
  byRef(evaluate: (name: string) => unknown, extra: Iterable<string> = []): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const name of new Set([...this.#names, ...extra])) {
      if (SKIP.has(name) || !/^[A-Za-z_$][\w$]*$/.test(name)) continue;
      let value: unknown;
      try {
        value = evaluate(name);
      } catch {
        continue;
      }
      const ref = refOf(value);
      if (ref === undefined) continue;
      const list = out.get(ref.id) ?? [];
      list.push(name);
      out.set(ref.id, list);
    }
    return out;
  }
}
