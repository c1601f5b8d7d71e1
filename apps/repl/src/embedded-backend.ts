/**
 * Embedded mode: python-adapter workers and a BridgeManager (memory budget, handle pool, ref session)
 * in this process. Every call is metered like the reference server meters it: reserve 1 unit, settle
 * `1 + ceil(python_ms / 100)`. Objects whose type has a callable `close` become `py:close` handles,
 * closed when released or when the session ends.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { type BridgeManager, createBridgeManager, type EndReport, type Session } from '@trestle/bridge';
import { type Budget, createBudget } from '@trestle/budget';
import type { Discharger } from '@trestle/handle-pool';
import {
  type CallOptions,
  collectRefs,
  createPython,
  type Kwargs,
  type PythonBridge,
} from '@trestle/python-adapter';
import type { Ref, SessionHandle } from '@trestle/ref-registry';
import {
  type Backend,
  type BackendCallOptions,
  type BackendEvent,
  type BudgetView,
  Emitter,
  type EndOptions,
  type EndSummary,
  type HandleView,
  type RefView,
  type SessionView,
} from './backend';
import { BackendClosedError } from './errors';

/** The Python helper module shipped in `python/`. */
export const SUPPORT_MODULE = 'trestle_repl_support';
/** Where it lives (`apps/repl/python`, next to `src/` and `dist/`). */
export const supportDir = fileURLToPath(new URL('../python', import.meta.url));

const PY_CLOSE = 'py:close';

/** Options of {@link embeddedBackend}. */
export interface EmbeddedOptions {
  /** The session's budget tier (`free`, `basic`, `premium`, `unlimited`). @default 'free' */
  readonly tier?: string;
  /** The interpreter. @default python-adapter's resolution (`TRESTLE_PYTHON`, `VIRTUAL_ENV`, `python3`) */
  readonly python?: string;
  /** The workers' working directory (importable). @default process.cwd() */
  readonly cwd?: string;
}

interface Closable {
  readonly python: PythonBridge;
  readonly session: SessionHandle;
  readonly ref: Ref;
}

const closeDischarger: Discharger<Closable> = async (handle, context) => {
  const { python, session, ref } = handle.resource;
  await python.method(ref, 'close', [], undefined, { session, signal: context.signal });
};

/** Python and a bridge session in this process. */
export function embeddedBackend(options: EmbeddedOptions = {}): Backend {
  return new EmbeddedBackend(options);
}

class EmbeddedBackend implements Backend {
  readonly mode = 'embedded';
  readonly #events = new Emitter();
  readonly #python: PythonBridge;
  readonly #budget: Budget;
  readonly #manager: BridgeManager;
  readonly #tier: string;
  #session: Session | undefined;
  #opening: Promise<Session> | undefined;
  #createdAt = 0;
  #closed = false;
  /** Refs handed out in the current session: id → ref, first seen. */
  readonly #refs = new Map<string, { ref: Ref; seenAt: number }>();
  /** ref id → handle id of closable objects. */
  readonly #closables = new Map<string, string>();
  /** `module.Type` → whether it has a callable `close`. */
  readonly #closableTypes = new Map<string, Promise<boolean>>();
  /** Sessions this backend ended itself (their end is not a loss). */
  readonly #ending = new Set<string>();

