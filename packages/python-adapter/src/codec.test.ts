import { createRef, decodeRef, InvalidRefError, type RefWire } from '@trestle/ref-registry';
import { describe, expect, it, vi } from 'vitest';
import { blobList, Decoder, Encoder, type PyCodec } from './codec';
import { PythonAdapterError, UnencodableError } from './errors';
import { isTuple, PyComplex, PyDate, PyDateTime, PyFrozenSet, type PyTuple, tuple } from './values';

class Money {
  constructor(
    readonly cents: bigint,
    readonly currency: string,
  ) {}
}

const money: PyCodec<Money> = {
  name: 'money',
  python: 'shop.codecs:money',
  test: (value): value is Money => value instanceof Money,
  encode: (value) => tuple(value.cents, value.currency),
  decode: (value) => {
    const [cents, currency] = value as [bigint, string];
    return new Money(cents, currency);
  },
};

const encode = (value: unknown, encoder = new Encoder()) => encoder.value(value, blobList());

/** The thrown error, asserted to be a PythonAdapterError. */
function caught(fn: () => unknown): PythonAdapterError {
  try {
    fn();
  } catch (error) {
    expect(PythonAdapterError.isInstance(error)).toBe(true);
    return error as PythonAdapterError;
  }
  throw new Error('expected a throw');
}

const ref = createRef({ id: 'r1', sessionId: 's1', typeName: 'Pattern', module: 're' });
const refWire = {
  __type__: 'ref',
  __schema__: 1,
  id: 'r1',
  session_id: 's1',
  type_name: 'Pattern',
  python_module: 're',
} as const;

describe('Encoder: primitives', () => {
  it('sends integers and finite floats as JSON numbers', () => {
    expect(encode(1)).toBe(1);
    expect(encode(0)).toBe(0);
    expect(encode(-7)).toBe(-7);
    expect(encode(1.5)).toBe(1.5);
    expect(encode(2 ** 60)).toBe(2 ** 60);
  });

  it('tags -0, NaN and the infinities', () => {
    expect(encode(-0)).toEqual({ __type__: 'float', v: '-0' });
    expect(encode(Number.NaN)).toEqual({ __type__: 'float', v: 'nan' });
    expect(encode(Number.POSITIVE_INFINITY)).toEqual({ __type__: 'float', v: 'inf' });
    expect(encode(Number.NEGATIVE_INFINITY)).toEqual({ __type__: 'float', v: '-inf' });
    expect(encode([-0, 0])).toEqual([{ __type__: 'float', v: '-0' }, 0]);
  });

  it('always tags bigints', () => {
    expect(encode(5n)).toEqual({ __type__: 'int', v: '5' });
    expect(encode(-(2n ** 64n))).toEqual({ __type__: 'int', v: '-18446744073709551616' });
  });

  it('passes strings, booleans and null', () => {
    expect(encode('héllo')).toBe('héllo');
    expect(encode(true)).toBe(true);
    expect(encode(null)).toBeNull();
  });
});

