import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { dateToIso, isTuple, PyComplex, PyDate, PyDateTime, PyFrozenSet, PyTuple, tuple } from './values';

describe('PyTuple', () => {
  it('is a frozen array built from its items', () => {
    const point = tuple(1, 2);
    expect(Array.isArray(point)).toBe(true);
    expect(point).toBeInstanceOf(PyTuple);
    expect([...point]).toEqual([1, 2]);
    expect(point.length).toBe(2);
    expect(Object.isFrozen(point)).toBe(true);
    expect(() => (point as unknown as number[]).push(3)).toThrow(TypeError);
    expect(() => {
      (point as unknown as number[])[0] = 9;
    }).toThrow(TypeError);
    expect(() => point.sort()).toThrow(TypeError);
    expect(point[0]).toBe(1);
  });

  it('takes one numeric item as a 1-tuple, not a length', () => {
    const single = new PyTuple([5]);
    expect(single.length).toBe(1);
    expect(single[0]).toBe(5);
    expect(tuple(5).length).toBe(1);
    expect(() => new PyTuple(5 as unknown as number[])).toThrow(TypeError);
  });

  it('builds new arrays as plain arrays (species is Array)', () => {
    const t = tuple(1, 2, 3);
    for (const derived of [t.map((x) => x * 2), t.filter((x) => x > 1), t.slice(1), t.concat([4])]) {
      expect(Array.isArray(derived)).toBe(true);
      expect(isTuple(derived)).toBe(false);
      expect(Object.getPrototypeOf(derived)).toBe(Array.prototype);
      expect(Object.isFrozen(derived)).toBe(false);
    }
    expect(t.map((x) => x * 2)).toEqual([2, 4, 6]);
  });

  it('has from and of that build tuples', () => {
    const fromSet = PyTuple.from(new Set(['a', 'b']));
    expect(isTuple(fromSet)).toBe(true);
    expect([...fromSet]).toEqual(['a', 'b']);
    const mapped = PyTuple.from([1, 2], (x) => x + 1);
    expect(isTuple(mapped)).toBe(true);
    expect([...mapped]).toEqual([2, 3]);
    const of = PyTuple.of(7);
    expect(isTuple(of)).toBe(true);
    expect([...of]).toEqual([7]);
  });

  it('is recognized across duplicate installs by its Symbol.for brand', () => {
    class OtherInstallTuple extends Array {}
    Object.defineProperty(OtherInstallTuple.prototype, Symbol.for('trestle.python-adapter.PyTuple'), {
      value: true,
    });
    const foreign = new OtherInstallTuple();
    expect(foreign).not.toBeInstanceOf(PyTuple);
    expect(PyTuple.isInstance(foreign)).toBe(true);
    expect(isTuple(foreign)).toBe(true);
    expect(isTuple([1, 2])).toBe(false);
    expect(isTuple(null)).toBe(false);
  });

  it('renders like Python', () => {
    expect(inspect(tuple(1, 2))).toBe('(1, 2)');
    expect(inspect(tuple(1))).toBe('(1,)');
    expect(inspect(tuple())).toBe('()');
    expect(inspect(tuple('a', tuple(1, 2)))).toBe("('a', (1, 2))");
    expect(JSON.stringify(tuple(1, 'x'))).toBe('[1,"x"]');
  });
});

describe('PyFrozenSet', () => {
  it('is a Set that cannot change', () => {
    const set = new PyFrozenSet([1, 2, 2]);
    expect(set).toBeInstanceOf(Set);
    expect(set.size).toBe(2);
    expect(set.has(1)).toBe(true);
    expect([...set]).toEqual([1, 2]);
    expect(() => set.add(3)).toThrow(TypeError);
    expect(() => set.delete(1)).toThrow(TypeError);
    expect(() => set.clear()).toThrow(TypeError);
    expect(Object.isFrozen(set)).toBe(true);
  });

  it('can be empty', () => {
    expect(new PyFrozenSet().size).toBe(0);
    expect(new PyFrozenSet(null).size).toBe(0);
  });

  it('is recognized by its brand', () => {
    expect(PyFrozenSet.isInstance(new PyFrozenSet([1]))).toBe(true);
    expect(PyFrozenSet.isInstance(new Set([1]))).toBe(false);
  });

  it('renders like Python', () => {
    expect(inspect(new PyFrozenSet([1, 'a']))).toBe("frozenset({1, 'a'})");
    expect(inspect(new PyFrozenSet())).toBe('frozenset()');
  });
});

