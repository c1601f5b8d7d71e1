import { isRef, type Ref } from '@trestle/ref-registry';

/**
 * The refs inside a value as this package decodes it (arrays, tuples, sets, maps, plain objects),
 * depth-first, at most `limit`; bytes and other class instances are not searched. For hosts that
 * track the refs a call handed out (the reference server, the REPL).
 * @default limit 10_000
 * @example
 * ```ts
 * const refs = collectRefs(await py.call('re', 'findall', ['x', 'xx'])); // [] (strings only)
 * ```
 */
export function collectRefs(value: unknown, limit = 10_000): Ref[] {
  const found: Ref[] = [];
  const seen = new Set<object>();
  const visit = (item: unknown, depth: number): void => {
    if (found.length >= limit || typeof item !== 'object' || item === null || depth > 64) return;
    if (isRef(item)) {
      found.push(item);
      return;
    }
    if (seen.has(item)) return;
    seen.add(item);
    if (Array.isArray(item) || item instanceof Set) {
      for (const child of item) visit(child, depth + 1);
    } else if (item instanceof Map) {
      for (const [key, child] of item) {
        visit(key, depth + 1);
        visit(child, depth + 1);
      }
    } else if (!ArrayBuffer.isView(item)) {
      const proto = Object.getPrototypeOf(item) as unknown;
      if (proto === Object.prototype || proto === null) {
        for (const child of Object.values(item)) visit(child, depth + 1);
      }
    }
  };
  visit(value, 0);
  return found;
}
