/**
 * The objects in the REPL's scope: `py` (the bridge), module proxies (`py.math`, `await py.import('re')`),
 * attribute paths (`py.os.path.join`, `p.pattern`) and ref proxies (Python objects).
 *
 * - Calling a path calls Python (`py.math.sqrt(16)`, `p.match('1')`); awaiting a path reads the
 *   attribute (`await py.math.pi`, `await p.pattern`). Both return promises; results come back with
 *   every ref wrapped in a ref proxy.
 * - A ref proxy prints as `<ref re.Pattern #ab12 session s1>`; `$ref`, `$release()`, `$dir()` are its
 *   own helpers (`$` names cannot clash with Python names); any other property is a Python attribute.
 * - Keyword arguments: a last argument `kw({ flags: 2 })`.
 * - Each call passes the signal of the evaluation in progress, so Ctrl-C cancels it.
 */
import { inspect } from 'node:util';
import { isTuple, PyFrozenSet, PyTuple, tuple } from '@trestle/python-adapter';
import { isRef, type Ref } from '@trestle/ref-registry';
import { currentSignal, type ReplRuntime, refLabel, shortRefId, typeLabel } from './runtime';

const INFO = Symbol('trestle.repl.proxy');

/** Where a path starts: a module (by name) or an object (a ref). */
export type PathRoot = { readonly module: string } | { readonly ref: Ref };

/** What a proxy stands for. */
export type ProxyInfo =
  | { readonly kind: 'py' }
  | { readonly kind: 'ref'; readonly ref: Ref }
  | { readonly kind: 'path'; readonly root: PathRoot; readonly path: readonly string[] };

/** Keyword arguments for a Python call: the last argument, `kw({ flags: 2 })`. */
export class KwArgs {
  readonly values: Readonly<Record<string, unknown>>;
  constructor(values: Readonly<Record<string, unknown>>) {
    this.values = values;
  }
  [inspect.custom](): string {
    return `kw(${inspect(this.values)})`;
  }
}

/** `kw({ flags: 2 })`: keyword arguments, as the last argument of a call. */
export function kw(values: Record<string, unknown>): KwArgs {
  if (typeof values !== 'object' || values === null || Array.isArray(values)) {
    throw new TypeError('kw() takes an object of keyword arguments, e.g. kw({ flags: 2 })');
  }
  return new KwArgs(values);
}

/** What a REPL proxy stands for, or `undefined` for any other value. */
export function proxyInfo(value: unknown): ProxyInfo | undefined {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return undefined;
  try {
    return (value as { [INFO]?: ProxyInfo })[INFO];
  } catch {
    return undefined;
  }
}

/** The ref behind a ref proxy (or a plain `Ref`). */
export function refOf(value: unknown): Ref | undefined {
  if (isRef(value)) return value;
  const info = proxyInfo(value);
  return info?.kind === 'ref' ? info.ref : undefined;
}

/** `math.sqrt`, `#ab12.pattern`: how a path reads in messages. */
export function pathName(root: PathRoot, path: readonly string[]): string {
  const head = 'module' in root ? root.module : `${root.ref.typeName}`;
  return [head, ...path].join('.');
}

/** Names a proxy does not forward to Python. */
const RESERVED = new Set(['then', 'toJSON', 'toString', 'valueOf', 'constructor']);

/** The `py` object. */
export function createPy(runtime: ReplRuntime): object {
  const helpers: Record<string, unknown> = {
    import: (name: unknown) => importModule(runtime, name),
    kw,
    tuple,
    release: (...values: unknown[]) => releaseValues(runtime, values),
    dir: (value: unknown) => dirOf(runtime, value),
  };
  const label = () => {
    const session = runtime.backend.sessionId;
    const where = session === undefined ? 'no session' : `session ${runtime.labels.label(session)}`;
    return `<py ${runtime.backend.mode}, ${where}>`;
  };
  const target = {
    [INFO]: { kind: 'py' } satisfies ProxyInfo,
    [inspect.custom]: (_depth: number, options: { stylize(text: string, style: string): string }) =>
      options.stylize(label(), 'special'),
  };
  return new Proxy(target, {
    get(object, property) {
      if (typeof property === 'symbol') return Reflect.get(object, property);
      if (Object.hasOwn(helpers, property)) return helpers[property];
      if (property === 'toString') return label;
      if (RESERVED.has(property)) return undefined;
      return pathProxy(runtime, { module: property }, []);
    },
    set() {
      throw new TypeError('py is read-only');
    },
  });
}

