import { createRef, decodeRef, isRef } from '@trestle/ref-registry';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blobList, Decoder, Encoder, type PyCodec } from './codec';
import { encodeFrame, FrameDecoder } from './frame';
import { isTuple, PyComplex, PyDate, PyDateTime, PyFrozenSet, PyTuple } from './values';

class Money {
  constructor(
    readonly cents: bigint,
    readonly currency: string,
  ) {}
}
const money: PyCodec<Money> = {
  name: 'money',
  test: (value): value is Money => value instanceof Money,
  encode: (value) => [value.cents, value.currency],
  decode: (value) => {
    const [cents, currency] = value as [bigint, string];
    return new Money(cents, currency);
  },
};

const THRESHOLD = 16;
const encoder = new Encoder({ codecs: [money], binaryThreshold: THRESHOLD });
const decoder = new Decoder({ codecs: [money], onRef: (wire) => decodeRef(wire) });

/** A comparable form: Python semantics (a string-keyed Map and an object are the same dict; order of sets ignored). */
function canon(value: unknown): unknown {
  if (typeof value === 'number') return ['num', Object.is(value, -0) ? '-0' : String(value)];
  if (typeof value === 'bigint') return ['int', value.toString()];
  if (typeof value !== 'object' || value === null) return value;
  if (isRef(value))
    return ['ref', value.id, value.sessionId, value.typeName, value.module, value.library ?? null];
  if (value instanceof Money) return ['money', value.cents.toString(), value.currency];
  if (isTuple(value)) return ['tuple', value.map(canon)];
  if (Array.isArray(value)) return ['list', value.map(canon)];
  const sorted = (items: Iterable<unknown>) => [...items].map((item) => JSON.stringify(canon(item))).sort();
  if (PyFrozenSet.isInstance(value)) return ['frozenset', sorted(value)];
  if (value instanceof Set) return ['set', sorted(value)];
  const entries = (pairs: Iterable<[unknown, unknown]>) =>
    [...pairs]
      .map(([key, item]) => [JSON.stringify(canon(key)), canon(item)] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (value instanceof Map) return ['dict', entries(value)];
  if (value instanceof Uint8Array) return ['bytes', Buffer.from(value).toString('hex')];
  if (PyComplex.isInstance(value)) return ['complex', canon(value.re), canon(value.im)];
  if (PyDateTime.isInstance(value)) return ['datetime', value.iso];
  if (PyDate.isInstance(value)) return ['date', value.iso];
  return ['dict', entries(Object.entries(value))];
}

/** encode → JSON text → JSON.parse → decode, the blob region rebuilt from the blob list. */
function roundTrip(value: unknown): unknown {
  const blobs = blobList();
  const text = JSON.stringify(encoder.value(value, blobs));
  const region = blobs.parts.length > 0 ? Buffer.concat(blobs.parts) : undefined;
  if (region !== undefined) expect(region.length).toBe(blobs.size);
  return decoder.value(JSON.parse(text), region);
}

const text = fc.oneof(
  { arbitrary: fc.string({ unit: 'binary', maxLength: 12 }), weight: 4 },
  { arbitrary: fc.constantFrom('', '\ud800', 'a\udfffb', '__type__', '__proto__', 'é😀'), weight: 1 },
);
const nonEmpty = fc.string({ minLength: 1, maxLength: 8 });
const days = {
  min: new Date('0001-01-01T00:00:00Z'),
  max: new Date('9999-12-31T23:59:59Z'),
  noInvalidDate: true,
};

const primitive = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(-0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 53, 1e21, 5e-324),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
  fc.constantFrom(2n ** 53n + 1n, -(2n ** 64n), 0n),
  text,
  fc.boolean(),
  fc.constant(null),
);

