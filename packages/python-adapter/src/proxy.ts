import { inspect } from 'node:util';
import { isRef, type Ref } from '@trestle/ref-registry';
import { adapterError, PythonAdapterErrorCode } from './errors';
import type { PythonBridge } from './python';
import type { CallOptions, Kwargs } from './types';

const kwargsBrand = Symbol.for('trestle.python-adapter.kwargs');
const proxyInfo = Symbol('trestle.python-adapter.proxy');

/** Keyword arguments for a proxy call: `re.compile('a', kw({ flags: 2 }))`. */
export interface KwargsMarker {
  readonly [kwargsBrand]: Kwargs;
}

/**
 * Marks keyword arguments for a proxy call (the last argument).
 * @example `await re.sub('\\d', '#', 'a1b2', kw({ count: 1 }))`
 */
export function kw(kwargs: Kwargs): KwargsMarker {
  return { [kwargsBrand]: kwargs };
}

/**
 * A Python object (or module) seen from Node. Property access builds a path; calling it calls Python
 * (`await re.compile('\\d+')`); awaiting a path reads the attribute (`await pattern.pattern`). Awaiting
 * the object itself gives the object. Refs returned through a proxy are proxies too.
 *
 * A ref proxy is `AsyncDisposable` (`await using p = await re.compile('x')`) and is released when it is
 * garbage-collected (batched), as a backstop only: release what you can explicitly.
 */
export type PyObject = {
  readonly [name: string]: PyObject;
} & ((...args: unknown[]) => Promise<unknown>) &
  PromiseLike<unknown> &
  AsyncDisposable & {
    /** The ref behind a proxy (`undefined` for a module proxy). */
    readonly $ref: Ref | undefined;
    /** Releases the object now. */
    $release(): Promise<void>;
    /** Sets an attribute: `await p.$set('x', 1)`. */
    $set(name: string, value: unknown): Promise<void>;
    /** Iterates the object in chunks (generators, iterators, iterables). */
    [Symbol.asyncIterator](): AsyncIterator<unknown>;
  };

interface Root {
  readonly bridge: PythonBridge;
  readonly module: string | undefined;
  readonly ref: Ref | undefined;
  readonly options: CallOptions | undefined;
  disposed: boolean;
}

interface Info {
  readonly root: Root;
  readonly path: readonly string[];
}

/** Releases forgotten proxies' refs in batches. */
export class ProxyFinalizer {
  private readonly registry: FinalizationRegistry<Ref>;
  private pending: Ref[] = [];
  private timer: unknown;

  constructor(
    private readonly bridge: PythonBridge,
    private readonly batchMs: number,
  ) {
    this.registry = new FinalizationRegistry((ref) => this.collected(ref));
  }

  track(proxy: object, ref: Ref): void {
    this.registry.register(proxy, ref, proxy);
  }

  untrack(proxy: object): void {
    this.registry.unregister(proxy);
  }

  private collected(ref: Ref): void {
    this.pending.push(ref);
    if (this.timer !== undefined) return;
    this.timer = this.bridge.clock.setTimeout(() => this.flush(), this.batchMs);
  }

  /** Releases what was collected so far (also run by the timer). */
  flush(): Promise<void> {
    this.timer = undefined;
    const refs = this.pending;
    this.pending = [];
    if (refs.length === 0) return Promise.resolve();
    this.bridge.finalized += refs.length;
    const live = refs.filter((ref) => this.bridge.sessions.sessionExists(ref.sessionId));
    return this.bridge.release(live).catch(() => undefined);
  }
}

/** @internal Builds module and ref proxies over a bridge. */
export class ProxyFactory {
  readonly finalizer: ProxyFinalizer;

  constructor(
    private readonly bridge: PythonBridge,
    batchMs: number,
  ) {
    this.finalizer = new ProxyFinalizer(bridge, batchMs);
    bridge.refOf = (value) => infoOf(value)?.root.ref;
  }

  module(name: string, options?: CallOptions): PyObject {
    return this.node({ bridge: this.bridge, module: name, ref: undefined, options, disposed: false }, []);
  }

  wrap(ref: Ref, options?: CallOptions): PyObject {
    if (!isRef(ref)) throw adapterError(PythonAdapterErrorCode.InvalidArgument, 'wrap() needs a Ref');
    const proxy = this.node({ bridge: this.bridge, module: undefined, ref, options, disposed: false }, []);
    this.finalizer.track(proxy, ref);
    return proxy;
  }

  /** Wraps a call result: a ref becomes a proxy; other values pass. */
  result(value: unknown, options: CallOptions | undefined): unknown {
    return isRef(value) ? this.wrap(value, options) : value;
  }

