import { inspect } from 'node:util';
import { isRef, type RefNotFoundError } from '@trestle/ref-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PyCodec } from './codec';
import { PythonError } from './errors';
import { isPyObject, kw } from './proxy';
import { eventually, fixturesDir, hasPython, testBridge } from './test-support/bridge';
import { testPyCodec } from './testing';

/** Module proxies are dynamic: with `noUncheckedIndexedAccess` every path is possibly undefined. */
// biome-ignore lint/suspicious/noExplicitAny: a dynamic proxy, typed loosely in this test only
type Dyn = any;

describe.runIf(hasPython())('proxy sugar: mod()', () => {
  const py = testBridge({ finalizationBatchMs: 10 });
  const mod = (name: string): Dyn => py.module(name);
  beforeAll(() => py.ready());
  afterAll(() => py.close());

  it('calls functions, methods and reads attributes', async () => {
    const re = mod('re');
    const math = mod('math');
    expect(await math.sqrt(16)).toBe(4);
    expect(await math.pi).toBeCloseTo(Math.PI);
    const pattern = (await re.compile('\\d+')) as Dyn;
    expect(isPyObject(pattern)).toBe(true);
    expect(isRef(pattern.$ref)).toBe(true);
    expect(await pattern.pattern).toBe('\\d+');
    const match = (await pattern.match('123abc')) as Dyn;
    expect(await match.group()).toBe('123');
    expect(await mod('os').path.join('a', 'b')).toBe('a/b');
    expect(await re.sub('\\d', '#', 'a1b2', kw({ count: 1 }))).toBe('a#b2');
    expect(inspect(pattern)).toMatch(/^<ref re\.Pattern #\w{4} session s_\w+>$/);
    expect(inspect(re)).toBe('<module re>');
  });

  it('proxies are accepted wherever refs are, and can be iterated', async () => {
    const pattern = (await mod('re').compile('\\d')) as Dyn;
    expect(await py.method(pattern as never, 'sub', ['#', 'a1'])).toBe('a#');
    const found: unknown[] = [];
    for await (const match of (await pattern.finditer('a1b2')) as Dyn) {
      found.push(await (match as Dyn).group());
    }
    expect(found).toEqual(['1', '2']);
  });

  it('await using releases the ref; Python errors keep their type and traceback', async () => {
    let ref: unknown;
    {
      await using pattern = (await mod('re').compile('x')) as Dyn;
      ref = pattern.$ref;
    }
    const gone = await py.attr(ref as never, 'pattern').catch((e: unknown) => e);
    expect((gone as RefNotFoundError).reason).toBe('released');
    const error = await mod('trestle_fixtures')
      .raise_value_error('bad input')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PythonError);
    expect((error as PythonError).message).toContain('ValueError: bad input');
    expect((error as PythonError).traceback).toContain('in inner');
    expect((error as PythonError).traceback).not.toContain('trestle_bridge');
  });

  it('a forgotten proxy is released by the FinalizationRegistry backstop (batched)', async () => {
    if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');
    const before = py.stats().refs;
    for (let index = 0; index < 50; index++) await mod('re').compile(`p${index}`);
    expect(py.stats().refs).toBeGreaterThanOrEqual(before + 50);
    const released = await eventually(() => {
      globalThis.gc?.();
      return py.stats().finalized >= 50 && py.stats().refs <= before;
    }, 5_000);
    expect(released).toBe(true);
  });
});

class Dec {
  constructor(readonly text: string) {}
}

const decimalCodec: PyCodec<Dec> = {
  name: 'decimal',
  python: 'trestle_codecs:CODEC',
  test: (value): value is Dec => value instanceof Dec,
  encode: (value) => value.text,
  decode: (value) => new Dec(value as string),
};

describe.runIf(hasPython())('custom codecs on both sides', () => {
  it('decimal.Decimal travels as exact text', async () => {
    const py = testBridge({ codecs: [decimalCodec] });
    try {
      const made = await py.call('decimal', 'Decimal', ['1.10']);
      expect(made).toBeInstanceOf(Dec);
      expect((made as Dec).text).toBe('1.10');
      const sum = await py.call('operator', 'add', [new Dec('1.1'), new Dec('2.2')]);
      expect((sum as Dec).text).toBe('3.3');
      expect(await py.call('trestle_fixtures', 'type_of', [new Dec('1')])).toBe('Decimal');
    } finally {
      await py.close();
    }
  });

  it('without the codec, a Decimal is a ref and a Dec is refused with its path', async () => {
    const py = testBridge();
    try {
      expect(isRef(await py.call('decimal', 'Decimal', ['1.10']))).toBe(true);
      const error = await py
        .call('trestle_fixtures', 'echo', [{ x: [new Dec('1')] }])
        .catch((e: unknown) => e);
      expect((error as { code: string }).code).toBe('PY_UNENCODABLE');
      expect((error as Error).message).toContain('args[0].x[0]');
    } finally {
      await py.close();
    }
  });
});

describe.runIf(hasPython())('conformance suite on the test codec', () => {
  testPyCodec(decimalCodec, {
    samples: [new Dec('1.10'), new Dec('-0'), new Dec('1E+3')],
    python: { env: { PYTHONPATH: fixturesDir }, onOutput: () => {} },
  });
});