describe('Encoder: containers', () => {
  it('sends arrays as lists, copied', () => {
    const input = [1, 'a', [2, [3]]];
    const wire = encode(input);
    expect(wire).toEqual([1, 'a', [2, [3]]]);
    expect(wire).not.toBe(input);
  });

  it('tags tuples, sets and frozensets', () => {
    expect(encode(tuple(1, tuple()))).toEqual({
      __type__: 'tuple',
      items: [1, { __type__: 'tuple', items: [] }],
    });
    expect(encode(new Set(['a', 1n]))).toEqual({
      __type__: 'set',
      items: ['a', { __type__: 'int', v: '1' }],
    });
    expect(encode(new PyFrozenSet([2]))).toEqual({ __type__: 'frozenset', items: [2] });
  });

  it('sends plain objects and drops their undefined properties', () => {
    expect(encode({ a: 1, b: undefined, c: { d: [true] } })).toEqual({ a: 1, c: { d: [true] } });
    const bare = Object.assign(Object.create(null) as object, { x: 1 });
    expect(encode(bare)).toEqual({ x: 1 });
  });

  it('escapes a plain object with an own __type__ key as a tagged dict', () => {
    expect(encode({ __type__: 'int', v: '1', gone: undefined })).toEqual({
      __type__: 'dict',
      items: [
        ['__type__', 'int'],
        ['v', '1'],
      ],
    });
  });

  it('keeps an own __proto__ key as a key', () => {
    const input = JSON.parse('{"__proto__": {"a": 1}, "b": 2}') as object;
    const wire = encode(input) as Record<string, unknown>;
    expect(Object.getPrototypeOf(wire)).toBe(Object.prototype);
    expect(JSON.stringify(wire)).toBe('{"__proto__":{"a":1},"b":2}');
  });

  it('sends a Map with string keys as an object, else as a tagged dict', () => {
    expect(encode(new Map([['a', 1]]))).toEqual({ a: 1 });
    expect(encode(new Map([['__type__', 1]]))).toEqual({ __type__: 'dict', items: [['__type__', 1]] });
    expect(
      encode(
        new Map<unknown, unknown>([
          [tuple(1, 2), 'pair'],
          [3, 'three'],
        ]),
      ),
    ).toEqual({
      __type__: 'dict',
      items: [
        [{ __type__: 'tuple', items: [1, 2] }, 'pair'],
        [3, 'three'],
      ],
    });
    const proto = encode(new Map([['__proto__', 1]]));
    expect(JSON.stringify(proto)).toBe('{"__proto__":1}');
  });

  it('encodes shared (non-circular) values each time they appear', () => {
    const shared = { x: 1 };
    expect(encode([shared, shared])).toEqual([{ x: 1 }, { x: 1 }]);
  });

  it('accepts 1000 nested containers and refuses 1001', () => {
    const nest = (levels: number): unknown => {
      let value: unknown = 'leaf';
      for (let i = 0; i < levels; i++) value = [value];
      return value;
    };
    expect(() => encode(nest(1000))).not.toThrow();
    const error = caught(() => encode(nest(1001)));
    expect(error).toBeInstanceOf(UnencodableError);
    expect(error.message).toContain('nested deeper than 1000 levels');
  });
});

describe('Encoder: bytes, dates, Python values, refs', () => {
  it('sends small bytes as base64 and large ones as blobs', () => {
    const encoder = new Encoder({ binaryThreshold: 4 });
    const blobs = blobList();
    const small = Buffer.from('abc');
    const big = new Uint8Array([1, 2, 3, 4, 5]);
    const bigger = Buffer.from('0123456789').subarray(2, 8);
    const wire = encoder.value([small, big, bigger], blobs);
    expect(wire).toEqual([
      { __type__: 'bytes', b64: 'YWJj' },
      { __type__: 'bytes', blob: [0, 5] },
      { __type__: 'bytes', blob: [5, 6] },
    ]);
    expect(blobs.size).toBe(11);
    expect(Buffer.concat(blobs.parts).toString('latin1')).toBe('\x01\x02\x03\x04\x05234567');
  });

  it('uses the view of a sliced buffer, not its whole memory', () => {
    const backing = Buffer.from('xxhixx');
    expect(encode(backing.subarray(2, 4))).toEqual({ __type__: 'bytes', b64: 'aGk=' });
    expect(encode(new Uint8Array([104, 105]).buffer)).toEqual({ __type__: 'bytes', b64: 'aGk=' });
  });

  it('defaults the blob threshold to 4096 bytes', () => {
    const blobs = blobList();
    const wire = new Encoder().value([new Uint8Array(4095), new Uint8Array(4096)], blobs) as object[];
    expect(wire[0]).toHaveProperty('b64');
    expect(wire[1]).toEqual({ __type__: 'bytes', blob: [0, 4096] });
  });

  it('refuses other typed arrays', () => {
    const error = caught(() => encode(new Float64Array(2)));
    expect(error.message).toContain('an instance of Float64Array');
    expect(error.code).toBe('PY_UNENCODABLE');
  });

  it('sends a Date as an aware UTC datetime and refuses invalid ones', () => {
    expect(encode(new Date('2024-01-02T03:04:05.678Z'))).toEqual({
      __type__: 'datetime',
      iso: '2024-01-02T03:04:05.678+00:00',
    });
    expect(caught(() => encode(new Date(Number.NaN))).message).toContain('an invalid Date');
    expect(caught(() => encode(new Date('+020000-01-01T00:00:00Z'))).message).toContain('years 1-9999');
  });

  it('tags complex numbers, datetimes and dates', () => {
    expect(encode(new PyComplex(1, -0))).toEqual({
      __type__: 'complex',
      re: 1,
      im: { __type__: 'float', v: '-0' },
    });
    expect(encode(new PyDateTime('2024-01-02T03:04:05.123456'))).toEqual({
      __type__: 'datetime',
      iso: '2024-01-02T03:04:05.123456',
    });
    expect(encode(new PyDate('2024-01-02'))).toEqual({ __type__: 'date', iso: '2024-01-02' });
  });

  it('sends refs as their tagged wire form', () => {
    expect(encode({ pattern: ref })).toEqual({ pattern: refWire });
  });

  it('asks refToWire first, for objects and functions, before touching them', () => {
    const has = vi.fn(() => {
      throw new Error('touched');
    });
    const proxy = new Proxy(() => {}, { has, get: has, getPrototypeOf: has });
    const other = { plain: true };
    const refToWire = vi.fn((value: object): RefWire | undefined => (value === proxy ? refWire : undefined));
    const encoder = new Encoder({ refToWire });
    const wire = encoder.value([proxy, other], blobList());
    expect(has).not.toHaveBeenCalled();
    expect(wire).toEqual([refWire, { plain: true }]);
    const seen = refToWire.mock.calls.map(([value]) => value);
    expect(seen.length).toBe(3); // the array, the proxy, the object
    expect(seen[1] === proxy).toBe(true);
    expect(seen[2] === other).toBe(true);
  });
});

