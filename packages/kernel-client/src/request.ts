import type { KernelParams } from './types';

/**
 * What a method name must look like: a letter, then up to 127 letters, digits or `_ . : / -`
 * (`PING`, `APPLY_POLICY`, `policy.apply`, `v1/status`).
 */
export const methodNamePattern: RegExp = /^[A-Za-z][A-Za-z0-9_.:/-]{0,127}$/;

/** Whether `value` is a plain object (`{}` or `Object.create(null)`), not an array, class instance or null. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Names what a value is, for a message: `array`, `null`, `string`, `Date`... */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) return 'an object';
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object with a prototype';
  }
  return `a ${typeof value}`;
}

/**
 * Why `params` is not a plain JSON object, or `undefined` when it is. Accepted inside: `null`,
 * booleans, finite numbers, strings, arrays and plain objects; object properties that are `undefined`
 * are dropped as `JSON.stringify` does. Refused: functions, symbols, BigInt, NaN and ±Infinity, class
 * instances (Date, Map, Buffer...), cycles.
 */
export function checkParams(params: unknown): string | undefined {
  if (!isPlainObject(params)) return `params must be a plain object (got ${describeValue(params)})`;
  // The common case, fast: plain JSON, not deep (so no cycle). Anything else is looked at closely below.
  if (isShallowPlainJson(params, 0)) return undefined;
  const seen = new Set<object>();
  const visit = (value: unknown, path: string): string | undefined => {
    switch (typeof value) {
      case 'string':
      case 'boolean':
        return undefined;
      case 'number':
        return Number.isFinite(value) ? undefined : `${path} is ${value}, which JSON cannot carry`;
      case 'object': {
        if (value === null) return undefined;
        if (seen.has(value)) return `${path} is a cycle`;
        if (!Array.isArray(value) && !isPlainObject(value))
          return `${path} is ${describeValue(value)}, not plain JSON`;
        seen.add(value);
        if (Array.isArray(value)) {
          for (let i = 0; i < value.length; i++) {
            const why = visit(value[i], `${path}[${i}]`);
            if (why) return why;
          }
        } else {
          for (const key of Object.keys(value)) {
            const item = value[key];
            if (item === undefined) continue;
            const why = visit(item, `${path}.${key}`);
            if (why) return why;
          }
        }
        seen.delete(value);
        return undefined;
      }
      default:
        return `${path} is ${describeValue(value)}, which JSON cannot carry`;
    }
  };
  try {
    return visit(params, 'params');
  } catch (error) {
    // A structure deep enough to overflow the stack.
    return `params cannot be checked: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** Builds the wire request of the seed: `{ method, params, timestamp }`, timestamp in seconds. */
export function buildRequest(
  method: string,
  params: KernelParams,
  nowMs: number = Date.now(),
): {
  readonly method: string;
  readonly params: KernelParams;
  readonly timestamp: number;
} {
  return { method, params, timestamp: nowMs / 1000 };
}

/** Plain JSON no deeper than 64 levels (so without cycles), checked without allocating. */
function isShallowPlainJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object': {
      if (value === null) return true;
      if (depth >= 64) return false;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!isShallowPlainJson(value[i], depth + 1)) return false;
        return true;
      }
      if (!isPlainObject(value)) return false;
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        const item = (value as Record<string, unknown>)[key];
        if (item !== undefined && !isShallowPlainJson(item, depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}
