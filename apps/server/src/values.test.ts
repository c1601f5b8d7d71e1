import { PyTuple, tuple } from '@trestle/python-adapter';
import { createRef, encodeRef, isRef } from '@trestle/ref-registry';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RpcMethodError } from './contracts';
import { collectRefs, decodeInbound, decodeRefParam, encodeOutbound } from './values';

const wire = (value: unknown): unknown => JSON.parse(JSON.stringify(value));
const roundTrip = (host: unknown): unknown => decodeInbound(wire(encodeOutbound(host)), 'value').value;

const refWire = {
  __type__: 'ref',
  __schema__: 1,
  id: 'r_1',
  session_id: 's_1',
  type_name: 'Pattern',
  python_module: 're',
};

describe('values on the JSON-RPC wire', () => {
  it('decodes tagged values into host values', () => {
    const { value, refs } = decodeInbound(
      wire([
        { __type__: 'int', v: '18446744073709551616' },
        { __type__: 'float', v: 'nan' },
        { __type__: 'float', v: '-0' },
        { __type__: 'float', v: '-inf' },
        { __type__: 'bytes', b64: Buffer.from('hi\u0000').toString('base64') },
        { __type__: 'tuple', items: [1, 'a'] },
        { __type__: 'set', items: [1, 2] },
        { __type__: 'dict', items: [[1, 'one']] },
        refWire,
      ]),
      'args',
    );
    const list = value as unknown[];
    expect(list[0]).toBe(18446744073709551616n);
    expect(list[1]).toBeNaN();
    expect(Object.is(list[2], -0)).toBe(true);
    expect(list[3]).toBe(Number.NEGATIVE_INFINITY);
    expect(Buffer.isBuffer(list[4]) && (list[4] as Buffer).toString()).toBe('hi\u0000');
    expect(list[5]).toBeInstanceOf(PyTuple);
    expect([...(list[5] as PyTuple<unknown>)]).toEqual([1, 'a']);
    expect(list[6]).toEqual(new Set([1, 2]));
    expect(list[7]).toEqual(new Map([[1, 'one']]));
    expect(isRef(list[8])).toBe(true);
    expect(refs).toHaveLength(1);
    expect(refs[0]).toMatchObject({ id: 'r_1', sessionId: 's_1', typeName: 'Pattern', module: 're' });
  });

  it('encodes host values as tagged JSON, bytes always as base64, refs in their wire form', () => {
    const ref = createRef({ id: 'r_9', sessionId: 's_9', typeName: 'TextIOWrapper', module: '_io' });
    const big = Buffer.alloc(10_000, 7);
    const out = wire(
      encodeOutbound({
        n: 2n ** 70n,
        nan: Number.NaN,
        inf: Number.POSITIVE_INFINITY,
        t: tuple(1, 2),
        b: big,
        r: ref,
        m: new Map<unknown, unknown>([[1, 'x']]),
      }),
    ) as Record<string, Record<string, unknown>>;
    expect(out.n).toEqual({ __type__: 'int', v: (2n ** 70n).toString() });
    expect(out.nan).toEqual({ __type__: 'float', v: 'nan' });
    expect(out.inf).toEqual({ __type__: 'float', v: 'inf' });
    expect(out.t).toEqual({ __type__: 'tuple', items: [1, 2] });
    expect(out.b?.b64).toBe(big.toString('base64'));
    expect(out.r).toEqual(encodeRef(ref));
    expect(out.m).toEqual({ __type__: 'dict', items: [[1, 'x']] });
  });

  it('round-trips values both ways (property)', () => {
    const leaf = fc.oneof(
      fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
      fc.double(),
      fc.string(),
      fc.boolean(),
      fc.constant(null),
      fc.uint8Array({ maxLength: 32 }).map((bytes) => Buffer.from(bytes)),
    );
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, leaf, tie('list'), tie('tuple'), tie('object')),
      list: fc.array(tie('node'), { maxLength: 4 }),
      tuple: fc.array(tie('node'), { maxLength: 4 }).map((items) => new PyTuple(items)),
      object: fc.dictionary(
        fc.string().filter((key) => key !== '__type__' && key !== '__proto__'),
        tie('node'),
        { maxKeys: 4 },
      ),
    })).node;
    fc.assert(
      fc.property(value, (host) => {
        expect(roundTrip(host)).toEqual(host);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a tag that does not decode with INVALID_PARAMS naming the path', () => {
    const error = (() => {
      try {
        decodeInbound(wire([1, { x: { __type__: 'int', v: '1.5' } }]), 'args');
      } catch (caught) {
        return caught as RpcMethodError;
      }
      throw new Error('no error');
    })();
    expect(error).toBeInstanceOf(RpcMethodError);
    expect(error.code).toBe('INVALID_PARAMS');
    expect(error.rpcCode).toBe(-32602);
    expect(error.message).toContain('args[1].x');
    expect(error.data).toEqual({ path: 'args[1].x' });
    expect(() => decodeInbound(wire({ a: { __type__: 'nope' } }), 'kwargs')).toThrow(
      /unknown tag "nope" at kwargs.a/,
    );
  });

  it('refuses a malformed ref with REF_INVALID naming the path and the reason', () => {
    const bad = { __type__: 'ref', __schema__: 1, id: 'r_2', type_name: 'X', python_module: 'm' };
    try {
      decodeInbound(wire([refWire, [1, 2, bad]]), 'args');
      throw new Error('no error');
    } catch (error) {
      expect(error).toBeInstanceOf(RpcMethodError);
      expect((error as RpcMethodError).code).toBe('REF_INVALID');
      expect((error as RpcMethodError).data).toEqual({ path: 'args[1][2]', reason: 'missing_session' });
    }
    expect(() => decodeRefParam({ __type__: 'ref', __schema__: 2, id: 'x', session_id: 's' }, 'ref')).toThrow(
      /ref:.*__schema__/,
    );
  });

  it('collects refs nested in lists, tuples, sets, maps and objects', () => {
    const a = createRef({ id: 'r_a', sessionId: 's', typeName: 'A', module: 'm' });
    const b = createRef({ id: 'r_b', sessionId: 's', typeName: 'B', module: 'm' });
    const c = createRef({ id: 'r_c', sessionId: 's', typeName: 'C', module: 'm' });
    const found = collectRefs([tuple(a), { x: new Set([b]) }, new Map([[1, c]]), Buffer.from('x'), 3]);
    expect(found.map((ref) => ref.id)).toEqual(['r_a', 'r_b', 'r_c']);
    expect(collectRefs([a, b, c], 2)).toHaveLength(2);
  });
});
