import { isArrayBuffer, isDate, isMap, isSet, isUint8Array } from 'node:util/types';
import { decodeRef, encodeRef, isRef, type RefWire } from '@trestle/ref-registry';
import { adapterError, PythonAdapterErrorCode, UnencodableError } from './errors';
import { dateToIso, isTuple, PyComplex, PyDate, PyDateTime, PyFrozenSet, PyTuple } from './values';

/**
 * The wire codec: host values to the tagged JSON of PROTOCOL.md ("Values") and back.
 *
 * Both directions are written for speed: primitives are handled by `typeof` before anything else, arrays
 * are walked with plain `for` loops, paths for error messages are built only when something fails, and
 * the decoder rewrites the (owned, freshly parsed) wire in place instead of copying it.
 */

/**
 * A codec plugin: carries a host type to Python and back as `{"__type__": "custom", "codec": name, "v": …}`.
 * A codec with `test` and `encode` encodes host values (codecs are offered every non-primitive value, in
 * order, after refs and before the built-in handling of arrays, objects, `Map`, `Date`, ...); `decode`
 * turns the Python half's output back into a host value. The Python half (`python`, `"module:attr"`) is an
 * object with the same `name`, `types`, `encode` and `decode` (see PROTOCOL.md, "Codecs").
 *
 * @example A `decimal.Decimal` codec with a string wrapper:
 * ```ts
 * class Dec {
 *   constructor(readonly text: string) {}
 * }
 * const decimal: PyCodec<Dec> = {
 *   name: 'decimal',
 *   python: 'myapp.codecs:decimal_codec', // name='decimal', types=(Decimal,), encode=str, decode=Decimal
 *   test: (value): value is Dec => value instanceof Dec,
 *   encode: (value) => value.text,
 *   decode: (value) => new Dec(value as string),
 * };
 * ```
 * @example The same with a `Big`-like class (`big.js`, `decimal.js`):
 * ```ts
 * const decimal: PyCodec<Big> = {
 *   name: 'decimal',
 *   python: 'myapp.codecs:decimal_codec',
 *   test: (value): value is Big => value instanceof Big,
 *   encode: (value) => value.toString(),
 *   decode: (value) => new Big(value as string),
 * };
 * ```
 */
export interface PyCodec<T = unknown> {
  /** The codec's name on the wire; the Python half has the same. Unique among the codecs. */
  readonly name: string;
  /** `"module:attr"` of the Python half, imported by the workers (`configure.codecs`). */
  readonly python?: string;
  /** Claims a host value for this codec. Without `test` (or `encode`) the codec only decodes. */
  test?(value: unknown): value is T;
  /** The host value as any encodable value (it is encoded in turn: it may hold tuples, bytes, refs, ...). */
  encode?(value: T): unknown;
  /** The host value of the decoded `v` the Python half's `encode` produced. */
  decode(value: unknown): T;
}

/**
 * The blob region of a binary frame being built: `Encoder.value` appends every `bytes` value of at least
 * `binaryThreshold` bytes and `encodeFrame` writes the parts after the JSON.
 * The parts are views of the caller's bytes (not copies): encode the frame before they can change.
 */
export interface BlobList {
  parts: Uint8Array[];
  /** The total length of `parts` in bytes (the offset of the next part). */
  size: number;
}

/** A new empty {@link BlobList}. */
export const blobList = (): BlobList => ({ parts: [], size: 0 });

/** Options of {@link Encoder}. */
export interface EncoderOptions {
  /** Codec plugins, tried in order. */
  readonly codecs?: readonly PyCodec[];
  /**
   * `bytes` of at least this length go to the blob region of a binary frame; smaller ones as base64.
   * @default 4096
   */
  readonly binaryThreshold?: number;
  /**
   * Turns the adapter's own objects (proxies of Python objects) into refs. Called first for every object
   * and function, before anything else touches it (no property reads, no `in` checks); `undefined` means
   * "not mine".
   */
  readonly refToWire?: (value: object) => RefWire | undefined;
}

