import { describe, expect, it } from 'vitest';
import { type Completer, createCompleter, filterNames } from './completer';
import { createPy, refProxy } from './proxies';
import { createRuntime } from './runtime';
import { fakeBackend, fakeRef } from './test-support/fake-backend';

const complete = (completer: Completer, line: string) =>
  new Promise<[string[], string]>((resolve, reject) =>
    completer(line, (error, result) => (error ? reject(error) : resolve(result as [string[], string]))),
  );

describe('completer', () => {
  const ref = fakeRef();
  const backend = fakeBackend((request) =>
    request.op === 'dir'
      ? request.target === 'math'
        ? ['pi', 'sqrt', '__name__']
        : ['__class__', '_private', 'match', 'search', 'sub']
      : null,
  );
  const runtime = createRuntime(backend);
  const scope: Record<string, unknown> = { p: refProxy(runtime, ref), py: createPy(runtime), n: 1 };
  const fallbackLines: string[] = [];
  const completer = createCompleter({
    runtime,
    evaluate: (expression) =>
      expression.split('.').reduce<unknown>((value, name) => {
        if (value === undefined) throw new ReferenceError(name);
        return (value as Record<string, unknown>)[name];
      }, scope),
    fallback: (line, callback) => {
      fallbackLines.push(line);
      callback(null, [['fallback'], line]);
    },
  });

  it('lists the public Python names of a ref after a dot, from dir(), cached', async () => {
    expect(await complete(completer, 'p.')).toEqual([['match', 'search', 'sub'], '']);
    expect(await complete(completer, 'await p.s')).toEqual([['search', 'sub'], 's']);
    expect(await complete(completer, 'x = p._')).toEqual([['__class__', '_private'], '_']);
    expect(await complete(completer, 'p.$r')).toEqual([['$ref', '$release'], '$r']);
    expect(backend.requests.filter((request) => request.op === 'dir')).toHaveLength(1);
  });

  it('lists module names for module proxies and the helpers of py', async () => {
    expect(await complete(completer, 'py.math.s')).toEqual([['sqrt'], 's']);
    expect((await complete(completer, 'py.'))[0]).toEqual(
      expect.arrayContaining(['dir', 'import', 'kw', 'math']),
    );
  });

  it('leaves everything else to node:repl', async () => {
    expect(await complete(completer, 'n.to')).toEqual([['fallback'], 'n.to']);
    expect(await complete(completer, 'unknown.x')).toEqual([['fallback'], 'unknown.x']);
    expect(await complete(completer, 'pro')).toEqual([['fallback'], 'pro']);
    expect(fallbackLines).toEqual(['n.to', 'unknown.x', 'pro']);
  });

  it('answers no names (and does not throw) when dir() fails', async () => {
    const failing = fakeBackend(() => {
      throw new Error('boom');
    });
    const failingRuntime = createRuntime(failing);
    const c = createCompleter({
      runtime: failingRuntime,
      evaluate: () => refProxy(failingRuntime, fakeRef()),
      fallback: (_line, callback) => callback(null, [[], '']),
    });
    expect(await complete(c, 'p.m')).toEqual([[], 'm']);
  });

  it('filters names by prefix and hides private and helper names unless asked', () => {
    expect(filterNames(['b', 'a', '_c', '$d', 'a'], '')).toEqual(['a', 'b']);
    expect(filterNames(['ab', 'ac', 'b'], 'a')).toEqual(['ab', 'ac']);
    expect(filterNames(['_a', '__b', 'c'], '__')).toEqual(['__b']);
  });
});
