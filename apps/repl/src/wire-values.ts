/**
 * Values on the server's JSON-RPC wire: python-adapter's tagged JSON both ways (bigint, tuples, sets,
 * bytes as base64, maps, dates, non-finite floats), refs in ref-registry's wire form. Decoded values
 * are the same types the embedded backend hands out.
 */
import { blobList, Decoder, Encoder } from '@trestle/python-adapter';
import { decodeRef, type Ref } from '@trestle/ref-registry';

const encoder = new Encoder({ binaryThreshold: Number.POSITIVE_INFINITY });
const decoder = new Decoder({ onRef: (wire) => decodeRef(wire) });

/** The tagged-JSON form of an argument (refs included). @throws PythonAdapterError `PY_UNENCODABLE` naming the path. */
export function toWire(value: unknown, path: string): unknown {
  return encoder.value(value, blobList(), path);
}

/** The host value of a result. Decodes in place: pass a value fresh from `JSON.parse`. */
export function fromWire(wire: unknown, path = 'result'): unknown {
  return decoder.value(wire, undefined, path);
}

/** A ref given back by the server as a plain wire object (`refs.list`). */
export function refFromWire(wire: unknown): Ref {
  return decodeRef(wire);
}
