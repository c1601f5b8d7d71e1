import { RefRegistryError, RefRegistryErrorCode } from './errors';
import { describe } from './ref';

/**
 * Anything that emits `close` or `exit` when it ends and lets listeners be removed again:
 * a `net.Socket`, a `ChildProcess`, a stream, a `ws` WebSocket, a plain `EventEmitter`.
 */
export interface OwnerEmitter {
  on(event: 'close' | 'exit', listener: () => void): unknown;
  off?(event: 'close' | 'exit', listener: () => void): unknown;
  removeListener?(event: 'close' | 'exit', listener: () => void): unknown;
}

/**
 * An owner that ends when `gc` is garbage collected (tracked by a `FinalizationRegistry`).
 * The session never keeps `gc` alive. Collection is a backstop, not a schedule: it may come late.
 */
export interface GcOwner {
  readonly gc: object;
}

/**
 * What a session's lifetime is tied to. How its end is detected:
 * - `AbortSignal`: the `abort` event; already ended when `signal.aborted`.
 * - emitter: the first `close` or `exit` event; already ended when it is a finished child process
 *   (`typeof exitCode === 'number' || typeof signalCode === 'string'`) or a destroyed/closed stream
 *   or socket (`destroyed === true || closed === true`). No `error` listener is added, so an owner's
 *   errors behave exactly as without the session.
 * - `{ gc: object }`: the object's collection, seen by a `FinalizationRegistry` callback.
 */
export type SessionOwner = AbortSignal | OwnerEmitter | GcOwner;

/** The kind of an owner, as detected by {@link ownerKind}. */
export type OwnerKind = 'signal' | 'emitter' | 'gc';

/** One owner watched for one session. Created by {@link linkOwner}. @internal */
export interface OwnerLink<TSession = unknown> {
  readonly kind: OwnerKind;
  readonly session: TSession;
  /** Whether `owner` is the owner this link watches (for `gc` owners: the same collected object). */
  matches(owner: SessionOwner): boolean;
  /** Removes the listener or unregisters from the `FinalizationRegistry`. Idempotent. */
  stop(): void;
}

type EndHandler<TSession> = (link: OwnerLink<TSession>) => void;

function isSignal(owner: object): owner is AbortSignal {
  if (owner instanceof AbortSignal) return true;
  const candidate = owner as Partial<AbortSignal>;
  return (
    typeof candidate.aborted === 'boolean' &&
    typeof candidate.addEventListener === 'function' &&
    typeof candidate.removeEventListener === 'function'
  );
}

function isEmitter(owner: object): owner is OwnerEmitter {
  const candidate = owner as Partial<OwnerEmitter>;
  return (
    typeof candidate.on === 'function' &&
    (typeof candidate.off === 'function' || typeof candidate.removeListener === 'function')
  );
}

/**
 * Detects the kind of an owner.
 * @throws RefRegistryError `REF_INVALID_ARGUMENT` for anything that is not a {@link SessionOwner}.
 */
export function ownerKind(owner: unknown): OwnerKind {
  if (typeof owner === 'object' && owner !== null) {
    if (isSignal(owner)) return 'signal';
    if (isEmitter(owner)) return 'emitter';
    const target = (owner as Partial<GcOwner>).gc;
    if ((typeof target === 'object' && target !== null) || typeof target === 'function') return 'gc';
  }
  throw new RefRegistryError(
    RefRegistryErrorCode.InvalidArgument,
    `a session owner must be an AbortSignal, an emitter of 'close'/'exit' with off/removeListener, or { gc: object }; got ${describe(owner)}`,
  );
}

/** Whether the owner has already ended (see {@link SessionOwner} for the checks). */
export function ownerHasEnded(owner: SessionOwner): boolean {
  return hasEnded(owner, ownerKind(owner));
}