describe('PyComplex', () => {
  it.each([
    [1, 2, '(1+2j)'],
    [1, -2, '(1-2j)'],
    [0, 2, '2j'],
    [0, -2, '-2j'],
    [-0, 1, '(-0+1j)'],
    [1, -0, '(1-0j)'],
    [1.5, 0, '(1.5+0j)'],
    [Number.NaN, Number.POSITIVE_INFINITY, '(nan+infj)'],
    [1, Number.NEGATIVE_INFINITY, '(1-infj)'],
    [1e16, 1.5e-5, '(1e+16+1.5e-05j)'],
    [1234567890123456, 0.0001, '(1234567890123456+0.0001j)'],
  ])('complex(%s, %s) reads %s', (re, im, text) => {
    const value = new PyComplex(re, im);
    expect(value.toString()).toBe(text);
    expect(inspect(value)).toBe(text);
  });

  it('keeps its parts, frozen', () => {
    const value = new PyComplex(-0, Number.NaN);
    expect(Object.is(value.re, -0)).toBe(true);
    expect(value.im).toBeNaN();
    expect(Object.isFrozen(value)).toBe(true);
    expect(PyComplex.isInstance(value)).toBe(true);
    expect(PyComplex.isInstance({ re: 1, im: 2 })).toBe(false);
    expect(() => new PyComplex('1' as unknown as number, 2)).toThrow(TypeError);
  });
});

describe('PyDateTime', () => {
  it('converts aware datetimes to the instant', () => {
    expect(new PyDateTime('2024-01-02T03:04:05.123456+01:00').toDate().toISOString()).toBe(
      '2024-01-02T02:04:05.123Z',
    );
    expect(new PyDateTime('2024-01-02T03:04:05-05:30').toDate().toISOString()).toBe(
      '2024-01-02T08:34:05.000Z',
    );
    expect(new PyDateTime('2024-01-02T03:04:05Z').toDate().toISOString()).toBe('2024-01-02T03:04:05.000Z');
    expect(new PyDateTime('2024-01-02T03:04:05+00:00:30').toDate().toISOString()).toBe(
      '2024-01-02T03:03:35.000Z',
    );
  });

  it('treats naive datetimes as UTC', () => {
    const naive = new PyDateTime('2024-06-01T12:00:00');
    expect(naive.naive).toBe(true);
    expect(naive.toDate().toISOString()).toBe('2024-06-01T12:00:00.000Z');
    expect(new PyDateTime('2024-06-01T12:00:00+00:00').naive).toBe(false);
  });

  it('truncates microseconds and handles years before 100', () => {
    expect(new PyDateTime('2024-01-02T03:04:05.999999').toDate().getUTCMilliseconds()).toBe(999);
    expect(new PyDateTime('2024-01-02T03:04:05.5').toDate().getUTCMilliseconds()).toBe(500);
    expect(new PyDateTime('0050-03-04T00:00:00').toDate().getUTCFullYear()).toBe(50);
  });

  it('refuses text that is not an ISO datetime', () => {
    for (const bad of ['2024-01-02', 'yesterday', '2024-01-02T03:04:05+0100', '', 42]) {
      expect(() => new PyDateTime(bad as string)).toThrow(TypeError);
    }
  });

  it('round-trips a Date through fromDate', () => {
    const date = new Date('2024-02-29T23:59:59.250Z');
    const value = PyDateTime.fromDate(date);
    expect(value.iso).toBe('2024-02-29T23:59:59.250+00:00');
    expect(value.toDate().getTime()).toBe(date.getTime());
    expect(JSON.stringify({ at: value })).toBe('{"at":"2024-02-29T23:59:59.250+00:00"}');
    expect(String(value)).toBe(value.iso);
  });

  it('renders like Python and is recognized by its brand', () => {
    const value = new PyDateTime('2024-01-02T03:04:05+00:00');
    expect(inspect(value)).toBe("datetime('2024-01-02T03:04:05+00:00')");
    expect(PyDateTime.isInstance(value)).toBe(true);
    expect(PyDateTime.isInstance(new Date())).toBe(false);
  });
});

describe('PyDate', () => {
  it('is midnight UTC of the day', () => {
    const value = new PyDate('2024-01-02');
    expect(value.toDate().toISOString()).toBe('2024-01-02T00:00:00.000Z');
    expect(new PyDate('0007-01-01').toDate().getUTCFullYear()).toBe(7);
    expect(JSON.stringify(value)).toBe('"2024-01-02"');
  });

  it('refuses other text, renders like Python', () => {
    expect(() => new PyDate('2024-01-02T00:00:00')).toThrow(TypeError);
    expect(() => new PyDate('2024-1-2')).toThrow(TypeError);
    expect(inspect(new PyDate('2024-01-02'))).toBe("date('2024-01-02')");
    expect(PyDate.isInstance(new PyDate('2024-01-02'))).toBe(true);
    expect(PyDate.isInstance(new PyDateTime('2024-01-02T00:00:00'))).toBe(false);
  });
});

describe('dateToIso', () => {
  it('writes UTC with an explicit +00:00 offset', () => {
    expect(dateToIso(new Date(0))).toBe('1970-01-01T00:00:00.000+00:00');
  });

  it('refuses invalid dates and years Python cannot hold', () => {
    expect(() => dateToIso(new Date(Number.NaN))).toThrow(RangeError);
    expect(() => dateToIso(new Date('+010000-01-01T00:00:00Z'))).toThrow(RangeError);
    expect(() => dateToIso(new Date('0000-12-31T00:00:00Z'))).toThrow(RangeError);
    expect(dateToIso(new Date('0001-01-01T00:00:00Z'))).toBe('0001-01-01T00:00:00.000+00:00');
  });
});