/** Options of {@link Decoder}. */
export interface DecoderOptions {
  /** Codec plugins, looked up by `name`. */
  readonly codecs?: readonly PyCodec[];
  /**
   * Makes the host value of a ref (validated first: a malformed ref wire throws ref-registry's
   * `InvalidRefError`). Stream refs have `stream: true`.
   */
  readonly onRef: (wire: RefWire & { stream?: boolean }) => unknown;
}

/** Python's encoding depth limit (PROTOCOL.md): containers nested deeper are refused. */
const MAX_DEPTH = 1000;
/** The decoder's limit, in values (not JSON levels): Python's limit plus room for codec payloads. */
const MAX_DECODE_DEPTH = 2000;

const NAN = Object.freeze({ __type__: 'float', v: 'nan' });
const INF = Object.freeze({ __type__: 'float', v: 'inf' });
const NEG_INF = Object.freeze({ __type__: 'float', v: '-inf' });
const NEG_ZERO = Object.freeze({ __type__: 'float', v: '-0' });

/** A number that is not finite, or `-0`, as its tag. */
const floatTag = (x: number): object => (Number.isNaN(x) ? NAN : x > 0 ? INF : x < 0 ? NEG_INF : NEG_ZERO);

/** A number's wire form: itself when finite and not `-0`, else the float tag. */
const numberWire = (x: number): unknown => (x - x === 0 && (x !== 0 || 1 / x > 0) ? x : floatTag(x));

/** An internal failure: unwinds through the containers, which add their path segments, to `value()`. */
class Fail {
  /** Path segments, innermost first. */
  readonly segments: string[] = [];
  constructor(
    readonly what: string,
    readonly codec?: string,
    readonly cause?: unknown,
  ) {}
}

/** Adds a path segment to an internal failure on its way up; anything else passes unchanged. */
function at(error: unknown, segment: string): unknown {
  if (error instanceof Fail) error.segments.push(segment);
  return error;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const keySegment = (key: string): string => (IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);

/** The segment of a `Map` value: `.get("a")`, `.get(1)`, or `.get(#3)` (the 4th entry) for other keys. */
function mapSegment(key: unknown, index: number): string {
  if (typeof key === 'string')
    return `.get(${JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}…` : key)})`;
  if (typeof key === 'number' || typeof key === 'boolean') return `.get(${key})`;
  if (typeof key === 'bigint') return `.get(${key}n)`;
  return `.get(#${index})`;
}

const errorText = (error: unknown): string =>
  error instanceof Error ? error.message : 'a non-Error was thrown';

function describeFunction(fn: Function): string {
  return fn.name ? `a function (${fn.name})` : 'a function';
}

function describeObject(value: object, proto: object | null): string {
  const ctor =
    proto !== null && Object.hasOwn(proto, 'constructor')
      ? (proto as { constructor: unknown }).constructor
      : undefined;
  const name = typeof ctor === 'function' && ctor.name ? ctor.name : undefined;
  if (ArrayBuffer.isView(value)) {
    return `${name ? `an instance of ${name}` : 'a typed array'} (only Uint8Array and ArrayBuffer are sent as bytes)`;
  }
  return name ? `an instance of ${name}` : 'an object with a custom prototype';
}

/** A plain object or array of another realm (`vm`): its prototype is that realm's `Object`/`Array`. */
function isForeignPrototype(proto: object | null, name: 'Object' | 'Array'): boolean {
  if (proto === null || !Object.hasOwn(proto, 'constructor')) return false;
  const ctor = (proto as { constructor: unknown }).constructor;
  if (typeof ctor !== 'function' || ctor.name !== name) return false;
  const parent = Object.getPrototypeOf(proto) as object | null;
  return name === 'Object' ? parent === null : isForeignPrototype(parent, 'Object');
}