function hasEnded(owner: SessionOwner, kind: OwnerKind): boolean {
  if (kind === 'signal') return (owner as AbortSignal).aborted;
  if (kind === 'gc') return false;
  const state = owner as { exitCode?: unknown; signalCode?: unknown; destroyed?: unknown; closed?: unknown };
  return (
    typeof state.exitCode === 'number' ||
    typeof state.signalCode === 'string' ||
    state.destroyed === true ||
    state.closed === true
  );
}

class SignalLink<TSession> implements OwnerLink<TSession> {
  readonly kind = 'signal';
  private signal: AbortSignal | undefined;
  constructor(
    signal: AbortSignal,
    readonly session: TSession,
    private readonly onEnd: EndHandler<TSession>,
  ) {
    this.signal = signal;
    // The link is the listener (`handleEvent`): no closure per session.
    signal.addEventListener('abort', this, { once: true });
  }
  handleEvent(): void {
    if (this.signal === undefined) return;
    this.signal = undefined;
    this.onEnd(this);
  }
  matches(owner: SessionOwner): boolean {
    return owner === this.signal;
  }
  stop(): void {
    this.signal?.removeEventListener('abort', this);
    this.signal = undefined;
  }
}

class EmitterLink<TSession> implements OwnerLink<TSession> {
  readonly kind = 'emitter';
  private emitter: OwnerEmitter | undefined;
  private readonly listener = () => {
    if (this.emitter === undefined) return;
    this.stop();
    this.onEnd(this);
  };
  constructor(
    emitter: OwnerEmitter,
    readonly session: TSession,
    private readonly onEnd: EndHandler<TSession>,
  ) {
    this.emitter = emitter;
    // A child process emits `exit` and then `close`; a socket only `close`. The first one counts.
    emitter.on('close', this.listener);
    emitter.on('exit', this.listener);
  }
  matches(owner: SessionOwner): boolean {
    return owner === this.emitter;
  }
  stop(): void {
    const emitter = this.emitter;
    if (emitter === undefined) return;
    this.emitter = undefined;
    const remove = (emitter.off ?? emitter.removeListener)!;
    remove.call(emitter, 'close', this.listener);
    remove.call(emitter, 'exit', this.listener);
  }
}

let registry: FinalizationRegistry<GcLink<unknown>> | undefined;

class GcLink<TSession> implements OwnerLink<TSession> {
  readonly kind = 'gc';
  // Weak: the session must not keep its owner alive, or it would never be collected.
  private target: WeakRef<object> | undefined;
  constructor(
    target: object,
    readonly session: TSession,
    private readonly onEnd: EndHandler<TSession>,
  ) {
    this.target = new WeakRef(target);
    registry ??= new FinalizationRegistry((link) => link.collected());
    // The held value is the link (which holds no strong reference to the target); it is also the
    // unregister token.
    registry.register(target, this as GcLink<unknown>, this);
  }
  collected(): void {
    if (this.target === undefined) return;
    this.target = undefined;
    this.onEnd(this);
  }
  matches(owner: SessionOwner): boolean {
    const target = (owner as Partial<GcOwner>).gc;
    return target !== undefined && this.target !== undefined && this.target.deref() === target;
  }
  stop(): void {
    if (this.target === undefined) return;
    this.target = undefined;
    registry?.unregister(this);
  }
}

/**
 * Starts watching `owner`; `onEnd` runs once when it ends unless `stop()` ran first.
 * Returns `undefined` (and watches nothing) when the owner has already ended.
 * @internal
 * @throws RefRegistryError `REF_INVALID_ARGUMENT` for anything that is not a {@link SessionOwner}.
 */
export function linkOwner<TSession>(
  owner: SessionOwner,
  session: TSession,
  onEnd: EndHandler<TSession>,
): OwnerLink<TSession> | undefined {
  const kind = ownerKind(owner);
  if (hasEnded(owner, kind)) return undefined;
  if (kind === 'signal') return new SignalLink(owner as AbortSignal, session, onEnd);
  if (kind === 'emitter') return new EmitterLink(owner as OwnerEmitter, session, onEnd);
  return new GcLink((owner as GcOwner).gc, session, onEnd);
}