describe('Encoder: codecs', () => {
  it('claims values with the first codec whose test passes, encoding its payload in turn', () => {
    const encoder = new Encoder({ codecs: [money] });
    expect(encoder.value({ price: new Money(1999n, 'EUR') }, blobList())).toEqual({
      price: {
        __type__: 'custom',
        codec: 'money',
        v: { __type__: 'tuple', items: [{ __type__: 'int', v: '1999' }, 'EUR'] },
      },
    });
  });

  it('tries codecs before the built-in handling of class instances', () => {
    const isoDate: PyCodec<Date> = {
      name: 'pandas-ts',
      test: (value): value is Date => value instanceof Date,
      encode: (value) => value.getTime(),
      decode: (value) => new Date(value as number),
    };
    expect(encode(new Date(5), new Encoder({ codecs: [isoDate] }))).toEqual({
      __type__: 'custom',
      codec: 'pandas-ts',
      v: 5,
    });
  });

  it('does not offer primitives to codecs', () => {
    const test = vi.fn(() => true);
    const greedy: PyCodec = { name: 'greedy', test: test as never, encode: () => 1, decode: (v) => v };
    expect(encode([1, 'a', null, true, 2n], new Encoder({ codecs: [greedy] }))).toEqual({
      __type__: 'custom',
      codec: 'greedy',
      v: 1,
    });
    expect(test).toHaveBeenCalledTimes(1);
  });

  it('treats a codec without encode as decode-only', () => {
    const decodeOnly: PyCodec<Money> = { name: 'money', test: money.test, decode: money.decode };
    const error = caught(() => encode(new Money(1n, 'EUR'), new Encoder({ codecs: [decodeOnly] })));
    expect(error.message).toContain('an instance of Money');
  });

  it('reports a codec that throws, with the cause and the path', () => {
    const boom = new Error('boom');
    const broken: PyCodec<Money> = {
      ...money,
      encode: () => {
        throw boom;
      },
    };
    const error = caught(() =>
      new Encoder({ codecs: [broken] }).value([new Money(1n, 'X')], blobList(), 'args'),
    );
    expect(error.code).toBe('PY_UNENCODABLE');
    expect(error.message).toContain('codec "money" failed on the value at args[0]: boom');
    expect(error.cause).toBe(boom);
  });

  it('refuses a codec that returns the value it claimed', () => {
    const identity: PyCodec<Money> = { ...money, encode: (value) => value };
    const error = caught(() => encode(new Money(1n, 'X'), new Encoder({ codecs: [identity] })));
    expect(error.message).toContain('a circular reference');
  });

  it('refuses duplicate codec names and codecs without decode', () => {
    expect(caught(() => new Encoder({ codecs: [money, money] })).code).toBe('PY_INVALID_ARGUMENT');
    expect(caught(() => new Decoder({ codecs: [money, money], onRef: () => 0 })).code).toBe(
      'PY_INVALID_ARGUMENT',
    );
    expect(caught(() => new Encoder({ codecs: [{ name: 'x' } as unknown as PyCodec] })).code).toBe(
      'PY_INVALID_ARGUMENT',
    );
    expect(caught(() => new Encoder({ binaryThreshold: -1 })).code).toBe('PY_INVALID_ARGUMENT');
  });
});

