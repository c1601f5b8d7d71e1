/**
 * Values on the JSON-RPC wire: python-adapter's tagged JSON (its PROTOCOL.md, "Values"), both ways.
 *
 * - Inbound (client → server): `decodeInbound` turns tagged values into host values (`bigint`, `NaN`,
 *   `PyTuple`, `Set`, `Buffer`, `Map`, `PyDateTime`, refs, ...) that python-adapter then sends on to
 *   Python. Refs are collected so the caller can check each against the session before anything runs.
 *   A tagged object that does not decode is `INVALID_PARAMS` (JSON-RPC `-32602`) naming its path
 *   (`args[0].x`); a malformed ref is `REF_INVALID` naming its path.
 * - Outbound (server → client): `encodeOutbound` writes host values back as tagged JSON; bytes always
 *   travel as base64 (`{"__type__":"bytes","b64":...}`), refs in ref-registry's wire form.
 */
import { blobList, collectRefs as collectValueRefs, Decoder, Encoder } from '@trestle/python-adapter';
import { decodeRef, type InvalidRefError, isRef, type Ref, RefRegistryError } from '@trestle/ref-registry';
import { RpcMethodError } from './contracts';

/** Host values decoded from the wire, and the refs found in them (in order). */
export interface Inbound<T = unknown> {
  readonly value: T;
  readonly refs: readonly Ref[];
}

let collecting: Ref[] | undefined;

const decoder = new Decoder({
  onRef: (wire) => {
    const ref = decodeRef(wire);
    collecting?.push(ref);
    return ref;
  },
});

/** Every `bytes` value as base64: the JSON-RPC wire has no binary frames. */
const encoder = new Encoder({ binaryThreshold: Number.POSITIVE_INFINITY });

/**
 * Decodes a value that arrived in JSON-RPC params. **In place**: pass the params you own (fresh from
 * `JSON.parse`), and do not use the wire afterwards.
 * @param path how errors name the value: `args`, `kwargs`, `ref`.
 * @throws RpcMethodError `INVALID_PARAMS` (-32602) for a tag that does not decode, `REF_INVALID` for a
 *   malformed ref; both name the path.
 */
export function decodeInbound<T = unknown>(wire: T, path: string): Inbound<T> {
  const refs: Ref[] = [];
  collecting = refs;
  try {
    return { value: decoder.value(wire, undefined, path) as T, refs };
  } catch (error) {
    throw inboundError(error, wire, path);
  } finally {
    collecting = undefined;
  }
}

/** The tagged-JSON form of a host value (a Python result) for the client. */
export function encodeOutbound(value: unknown): unknown {
  try {
    return encoder.value(value, blobList(), 'result');
  } catch (error) {
    throw new RpcMethodError(
      'INTERNAL',
      `a result could not be encoded for the wire: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** The refs inside a Python result, at most `limit` (python-adapter's `collectRefs`). */
export const collectRefs = (value: unknown, limit = 1_000): Ref[] => collectValueRefs(value, limit);

/** Decodes one ref given as a parameter (`py.method { ref }`), in wire form. */
export function decodeRefParam(wire: unknown, path: string): Ref {
  try {
    return decodeRef(wire);
  } catch (error) {
    throw inboundError(error, wire, path);
  }
}

function inboundError(error: unknown, wire: unknown, path: string): unknown {
  if (RefRegistryError.isInstance(error) && error.code === 'REF_INVALID') {
    const where = findBadRef(wire, path) ?? path;
    return new RpcMethodError('REF_INVALID', `${where}: ${error.message}`, {
      path: where,
      reason: (error as InvalidRefError).reason,
    });
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'PY_UNDECODABLE') {
    const message = error instanceof Error ? error.message : String(error);
    return new RpcMethodError('INVALID_PARAMS', message, { path: pathOf(message) ?? path }, -32602);
  }
  return error;
}

/** `cannot decode ... at args[0].x` → `args[0].x`. */
function pathOf(message: string): string | undefined {
  const at = message.lastIndexOf(' at ');
  return at === -1 ? undefined : message.slice(at + 4).replace(/: .*$/, '');
}

/**
 * The path of the first malformed ref in a wire value (the decoder reports which ref, not where).
 * Only runs after a failure. The wire may be partly decoded in place by then: refs already decoded are
 * frozen `Ref`s (skipped), and the failing ref wire is still untouched.
 */
function findBadRef(wire: unknown, path: string, depth = 0): string | undefined {
  if (typeof wire !== 'object' || wire === null || depth > 2000 || isRef(wire)) return undefined;
  if (Array.isArray(wire)) {
    for (let i = 0; i < wire.length; i++) {
      const found = findBadRef(wire[i], `${path}[${i}]`, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (!isPlain(wire)) return undefined;
  const record = wire as Record<string, unknown>;
  if (record.__type__ === 'ref') {
    try {
      decodeRef(record);
      return undefined;
    } catch {
      return path;
    }
  }
  for (const [key, child] of Object.entries(record)) {
    const found = findBadRef(child, `${path}${segment(key)}`, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

const isPlain = (value: object): boolean => {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
};

const segment = (key: string): string =>
  /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