const leaf = fc.oneof(
  { arbitrary: primitive, weight: 8 },
  {
    arbitrary: fc
      .integer({ min: 0, max: THRESHOLD + 8 })
      .chain((n) => fc.uint8Array({ minLength: n, maxLength: n }))
      .chain((bytes) => fc.constantFrom<Uint8Array>(bytes, Buffer.from(bytes))),
    weight: 2,
  },
  fc.tuple(fc.double(), fc.double()).map(([re, im]) => new PyComplex(re, im)),
  fc.date(days).map((date) => PyDateTime.fromDate(date)),
  fc
    .tuple(fc.date(days), fc.integer({ min: 0, max: 999_999 }))
    .map(
      ([date, micros]) =>
        new PyDateTime(`${date.toISOString().slice(0, 19)}.${String(micros).padStart(6, '0')}`),
    ),
  fc.date(days).map((date) => new PyDate(date.toISOString().slice(0, 10))),
  fc
    .record({
      id: nonEmpty,
      sessionId: nonEmpty,
      typeName: nonEmpty,
      module: fc.string({ maxLength: 8 }),
      library: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
    })
    .map((fields) => createRef(fields)),
  fc.tuple(fc.bigInt(), fc.string({ maxLength: 4 })).map(([cents, currency]) => new Money(cents, currency)),
);

/** Hashable values (Python dict keys and set items): primitives and tuples of them. */
const hashable = fc.oneof(
  { arbitrary: primitive, weight: 3 },
  fc.array(primitive, { maxLength: 3 }).map((items) => new PyTuple(items)),
  fc
    .array(
      fc.array(primitive, { maxLength: 2 }).map((items) => new PyTuple(items)),
      { maxLength: 2 },
    )
    .map((items) => new PyTuple(items)),
);

function objectOf(entries: readonly (readonly [string, unknown])[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, item] of entries) {
    Object.defineProperty(out, key, { value: item, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

const { value } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    { arbitrary: leaf, weight: 4 },
    tie('list'),
    tie('tuple'),
    tie('set'),
    tie('object'),
    tie('map'),
  ),
  list: fc.array(tie('value'), { maxLength: 5 }),
  tuple: fc.array(tie('value'), { maxLength: 5 }).map((items) => new PyTuple(items)),
  set: fc
    .tuple(fc.array(hashable, { maxLength: 5 }), fc.boolean())
    .map(([items, frozen]) => (frozen ? new PyFrozenSet(items) : new Set(items))),
  object: fc.array(fc.tuple(text, tie('value')), { maxLength: 5 }).map(objectOf),
  map: fc.array(fc.tuple(hashable, tie('value')), { maxLength: 5 }).map((entries) => new Map(entries)),
}));

describe('codec round trip (property)', () => {
  it('decode(JSON.parse(JSON.stringify(encode(v)))) is v, for values of every supported type', () => {
    fc.assert(
      fc.property(value, (input) => {
        expect(canon(roundTrip(input))).toEqual(canon(input));
      }),
      { numRuns: 400 },
    );
  });

  it('keeps the JS types: numbers stay numbers, bigints stay bigints, bytes become Buffers', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.double(), fc.bigInt(), fc.uint8Array({ maxLength: 40 }))), (items) => {
        const back = roundTrip(items) as unknown[];
        items.forEach((item, i) => {
          if (item instanceof Uint8Array) expect(Buffer.isBuffer(back[i])).toBe(true);
          else expect(typeof back[i]).toBe(typeof item);
        });
      }),
    );
  });

  it('sends Dates as aware datetimes of the same instant', () => {
    fc.assert(
      fc.property(fc.date(days), (date) => {
        const back = roundTrip(date);
        expect(PyDateTime.isInstance(back)).toBe(true);
        expect((back as PyDateTime).naive).toBe(false);
        expect((back as PyDateTime).toDate().getTime()).toBe(date.getTime());
      }),
    );
  });

  it('survives framing: encodeFrame → FrameDecoder → Decoder, in chunks', () => {
    fc.assert(
      fc.property(value, fc.integer({ min: 1, max: 64 }), (input, chunkSize) => {
        const blobs = blobList();
        const frame = encodeFrame({ id: 1, ok: true, result: encoder.value(input, blobs) }, blobs);
        const results: unknown[] = [];
        const frames = new FrameDecoder({
          onFrame: (message, blob) => results.push(decoder.value(message.result, blob)),
        });
        for (let at = 0; at < frame.length; at += chunkSize) frames.push(frame.subarray(at, at + chunkSize));
        expect(results).toHaveLength(1);
        expect(canon(results[0])).toEqual(canon(input));
      }),
      { numRuns: 200 },
    );
  });
});