describe('Encoder: refusals name the path and the kind of value', () => {
  class Foo {
    toString() {
      return 'SECRET';
    }
  }
  it.each([
    ['a function', () => encode({ x: [1, function named() {}] }), 'value.x[1]', 'a function (named)'],
    ['a symbol', () => encode([Symbol('s')]), 'value[0]', 'a symbol'],
    ['undefined at the top', () => encode(undefined), 'value', 'undefined'],
    ['undefined in an array', () => encode([1, undefined]), 'value[1]', 'undefined'],
    ['a sparse array', () => encode(Object.assign([1], { 2: 3 })), 'value[1]', 'undefined'],
    ['undefined in a Map', () => encode(new Map([['a', undefined]])), 'value.get("a")', 'undefined'],
    ['undefined in a Set', () => encode(new Set([undefined])), 'value.values()[0]', 'undefined'],
    ['a class instance', () => encode({ 'odd key': new Foo() }), 'value["odd key"]', 'an instance of Foo'],
    ['a promise', () => encode(Promise.resolve()), 'value', 'an instance of Promise'],
    [
      'a weird prototype',
      () => encode(Object.create({ a: 1 })),
      'value',
      'an object with a custom prototype',
    ],
    ['a tuple key', () => encode(new Map([[tuple(() => 1), 1]])), 'value.keys()[0][0]', 'a function'],
  ])('%s', (_label, run, path, what) => {
    const error = caught(run);
    expect(error).toBeInstanceOf(UnencodableError);
    expect((error as UnencodableError).path).toBe(path);
    expect(error.message).toContain(`${what} at ${path}`);
    expect(error.message).not.toContain('SECRET');
  });

  it('finds cycles through arrays, objects, Maps and Sets', () => {
    const object: Record<string, unknown> = { a: [] };
    (object.a as unknown[]).push(object);
    const map = new Map<string, unknown>();
    map.set('self', [map]);
    const set = new Set<unknown>();
    set.add({ inner: set });
    for (const [value, path] of [
      [object, 'value.a[0]'],
      [map, 'value.get("self")[0]'],
      [set, 'value.values()[0].inner'],
    ] as const) {
      const error = caught(() => encode(value));
      expect(error.message).toContain(`a circular reference at ${path}`);
    }
  });
});

describe('Encoder.encodeArgs', () => {
  it('encodes args and kwargs, omitting undefined kwargs and not escaping a __type__ name', () => {
    const encoder = new Encoder();
    expect(encoder.encodeArgs([1, tuple(2)], { __type__: 'x', skip: undefined, n: 2n }, blobList())).toEqual({
      args: [1, { __type__: 'tuple', items: [2] }],
      kwargs: { __type__: 'x', n: { __type__: 'int', v: '2' } },
    });
    expect(encoder.encodeArgs([], undefined, blobList())).toEqual({ args: [] });
  });

  it('names args[i] and kwargs.name in errors', () => {
    const encoder = new Encoder();
    expect(
      (caught(() => encoder.encodeArgs([0, [Symbol()]], undefined, blobList())) as UnencodableError).path,
    ).toBe('args[1][0]');
    expect(
      (caught(() => encoder.encodeArgs([], { key: [() => 1] }, blobList())) as UnencodableError).path,
    ).toBe('kwargs.key[0]');
  });
});

