/**
 * Remote mode: the reference server (`apps/server`) over `@trestle/ws-bridge`, JSON-RPC 2.0.
 *
 * Every (re)connection runs `session.resume` for the current session (or `session.open` for the
 * first one). When the session cannot be resumed (the grace passed, the server restarted), a new
 * session is opened and a `session-replaced` event names the refs that were lost with the old one.
 */
import { collectRefs, type Kwargs, PythonError } from '@trestle/python-adapter';
import type { Ref } from '@trestle/ref-registry';
import type { BridgeOptions } from '@trestle/ws-bridge';
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
import { CancelledError, ConnectionLostError, codeOf, messageOf, RemoteError } from './errors';
import { type HandshakeRequest, RpcClient } from './rpc-client';
import { fromWire, refFromWire, toWire } from './wire-values';

/** Options of {@link remoteBackend}. */
export interface RemoteOptions {
  /** `ws://host:port/rpc` */
  readonly url: string;
  /** A bearer token (JWT) the server accepts. */
  readonly token: string;
  /** How long `start` waits for the first session. @default 15_000 */
  readonly connectTimeoutMs?: number;
  /** Overrides of the WebSocket bridge's options (retry, heartbeat, ...). */
  readonly bridge?: Partial<Omit<BridgeOptions, 'url' | 'tokenProvider' | 'handler'>>;
}

/** `session.open` / `session.resume` results. */
interface SessionDescription {
  readonly sessionId: string;
  readonly resumeToken: string;
  readonly tenant: string;
  readonly tier: string;
  readonly graceMs: number;
  readonly createdAt: number;
}

/** How often, and how far apart, a resume refused with SESSION_ATTACHED is retried (the server has not seen the old socket close yet). */
const ATTACHED_RETRIES = 10;
const ATTACHED_DELAY_MS = 500;

/** The reference server as a backend. */
export function remoteBackend(options: RemoteOptions): Backend {
  return new RemoteBackend(options);
}

class RemoteBackend implements Backend {
  readonly mode = 'remote';
  readonly #options: RemoteOptions;
  readonly #events = new Emitter();
  readonly #client: RpcClient;
  #session: SessionDescription | undefined;
  /** Why the server ended the current session (a `session.ending` notification), if it did. */
  #gone: string | undefined;
  #reopening: Promise<void> | undefined;
  /** Refs handed out in the current session (minus released ones): what is lost when it is. */
  readonly #refs = new Map<string, Ref>();
  #started: { resolve: () => void; reject: (error: Error) => void } | undefined;
  #connectedOnce = false;

