import { type OwnerEmitter, ownerHasEnded, ownerKind, type SessionOwner } from '@trestle/ref-registry';
import { BridgeError, BridgeErrorCode, invalidArgument } from './errors';

/**
 * Checks an owner given to `getOrCreate`: an `AbortSignal` or an emitter, not already ended.
 * The bridge watches owners itself (rather than through the ref session) so that an owner's end
 * drains the handles before the refs are released, in the same order as every other end.
 * @throws BridgeError `BRIDGE_INVALID_ARGUMENT`, `BRIDGE_OWNER_ENDED`
 */
export function checkOwner(owner: unknown, sessionId: string): SessionOwner {
  let kind: string;
  try {
    kind = ownerKind(owner);
  } catch (error) {
    throw new BridgeError(
      BridgeErrorCode.InvalidArgument,
      `session "${sessionId}": the owner must be an AbortSignal or an emitter of 'close'/'exit' with off/removeListener`,
      { cause: error, sessionId },
    );
  }
  if (kind === 'gc') {
    throw invalidArgument(
      `session "${sessionId}": a { gc } owner is not supported (a session needs a deterministic end): pass an AbortSignal or an emitter`,
      sessionId,
    );
  }
  if (ownerHasEnded(owner as SessionOwner)) {
    throw new BridgeError(BridgeErrorCode.OwnerEnded, `session "${sessionId}": its owner has already ended`, {
      sessionId,
    });
  }
  return owner as SessionOwner;
}

/** Calls `onEnd` once when a checked owner ends; returns `stop` (idempotent), which removes the listeners. */
export function watchOwner(owner: SessionOwner, onEnd: () => void): () => void {
  if (ownerKind(owner) === 'signal') {
    const signal = owner as AbortSignal;
    signal.addEventListener('abort', onEnd, { once: true });
    return () => signal.removeEventListener('abort', onEnd);
  }
  const emitter = owner as OwnerEmitter;
  let watching = true;
  const stop = (): void => {
    if (!watching) return;
    watching = false;
    const remove = (emitter.off ?? emitter.removeListener)!;
    remove.call(emitter, 'close', listener);
    remove.call(emitter, 'exit', listener);
  };
  // A child process emits `exit` and then `close`; a socket only `close`. The first one counts.
  const listener = (): void => {
    if (!watching) return;
    stop();
    onEnd();
  };
  emitter.on('close', listener);
  emitter.on('exit', listener);
  return stop;
}
