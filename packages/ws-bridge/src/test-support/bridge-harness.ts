// Shared helpers of the bridge integration tests (the fault table, OAuth end to end).
import type { Bridge, BridgeEvents, Clock, FailureClass, Metrics } from '../types';

/** A small counting `Metrics` implementation. */
export class CountingMetrics implements Metrics {
  connections = 0;
  disconnects: Record<FailureClass, number> = { transient: 0, permanent: 0 };
  tokenRefreshes = 0;
  reconnectAttempts = 0;
  status: 0 | 1 = 0;
  incConnections(): void {
    this.connections += 1;
  }
  incDisconnects(failureClass: FailureClass): void {
    this.disconnects[failureClass] += 1;
  }
  incTokenRefreshes(): void {
    this.tokenRefreshes += 1;
  }
  setConnectionStatus(status: 0 | 1): void {
    this.status = status;
  }
  incReconnectAttempts(): void {
    this.reconnectAttempts += 1;
  }
  snapshot() {
    return {
      connections: this.connections,
      disconnects: { ...this.disconnects },
      tokenRefreshes: this.tokenRefreshes,
      reconnectAttempts: this.reconnectAttempts,
    };
  }
}

/** The system clock, counting the timers the bridge has pending (every bridge schedule runs on it). */
export function trackingClock(): Clock & { readonly pending: number } {
  const live = new Set<ReturnType<typeof setTimeout>>();
  return {
    now: () => Date.now(),
    setTimeout: (callback, ms) => {
      const handle = setTimeout(() => {
        live.delete(handle);
        callback();
      }, ms);
      live.add(handle);
      return handle;
    },
    clearTimeout: (handle) => {
      live.delete(handle as ReturnType<typeof setTimeout>);
      clearTimeout(handle as ReturnType<typeof setTimeout>);
    },
    get pending() {
      return live.size;
    },
  };
}

/** The next `event` (matching `predicate`) within `ms`, else a rejection naming it. */
export function nextEvent<TEvent extends keyof BridgeEvents>(
  bridge: Bridge,
  event: TEvent,
  ms = 5_000,
  predicate: (payload: BridgeEvents[TEvent]) => boolean = () => true,
): Promise<BridgeEvents[TEvent]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no '${event}' event within ${ms} ms (state ${bridge.state})`));
    }, ms);
    const off = bridge.on(event, (payload) => {
      if (!predicate(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/** `promise` settled within `ms`, else a rejection. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

const _MIN_BACKOFF_MS = 20;
const _CONNECT_TIMEOUT_MS = 400;
const _HEARTBEAT = { intervalMs: 80, timeoutMs: 80 };
