import WebSocket, { type ClientOptions } from 'ws';
import type { Connection, DialEvents, Dialer, DialRequest, WireData } from './types';

/** Options of {@link wsDialer}. */
export interface WsDialerOptions {
  /**
   * Extra `ws` client options (TLS, `maxPayload`, `perMessageDeflate`, an `agent`, …). `headers` are
   * merged under the bridge's; `handshakeTimeout` is left to the bridge's `connectTimeoutMs`.
   * @default {}
   */
  readonly clientOptions?: Omit<ClientOptions, 'headers' | 'handshakeTimeout'>;
  /** The `ws` constructor (a different copy or a subclass). @default WebSocket from `ws` */
  readonly WebSocket?: typeof WebSocket;
}

const noop = () => {};

/**
 * The Node dialer, on `ws`: sends the token as a header, reports a refused upgrade with its HTTP status
 * and headers (`unexpected-response`), and supports protocol pings. The default dialer.
 * @example
 * ```ts
 * createBridge({ url, tokenProvider, dialer: wsDialer({ clientOptions: { maxPayload: 1 << 20 } }) });
 * ```
 */
export function wsDialer({
  clientOptions = {},
  WebSocket: Constructor = WebSocket,
}: WsDialerOptions = {}): Dialer {
  return {
    name: 'ws',
    supportsHeaders: true,
    dial(request: DialRequest, events: DialEvents): Connection {
      const socket = new Constructor(request.url, [...request.protocols], {
        ...clientOptions,
        headers: { ...request.headers },
      });
      let ended = false;
      const end = () => {
        ended = true;
        socket.removeAllListeners('open');
        socket.removeAllListeners('message');
        socket.removeAllListeners('pong');
        socket.removeAllListeners('close');
        socket.removeAllListeners('unexpected-response');
        // Keep one 'error' listener: ws may still emit after we are done (an aborted handshake).
        socket.removeAllListeners('error');
        socket.on('error', noop);
      };
      socket.on('open', () => {
        if (!ended) events.open();
      });
      socket.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
        if (ended) return;
        const buffer = Array.isArray(data)
          ? Buffer.concat(data)
          : data instanceof ArrayBuffer
            ? Buffer.from(data)
            : data;
        events.message(isBinary ? buffer : buffer.toString('utf8'), isBinary);
      });
      socket.on('pong', () => {
        if (!ended) events.pong();
      });
      socket.on('error', (error: Error) => {
        if (!ended) events.error(error);
      });
      socket.on('unexpected-response', (_request, response) => {
        if (ended) return;
        const responseHeaders: Record<string, string | undefined> = {};
        for (const [name, value] of Object.entries(response.headers))
          responseHeaders[name] = Array.isArray(value) ? value.join(', ') : value;
        end();
        events.rejected(response.statusCode ?? 0, responseHeaders);
        socket.terminate();
      });
      socket.on('close', (code: number, reason: Buffer) => {
        if (ended) return;
        end();
        events.close(code, reason.toString('utf8'));
      });
      return {
        get bufferedAmount() {
          return socket.bufferedAmount;
        },
        send(data: WireData, written?: () => void) {
          socket.send(data, written ? () => written() : undefined);
        },
        close(code, reason) {
          socket.close(code, reason);
        },
        terminate() {
          socket.terminate();
        },
        ping() {
          if (socket.readyState === WebSocket.OPEN) socket.ping();
        },
      };
    },
  };
}
