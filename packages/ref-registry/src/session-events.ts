import { RefRegistryError, RefRegistryErrorCode } from './errors';
import type { SessionManagerEvent, SessionManagerEventMap, SessionManagerEventType } from './session-types';

type Listener = (event: SessionManagerEvent) => void;

/** The manager's typed events: `on(type)` listeners, then the `onEvent` observer. @internal */
export class EventHub {
  private readonly listeners = new Map<SessionManagerEventType, Listener[]>();
  constructor(private readonly onEvent: Listener | undefined) {}

  /** Whether anyone receives `type`: events are only built when someone does. */
  has(type: SessionManagerEventType): boolean {
    return this.onEvent !== undefined || this.listeners.has(type);
  }

  on<K extends SessionManagerEventType>(
    type: K,
    listener: (event: Extract<SessionManagerEvent, { type: K }>) => void,
  ): () => void {
    // Copy on write: emitting iterates a snapshot, so (un)subscribing inside a listener is safe.
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener as Listener]);
    return () => {
      const next = (this.listeners.get(type) ?? []).filter((entry) => entry !== listener);
      if (next.length > 0) this.listeners.set(type, next);
      else this.listeners.delete(type);
    };
  }

  emit<K extends SessionManagerEventType>(event: { readonly type: K } & SessionManagerEventMap[K]): void {
    const list = this.listeners.get(event.type);
    if (list) for (const listener of list) deliver(listener, event as SessionManagerEvent);
    if (this.onEvent) deliver(this.onEvent, event as SessionManagerEvent);
  }
}

function deliver(listener: Listener, event: SessionManagerEvent): void {
  try {
    listener(event);
  } catch (error) {
    // An observer's bug must not break a release; it is reported, not swallowed.
    process.emitWarning(
      new RefRegistryError(RefRegistryErrorCode.InvalidArgument, `a '${event.type}' listener threw`, {
        cause: error,
      }),
    );
  }
}
