import type { Ref } from '@trestle/ref-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PythonError } from './errors';
import { hasPython, testBridge } from './test-support/bridge';

describe.runIf(hasPython())('streams: generators and iterators as AsyncIterable', () => {
  const py = testBridge({ chunkSize: 4 });
  beforeAll(() => py.ready());
  afterAll(() => py.close());

  it('a generator that raises after 3 items: 3 items, then a PythonError', async () => {
    const seen: unknown[] = [];
    let caught: unknown;
    try {
      for await (const item of py.stream('trestle_fixtures', 'gen_raise_after', [3])) seen.push(item);
    } catch (error) {
      caught = error;
    }
    expect(seen).toEqual([0, 1, 2]);
    expect(caught).toBeInstanceOf(PythonError);
    expect((caught as PythonError).type).toBe('ValueError');
    expect((caught as PythonError).pythonMessage).toBe('boom after 3 items');
    expect((caught as PythonError).traceback).toContain('gen_raise_after');
  });

  it('break after 1 item closes the generator in Python (its finally runs)', async () => {
    for await (const item of py.stream('trestle_fixtures', 'counting', [1000], { tag: 'broken' })) {
      expect(item).toBe(0);
      break;
    }
    expect(await py.call('trestle_fixtures', 'closed')).toContain('broken');
  });

  it('many chunks in order, and iterating a ref (any iterable)', async () => {
    const all: unknown[] = [];
    for await (const item of py.stream('builtins', 'range', [0, 50])) all.push(item);
    expect(all).toEqual(Array.from({ length: 50 }, (_, index) => index));
    const list = await py.call<Ref>('collections', 'deque', [[1, 2, 3]]);
    const items: unknown[] = [];
    for await (const item of py.stream(list)) items.push(item);
    expect(items).toEqual([1, 2, 3]);
  });

  it('async generators are awaited in the worker', async () => {
    const items: unknown[] = [];
    for await (const item of py.stream('trestle_fixtures', 'agen', [5])) items.push(item);
    expect(items).toEqual([0, 10, 20, 30, 40]);
  });

  it('objects yielded by a generator are refs in the session', async () => {
    const matches: Ref[] = [];
    const pattern = await py.call<Ref>('re', 'compile', ['\\d']);
    const iterator = await py.method<Ref>(pattern, 'finditer', ['a1b2c3']);
    for await (const match of py.stream<Ref>(iterator)) matches.push(match);
    expect(matches).toHaveLength(3);
    expect(await py.method(matches[2] as Ref, 'group', [])).toBe('3');
  });

  it('close() before the end closes it; a second close is a no-op', async () => {
    const stream = py.stream('trestle_fixtures', 'counting', [100], { tag: 'closed-early' });
    expect(await stream.next()).toEqual({ value: 0, done: false });
    await stream.close();
    await stream.close();
    expect(await stream.next()).toEqual({ value: undefined, done: true });
    expect(await py.call('trestle_fixtures', 'closed')).toContain('closed-early');
  });
});
