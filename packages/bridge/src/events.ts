import { BridgeError, BridgeErrorCode } from './errors';
import type { BridgeEvent, BridgeEventType, SessionMeta } from './types';

type Listener<TMeta extends SessionMeta> = (event: BridgeEvent<TMeta>) => void;

/** The manager's typed events: `on(type)` listeners, then the `onEvent` observer. @internal */
export class EventHub<TMeta extends SessionMeta> {
  private readonly listeners = new Map<BridgeEventType, Listener<TMeta>[]>();
  constructor(private readonly onEvent: Listener<TMeta> | undefined) {}

  /** Whether anyone receives `type`: events are only built when someone does. */
  has(type: BridgeEventType): boolean {
    return this.onEvent !== undefined || this.listeners.has(type);
  }

  on(type: BridgeEventType, listener: Listener<TMeta>): () => void {
    // Copy on write: emitting iterates a snapshot, so (un)subscribing inside a listener is safe.
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
    return () => {
      const next = (this.listeners.get(type) ?? []).filter((entry) => entry !== listener);
      if (next.length > 0) this.listeners.set(type, next);
      else this.listeners.delete(type);
    };
  }

  emit(event: BridgeEvent<TMeta>): void {
    const list = this.listeners.get(event.type);
    if (list) for (const listener of list) deliver(listener, event);
    if (this.onEvent) deliver(this.onEvent, event);
  }
}

function deliver<TMeta extends SessionMeta>(listener: Listener<TMeta>, event: BridgeEvent<TMeta>): void {
  try {
    listener(event);
  } catch (error) {
    // An observer's bug must not break a session's end; it is reported, never swallowed.
    process.emitWarning(
      new BridgeError(
        BridgeErrorCode.ListenerFailed,
        `a '${event.type}' listener threw (session "${event.session.id}")`,
        { cause: error, sessionId: event.session.id },
      ),
    );
  }
}