/** Sets `key` on a fresh object, also when it is `__proto__` (which `=` would treat as the prototype). */
function put(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

function checkCodecs(codecs: readonly PyCodec[] | undefined): readonly PyCodec[] {
  const list = codecs ?? [];
  const names = new Set<string>();
  for (const codec of list) {
    if (typeof codec?.name !== 'string' || codec.name.length === 0 || typeof codec.decode !== 'function') {
      throw adapterError(
        PythonAdapterErrorCode.InvalidArgument,
        'a codec needs a non-empty `name` and a `decode` function',
      );
    }
    if (names.has(codec.name)) {
      throw adapterError(PythonAdapterErrorCode.InvalidArgument, `two codecs are named "${codec.name}"`);
    }
    names.add(codec.name);
  }
  return list;
}

/**
 * Encodes host values into their wire form (JSON-able, PROTOCOL.md "Values").
 *
 * - numbers: integers and finite floats as JSON numbers (an integer of magnitude 1e21 or more is written by
 *   `JSON.stringify` in exponent form and so reaches Python as a `float`); `-0`, `NaN`, `±Infinity` tagged;
 *   `bigint` always a tagged `int`; strings, booleans and `null` as they are.
 * - arrays → lists; {@link PyTuple} → tuple; {@link PyFrozenSet} → frozenset; `Set` → set.
 * - plain objects → objects, `undefined` properties omitted, symbol keys ignored; an object with an own
 *   `__type__` key → a tagged dict (so it is not read as a tag).
 * - `Map` → an object when every key is a string other than `__type__`, else a tagged dict.
 * - `Uint8Array` (`Buffer`) and `ArrayBuffer` → bytes (base64 below `binaryThreshold`, else a blob).
 * - `Date` → an aware UTC datetime; {@link PyComplex}, {@link PyDateTime}, {@link PyDate} → their tags.
 * - refs (`@trestle/ref-registry`) and whatever `refToWire` claims → ref wires; codec claims → custom.
 * - anything else is refused with an {@link UnencodableError} naming the path: `undefined` (outside plain
 *   objects), functions, symbols, class instances, other typed arrays, invalid dates, cycles, values nested
 *   deeper than 1000 containers. Nothing is ever stringified.
 *
 * The wire form may share frozen tag objects between values; treat it as read-only.
 */
export class Encoder {
  readonly #codecs: readonly PyCodec[];
  readonly #threshold: number;
  readonly #refToWire: ((value: object) => RefWire | undefined) | undefined;

  /** @throws PythonAdapterError `PY_INVALID_ARGUMENT` for a bad threshold or codec list (duplicate names). */
  constructor(options: EncoderOptions = {}) {
    this.#codecs = checkCodecs(options.codecs).filter(
      (codec) => typeof codec.test === 'function' && typeof codec.encode === 'function',
    );
    const threshold = options.binaryThreshold ?? 4096;
    if (typeof threshold !== 'number' || !(threshold >= 0)) {
      throw adapterError(
        PythonAdapterErrorCode.InvalidArgument,
        'binaryThreshold must be a number >= 0 (bytes)',
      );
    }
    this.#threshold = threshold;
    this.#refToWire = options.refToWire;
  }

  /**
   * The wire form of `value`. Large bytes are appended to `blobs` (send a binary frame when
   * `blobs.parts.length > 0`).
   * @param path how error messages name the value, e.g. `args[0]`.
   * @throws UnencodableError (`PY_UNENCODABLE`) naming the path and what was found there.
   * @throws PythonAdapterError `PY_UNENCODABLE` when a codec's `test` or `encode` throws (the cause).
   * @example
   * ```ts
   * const blobs = blobList();
   * encoder.value([1, -0, 2n ** 64n], blobs);
   * // [1, {"__type__":"float","v":"-0"}, {"__type__":"int","v":"18446744073709551616"}]
   * ```
   */
  value(value: unknown, blobs: BlobList, path = 'value'): unknown {
    if (typeof value === 'string' || typeof value === 'boolean' || value === null) return value;
    if (typeof value === 'number') return numberWire(value);
    try {
      return this.#encode(value, blobs, [], 0);
    } catch (error) {
      throw this.#error(error, path);
    }
  }

  /**
   * The `args` and `kwargs` of a `call`/`method` request. `kwargs` is a map of names (a `__type__` name
   * is a name like any other, not escaped); its `undefined` values are omitted.
   * @throws UnencodableError naming `args[i]…` or `kwargs.name…`.
   */
  encodeArgs(
    args: readonly unknown[],
    kwargs: Readonly<Record<string, unknown>> | undefined,
    blobs: BlobList,
  ): { args: unknown[]; kwargs?: Record<string, unknown> } {
    let encodedArgs: unknown[];
    try {
      if (!Array.isArray(args)) throw new Fail('not an array (args)');
      encodedArgs = this.#list(args, blobs, [args], 0);
    } catch (error) {
      throw this.#error(error, 'args');
    }
    if (kwargs === undefined) return { args: encodedArgs };
    const out: Record<string, unknown> = {};
    try {
      if (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs)) {
        throw new Fail('not a plain object (kwargs)');
      }
      const stack: unknown[] = [kwargs];
      for (const key of Object.keys(kwargs)) {
        const item = kwargs[key];
        if (item === undefined) continue;
        try {
          put(out, key, this.#encode(item, blobs, stack, 1));
        } catch (error) {
          throw at(error, keySegment(key));
        }
      }
    } catch (error) {
      throw this.#error(error, 'kwargs');
    }
    return { args: encodedArgs, kwargs: out };
  }

  #error(error: unknown, path: string): unknown {
    if (!(error instanceof Fail)) return error;
    const where = path + error.segments.reverse().join('');
    if (error.codec !== undefined) {
      return adapterError(
        PythonAdapterErrorCode.Unencodable,
        `codec "${error.codec}" failed on the value at ${where}: ${errorText(error.cause)}`,
        error.cause,
      );
    }
    return new UnencodableError(where, error.what);
  }

  /** `stack[0..depth)` holds the containers being encoded (for cycle detection). */
  #encode(value: unknown, blobs: BlobList, stack: unknown[], depth: number): unknown {
    switch (typeof value) {
      case 'number':
        return numberWire(value);
      case 'string':
      case 'boolean':
        return value;
      case 'bigint':
        return { __type__: 'int', v: value.toString() };
      case 'undefined':
        throw new Fail('undefined');
      case 'symbol':
        throw new Fail('a symbol');
      case 'function': {
        const wire = this.#refToWire?.(value);
        if (wire !== undefined) return wire;
        if (isRef(value)) return encodeRef(value);
        throw new Fail(describeFunction(value));
      }
    }
    if (value === null) return null;
    return this.#object(value as object, blobs, stack, depth);
  }

  #object(value: object, blobs: BlobList, stack: unknown[], depth: number): unknown {
    if (this.#refToWire !== undefined) {
      const wire = this.#refToWire(value);
      if (wire !== undefined) return wire;
    }
    if (isRef(value)) return encodeRef(value);
    for (let i = 0; i < depth; i++) if (stack[i] === value) throw new Fail('a circular reference');
    if (depth >= MAX_DEPTH) throw new Fail(`a value nested deeper than ${MAX_DEPTH} levels`);
    stack[depth] = value;
    if (this.#codecs.length > 0) {
      const custom = this.#custom(value, blobs, stack, depth);
      if (custom !== undefined) return custom;
    }
    const proto = Object.getPrototypeOf(value) as object | null;
    if (proto === Array.prototype) return this.#list(value as unknown[], blobs, stack, depth);
    if (proto === Object.prototype || proto === null) {
      return this.#plain(value as Record<string, unknown>, blobs, stack, depth);
    }
    return this.#special(value, proto, blobs, stack, depth);
  }

  #custom(value: object, blobs: BlobList, stack: unknown[], depth: number): object | undefined {
    for (const codec of this.#codecs) {
      let payload: unknown;
      try {
        if (!codec.test?.(value)) continue;
        payload = codec.encode?.(value);
      } catch (error) {
        throw new Fail('', codec.name, error);
      }
      let v: unknown;
      try {
        v = this.#encode(payload, blobs, stack, depth + 1);
      } catch (error) {
        throw at(error, `<codec ${codec.name}>`);
      }
      return { __type__: 'custom', codec: codec.name, v };
    }
    return undefined;
  }

  #list(list: readonly unknown[], blobs: BlobList, stack: unknown[], depth: number): unknown[] {
    const n = list.length;
    const out = new Array<unknown>(n);
    let i = 0;
    try {
      for (; i < n; i++) {
        const item = list[i];
        if (typeof item === 'number' && item - item === 0 && item !== 0) out[i] = item;
        else if (typeof item === 'string') out[i] = item;
        else out[i] = this.#encode(item, blobs, stack, depth + 1);
      }
    } catch (error) {
      throw at(error, `[${i}]`);
    }
    return out;
  }

  #plain(value: Record<string, unknown>, blobs: BlobList, stack: unknown[], depth: number): unknown {
    const keys = Object.keys(value);
    if (Object.hasOwn(value, '__type__')) {
      const items: unknown[] = [];
      for (const key of keys) {
        const item = value[key];
        if (item === undefined) continue;
        try {
          items.push([key, this.#encode(item, blobs, stack, depth + 1)]);
        } catch (error) {
          throw at(error, keySegment(key));
        }
      }
      return { __type__: 'dict', items };
    }
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      const item = value[key];
      if (item === undefined) continue;
      try {
        put(out, key, this.#encode(item, blobs, stack, depth + 1));
      } catch (error) {
        throw at(error, keySegment(key));
      }
    }
    return out;
  }

  #special(value: object, proto: object | null, blobs: BlobList, stack: unknown[], depth: number): unknown {
    if (isTuple(value)) return { __type__: 'tuple', items: this.#list(value, blobs, stack, depth) };
    if (Array.isArray(value)) {
      if (isForeignPrototype(proto, 'Array')) return this.#list(value, blobs, stack, depth);
      throw new Fail(describeObject(value, proto));
    }
    if (PyFrozenSet.isInstance(value))
      return { __type__: 'frozenset', items: this.#items(value, blobs, stack, depth) };
    if (isSet(value)) return { __type__: 'set', items: this.#items(value, blobs, stack, depth) };
    if (isMap(value)) return this.#map(value, blobs, stack, depth);
    if (isUint8Array(value)) return this.#bytes(value, blobs);
    if (isArrayBuffer(value)) return this.#bytes(new Uint8Array(value), blobs);
    if (isDate(value)) {
      if (Number.isNaN(value.getTime())) throw new Fail('an invalid Date');
      try {
        return { __type__: 'datetime', iso: dateToIso(value) };
      } catch {
        throw new Fail("a Date outside Python's datetime range (years 1-9999)");
      }
    }
    if (PyComplex.isInstance(value))
      return { __type__: 'complex', re: numberWire(value.re), im: numberWire(value.im) };
    if (PyDateTime.isInstance(value)) return { __type__: 'datetime', iso: value.iso };
    if (PyDate.isInstance(value)) return { __type__: 'date', iso: value.iso };
    if (isForeignPrototype(proto, 'Object'))
      return this.#plain(value as Record<string, unknown>, blobs, stack, depth);
    throw new Fail(describeObject(value, proto));
  }

  #items(set: ReadonlySet<unknown>, blobs: BlobList, stack: unknown[], depth: number): unknown[] {
    const out: unknown[] = [];
    for (const item of set) {
      try {
        out.push(this.#encode(item, blobs, stack, depth + 1));
      } catch (error) {
        throw at(error, `.values()[${out.length}]`);
      }
    }
    return out;
  }

  #map(map: ReadonlyMap<unknown, unknown>, blobs: BlobList, stack: unknown[], depth: number): unknown {
    let stringKeys = true;
    for (const key of map.keys()) {
      if (typeof key !== 'string' || key === '__type__') {
        stringKeys = false;
        break;
      }
    }
    let index = 0;
    if (stringKeys) {
      const out: Record<string, unknown> = {};
      for (const [key, item] of map) {
        try {
          put(out, key as string, this.#encode(item, blobs, stack, depth + 1));
        } catch (error) {
          throw at(error, mapSegment(key, index));
        }
        index++;
      }
      return out;
    }
    const items: unknown[] = [];
    for (const [key, item] of map) {
      let k: unknown;
      try {
        k = this.#encode(key, blobs, stack, depth + 1);
      } catch (error) {
        throw at(error, `.keys()[${index}]`);
      }
      try {
        items.push([k, this.#encode(item, blobs, stack, depth + 1)]);
      } catch (error) {
        throw at(error, mapSegment(key, index));
      }
      index++;
    }
    return { __type__: 'dict', items };
  }

  #bytes(bytes: Uint8Array, blobs: BlobList): object {
    const length = bytes.byteLength;
    if (length < this.#threshold) {
      return {
        __type__: 'bytes',
        b64: Buffer.from(bytes.buffer, bytes.byteOffset, length).toString('base64'),
      };
    }
    const offset = blobs.size;
    blobs.parts.push(bytes);
    blobs.size = offset + length;
    return { __type__: 'bytes', blob: [offset, length] };
  }
}

const INTEGER = /^-?\d+$/;

const isText = (value: unknown): boolean => typeof value === 'string' && value.length > 0;
const isNullishText = (value: unknown): boolean =>
  value === undefined || value === null || typeof value === 'string';

/** The checks of ref-registry's `decodeRef`, without zod (which only runs to explain a failure). */
function isValidRefWire(wire: Record<string, unknown>): boolean {
  return (
    wire.__schema__ === 1 &&
    isText(wire.id) &&
    isText(wire.session_id) &&
    isText(wire.type_name) &&
    typeof wire.python_module === 'string' &&
    isNullishText(wire.library) &&
    isNullishText(wire.pool_name)
  );
}

/**
 * Decodes wire values into host values (PROTOCOL.md "Values"): `int` → `bigint`, `float` tags → `NaN`,
 * `±Infinity`, `-0`; `tuple` → {@link PyTuple}; `set` → `Set`; `frozenset` → {@link PyFrozenSet}; `bytes` →
 * `Buffer`; `complex` → {@link PyComplex}; `datetime` → {@link PyDateTime}; `date` → {@link PyDate}; `dict` →
 * `Map`; `ref` → what `onRef` returns; `custom` → the named codec's `decode`.
 *
 * **The wire is decoded in place**: its arrays and plain objects become the result (tags are replaced
 * by their values), so pass the wire you own (fresh from `JSON.parse`, as the frame decoder delivers it)
 * and do not use it afterwards.
 */
export class Decoder {
  readonly #codecs: ReadonlyMap<string, PyCodec>;
  readonly #onRef: (wire: RefWire & { stream?: boolean }) => unknown;

  /** @throws PythonAdapterError `PY_INVALID_ARGUMENT` for a bad codec list (duplicate names). */
  constructor(options: DecoderOptions) {
    this.#codecs = new Map(checkCodecs(options.codecs).map((codec) => [codec.name, codec]));
    if (typeof options.onRef !== 'function') {
      throw adapterError(PythonAdapterErrorCode.InvalidArgument, 'Decoder needs an onRef function');
    }
    this.#onRef = options.onRef;
  }

  /**
   * The host value of `wire`.
   * @param blob the blob region of the binary frame the wire came in (`undefined` for a JSON frame).
   *   Decoded blob bytes are `Buffer` views of it, not copies: the frame decoder hands over an owned
   *   buffer per frame, which nothing reuses.
   * @param path how error messages name the value, e.g. `result`.
   * @throws PythonAdapterError `PY_UNDECODABLE` for an unknown tag or codec name, a malformed tag (bad
   *   fields, a blob outside the blob region), a codec whose `decode` throws (the cause), or nesting
   *   deeper than 2000 values.
   * @throws InvalidRefError (`@trestle/ref-registry`) for a malformed ref wire.
   */
  value(wire: unknown, blob: Uint8Array | undefined, path = 'value'): unknown {
    if (typeof wire !== 'object' || wire === null) return wire;
    try {
      return this.#decode(wire, blob, 0);
    } catch (error) {
      if (!(error instanceof Fail)) throw error;
      const where = path + error.segments.reverse().join('');
      if (error.codec !== undefined) {
        throw adapterError(
          PythonAdapterErrorCode.Undecodable,
          `codec "${error.codec}" failed on the value at ${where}: ${errorText(error.cause)}`,
          error.cause,
        );
      }
      throw adapterError(PythonAdapterErrorCode.Undecodable, `cannot decode ${error.what} at ${where}`);
    }
  }

  #decode(wire: object, blob: Uint8Array | undefined, depth: number): unknown {
    if (depth >= MAX_DECODE_DEPTH) throw new Fail(`a value nested deeper than ${MAX_DECODE_DEPTH} levels`);
    if (Array.isArray(wire)) {
      this.#items(wire, blob, depth);
      return wire;
    }
    const record = wire as Record<string, unknown>;
    const tag = record.__type__;
    if (tag === undefined) {
      // for-in is twice as fast as Object.keys on JSON.parse objects (no key array); own keys only.
      for (const key in record) {
        const item = record[key];
        if (typeof item !== 'object' || item === null || !Object.hasOwn(record, key)) continue;
        let decoded: unknown;
        try {
          decoded = this.#decode(item, blob, depth + 1);
        } catch (error) {
          throw at(error, keySegment(key));
        }
        if (decoded !== item) put(record, key, decoded);
      }
      return record;
    }
    return this.#tagged(tag, record, blob, depth);
  }

  /** Decodes the items of a wire array in place. */
  #items(list: unknown[], blob: Uint8Array | undefined, depth: number): unknown[] {
    let i = 0;
    try {
      for (; i < list.length; i++) {
        const item = list[i];
        if (typeof item === 'object' && item !== null) {
          const decoded = this.#decode(item, blob, depth + 1);
          if (decoded !== item) list[i] = decoded;
        }
      }
    } catch (error) {
      throw at(error, `[${i}]`);
    }
    return list;
  }

  /** The `items` array of a tuple, set or frozenset tag, decoded. */
  #tagItems(
    record: Record<string, unknown>,
    tag: string,
    blob: Uint8Array | undefined,
    depth: number,
  ): unknown[] {
    const items = record.items;
    if (!Array.isArray(items)) throw new Fail(`a "${tag}" tag without an "items" list`);
    return this.#items(items, blob, depth);
  }

  #tagged(
    tag: unknown,
    record: Record<string, unknown>,
    blob: Uint8Array | undefined,
    depth: number,
  ): unknown {
    switch (tag) {
      case 'int': {
        const v = record.v;
        if (typeof v !== 'string' || !INTEGER.test(v))
          throw new Fail('an "int" tag whose "v" is not decimal digits');
        return BigInt(v);
      }
      case 'float':
        switch (record.v) {
          case 'nan':
            return Number.NaN;
          case 'inf':
            return Number.POSITIVE_INFINITY;
          case '-inf':
            return Number.NEGATIVE_INFINITY;
          case '-0':
            return -0;
          default:
            throw new Fail('a "float" tag whose "v" is not "nan", "inf", "-inf" or "-0"');
        }
      case 'tuple':
        return new PyTuple(this.#tagItems(record, tag, blob, depth));
      case 'set':
        return new Set(this.#tagItems(record, tag, blob, depth));
      case 'frozenset':
        return new PyFrozenSet(this.#tagItems(record, tag, blob, depth));
      case 'bytes':
        return this.#bytes(record, blob);
      case 'complex': {
        const re = this.#child(record.re, blob, depth);
        const im = this.#child(record.im, blob, depth);
        if (typeof re !== 'number' || typeof im !== 'number') {
          throw new Fail('a "complex" tag whose "re" or "im" is not a float');
        }
        return new PyComplex(re, im);
      }
      case 'datetime':
        try {
          return new PyDateTime(record.iso as string);
        } catch {
          throw new Fail('a "datetime" tag whose "iso" is not an ISO datetime');
        }
      case 'date':
        try {
          return new PyDate(record.iso as string);
        } catch {
          throw new Fail('a "date" tag whose "iso" is not an ISO date');
        }
      case 'dict':
        return this.#dict(record, blob, depth);
      case 'ref':
        if (!isValidRefWire(record)) decodeRef(record); // throws InvalidRefError, the reason named
        if (record.stream !== undefined && typeof record.stream !== 'boolean') {
          throw new Fail('a "ref" tag whose "stream" is not a boolean');
        }
        return this.#onRef(record as unknown as RefWire & { stream?: boolean });
      case 'custom':
        return this.#custom(record, blob, depth);
      default:
        throw new Fail(
          typeof tag === 'string'
            ? `an unknown tag "${tag.length > 40 ? `${tag.slice(0, 40)}…` : tag}"`
            : 'a "__type__" that is not a string',
        );
    }
  }

  #child(value: unknown, blob: Uint8Array | undefined, depth: number): unknown {
    return typeof value === 'object' && value !== null ? this.#decode(value, blob, depth + 1) : value;
  }

  #bytes(record: Record<string, unknown>, blob: Uint8Array | undefined): Buffer {
    const { b64, blob: span } = record;
    if (typeof b64 === 'string') return Buffer.from(b64, 'base64');
    if (!Array.isArray(span)) throw new Fail('a "bytes" tag without "b64" or "blob"');
    if (blob === undefined) throw new Fail('a "bytes" blob in a frame without a blob region');
    const [offset, length] = span as unknown[];
    if (
      span.length !== 2 ||
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      (offset as number) < 0 ||
      (length as number) < 0 ||
      (offset as number) + (length as number) > blob.byteLength
    ) {
      throw new Fail(`a "bytes" blob outside the blob region (${blob.byteLength} bytes)`);
    }
    // A view, not a copy: the frame decoder hands over a buffer per frame that it never reuses.
    return Buffer.from(blob.buffer, blob.byteOffset + (offset as number), length as number);
  }

  #dict(record: Record<string, unknown>, blob: Uint8Array | undefined, depth: number): Map<unknown, unknown> {
    const items = record.items;
    if (!Array.isArray(items)) throw new Fail('a "dict" tag without an "items" list');
    const map = new Map<unknown, unknown>();
    for (let i = 0; i < items.length; i++) {
      const pair: unknown = items[i];
      if (!Array.isArray(pair) || pair.length !== 2)
        throw at(new Fail('a "dict" item that is not a [key, value] pair'), `.items[${i}]`);
      let key: unknown = pair[0];
      try {
        key = this.#child(key, blob, depth);
      } catch (error) {
        throw at(error, `.keys()[${i}]`);
      }
      try {
        map.set(key, this.#child(pair[1], blob, depth));
      } catch (error) {
        throw at(error, mapSegment(key, i));
      }
    }
    return map;
  }

  #custom(record: Record<string, unknown>, blob: Uint8Array | undefined, depth: number): unknown {
    const name = record.codec;
    const codec = typeof name === 'string' ? this.#codecs.get(name) : undefined;
    if (codec === undefined) {
      throw new Fail(
        typeof name === 'string'
          ? `a value of the unknown codec "${name.length > 40 ? `${name.slice(0, 40)}…` : name}" (no host codec has this name)`
          : 'a "custom" tag without a "codec" name',
      );
    }
    let v: unknown;
    try {
      v = this.#child(record.v, blob, depth);
    } catch (error) {
      throw at(error, `<codec ${codec.name}>`);
    }
    try {
      return codec.decode(v);
    } catch (error) {
      throw new Fail('', codec.name, error);
    }
  }
}
