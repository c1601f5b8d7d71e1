import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRef, decodeRef, encodeRef, isRef, isRefWire } from './ref';
import { decodeValue, encodeValue } from './value-codec';

const ref = createRef({ id: 'r1', sessionId: 's1', typeName: 'Pattern', module: 're' });

describe('encodeValue / decodeValue', () => {
  it('keeps JSON, turns refs into tagged objects and back', () => {
    const value = { a: [1, 'two', null, true, { ref }], nested: { ref } };
    const encoded = encodeValue(value);
    expect(JSON.parse(JSON.stringify(encoded))).toEqual(encoded);
    expect((encoded as { nested: { ref: unknown } }).nested.ref).toEqual(encodeRef(ref));
    const decoded = decodeValue(JSON.parse(JSON.stringify(encoded))) as typeof value;
    expect(isRef(decoded.nested.ref)).toBe(true);
    expect(decoded.nested.ref).toEqual(ref);
  });

  it('never stringifies what it cannot encode: a typed error naming the path', () => {
    class Model {}
    const cases: [unknown, string][] = [
      [{ f: () => 1 }, '$.f'],
      [[Symbol('s')], '$[0]'],
      [{ n: 10n }, '$.n'],
      [{ u: undefined }, '$.u'],
      [{ x: Number.NaN }, '$.x'],
      [{ m: new Model() }, '$.m'],
      [{ d: new Date(0) }, '$.d'],
    ];
    for (const [value, path] of cases) {
      expect(() => encodeValue(value)).toThrow(expect.objectContaining({ code: 'REF_UNENCODABLE_VALUE' }));
      expect(() => encodeValue(value)).toThrow(path);
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeValue(cyclic)).toThrow(/cycle/);
  });

  it('rejects a malformed tagged ref instead of passing it on', () => {
    expect(() => decodeValue({ x: { __type__: 'ref', __schema__: 1 } })).toThrow(
      expect.objectContaining({ reason: 'missing_id' }),
    );
  });
});

const refArbitrary = fc
  .record({
    id: fc.string({ minLength: 1 }),
    sessionId: fc.string({ minLength: 1 }),
    typeName: fc.string({ minLength: 1 }),
    module: fc.string(),
    library: fc.option(fc.string(), { nil: undefined }),
    poolName: fc.option(fc.string(), { nil: undefined }),
  })
  .map((fields) => createRef(fields));

describe('properties', () => {
  it('decode(encode(ref)) round-trips, also through JSON text', () => {
    fc.assert(
      fc.property(refArbitrary, (value) => {
        expect(decodeRef(encodeRef(value))).toEqual(value);
        expect(decodeRef(JSON.parse(JSON.stringify(encodeRef(value))))).toEqual(value);
      }),
      { numRuns: 500 },
    );
  });

  it('arbitrary JSON never decodes into a ref unless it is tagged as one', () => {
    const countRefs = (value: unknown): number =>
      isRef(value)
        ? 1
        : typeof value === 'object' && value !== null
          ? Object.values(value).reduce<number>((sum, item) => sum + countRefs(item), 0)
          : 0;
    const countTags = (value: unknown): number =>
      isRefWire(value)
        ? 1
        : typeof value === 'object' && value !== null
          ? Object.values(value).reduce<number>((sum, item) => sum + countTags(item), 0)
          : 0;
    fc.assert(
      fc.property(fc.jsonValue(), (json) => {
        let decoded: unknown;
        try {
          decoded = decodeValue(json);
        } catch (error) {
          // Only a tagged, malformed ref may fail to decode.
          expect(countTags(json)).toBeGreaterThan(0);
          expect((error as { code?: string }).code).toBe('REF_INVALID');
          return;
        }
        expect(countRefs(decoded)).toBe(countTags(json));
      }),
      { numRuns: 1000 },
    );
  });

  it('values with refs embedded survive encode -> JSON -> decode', () => {
    const withRefs = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.jsonValue({ maxDepth: 1 }),
        refArbitrary,
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(
          fc.string().filter((key) => key !== '__type__' && key !== '__proto__'),
          tie('node'),
          {
            maxKeys: 4,
          },
        ),
      ),
    })).node;
    fc.assert(
      fc.property(withRefs, (value) => {
        const wireText = JSON.stringify(encodeValue(value));
        const roundTrip = decodeValue(JSON.parse(wireText));
        // Same wire form again (JSON text normalises -0 to 0, so compare as text).
        expect(JSON.stringify(encodeValue(roundTrip))).toBe(wireText);
      }),
      { numRuns: 300 },
    );
  });
});