describe('Decoder', () => {
  const onRef = (wire: RefWire & { stream?: boolean }) => ({
    ...decodeRef(wire),
    stream: wire.stream === true,
  });
  const decoder = new Decoder({ codecs: [money], onRef });
  const decode = (wire: unknown, blob?: Uint8Array) => decoder.value(wire, blob, 'result');

  it('returns primitives and plain structures, decoding in place', () => {
    expect(decode(1.5)).toBe(1.5);
    expect(decode('x')).toBe('x');
    expect(decode(null)).toBeNull();
    const wire = JSON.parse('[1, {"a": [2, {"__type__": "int", "v": "3"}]}]') as unknown[];
    const value = decode(wire);
    expect(value).toBe(wire);
    expect(value).toEqual([1, { a: [2, 3n] }]);
  });

  it('decodes the number tags', () => {
    expect(decode({ __type__: 'int', v: '18446744073709551616' })).toBe(2n ** 64n);
    expect(decode({ __type__: 'int', v: '-5' })).toBe(-5n);
    expect(Object.is(decode({ __type__: 'float', v: '-0' }), -0)).toBe(true);
    expect(decode({ __type__: 'float', v: 'nan' })).toBeNaN();
    expect(decode({ __type__: 'float', v: 'inf' })).toBe(Number.POSITIVE_INFINITY);
    expect(decode({ __type__: 'float', v: '-inf' })).toBe(Number.NEGATIVE_INFINITY);
  });

  it('decodes tuples, sets, frozensets and dicts', () => {
    const value = decode({ __type__: 'tuple', items: [1, { __type__: 'tuple', items: [] }] }) as PyTuple;
    expect(isTuple(value)).toBe(true);
    expect(Object.isFrozen(value)).toBe(true);
    expect(isTuple(value[1])).toBe(true);
    expect(decode({ __type__: 'set', items: [1, 'a'] })).toEqual(new Set([1, 'a']));
    const frozen = decode({ __type__: 'frozenset', items: [1] });
    expect(PyFrozenSet.isInstance(frozen)).toBe(true);
    const map = decode({
      __type__: 'dict',
      items: [
        [{ __type__: 'tuple', items: [1, 2] }, 'pair'],
        [3, { __type__: 'int', v: '4' }],
      ],
    }) as Map<unknown, unknown>;
    expect(map).toBeInstanceOf(Map);
    const [first] = map.keys();
    expect(isTuple(first)).toBe(true);
    expect(map.get(3)).toBe(4n);
  });

  it('decodes bytes from base64 and as views of the blob region', () => {
    expect(decode({ __type__: 'bytes', b64: 'aGk=' })).toEqual(Buffer.from('hi'));
    const region = Buffer.from('..hello..');
    const bytes = decode({ __type__: 'bytes', blob: [2, 5] }, region) as Buffer;
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect(bytes.toString()).toBe('hello');
    expect(bytes.buffer).toBe(region.buffer);
  });

  it('decodes complex numbers (tagged parts too), datetimes and dates', () => {
    const complex = decode({ __type__: 'complex', re: 1, im: { __type__: 'float', v: 'inf' } }) as PyComplex;
    expect(PyComplex.isInstance(complex)).toBe(true);
    expect(complex.im).toBe(Number.POSITIVE_INFINITY);
    expect(decode({ __type__: 'datetime', iso: '2024-01-02T03:04:05+00:00' })).toEqual(
      new PyDateTime('2024-01-02T03:04:05+00:00'),
    );
    expect(decode({ __type__: 'date', iso: '2024-01-02' })).toEqual(new PyDate('2024-01-02'));
  });

  it('hands refs (stream flag included) to onRef, after validating them', () => {
    expect(decode({ ...refWire, stream: true })).toMatchObject({ id: 'r1', sessionId: 's1', stream: true });
    expect(decode([refWire])).toEqual([expect.objectContaining({ typeName: 'Pattern', stream: false })]);
    for (const [bad, reason] of [
      [{ ...refWire, id: '' }, 'missing_id'],
      [{ ...refWire, __schema__: 2 }, 'unknown_schema'],
      [{ ...refWire, type_name: 3 }, 'missing_type_name'],
      [{ ...refWire, library: 5 }, 'invalid_field'],
    ] as const) {
      let error: unknown;
      try {
        decode({ nested: bad });
      } catch (thrown) {
        error = thrown;
      }
      expect(error).toBeInstanceOf(InvalidRefError);
      expect((error as InvalidRefError).reason).toBe(reason);
    }
    expect(caught(() => decode({ ...refWire, stream: 'yes' })).code).toBe('PY_UNDECODABLE');
  });

  it('decodes custom values with the named codec', () => {
    const value = decode({
      __type__: 'custom',
      codec: 'money',
      v: { __type__: 'tuple', items: [{ __type__: 'int', v: '250' }, 'USD'] },
    });
    expect(value).toEqual(new Money(250n, 'USD'));
  });

  it('keeps an own __proto__ key a key when decoding in place', () => {
    const wire = JSON.parse('{"__proto__": {"__type__": "int", "v": "1"}}') as Record<string, unknown>;
    const value = decode(wire) as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(value, '__proto__')?.value).toBe(1n);
  });

  it.each([
    [{ __type__: 'nope' }, 'an unknown tag "nope" at result'],
    [{ __type__: 3 }, 'a "__type__" that is not a string at result'],
    [[{ a: { __type__: 'custom', codec: 'decimal', v: '1' } }], 'unknown codec "decimal"'],
    [{ __type__: 'int', v: '' }, 'an "int" tag'],
    [{ __type__: 'int', v: 12 }, 'an "int" tag'],
    [{ __type__: 'float', v: 'NaN' }, 'a "float" tag'],
    [{ __type__: 'tuple' }, 'without an "items" list'],
    [{ __type__: 'dict', items: [[1]] }, 'not a [key, value] pair at result.items[0]'],
    [{ __type__: 'bytes' }, 'without "b64" or "blob"'],
    [{ __type__: 'bytes', blob: [0, 1] }, 'a frame without a blob region'],
    [{ __type__: 'complex', re: 'x', im: 1 }, 'a "complex" tag'],
    [{ __type__: 'datetime', iso: 'now' }, 'a "datetime" tag'],
    [{ __type__: 'date', iso: 5 }, 'a "date" tag'],
    [{ x: [0, { __type__: 'set', items: [{ __type__: '?' }] }] }, 'at result.x[1][0]'],
  ])('refuses %j with PY_UNDECODABLE', (wire, text) => {
    const error = caught(() => decode(wire));
    expect(error.code).toBe('PY_UNDECODABLE');
    expect(error.message).toContain(text);
  });

  it('refuses a blob span outside the blob region', () => {
    for (const span of [
      [0, 6],
      [-1, 1],
      [1.5, 1],
      [5, 1],
      [0, 1, 2],
    ]) {
      const error = caught(() => decode({ __type__: 'bytes', blob: span }, new Uint8Array(5)));
      expect(error.code).toBe('PY_UNDECODABLE');
    }
  });

  it('wraps a codec that throws in PY_UNDECODABLE, with the cause', () => {
    const boom = new Error('bad decimal');
    const failing = new Decoder({
      codecs: [
        {
          name: 'decimal',
          decode: () => {
            throw boom;
          },
        },
      ],
      onRef,
    });
    const error = caught(() =>
      failing.value([{ __type__: 'custom', codec: 'decimal', v: 'x' }], undefined, 'result'),
    );
    expect(error.code).toBe('PY_UNDECODABLE');
    expect(error.message).toContain('codec "decimal" failed on the value at result[0]: bad decimal');
    expect(error.cause).toBe(boom);
  });

  it('refuses nesting deeper than 2000 values instead of overflowing the stack', () => {
    const deep = JSON.parse(`${'['.repeat(5000)}${']'.repeat(5000)}`) as unknown;
    const error = caught(() => decode(deep));
    expect(error.code).toBe('PY_UNDECODABLE');
    expect(error.message).toContain('nested deeper than 2000');
    const ok = JSON.parse(`${'['.repeat(1500)}${']'.repeat(1500)}`) as unknown;
    expect(() => decode(ok)).not.toThrow();
  });

  it('decodes a 100,000-float array in a few milliseconds at most (it is one typeof per item)', () => {
    const text = JSON.stringify(Array.from({ length: 100_000 }, (_, i) => i + 0.5));
    const runs: number[] = [];
    for (let i = 0; i < 7; i++) {
      const wire = JSON.parse(text) as unknown;
      const start = performance.now();
      decode(wire);
      runs.push(performance.now() - start);
    }
    runs.sort((a, b) => a - b);
    expect(runs[3]).toBeLessThan(10);
  });
});
