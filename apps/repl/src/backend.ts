/**
 * The one interface the REPL talks to. Two implementations: `embeddedBackend` (python-adapter and a
 * BridgeManager in this process) and `remoteBackend` (the reference server over `@trestle/ws-bridge`).
 * Both hand out python-adapter values, with objects as ref-registry `Ref`s.
 */
import type { Kwargs } from '@trestle/python-adapter';
import type { Ref } from '@trestle/ref-registry';

/** Options of one Python call. */
export interface BackendCallOptions {
  /** Aborts the call: Python is interrupted (embedded) or `rpc.cancel` is sent (remote). */
  readonly signal?: AbortSignal | undefined;
}

/** What `.session` shows. */
export interface SessionView {
  readonly id: string;
  readonly tier: string;
  readonly ageMs: number;
  readonly tenant?: string | undefined;
  readonly refs: number;
  readonly handles: number;
  /** The bridge's call counters: metered, succeeded, failed, denied, charged, ... */
  readonly calls: Readonly<Record<string, number>>;
}

/** One live ref of the session (`.refs`). */
export interface RefView {
  readonly ref: Ref;
  readonly ageMs: number;
}

/** The session's budget (`.budget`). `remaining: null` for an unlimited tier. */
export interface BudgetView {
  readonly tier: string;
  readonly remaining: number | null;
  readonly capacity: number | null;
  readonly refillPerSec: number | null;
  readonly fullAfterMs: number;
}

/** One open handle: an object that holds an OS resource and must be closed (`.handles`). */
export interface HandleView {
  readonly id: string;
  readonly obligation: string;
  readonly label: string;
  readonly ageMs: number;
}

/** What ending a session reports (from the bridge's `EndReport`). */
export interface EndSummary {
  readonly sessionId: string;
  readonly reason: string;
  readonly durationMs: number;
  readonly calls: Readonly<Record<string, number>>;
  readonly refsReleased: number;
  readonly discharged: readonly string[];
  readonly undischarged: readonly { readonly label: string; readonly why: string }[];
  readonly errors: readonly string[];
}

/** Things that happen outside an evaluation. */
export type BackendEvent =
  /** The connection dropped; the backend is reconnecting. */
  | { readonly type: 'disconnected'; readonly why: string }
  /** The connection is back and the session was resumed with its refs. */
  | { readonly type: 'resumed'; readonly sessionId: string; readonly refs: number }
  /** The session could not be kept (resume refused, server restart, worker lost): a new one replaced it. */
  | {
      readonly type: 'session-replaced';
      readonly from: string;
      readonly to: string;
      readonly lost: readonly Ref[];
      readonly why: string;
    }
  /** The other side is ending the session (idle, budget, shutdown). */
  | { readonly type: 'session-ending'; readonly sessionId: string; readonly reason: string }
  /** A line Python printed (embedded mode). */
  | { readonly type: 'output'; readonly stream: 'stdout' | 'stderr'; readonly line: string }
  /** Something worth telling the user. */
  | { readonly type: 'warning'; readonly message: string };

/** Options of {@link Backend.end}. */
export interface EndOptions {
  /** Open a new session right after. */
  readonly reopen: boolean;
  /** Gives up waiting (remote: while disconnected). */
  readonly signal?: AbortSignal | undefined;
}

/** A Python bridge the REPL drives. */
export interface Backend {
  readonly mode: 'embedded' | 'remote';
  /** One line for the banner: `embedded (python3 3.11.7)`, `remote ws://host/rpc`. */
  readonly description: string;
  /** The current session's id (`undefined` before `start` and between `end` and the next session). */
  readonly sessionId: string | undefined;
  /** Starts Python or connects, and opens the first session. */
  start(): Promise<void>;
  call(
    module: string,
    fn: string,
    args: readonly unknown[],
    kwargs: Kwargs | undefined,
    options?: BackendCallOptions,
  ): Promise<unknown>;
  method(
    ref: Ref,
    name: string,
    args: readonly unknown[],
    kwargs: Kwargs | undefined,
    options?: BackendCallOptions,
  ): Promise<unknown>;
  /** Reads `ref.name`, or `module.name` when `target` is a module name. */
  attr(target: Ref | string, name: string, options?: BackendCallOptions): Promise<unknown>;
  /** Python `dir()` of a ref or of a module (by name: imports it). Sorted. */
  dir(target: Ref | string, options?: BackendCallOptions): Promise<string[]>;
  /** Importable top-level module names, when the backend can list them. */
  modules?(options?: BackendCallOptions): Promise<string[]>;
  /** Releases refs now; resolves with how many were live. */
  release(refs: readonly Ref[]): Promise<number>;
  session(): Promise<SessionView>;
  refs(): Promise<RefView[]>;
  budget(): Promise<BudgetView>;
  handles(): Promise<HandleView[]>;
  /**
   * Ends the current session and reports it. With `reopen`, a new session is opened at once.
   * Resolves `undefined` when there was no session to end.
   */
  end(options: EndOptions): Promise<EndSummary | undefined>;
  /** Stops Python / the connection. Call `end` first to get the report. */
  close(): Promise<void>;
  /** Subscribes to events; returns the unsubscribe function. */
  on(listener: (event: BackendEvent) => void): () => void;
}

/** A small listener set for backends. */
export class Emitter {
  readonly #listeners = new Set<(event: BackendEvent) => void>();

  on(listener: (event: BackendEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(event: BackendEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A listener's failure must not break the backend.
      }
    }
  }
}