  constructor(options: EmbeddedOptions) {
    this.#tier = options.tier ?? 'free';
    this.#python = createPython({
      ...(options.python !== undefined ? { python: options.python } : {}),
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      env: { PYTHONPATH: supportDir },
      onOutput: (entry) => this.#events.emit({ type: 'output', stream: entry.stream, line: entry.line }),
      logger: {
        info: () => {},
        warn: (message) => this.#events.emit({ type: 'warning', message: `python: ${message}` }),
        error: (message) => this.#events.emit({ type: 'warning', message: `python: ${message}` }),
      },
    });
    this.#budget = createBudget();
    this.#manager = createBridgeManager({
      budget: this.#budget,
      refs: this.#python.sessions,
      dischargers: { [PY_CLOSE]: closeDischarger as Discharger },
      idleTimeoutMs: Number.POSITIVE_INFINITY,
      endGraceMs: 2_000,
      drainTimeoutMs: 2_000,
    });
    this.#manager.on('session-ended', ({ session, report }) => this.#ended(session.id, report));
  }

  get description(): string {
    return `embedded (${this.#python.interpreter.command})`;
  }

  get sessionId(): string | undefined {
    return this.#session?.id;
  }

  on(listener: (event: BackendEvent) => void): () => void {
    return this.#events.on(listener);
  }

  async start(): Promise<void> {
    if (!this.#budget.tiers.has(this.#tier)) {
      throw new Error(`unknown tier "${this.#tier}" (known: ${[...this.#budget.tiers.keys()].join(', ')})`);
    }
    await this.#python.ready();
    await this.#current();
  }

  call(
    module: string,
    fn: string,
    args: readonly unknown[],
    kwargs: Kwargs | undefined,
    options?: BackendCallOptions,
  ) {
    return this.#run(options, (call) => this.#python.call(module, fn, args, kwargs, call), true);
  }

  method(
    ref: Ref,
    name: string,
    args: readonly unknown[],
    kwargs: Kwargs | undefined,
    options?: BackendCallOptions,
  ) {
    return this.#run(options, (call) => this.#python.method(ref, name, args, kwargs, call), true);
  }

  attr(target: Ref | string, name: string, options?: BackendCallOptions) {
    return this.#run(options, (call) => this.#python.attr(target, name, call), true);
  }

  async dir(target: Ref | string, options?: BackendCallOptions): Promise<string[]> {
    const names = await this.#run(
      options,
      (call) =>
        typeof target === 'string'
          ? this.#python.call(SUPPORT_MODULE, 'dir_module', [target], undefined, call)
          : this.#python.call(SUPPORT_MODULE, 'dir_of', [target], undefined, call),
      false,
    );
    return stringList(names);
  }

  async modules(options?: BackendCallOptions): Promise<string[]> {
    const names = await this.#run(
      options,
      (call) => this.#python.call(SUPPORT_MODULE, 'top_level_modules', [], undefined, call),
      false,
    );
    return stringList(names);
  }

  async release(refs: readonly Ref[]): Promise<number> {
    const session = this.#session;
    if (session?.refs === undefined) return 0;
    const live = refs.filter((ref) => {
      try {
        session.refs?.getRef(ref);
        return true;
      } catch {
        return false;
      }
    });
    for (const ref of live) {
      const handleId = this.#closables.get(ref.id);
      if (handleId !== undefined) {
        this.#closables.delete(ref.id);
        await session.handles.discharge(handleId);
      }
      this.#refs.delete(ref.id);
    }
    if (live.length > 0) await this.#python.release(live);
    return live.length;
  }

  async session(): Promise<SessionView> {
    const session = await this.#current();
    return {
      id: session.id,
      tier: session.tier,
      ageMs: Date.now() - this.#createdAt,
      refs: session.refs?.released ? 0 : (session.refs?.listRefs().length ?? 0),
      handles: session.handles.size,
      calls: { ...session.calls },
    };
  }

  async refs(): Promise<RefView[]> {
    const session = await this.#current();
    const now = Date.now();
    const live = session.refs?.released ? [] : (session.refs?.listRefs() ?? []);
    return live.map((ref) => ({ ref, ageMs: now - (this.#refs.get(ref.id)?.seenAt ?? this.#createdAt) }));
  }

  async budget(): Promise<BudgetView> {
    const session = await this.#current();
    const limits = this.#budget.tiers.get(session.tier)?.limits ?? null;
    const remaining = await session.budget.peek();
    if (limits === null || remaining === null) {
      return { tier: session.tier, remaining: null, capacity: null, refillPerSec: null, fullAfterMs: 0 };
    }
    return {
      tier: session.tier,
      remaining,
      capacity: limits.capacity,
      refillPerSec: limits.refillPerMs * 1000,
      fullAfterMs: Math.max(0, Math.ceil((limits.capacity - remaining) / limits.refillPerMs)),
    };
  }

  async handles(): Promise<HandleView[]> {
    const session = await this.#current();
    const now = performance.now();
    return session.handles.list().map((handle) => ({
      id: handle.id,
      obligation: handle.obligation,
      label: handle.binding,
      ageMs: Math.max(0, now - handle.createdAt),
    }));
  }

  async end(options: EndOptions): Promise<EndSummary | undefined> {
    const session = this.#session;
    let summary: EndSummary | undefined;
    if (session !== undefined) {
      this.#ending.add(session.id);
      this.#session = undefined;
      summary = summarize(await session.end('logout'));
      this.#refs.clear();
      this.#closables.clear();
    }
    if (options.reopen) await this.#current();
    return summary;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#manager.close();
    await this.#python.close(1_000);
  }

  /** The open session, opening one when there is none. */
  #current(): Promise<Session> {
    if (this.#closed) return Promise.reject(new BackendClosedError('the REPL backend is closed'));
    if (this.#session !== undefined && this.#session.state === 'open') {
      return Promise.resolve(this.#session);
    }
    this.#opening ??= (async () => {
      try {
        const session = await this.#manager.getOrCreate(`s_${randomBytes(8).toString('hex')}`, this.#tier);
        this.#session = session;
        this.#createdAt = Date.now();
        return session;
      } finally {
        this.#opening = undefined;
      }
    })();
    return this.#opening;
  }

  /** One metered Python call in the session; the refs it returns are noted (and closables tracked). */
  async #run<T>(
    options: BackendCallOptions | undefined,
    fn: (call: CallOptions) => Promise<T>,
    adopt: boolean,
  ): Promise<T> {
    const session = await this.#current();
    const refs = session.refs;
    if (refs === undefined) throw new Error('the bridge session has no ref session');
    const value = await session.metered(1, async (meter) => {
      const started = performance.now();
      try {
        const signal = options?.signal ? AbortSignal.any([options.signal, meter.signal]) : meter.signal;
        return await fn({ session: refs, signal });
      } finally {
        meter.use(1 + Math.ceil((performance.now() - started) / 100));
      }
    });
    if (adopt) await this.#adopt(session, refs, collectRefs(value));
    return value;
  }

  async #adopt(session: Session, refs: SessionHandle, found: readonly Ref[]): Promise<void> {
    const now = Date.now();
    for (const ref of found) {
      if (!this.#refs.has(ref.id)) this.#refs.set(ref.id, { ref, seenAt: now });
      if (this.#closables.has(ref.id) || !(await this.#isClosable(refs, ref))) continue;
      if (session.state !== 'open' || this.#closables.has(ref.id)) continue;
      const handle = session.handles.track<Closable>({
        binding: `${ref.module}.${ref.typeName} ${ref.id}`,
        obligation: PY_CLOSE,
        resource: { python: this.#python, session: refs, ref },
      });
      this.#closables.set(ref.id, handle.id);
    }
  }

  #isClosable(session: SessionHandle, ref: Ref): Promise<boolean> {
    const key = `${ref.module}.${ref.typeName}`;
    let check = this.#closableTypes.get(key);
    if (check === undefined) {
      check = this.#python
        .call<boolean>(SUPPORT_MODULE, 'closable', [ref], undefined, { session, timeoutMs: 5_000 })
        .then(
          (closable) => closable === true,
          () => {
            this.#closableTypes.delete(key);
            return false;
          },
        );
      this.#closableTypes.set(key, check);
    }
    return check;
  }

  /** A session ended: when it was not this backend's doing (a worker died), a new one replaces it. */
  #ended(id: string, report: EndReport): void {
    if (this.#ending.delete(id) || this.#closed || this.#session?.id !== id) return;
    const lost = [...this.#refs.values()].map((entry) => entry.ref);
    this.#session = undefined;
    this.#refs.clear();
    this.#closables.clear();
    void this.#current().then(
      (next) =>
        this.#events.emit({
          type: 'session-replaced',
          from: id,
          to: next.id,
          lost,
          why: `the session ended (${report.reason})`,
        }),
      (error: unknown) =>
        this.#events.emit({
          type: 'warning',
          message: `session ${id} ended (${report.reason}) and no new one could be opened: ${String(error)}`,
        }),
    );
  }
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((name): name is string => typeof name === 'string') : [];
}

/** The bridge's `EndReport` as the REPL shows it. */
export function summarize(report: EndReport): EndSummary {
  return {
    sessionId: report.id,
    reason: report.reason,
    durationMs: report.durationMs,
    calls: { ...report.calls },
    refsReleased: report.refsReleased,
    discharged: report.discharged.map((handle) => handle.binding),
    undischarged: report.undischarged.map((entry) => ({ label: entry.handle.binding, why: entry.why })),
    errors: report.errors.map((error) => (error instanceof Error ? error.message : String(error))),
  };
}