  private node(root: Root, path: readonly string[]): PyObject {
    const factory = this;
    const info: Info = { root, path };
    const target = function pyProxy() {};
    // util.inspect looks at a proxy's target, not through its traps.
    Object.defineProperty(target, inspect.custom, { value: () => describe(info) });
    const handler: ProxyHandler<typeof target> = {
      get(_target, property) {
        if (property === proxyInfo) return info;
        if (property === 'then') {
          if (path.length === 0) return undefined;
          return (resolve: (value: unknown) => unknown, reject: (error: unknown) => unknown) =>
            factory.read(info).then(resolve, reject);
        }
        if (property === '$ref') return root.ref;
        if (property === '$release') return () => factory.release(root, proxy);
        if (property === '$set') {
          return (name: string, value: unknown) => factory.set(info, name, value);
        }
        if (property === Symbol.asyncDispose) return () => factory.release(root, proxy);
        if (property === Symbol.asyncIterator) {
          return () => factory.iterate(info);
        }
        if (property === inspect.custom) return () => describe(info);
        if (property === Symbol.toPrimitive) return () => describe(info);
        if (property === 'toString' || property === 'toJSON') return () => describe(info);
        if (typeof property === 'symbol') return undefined;
        return factory.node(root, [...path, property]);
      },
      apply(_target, _this, args: unknown[]) {
        return factory.invoke(info, args);
      },
      set() {
        throw adapterError(
          PythonAdapterErrorCode.InvalidArgument,
          'set Python attributes with `await proxy.$set(name, value)`: an assignment cannot be awaited',
        );
      },
      has(_target, property) {
        return property === proxyInfo || property === '$ref';
      },
      ownKeys() {
        return ['prototype'];
      },
    };
    const proxy = new Proxy(target, handler) as unknown as PyObject;
    return proxy;
  }

  private async invoke(info: Info, args: unknown[]): Promise<unknown> {
    const { root, path } = info;
    let kwargs: Kwargs | undefined;
    const last = args[args.length - 1];
    if (typeof last === 'object' && last !== null && kwargsBrand in last) {
      kwargs = (last as KwargsMarker)[kwargsBrand];
      args = args.slice(0, -1);
    }
    if (path.length === 0) {
      if (root.ref === undefined) {
        throw adapterError(PythonAdapterErrorCode.InvalidArgument, `module ${root.module} is not callable`);
      }
      return this.result(
        await root.bridge.method(root.ref, '__call__', args, kwargs, root.options),
        root.options,
      );
    }
    const name = path.join('.');
    const value =
      root.ref === undefined
        ? await root.bridge.call(root.module as string, name, args, kwargs, root.options)
        : await root.bridge.method(root.ref, name, args, kwargs, root.options);
    return this.result(value, root.options);
  }

  private async read(info: Info): Promise<unknown> {
    const { root, path } = info;
    const name = path.join('.');
    const value = await root.bridge.attr(root.ref ?? (root.module as string), name, root.options);
    return this.result(value, root.options);
  }

  private async set(info: Info, name: string, value: unknown): Promise<void> {
    const { root, path } = info;
    if (root.ref === undefined) {
      throw adapterError(
        PythonAdapterErrorCode.InvalidArgument,
        'module attributes cannot be set through a proxy',
      );
    }
    await root.bridge.setattr(root.ref, [...path, name].join('.'), value, root.options);
  }

  private iterate(info: Info): AsyncIterator<unknown> {
    const { root, path } = info;
    if (root.ref === undefined || path.length > 0) {
      throw adapterError(
        PythonAdapterErrorCode.InvalidArgument,
        'only a ref proxy can be iterated: await it first',
      );
    }
    const stream = root.bridge.stream(root.ref, root.options);
    const factory = this;
    return {
      async next() {
        const step = await stream.next();
        return step.done ? step : { value: factory.result(step.value, root.options), done: false };
      },
      return: () => stream.return?.() ?? Promise.resolve({ value: undefined, done: true }),
    };
  }

  private async release(root: Root, proxy: object): Promise<void> {
    if (root.ref === undefined || root.disposed) return;
    root.disposed = true;
    this.finalizer.untrack(proxy);
    await root.bridge.release(root.ref);
  }
}

function infoOf(value: unknown): Info | undefined {
  if ((typeof value !== 'function' && typeof value !== 'object') || value === null) return undefined;
  try {
    return (value as { [proxyInfo]?: Info })[proxyInfo];
  } catch {
    return undefined;
  }
}

/** Whether `value` is a Python proxy. */
export function isPyObject(value: unknown): value is PyObject {
  return infoOf(value) !== undefined;
}

function describe(info: Info): string {
  const { root, path } = info;
  const suffix = path.length > 0 ? `.${path.join('.')}` : '';
  if (root.ref === undefined) return `<module ${root.module}${suffix}>`;
  const ref = root.ref;
  const type = ref.module && ref.module !== 'builtins' ? `${ref.module}.${ref.typeName}` : ref.typeName;
  return `<ref ${type} #${ref.id.slice(-4)} session ${ref.sessionId}${suffix ? ` ${suffix.slice(1)}` : ''}>`;
}
