import { inspect } from 'node:util';
import { isTuple, PyTuple, tuple } from '@trestle/python-adapter';
import { isRef } from '@trestle/ref-registry';
import { describe, expect, it } from 'vitest';
import {
  completionTarget,
  createPy,
  kw,
  proxyInfo,
  refOf,
  refProxy,
  splitArgs,
  unwrap,
  wrap,
} from './proxies';
import { createRuntime, shortRefId } from './runtime';
import { fakeBackend, fakeRef } from './test-support/fake-backend';

/** A proxy, loosely typed for tests: callable, awaitable, with any property. */
type Loose = ((...args: unknown[]) => Promise<unknown>) & { readonly [name: string]: unknown };

/** `value.a.b...` of a proxy. */
function at(value: unknown, ...path: string[]): Loose {
  return path.reduce<unknown>((current, name) => (current as Record<string, unknown>)[name], value) as Loose;
}

describe('py proxies', () => {
  it('calls module functions with positional and keyword arguments', async () => {
    const backend = fakeBackend(() => 4);
    const py = createPy(createRuntime(backend)) as Record<
      string,
      Record<string, (...args: unknown[]) => unknown>
    >;
    expect(await py.math?.sqrt?.(16)).toBe(4);
    expect(
      await (py.os as unknown as Record<string, Record<string, (...a: unknown[]) => unknown>>).path?.join?.(
        'a',
        'b',
      ),
    ).toBe(4);
    await py.json?.dumps?.({ a: 1 }, kw({ indent: 2 }));
    expect(backend.requests.map((r) => [r.op, r.target, r.name, r.args, r.kwargs])).toEqual([
      ['call', 'math', 'sqrt', [16], undefined],
      ['call', 'os', 'path.join', ['a', 'b'], undefined],
      ['call', 'json', 'dumps', [{ a: 1 }], { indent: 2 }],
    ]);
  });

  it('reads attributes when a path is awaited, step by step through objects', async () => {
    const pathRef = fakeRef('module', 'builtins');
    const backend = fakeBackend((request) => (request.name === 'path' ? pathRef : 3.14));
    const py = createPy(createRuntime(backend));
    expect(await at(py, 'math', 'pi')).toBe(3.14);
    expect(await at(py, 'os', 'path', 'sep')).toBe(3.14);
    expect(backend.requests.map((r) => [r.op, r.target, r.name])).toEqual([
      ['attr', 'math', 'pi'],
      ['attr', 'os', 'path'],
      ['attr', `#${pathRef.id}`, 'sep'],
    ]);
  });

  it('wraps refs in results as ref proxies that print readably and unwrap as arguments', async () => {
    const ref = fakeRef();
    const backend = fakeBackend((request) => (request.name === 'compile' ? [ref, { nested: ref }] : 'ok'));
    const runtime = createRuntime(backend);
    const py = createPy(runtime);
    const [p, holder] = (await at(py, 're', 'compile')('x')) as [Loose, { nested: unknown }];
    expect(inspect(p)).toBe(`<ref re.Pattern #${shortRefId(ref.id)} session s1>`);
    expect(inspect(holder)).toBe(`{ nested: <ref re.Pattern #${shortRefId(ref.id)} session s1> }`);
    expect(refOf(p)).toBe(ref);
    expect(p.$ref).toBe(ref);
    expect(await at(p, 'match')('1', kw({ pos: 0 }))).toBe('ok');
    await at(py, 'builtins', 'repr')(p);
    expect(backend.requests.slice(1).map((r) => [r.op, r.target, r.name, r.args, r.kwargs])).toEqual([
      ['method', `#${ref.id}`, 'match', ['1'], { pos: 0 }],
      ['call', 'builtins', 'repr', [ref], undefined],
    ]);
    expect(await at(p, '$release')()).toBe(1);
    expect(inspect(p)).toBe(`<ref re.Pattern #${shortRefId(ref.id)} session s1 released>`);
    expect(String(p)).toContain('<ref re.Pattern');
  });

  it('passes the evaluation signal to every call started in it', async () => {
    const backend = fakeBackend(() => 1);
    const runtime = createRuntime(backend);
    const py = createPy(runtime);
    const controller = new AbortController();
    await runtime.evaluation.run(controller, async () => {
      await at(py, 'math', 'sqrt')(1);
      await Promise.resolve();
      await at(py, 'math', 'sqrt')(2);
    });
    await at(py, 'math', 'sqrt')(3);
    expect(backend.requests.map((r) => r.signal)).toEqual([controller.signal, controller.signal, undefined]);
  });

  it('py.import checks the module with dir() and returns its proxy', async () => {
    const backend = fakeBackend((request) => (request.op === 'dir' ? ['sqrt', 'pi'] : 2));
    const runtime = createRuntime(backend);
    const py = createPy(runtime);
    const math = await at(py, 'import')('math');
    expect(inspect(math)).toBe('<module math>');
    expect(await at(math, 'sqrt')(4)).toBe(2);
    expect(await runtime.dirs.names('math')).toEqual(['sqrt', 'pi']);
    expect(backend.requests.filter((r) => r.op === 'dir')).toHaveLength(1);
    await expect(at(py, 'import')('not a module')).rejects.toThrow(TypeError);
    expect(inspect(py)).toBe('<py embedded, session s1>');
  });

  it('is not thenable for modules and refs (await returns them), and refuses assignment', async () => {
    const runtime = createRuntime(fakeBackend());
    const py = createPy(runtime);
    const math = at(py, 'math');
    expect(await math).toBe(math);
    const p = refProxy(runtime, fakeRef()) as Record<string, unknown>;
    expect(await p).toBe(p);
    expect(() => {
      p.x = 1;
    }).toThrow(/setting Python attributes is not supported/);
    expect(inspect(math)).toBe('<module math>');
    expect(inspect(at(py, 'math', 'sqrt'))).toBe('<py math.sqrt>');
    expect(inspect(at(p, 'pattern'))).toMatch(/^<py \(re\.Pattern #[0-9a-f]{4}\)\.pattern>$/);
  });

  it('unwraps arguments deep and refuses names that are not values', () => {
    const runtime = createRuntime(fakeBackend());
    const ref = fakeRef();
    const p = refProxy(runtime, ref);
    const unwrapped = unwrap(
      { list: [p], tuple: tuple(p, 1), map: new Map([['k', p]]), set: new Set([p]) },
      'args[0]',
      0,
    ) as {
      list: unknown[];
      tuple: PyTuple;
      map: Map<string, unknown>;
      set: Set<unknown>;
    };
    expect(unwrapped.list[0]).toBe(ref);
    expect(isTuple(unwrapped.tuple)).toBe(true);
    expect(unwrapped.tuple[0]).toBe(ref);
    expect(unwrapped.map.get('k')).toBe(ref);
    expect([...unwrapped.set][0]).toBe(ref);
    const py = createPy(runtime);
    expect(() => splitArgs([at(py, 'math')])).toThrow(
      /args\[0\]: math is a Python name, not a value: await it first/,
    );
    expect(() => splitArgs([kw({ a: 1 }), 2])).toThrow(/kw\(\.\.\.\) must be the last argument/);
    expect(() => kw([] as unknown as Record<string, unknown>)).toThrow(TypeError);
  });

  it('wraps refs deep in results, keeping tuples tuples', () => {
    const runtime = createRuntime(fakeBackend());
    const ref = fakeRef();
    const wrapped = wrap(runtime, new PyTuple([ref, [ref], new Map([[1, ref]])])) as unknown[];
    expect(isTuple(wrapped)).toBe(true);
    expect(isRef(wrapped[0])).toBe(false);
    expect(refOf(wrapped[0])).toBe(ref);
    expect(proxyInfo((wrapped[1] as unknown[])[0])).toEqual({ kind: 'ref', ref });
    expect(refOf((wrapped[2] as Map<number, unknown>).get(1))).toBe(ref);
  });

  it('names completion targets', () => {
    const runtime = createRuntime(fakeBackend());
    const py = createPy(runtime);
    const ref = fakeRef();
    expect(completionTarget(py)).toEqual({ kind: 'py' });
    expect(completionTarget(at(py, 'os', 'path'))).toEqual({ kind: 'module', module: 'os.path' });
    expect(completionTarget(refProxy(runtime, ref))).toEqual({ kind: 'ref', ref });
    expect(completionTarget((refProxy(runtime, ref) as Record<string, unknown>).pattern)).toBeUndefined();
    expect(completionTarget({})).toBeUndefined();
  });
});
