import type { Connection, DialEvents, Dialer, DialRequest, WireData } from './types';

/** The WHATWG `WebSocket` surface this dialer uses (browsers, Deno, Bun, Node >= 22). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  binaryType: string;
  send(data: string | ArrayBufferLike | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: never) => void): void;
  removeEventListener(type: string, listener: (event: never) => void): void;
}

/** A WHATWG `WebSocket` constructor. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/**
 * A dialer on any WHATWG `WebSocket` (browsers): no headers (use `tokenTransport` `{ query }` or
 * `{ subprotocol }`), no protocol pings (set `heartbeat.ping` for an application-level one), and a
 * refused upgrade shows as a close 1006.
 * @example
 * ```ts
 * createBridge({ url, tokenProvider, dialer: webSocketDialer(WebSocket), tokenTransport: { query: 'access_token' } });
 * ```
 */
export function webSocketDialer(WebSocketClass: WebSocketConstructor): Dialer {
  return {
    name: 'WebSocket',
    supportsHeaders: false,
    dial(request: DialRequest, events: DialEvents): Connection {
      const socket = new WebSocketClass(request.url, [...request.protocols]);
      socket.binaryType = 'arraybuffer';
      let ended = false;
      const onOpen = () => {
        if (!ended) events.open();
      };
      const onMessage = (event: { data: unknown }) => {
        if (ended) return;
        if (typeof event.data === 'string') events.message(event.data, false);
        else if (event.data instanceof ArrayBuffer) events.message(new Uint8Array(event.data), true);
      };
      const onError = () => {
        if (!ended) events.error(new Error('WebSocket error'));
      };
      const onClose = (event: { code: number; reason: string }) => {
        if (ended) return;
        ended = true;
        socket.removeEventListener('open', onOpen);
        socket.removeEventListener('message', onMessage as (event: never) => void);
        socket.removeEventListener('error', onError);
        socket.removeEventListener('close', onClose as (event: never) => void);
        events.close(event.code, event.reason);
      };
      socket.addEventListener('open', onOpen);
      socket.addEventListener('message', onMessage as (event: never) => void);
      socket.addEventListener('error', onError);
      socket.addEventListener('close', onClose as (event: never) => void);
      return {
        get bufferedAmount() {
          return socket.bufferedAmount;
        },
        send(data: WireData) {
          socket.send(data);
        },
        close(code, reason) {
          socket.close(code, reason);
        },
        terminate() {
          // No terminate in the WHATWG API: report the end now; the browser finishes the close.
          socket.close(1000, 'terminated');
          onClose({ code: 1006, reason: 'terminated' });
        },
      };
    },
  };
}
