import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPython, testBridge } from './test-support/bridge';
import { PyComplex, PyDate, type PyDateTime, PyFrozenSet, PyTuple, tuple } from './values';

// Values go to a real python3 and come back through `echo`.
describe.runIf(hasPython())('edge values round-trip through Python', () => {
  const py = testBridge();
  beforeAll(() => py.ready());
  afterAll(() => py.close());
  const echo = (value: unknown) => py.call('trestle_fixtures', 'echo', [value]);
  const typeOf = (value: unknown) => py.call('trestle_fixtures', 'type_of', [value]);

  it('2**64 comes back as a bigint, and bigints go as ints', async () => {
    expect(await py.call('operator', 'pow', [2, 64])).toBe(2n ** 64n);
    expect(await echo(-(2n ** 70n))).toBe(-(2n ** 70n));
    expect(await py.call('operator', 'add', [2n ** 64n, 1])).toBe(2n ** 64n + 1n);
    expect(await echo(2 ** 53 - 1)).toBe(2 ** 53 - 1);
    expect(await typeOf(5n)).toBe('int');
  });

  it('-0.0, NaN and infinities keep their identity', async () => {
    expect(Object.is(await echo(-0), -0)).toBe(true);
    expect(Object.is(await py.call('operator', 'neg', [0.0]), 0)).toBe(true);
    expect(Number.isNaN(await py.call('builtins', 'float', ['nan']))).toBe(true);
    expect(await py.call('builtins', 'float', ['-inf'])).toBe(Number.NEGATIVE_INFINITY);
    expect(await echo(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(await typeOf(Number.NaN)).toBe('float');
    expect(await typeOf(1.5)).toBe('float');
    expect(await typeOf(2)).toBe('int');
  });

  it('bytes with every byte value, small (base64) and large (binary frame)', async () => {
    const all = Uint8Array.from({ length: 256 }, (_, index) => index);
    const small = (await echo(all)) as Uint8Array;
    expect(Buffer.from(small).equals(Buffer.from(all))).toBe(true);
    const made = (await py.call('trestle_fixtures', 'all_bytes', [64])) as Uint8Array;
    expect(made.length).toBe(256 * 64);
    expect(made[255]).toBe(255);
    expect(await typeOf(all)).toBe('bytes');
  });

  it('a 10 MB bytes value goes both ways intact', async () => {
    const big = Buffer.alloc(10 * 1024 * 1024);
    for (let index = 0; index < big.length; index += 4096) big[index] = index % 251;
    const back = (await echo(big)) as Uint8Array;
    expect(back.length).toBe(big.length);
    expect(Buffer.from(back).equals(big)).toBe(true);
    expect(await py.call('builtins', 'len', [big])).toBe(10 * 1024 * 1024);
  });

  it('nested tuples, sets, frozensets, complex, dates', async () => {
    const nested = tuple(1, tuple(2, tuple(3, 'x')), [tuple()]);
    const back = (await echo(nested)) as PyTuple;
    expect(PyTuple.isInstance(back)).toBe(true);
    expect(back).toEqual(nested);
    expect(PyTuple.isInstance((back[1] as PyTuple)[1])).toBe(true);
    expect(await typeOf(nested)).toBe('tuple');
    expect(await echo(new Set([1, 'a']))).toEqual(new Set([1, 'a']));
    const frozen = await py.call('builtins', 'frozenset', [[1, 2]]);
    expect(PyFrozenSet.isInstance(frozen)).toBe(true);
    const complex = (await py.call('builtins', 'complex', [1, -2])) as PyComplex;
    expect(PyComplex.isInstance(complex)).toBe(true);
    expect([complex.re, complex.im]).toEqual([1, -2]);
    const date = (await py.call('datetime', 'date', [2024, 2, 29])) as PyDate;
    expect(PyDate.isInstance(date)).toBe(true);
    expect(date.iso).toBe('2024-02-29');
    const stamp = (await py.call('datetime', 'datetime', [2024, 1, 2, 3, 4, 5, 123456])) as PyDateTime;
    expect(stamp.iso).toBe('2024-01-02T03:04:05.123456');
    expect(((await echo(stamp)) as PyDateTime).iso).toBe(stamp.iso);
    expect(await typeOf(new Date(0))).toBe('datetime');
  });

  it('dicts with tuple keys come back as Maps and go back as dicts', async () => {
    const made = (await py.call('builtins', 'dict', [
      [
        [tuple(1, 2), 'a'],
        [tuple(3, 4), 'b'],
      ],
    ])) as Map<unknown, unknown>;
    expect(made).toBeInstanceOf(Map);
    const keys = [...made.keys()] as PyTuple[];
    expect(keys.map((key) => [...key])).toEqual([
      [1, 2],
      [3, 4],
    ]);
    const again = (await echo(made)) as Map<unknown, unknown>;
    expect([...again.values()]).toEqual(['a', 'b']);
    expect(await py.call('builtins', 'len', [made])).toBe(2);
    // A str-keyed dict with a "__type__" key is escaped, not mistaken for a tag.
    expect(await echo({ __type__: 'ref', id: 1 })).toEqual(
      new Map<unknown, unknown>([
        ['__type__', 'ref'],
        ['id', 1],
      ]),
    );
  });

  it('unknown objects become refs: never strings, never undefined', async () => {
    for (const [module, fn, args] of [
      ['re', 'compile', ['x']],
      ['collections', 'OrderedDict', []],
      ['builtins', 'object', []],
      ['io', 'StringIO', ['hello']],
    ] as const) {
      const value = await py.call(module, fn, [...args]);
      expect(typeof value).toBe('object');
      expect(value).toHaveProperty('typeName');
    }
    // An IntEnum is an int subclass: a ref too, so no type information is lost.
    const flag = await py.attr('re', 'IGNORECASE');
    expect(flag).toHaveProperty('typeName', 'RegexFlag');
  });
});
