/**
 * A raw `net` Unix-socket server whose behaviour per connection is scripted, for fault tests of the
 * transport: a proper length-prefixed daemon, given bytes (garbage, a 4 GiB length prefix, a truncated
 * frame, non-object JSON), a close in the middle of a call, silence, a one-byte-per-interval trickle,
 * or a script that sees decoded requests and replies at will. Every socket and timer is tracked and
 * destroyed on `stop()`. Test support only.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { frameJson, lengthPrefixedJson } from '../codec-length';
import type { KernelRequest } from '../types';
import { tempSocketPath } from './socket-path';

/** What the server does on a connection (chosen when the connection is accepted). */
export type FaultBehaviour =
  /** A proper length-prefixed daemon: replies `{ ok: true, method, params }` (with the request's id). */
  | { readonly kind: 'serve' }
  /** When the first request bytes arrive: writes `bytes`, then closes the connection if `thenClose`. */
  | { readonly kind: 'reply'; readonly bytes: Uint8Array; readonly thenClose?: boolean }
  /** When the first request bytes arrive: closes the connection (dies in the middle of the call). */
  | { readonly kind: 'close' }
  /** Reads everything, never answers. */
  | { readonly kind: 'silent' }
  /** When the first request bytes arrive: writes `bytes` one byte every `intervalMs`. */
  | { readonly kind: 'trickle'; readonly bytes: Uint8Array; readonly intervalMs: number }
  /** Decodes length-prefixed requests and hands each to `onRequest` with the connection. */
  | {
      readonly kind: 'script';
      readonly onRequest: (request: KernelRequest, connection: FaultConnection) => void;
    };

/** A connection as a script sees it. */
export interface FaultConnection {
  /** 1-based, in accept order. */
  readonly id: number;
  /** Writes raw bytes. */
  write(bytes: Uint8Array): void;
  /** Writes a length-prefixed reply (with `id` when given). */
  reply(body: Record<string, unknown>, id?: number): void;
  /** Ends the connection gracefully. */
  end(): void;
}

export interface FaultServer {
  readonly path: string;
  /** The behaviour given to connections accepted from now on. */
  behaviour: FaultBehaviour;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections open now. */
  readonly open: number;
  /** Request chunks received (all connections). */
  readonly chunks: number;
  /** Requests decoded by `serve` and `script` connections, in arrival order. */
  readonly requests: readonly KernelRequest[];
  /** Resolves once `count` connections have received request bytes. */
  requestsSeen(count: number): Promise<void>;
  /** Resolves once `count` requests were decoded (see `requests`). */
  requestCount(count: number): Promise<void>;
  /** Resolves once the server saw `count` connections close. */
  closedCount(count: number): Promise<void>;
  stop(): Promise<void>;
}

const codec = lengthPrefixedJson();

/** Starts a fault server on a fresh temporary socket path. */
export async function startFaultServer(behaviour: FaultBehaviour = { kind: 'serve' }): Promise<FaultServer> {
  const path = tempSocketPath('f');
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setInterval>>();
  let accepted = 0;
  let seen = 0;
  let closed = 0;
  let chunks = 0;
  const requests: KernelRequest[] = [];
  const waiters: { check: () => boolean; resolve: () => void }[] = [];
  const notify = () => {
    for (const waiter of [...waiters])
      if (waiter.check()) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
  };
  const waitFor = (check: () => boolean) =>
    new Promise<void>((resolve) => {
      if (check()) resolve();
      else waiters.push({ check, resolve });
    });

  const state = { behaviour };
  const server: Server = createServer({ allowHalfOpen: false }, (socket) => {
    accepted++;
    const id = accepted;
    const current = state.behaviour;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      closed++;
      notify();
    });
    const connection: FaultConnection = {
      id,
      write: (bytes) => {
        if (!socket.destroyed) socket.write(bytes);
      },
      reply: (body, replyId) => {
        if (!socket.destroyed) socket.write(codec.encodeReply({ id: replyId, body }));
      },
      end: () => socket.end(),
    };
    const decoder = codec.requestDecoder({ maxFrameBytes: 16 * 1024 * 1024 });
    let first = true;
    socket.on('data', (chunk: Buffer) => {
      chunks++;
      if (first) {
        first = false;
        seen++;
        notify();
        act(current, socket, timers);
      }
      if (current.kind === 'serve' || current.kind === 'script') {
        let decodedRequests: KernelRequest[];
        try {
          decodedRequests = decoder.push(chunk).map((frame) => frame.request);
        } catch {
          socket.destroy();
          return;
        }
        for (const request of decodedRequests) {
          requests.push(request);
          notify();
          if (current.kind === 'script') current.onRequest(request, connection);
          else connection.reply({ ok: true, method: request.method, params: request.params }, request.id);
        }
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });

  return {
    path,
    get behaviour() {
      return state.behaviour;
    },
    set behaviour(next: FaultBehaviour) {
      state.behaviour = next;
    },
    get accepted() {
      return accepted;
    },
    get open() {
      return sockets.size;
    },
    get chunks() {
      return chunks;
    },
    requests,
    requestCount: (count) => waitFor(() => requests.length >= count),
    requestsSeen: (count) => waitFor(() => seen >= count),
    closedCount: (count) => waitFor(() => closed >= count),
    async stop() {
      for (const timer of timers) clearInterval(timer);
      timers.clear();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Does what `behaviour` says when a connection's first request bytes arrive. */
function act(behaviour: FaultBehaviour, socket: Socket, timers: Set<ReturnType<typeof setInterval>>): void {
  switch (behaviour.kind) {
    case 'reply':
      socket.write(behaviour.bytes);
      if (behaviour.thenClose) socket.end();
      return;
    case 'close':
      socket.destroy();
      return;
    case 'trickle': {
      let offset = 0;
      const send = () => {
        if (socket.destroyed || offset >= behaviour.bytes.length) {
          clearInterval(timer);
          timers.delete(timer);
          return;
        }
        socket.write(behaviour.bytes.subarray(offset, offset + 1));
        offset++;
      };
      const timer = setInterval(send, behaviour.intervalMs);
      timers.add(timer);
      socket.once('close', () => {
        clearInterval(timer);
        timers.delete(timer);
      });
      send();
      return;
    }
    default:
      return;
  }
}

/** Bytes of common faulty replies. */
export const faultBytes = {
  /** A length prefix of 0xFFFFFFFF (4 GiB), then a few bytes. */
  hugePrefix: (): Uint8Array => Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x7b, 0x7d),
  /** A plausible length, then bytes that are not UTF-8 JSON. */
  garbage: (): Uint8Array => Uint8Array.of(0, 0, 0, 6, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xfe),
  /** The first half of a valid frame (use with `thenClose`). */
  truncated: (): Uint8Array => {
    const frame = frameJson(JSON.stringify({ ok: true, padding: 'x'.repeat(64) }));
    return frame.subarray(0, Math.floor(frame.length / 2));
  },
  /** A whole frame holding `json` (e.g. `[1,2]`, `"x"`, `42`). */
  json: (json: string): Uint8Array => frameJson(json),
};
