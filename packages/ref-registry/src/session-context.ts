import { AsyncLocalStorage } from 'node:async_hooks';
import { RefRegistryError, RefRegistryErrorCode } from './errors';
import { SessionOwnerConflictError } from './session-errors';
import { type ReleasableHandle, releaseWithCause } from './session-handle';
import type { OpenSessionOptions, SessionHandle, SessionManager, SessionOptions } from './session-types';

/** Options of {@link SessionContext.withSession}. */
export interface WithSessionOptions extends SessionOptions {
  /**
   * An explicit session id, registered when `withSession` is called. It must not be registered
   * already unless the session and this scope are both `shared`: two scopes never share a session
   * by accident. @default a fresh id, registered on first use
   */
  readonly sessionId?: string;
  /**
   * A named session: shared across async contexts on purpose (see {@link SessionContext.named}).
   * Never released when the scope settles.
   */
  readonly name?: string;
  /**
   * Keep the scope's session after the scope settles (its owner or an explicit release ends it).
   * Shared and named sessions are always kept: another holder may still use them.
   * @default false
   */
  readonly keep?: boolean;
}

/**
 * Session scopes on `AsyncLocalStorage`: the Node counterpart of a process's session. Every call
 * inside `withSession(fn)`, across awaits, sees the same session; concurrent scopes never see each
 * other's.
 */
export interface SessionContext {
  readonly manager: SessionManager;
  /** Registers a new session with a unique id (not bound to any scope). Release it, or `await using` it. */
  create(options?: OpenSessionOptions): SessionHandle;
  /**
   * The session of the current scope, or `undefined` outside any scope (and after the scope ended).
   * A scope's session is registered with the manager here, on first use.
   */
  current(): SessionHandle | undefined;
  /**
   * The current session; like `current()` but never `undefined`.
   * @throws RefRegistryError `REF_SESSION_NOT_FOUND` outside any scope: there is no implicit
   *   process-wide session, which concurrent requests would share by accident.
   */
  ensure(): SessionHandle;
  /**
   * Runs `fn` in a scope with its own session (registered on first use). Nested scopes restore the
   * outer one. When `fn` settles (returns, throws, resolves or rejects) the session is released
   * (cause `scope-ended`) unless `keep: true` or it is a shared or named session. Returns what `fn` returns.
   * The release is local at once; the releaser call runs in the background (`manager.flush()` awaits it).
   * @throws SessionOwnerConflictError for a `sessionId` registered by someone else and not shared.
   */
  withSession<T>(fn: () => T): T;
  withSession<T>(options: WithSessionOptions, fn: () => T): T;
  /**
   * Registers (or returns) the shared session `name`, for use across async contexts on purpose.
   * Without an owner it lives until released; with owners, until the last one ends.
   * @throws SessionOwnerConflictError when `name` is registered as a session that is not shared.
   */
  named(name: string, options?: SessionOptions): SessionHandle;
  /** Runs `fn` with `session` as the current session. The session is not released at the end. */
  run<T>(session: SessionHandle, fn: () => T): T;
}

class Scope {
  ended = false;
  constructor(
    public handle: SessionHandle | undefined,
    readonly options: WithSessionOptions | undefined,
    /** Whether the scope releases its session when it settles. */
    readonly owning: boolean,
  ) {}
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

class Context implements SessionContext {
  private readonly storage = new AsyncLocalStorage<Scope>();
  constructor(readonly manager: SessionManager) {}

  create(options?: OpenSessionOptions): SessionHandle {
    return this.manager.open(options);
  }

  current(): SessionHandle | undefined {
    const scope = this.storage.getStore();
    if (scope === undefined) return undefined;
    if (scope.ended) return scope.handle?.released === false ? scope.handle : undefined;
    scope.handle ??= this.manager.open(scope.options);
    return scope.handle;
  }

  ensure(): SessionHandle {
    const session = this.current();
    if (session) return session;
    throw new RefRegistryError(
      RefRegistryErrorCode.SessionNotFound,
      'no session in this async context: run the work inside withSession(), or pass a session explicitly',
    );
  }

  withSession<T>(optionsOrFn: WithSessionOptions | (() => T), maybeFn?: () => T): T {
    let options: WithSessionOptions | undefined;
    let fn: () => T;
    if (typeof optionsOrFn === 'function') fn = optionsOrFn;
    else {
      options = optionsOrFn;
      if (typeof maybeFn !== 'function') {
        throw new RefRegistryError(
          RefRegistryErrorCode.InvalidArgument,
          'withSession(options, fn) needs a function',
        );
      }
      fn = maybeFn;
    }
    const scope = this.scopeFor(options);
    let result: T;
    try {
      result = this.storage.run(scope, fn);
    } catch (error) {
      this.end(scope);
      throw error;
    }
    if (!isThenable(result)) {
      this.end(scope);
      return result;
    }
    return result.then(
      (value) => {
        this.end(scope);
        return value;
      },
      (error: unknown) => {
        this.end(scope);
        throw error;
      },
    ) as T;
  }

  named(name: string, options: SessionOptions = {}): SessionHandle {
    const existing = this.manager.session(name);
    if (existing && existing.info()?.shared === false) {
      throw new SessionOwnerConflictError(
        name,
        'is registered as a session that is not shared, so it cannot be named',
      );
    }
    return this.manager.registerSession(name, { ...options, shared: true });
  }

  run<T>(session: SessionHandle, fn: () => T): T {
    return this.storage.run(new Scope(session, undefined, false), fn);
  }

  private scopeFor(options: WithSessionOptions | undefined): Scope {
    if (options === undefined) return new Scope(undefined, undefined, true);
    const { name, sessionId, keep, ...sessionOptions } = options;
    if (name !== undefined) return new Scope(this.named(name, sessionOptions), undefined, false);
    const owning = keep !== true && sessionOptions.shared !== true;
    if (sessionId !== undefined) {
      // Explicit ids are registered at once, so a conflict surfaces here and not at first use.
      return new Scope(this.manager.open({ ...sessionOptions, id: sessionId }), undefined, owning);
    }
    return new Scope(undefined, sessionOptions, owning);
  }

  private end(scope: Scope): void {
    scope.ended = true;
    const handle = scope.handle;
    if (scope.owning && handle !== undefined && !handle.released) {
      void (handle as ReleasableHandle)[releaseWithCause]('scope-ended');
    }
  }
}

/**
 * Creates a session context over `manager`.
 * @example
 * ```ts
 * const context = createSessionContext(createSessionManager());
 * await context.withSession(async () => {
 *   const session = context.ensure(); // registered here, released when the block settles
 *   session.registerRef({ typeName: 'Pattern', module: 're' });
 * });
 * ```
 */
export function createSessionContext(manager: SessionManager): SessionContext {
  return new Context(manager);
}