/** A proxy over an object in Python. */
export function refProxy(runtime: ReplRuntime, ref: Ref): object {
  runtime.known.set(ref.id, ref);
  const target = {
    [INFO]: { kind: 'ref', ref } satisfies ProxyInfo,
    [inspect.custom]: (_depth: number, options: { stylize(text: string, style: string): string }) =>
      options.stylize(refLabel(runtime, ref), 'special'),
  };
  const helpers: Record<string, unknown> = {
    $ref: ref,
    $id: ref.id,
    $type: `${ref.module}.${ref.typeName}`,
    $release: () => releaseValues(runtime, [ref]),
    $dir: () => runtime.dirs.names(ref, currentSignal(runtime)),
  };
  return new Proxy(target, {
    get(object, property) {
      if (typeof property === 'symbol') return Reflect.get(object, property);
      if (Object.hasOwn(helpers, property)) return helpers[property];
      if (property === 'toString') return () => refLabel(runtime, ref);
      if (RESERVED.has(property)) return undefined;
      return pathProxy(runtime, { ref }, [property]);
    },
    set(_object, property) {
      throw new TypeError(`cannot set .${String(property)}: setting Python attributes is not supported`);
    },
  });
}

/** A module (empty path) or an attribute path: call it to call Python, await it to read it. */
export function pathProxy(runtime: ReplRuntime, root: PathRoot, path: readonly string[]): object {
  const info: ProxyInfo = { kind: 'path', root, path };
  const label = () => {
    if ('module' in root)
      return path.length === 0 ? `<module ${root.module}>` : `<py ${pathName(root, path)}>`;
    return `<py (${typeLabel(root.ref)} #${shortRefId(root.ref.id)}).${path.join('.')}>`;
  };
  const target = Object.assign(() => undefined, {
    [INFO]: info,
    [inspect.custom]: (_depth: number, options: { stylize(text: string, style: string): string }) =>
      options.stylize(label(), 'special'),
  });
  return new Proxy(target, {
    get(object, property) {
      if (typeof property === 'symbol') return Reflect.get(object, property);
      if (property === 'then') {
        if (path.length === 0) return undefined;
        return (resolve: (value: unknown) => void, reject: (error: unknown) => void) =>
          readPath(runtime, root, path).then(resolve, reject);
      }
      if (property === 'toString') return label;
      if (RESERVED.has(property)) return undefined;
      return pathProxy(runtime, root, [...path, property]);
    },
    apply(_object, _this, args: unknown[]) {
      return callPath(runtime, root, path, args);
    },
    set(_object, property) {
      throw new TypeError(`cannot set .${String(property)}: setting Python attributes is not supported`);
    },
  });
}

/** `py.import(name)`: checks the module imports (its `dir()` seeds completion) and returns its proxy. */
async function importModule(runtime: ReplRuntime, name: unknown): Promise<object> {
  if (typeof name !== 'string' || !/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/.test(name)) {
    throw new TypeError(
      `py.import takes a dotted module name, e.g. py.import('os.path'); got ${inspect(name)}`,
    );
  }
  await runtime.dirs.names(name, currentSignal(runtime));
  runtime.modulesSeen.add(name.split('.')[0] ?? name);
  return pathProxy(runtime, { module: name }, []);
}

async function callPath(
  runtime: ReplRuntime,
  root: PathRoot,
  path: readonly string[],
  raw: readonly unknown[],
): Promise<unknown> {
  const { args, kwargs } = splitArgs(raw);
  const signal = currentSignal(runtime);
  const last = path[path.length - 1];
  let value: unknown;
  if ('module' in root) {
    if (last === undefined) throw new TypeError(`a module is not callable: call one of its functions`);
    runtime.modulesSeen.add(root.module.split('.')[0] ?? root.module);
    value = await runtime.backend.call(root.module, path.join('.'), args, kwargs, { signal });
  } else {
    if (last === undefined) throw new TypeError('calling a Python object directly is not supported');
    const owner = await resolveOwner(runtime, root, path.slice(0, -1), signal);
    value = await runtime.backend.method(owner, last, args, kwargs, { signal });
  }
  return wrap(runtime, value);
}

async function readPath(runtime: ReplRuntime, root: PathRoot, path: readonly string[]): Promise<unknown> {
  const signal = currentSignal(runtime);
  const last = path[path.length - 1] as string;
  const owner: Ref | string =
    path.length === 1 && 'module' in root
      ? root.module
      : await resolveOwner(runtime, root, path.slice(0, -1), signal);
  if ('module' in root) runtime.modulesSeen.add(root.module.split('.')[0] ?? root.module);
  return wrap(runtime, await runtime.backend.attr(owner, last, { signal }));
}

/** The object at `root.path...` (each step an attribute read that must give an object). */
async function resolveOwner(
  runtime: ReplRuntime,
  root: PathRoot,
  path: readonly string[],
  signal: AbortSignal | undefined,
): Promise<Ref> {
  let current: Ref | string = 'module' in root ? root.module : root.ref;
  for (const [index, name] of path.entries()) {
    const value = await runtime.backend.attr(current, name, { signal });
    if (!isRef(value)) {
      throw new TypeError(
        `${pathName(root, path.slice(0, index + 1))} is a plain value (${inspect(value)}), not a Python object`,
      );
    }
    current = value;
  }
  if (typeof current === 'string') throw new TypeError('expected an object, got a module name');
  return current;
}