  constructor(options: RemoteOptions) {
    this.#options = options;
    this.#client = new RpcClient({
      url: options.url,
      token: options.token,
      ...(options.bridge !== undefined ? { bridge: options.bridge } : {}),
      hooks: {
        handshake: (request) => this.#handshake(request),
        disconnected: (why) => {
          if (this.#connectedOnce) this.#events.emit({ type: 'disconnected', why });
        },
        notification: (method, params) => this.#notification(method, params),
        failed: (error) => {
          this.#started?.reject(error);
          if (this.#connectedOnce) {
            this.#events.emit({ type: 'warning', message: `connection closed for good: ${error.message}` });
          }
        },
      },
    });
  }

  get description(): string {
    return `remote ${this.#options.url}`;
  }

  get sessionId(): string | undefined {
    return this.#session?.sessionId;
  }

  on(listener: (event: BackendEvent) => void): () => void {
    return this.#events.on(listener);
  }

  start(): Promise<void> {
    const timeoutMs = this.#options.connectTimeoutMs ?? 15_000;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#started = undefined;
        reject(new Error(`no session within ${timeoutMs} ms: is the server at ${this.#options.url} up?`));
      }, timeoutMs);
      this.#started = {
        resolve: () => {
          clearTimeout(timer);
          this.#started = undefined;
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          this.#started = undefined;
          reject(error);
        },
      };
      this.#client.start();
    });
  }

  call(
    module: string,
    fn: string,
    args: readonly unknown[],
    kwargs: Kwargs | undefined,
    options?: BackendCallOptions,
  ) {
    return this.#value(
      'py.call',
      { module, fn, args: toWire([...args], 'args'), ...wireKwargs(kwargs) },
      `${module}.${fn}`,
      options,
    );
  }

  method(
    ref: Ref,
    name: string,
    args: readonly unknown[],
    kwargs: Kwargs | undefined,
    options?: BackendCallOptions,
  ) {
    return this.#value(
      'py.method',
      { ref: toWire(ref, 'ref'), name, args: toWire([...args], 'args'), ...wireKwargs(kwargs) },
      `${ref.typeName}.${name}`,
      options,
    );
  }

  attr(target: Ref | string, name: string, options?: BackendCallOptions) {
    const on = typeof target === 'string' ? { module: target } : { ref: toWire(target, 'ref') };
    const what = typeof target === 'string' ? `${target}.${name}` : `${target.typeName}.${name}`;
    return this.#value('py.attr', { ...on, name }, what, options);
  }

  async dir(target: Ref | string, options?: BackendCallOptions): Promise<string[]> {
    const on = typeof target === 'string' ? { module: target } : { ref: toWire(target, 'ref') };
    const what = typeof target === 'string' ? `dir(${target})` : `dir(${target.typeName})`;
    const result = (await this.#request('py.dir', on, what, options)) as { names?: unknown };
    return Array.isArray(result.names)
      ? result.names.filter((name): name is string => typeof name === 'string')
      : [];
  }

  async release(refs: readonly Ref[]): Promise<number> {
    if (refs.length === 0) return 0;
    const result = (await this.#request(
      'py.release',
      { refs: refs.map((ref) => toWire(ref, 'ref')) },
      'release',
    )) as {
      released?: unknown;
    };
    for (const ref of refs) this.#refs.delete(ref.id);
    return typeof result.released === 'number' ? result.released : 0;
  }

  async session(): Promise<SessionView> {
    const info = (await this.#request('session.info', {}, 'session.info')) as Record<string, unknown>;
    const calls = typeof info.calls === 'object' && info.calls !== null ? info.calls : {};
    return {
      id: String(info.sessionId),
      tier: String(info.tier),
      tenant: typeof info.tenant === 'string' ? info.tenant : undefined,
      ageMs: Number(info.ageMs ?? 0),
      refs: Number(info.refs ?? 0),
      handles: Number(info.handles ?? 0),
      calls: numbers(calls as Record<string, unknown>),
    };
  }

  async refs(): Promise<RefView[]> {
    const result = (await this.#request('refs.list', {}, 'refs.list')) as { refs?: unknown };
    const list = Array.isArray(result.refs) ? result.refs : [];
    const views: RefView[] = [];
    for (const entry of list as { ref?: unknown; ageMs?: unknown }[]) {
      try {
        views.push({ ref: refFromWire(entry.ref), ageMs: Number(entry.ageMs ?? 0) });
      } catch {
        // A malformed entry is skipped, not fatal for the listing.
      }
    }
    return views;
  }

  async budget(): Promise<BudgetView> {
    const result = (await this.#request('budget.get', {}, 'budget.get')) as Record<string, unknown>;
    const numberOrNull = (value: unknown) => (typeof value === 'number' ? value : null);
    return {
      tier: String(result.tier),
      remaining: numberOrNull(result.remaining),
      capacity: numberOrNull(result.capacity),
      refillPerSec: numberOrNull(result.refillPerSec),
      fullAfterMs: Number(result.fullAfterMs ?? 0),
    };
  }

  async handles(): Promise<HandleView[]> {
    const result = (await this.#request('handles.list', {}, 'handles.list')) as { handles?: unknown };
    const list = Array.isArray(result.handles) ? result.handles : [];
    return (list as Record<string, unknown>[]).map((handle) => ({
      id: String(handle.id),
      obligation: String(handle.obligation),
      label: String(handle.label),
      ageMs: Number(handle.ageMs ?? 0),
    }));
  }

  async end(options: EndOptions): Promise<EndSummary | undefined> {
    let summary: EndSummary | undefined;
    if (this.#session !== undefined && this.#gone === undefined) {
      const report = (await this.#client.request('session.end', {}, options.signal)) as Record<
        string,
        unknown
      >;
      summary = summarizeWire(report, this.#session.sessionId);
    }
    this.#session = undefined;
    this.#gone = undefined;
    this.#refs.clear();
    if (options.reopen) {
      this.#session = (await this.#client.request('session.open', {})) as SessionDescription;
    }
    return summary;
  }

  async close(): Promise<void> {
    await this.#client.close();
  }

  /** Whether requests go out now. */
  get connected(): boolean {
    return this.#client.ready;
  }

  async #handshake(request: HandshakeRequest): Promise<void> {
    const previous = this.#session;
    let why = 'no session yet';
    if (previous !== undefined && this.#gone === undefined) {
      for (let attempt = 0; ; attempt++) {
        try {
          this.#session = (await request('session.resume', {
            sessionId: previous.sessionId,
            resumeToken: previous.resumeToken,
          })) as SessionDescription;
          this.#events.emit({ type: 'resumed', sessionId: previous.sessionId, refs: this.#refs.size });
          return;
        } catch (error) {
          if (error instanceof ConnectionLostError) throw error;
          if (codeOf(error) === 'SESSION_ATTACHED' && attempt < ATTACHED_RETRIES) {
            await new Promise((resolve) => setTimeout(resolve, ATTACHED_DELAY_MS));
            continue;
          }
          why = `${codeOf(error) ?? 'ERROR'}: ${messageOf(error)}`;
          break;
        }
      }
    } else if (previous !== undefined) {
      why = `the server ended it: ${this.#gone}`;
    }
    const opened = (await request('session.open', {})) as SessionDescription;
    this.#replace(previous, opened, why);
    this.#connectedOnce = true;
    this.#started?.resolve();
  }

  /** The current session is now `opened`; `previous` (if any) and its refs are gone. */
  #replace(previous: SessionDescription | undefined, opened: SessionDescription, why: string): void {
    const lost = [...this.#refs.values()];
    this.#session = opened;
    this.#gone = undefined;
    this.#refs.clear();
    if (previous !== undefined) {
      this.#events.emit({
        type: 'session-replaced',
        from: previous.sessionId,
        to: opened.sessionId,
        lost,
        why,
      });
    }
  }

  #notification(method: string, params: unknown): void {
    if (method !== 'session.ending' || this.#session === undefined) return;
    const reason = String((params as { reason?: unknown } | undefined)?.reason ?? 'unknown');
    this.#gone = reason;
    this.#events.emit({ type: 'session-ending', sessionId: this.#session.sessionId, reason });
  }

  /** A new session when the server ended the current one while the connection stayed up. */
  async #ensureSession(): Promise<void> {
    if (this.#gone === undefined || !this.#client.ready) return;
    this.#reopening ??= (async () => {
      try {
        const previous = this.#session;
        const why = `the server ended it: ${this.#gone}`;
        const opened = (await this.#client.request('session.open', {})) as SessionDescription;
        this.#replace(previous, opened, why);
      } finally {
        this.#reopening = undefined;
      }
    })();
    await this.#reopening;
  }

  async #request(
    method: string,
    params: unknown,
    what: string,
    options?: BackendCallOptions,
  ): Promise<unknown> {
    await this.#ensureSession();
    try {
      return await this.#client.request(method, params, options?.signal);
    } catch (error) {
      throw translate(error, what);
    }
  }

  async #value(
    method: string,
    params: unknown,
    what: string,
    options?: BackendCallOptions,
  ): Promise<unknown> {
    const result = (await this.#request(method, params, what, options)) as { value?: unknown };
    const value = fromWire(result.value);
    for (const ref of collectRefs(value)) this.#refs.set(ref.id, ref);
    return value;
  }
}

