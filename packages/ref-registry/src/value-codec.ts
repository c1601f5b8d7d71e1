import { RefRegistryError, RefRegistryErrorCode } from './errors';
import { decodeRef, describe, encodeRef, isRef, isRefWire } from './ref';

/** JSON as it travels: refs appear in their tagged wire form. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Encodes a value for the wire: JSON natives pass through, refs become their tagged wire form, arrays
 * and plain objects are walked. Anything else is an error, never a string.
 * @throws RefRegistryError `REF_UNENCODABLE_VALUE` naming the path and the kind of value
 *   (functions, symbols, bigints, `undefined`, non-finite numbers, class instances, cycles).
 */
export function encodeValue(value: unknown): JsonValue {
  return encodeAt(value, '$', new Set());
}

function encodeAt(value: unknown, path: string, seen: Set<object>): JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return value;
    throw unencodable(path, value, 'a non-finite number');
  }
  if (typeof value !== 'object') throw unencodable(path, value, describe(value));
  if (isRef(value)) return encodeRef(value) as unknown as JsonValue;
  if (seen.has(value)) throw unencodable(path, value, 'a cycle');
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item, index) => encodeAt(item, `${path}[${index}]`, seen));
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      throw unencodable(path, value, describe(value));
    }
    const out: { [key: string]: JsonValue } = {};
    for (const [key, item] of Object.entries(value)) out[key] = encodeAt(item, `${path}.${key}`, seen);
    return out;
  } finally {
    seen.delete(value);
  }
}

function unencodable(path: string, value: unknown, what: string): RefRegistryError {
  void value;
  return new RefRegistryError(
    RefRegistryErrorCode.UnencodableValue,
    `cannot encode ${what} at ${path}: values are JSON or refs, never stringified`,
  );
}

/**
 * Decodes a wire value: every tagged ref object becomes a {@link Ref} (validated), the rest is returned
 * as it is (a new structure; the input is not modified).
 * @throws InvalidRefError when a value tagged `__type__: "ref"` is malformed.
 */
export function decodeValue(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(decodeValue);
  if (isRefWire(value)) return decodeRef(value);
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = decodeValue(item);
  return out;
}