/** Positional arguments and (from a last `kw(...)`) keyword arguments, refs unwrapped. */
export function splitArgs(raw: readonly unknown[]): {
  args: unknown[];
  kwargs: Record<string, unknown> | undefined;
} {
  const last = raw[raw.length - 1];
  const hasKwargs = last instanceof KwArgs;
  const positional = hasKwargs ? raw.slice(0, -1) : raw;
  const args = positional.map((value, index) => unwrap(value, `args[${index}]`, 0));
  const kwargs = hasKwargs
    ? (unwrap({ ...(last as KwArgs).values }, 'kwargs', 0) as Record<string, unknown>)
    : undefined;
  return { args, kwargs };
}

/** A value for Python: ref proxies become refs (deep); names that are not values are refused. */
export function unwrap(value: unknown, path: string, depth: number): unknown {
  if (depth > 100 || typeof value !== 'object' || value === null) {
    if (typeof value === 'function') {
      const info = proxyInfo(value);
      if (info?.kind === 'path') {
        throw new TypeError(
          `${path}: ${'module' in info.root ? pathName(info.root, info.path) : 'an attribute path'} is a Python name, not a value: await it first`,
        );
      }
    }
    return value;
  }
  const info = proxyInfo(value);
  if (info?.kind === 'ref') return info.ref;
  if (info?.kind === 'py') throw new TypeError(`${path}: py itself cannot be passed to Python`);
  if (value instanceof KwArgs) throw new TypeError(`${path}: kw(...) must be the last argument`);
  if (isRef(value)) return value;
  const next = (item: unknown, segment: string) => unwrap(item, `${path}${segment}`, depth + 1);
  if (isTuple(value)) return new PyTuple(Array.from(value, (item, i) => next(item, `[${i}]`)));
  if (Array.isArray(value)) return value.map((item, i) => next(item, `[${i}]`));
  if (value instanceof PyFrozenSet) return new PyFrozenSet([...value].map((item) => next(item, '[]')));
  if (value instanceof Set) return new Set([...value].map((item) => next(item, '[]')));
  if (value instanceof Map) {
    return new Map(
      [...value].map(([key, item]) => [next(key, '{key}'), next(item, `.get(${inspect(key)})`)]),
    );
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = next(item, `.${key}`);
    return out;
  }
  return value;
}

/** A Python result for the REPL: every ref becomes a ref proxy (deep). */
export function wrap(runtime: ReplRuntime, value: unknown, depth = 0): unknown {
  if (typeof value !== 'object' || value === null || depth > 100) return value;
  if (isRef(value)) return refProxy(runtime, value);
  const next = (item: unknown) => wrap(runtime, item, depth + 1);
  if (isTuple(value)) return new PyTuple(Array.from(value, next));
  if (Array.isArray(value)) return value.map(next);
  if (value instanceof PyFrozenSet) return new PyFrozenSet([...value].map(next));
  if (value instanceof Set) return new Set([...value].map(next));
  if (value instanceof Map) return new Map([...value].map(([key, item]) => [next(key), next(item)]));
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = next(item);
    return out;
  }
  return value;
}

/** `py.release(p, m)` / `p.$release()`: releases refs; resolves with how many were live. */
export async function releaseValues(runtime: ReplRuntime, values: readonly unknown[]): Promise<number> {
  const refs = values.map((value, index) => {
    const ref = refOf(value);
    if (ref === undefined) throw new TypeError(`py.release: argument ${index} is not a Python object`);
    return ref;
  });
  const released = await runtime.backend.release(refs);
  for (const ref of refs) runtime.released.add(ref.id);
  return released;
}

/** `py.dir(x)`: the Python `dir()` of a ref proxy or a module proxy. */
async function dirOf(runtime: ReplRuntime, value: unknown): Promise<string[]> {
  const target = completionTarget(value);
  if (target === undefined || target.kind === 'py') {
    throw new TypeError('py.dir takes a Python object or a module (py.dir(py.math), py.dir(p))');
  }
  return runtime.dirs.names(target.kind === 'ref' ? target.ref : target.module, currentSignal(runtime));
}

/** What a value completes against: a ref, a module (by name), `py`; `undefined` for anything else. */
export function completionTarget(
  value: unknown,
):
  | { readonly kind: 'ref'; readonly ref: Ref }
  | { readonly kind: 'module'; readonly module: string }
  | { readonly kind: 'py' }
  | undefined {
  const info = proxyInfo(value);
  if (info === undefined) return undefined;
  if (info.kind === 'py') return { kind: 'py' };
  if (info.kind === 'ref') return { kind: 'ref', ref: info.ref };
  if ('module' in info.root) return { kind: 'module', module: [info.root.module, ...info.path].join('.') };
  return undefined;
}

/** The helper names of `py` (completion). */
export const PY_HELPERS = ['import', 'kw', 'tuple', 'release', 'dir'] as const;
/** The helper names of ref proxies (completion). */
export const REF_HELPERS = ['$ref', '$id', '$type', '$release', '$dir'] as const;