function wireKwargs(kwargs: Kwargs | undefined): { kwargs?: unknown } {
  return kwargs === undefined ? {} : { kwargs: toWire({ ...kwargs }, 'kwargs') };
}

function numbers(record: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(record)) if (typeof value === 'number') out[key] = value;
  return out;
}

/** Server errors as the same errors the embedded backend throws (Python exceptions as `PythonError`). */
function translate(error: unknown, what: string): unknown {
  if (!(error instanceof RemoteError)) return error;
  if (error.code === 'PY_EXCEPTION') {
    const data = error.data;
    return new PythonError({
      type: String(data.type ?? 'Exception'),
      module: String(data.module ?? 'builtins'),
      pythonMessage: String(data.message ?? error.message),
      traceback: String(data.traceback ?? ''),
      fn: what,
    });
  }
  if (error.code === 'CANCELLED' || error.code === 'PY_ABORTED') return new CancelledError();
  return error;
}

/** A serialized `EndReport` (server) as the REPL shows it. */
function summarizeWire(report: Record<string, unknown>, sessionId: string): EndSummary {
  const list = (value: unknown) => (Array.isArray(value) ? (value as Record<string, unknown>[]) : []);
  return {
    sessionId: typeof report.sessionId === 'string' ? report.sessionId : sessionId,
    reason: String(report.reason ?? 'logout'),
    durationMs: Number(report.durationMs ?? 0),
    calls: numbers((report.calls ?? {}) as Record<string, unknown>),
    refsReleased: Number(report.refsReleased ?? 0),
    discharged: list(report.discharged).map((entry) => String(entry.label)),
    undischarged: list(report.undischarged).map((entry) => ({
      label: String(entry.label),
      why: String(entry.why),
    })),
    errors: Array.isArray(report.errors) ? report.errors.map(String) : [],
  };
}
