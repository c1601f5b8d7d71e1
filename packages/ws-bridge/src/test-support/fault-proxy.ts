/**
 * A fault-injecting TCP proxy on 127.0.0.1 between a client (the bridge) and a target server (a real
 * `ws` server). Test support only: no dependencies beyond `node:net`.
 *
 * Modes (switch at any time with `setMode`):
 * - `pass`: forward both directions (with TCP backpressure).
 * - `blackhole`: a frozen peer. Accept, read and discard everything in both directions, never answer,
 *   never close. Existing connections freeze too (queued data is discarded, FIN and close from either
 *   side are not passed on). Leaving `blackhole` does not repair a frozen connection: its discarded
 *   bytes are gone, so it is only useful to let a half-closed connection finish closing.
 * - `reset`: new connections are accepted and reset at once (RST); existing connections are reset when
 *   the mode is set.
 * - `refuse`: new connections are closed at once (FIN, no data); existing connections keep passing.
 * - `slow` (`{ kind: 'slow', bytesPerSecond }`): both directions throttled by timers, for new and
 *   existing connections. The queue per direction is bounded: reading from the sender pauses above
 *   `HIGH_WATER_BYTES`.
 * - `stall-handshake`: the client's bytes are forwarded, but the server's bytes are held back on every
 *   connection the server has not yet spoken on (its HTTP upgrade response never arrives). Established
 *   connections keep passing. Switching back to `pass` releases what was held (a slow handshake).
 * - `drop-after` (`{ kind: 'drop-after', bytes }`): a connection is cut (both sides ended, then
 *   destroyed) after `bytes` bytes forwarded in both directions together, counted from the connection's
 *   start or, for an existing connection, from when the mode was set.
 */
import net from 'node:net';

type SimpleModeName = 'pass' | 'blackhole' | 'reset' | 'refuse' | 'stall-handshake';

/** A mode: a name, or an object with `kind` (required for `slow` and `drop-after`). */
export type FaultMode =
  | SimpleModeName
  | { readonly kind: SimpleModeName }
  | { readonly kind: 'slow'; readonly bytesPerSecond: number }
  | { readonly kind: 'drop-after'; readonly bytes: number };

/** A mode as an object (what `mode()` returns). */
export type NormalizedFaultMode =
  | { readonly kind: SimpleModeName }
  | { readonly kind: 'slow'; readonly bytesPerSecond: number }
  | { readonly kind: 'drop-after'; readonly bytes: number };

export interface FaultProxyOptions {
  readonly target: { readonly host: string; readonly port: number };
  /** The starting mode (default `'pass'`). */
  readonly mode?: FaultMode;
}

export interface FaultProxyStats {
  /** Connections accepted since start (including those reset or refused at once). */
  readonly accepted: number;
  /** Connections currently tracked (client or upstream socket still open). */
  readonly open: number;
  /** Bytes read from clients / written to the target. */
  readonly bytesFromClient: number;
  readonly bytesToServer: number;
  /** Bytes read from the target / written to clients. */
  readonly bytesFromServer: number;
  readonly bytesToClient: number;
}

export interface FaultProxy {
  /** The proxy's listening port on 127.0.0.1. */
  readonly port: number;
  /** `ws://127.0.0.1:<port><path>` (path defaults to `/`). */
  url(path?: string): string;
  setMode(mode: FaultMode): void;
  /** The current mode, normalized to an object. */
  mode(): NormalizedFaultMode;
  /** Connections accepted since start (cumulative; a reconnect counts as one more). */
  connections(): number;
  /** Connections open right now. */
  openConnections(): number;
  stats(): FaultProxyStats;
  /** Resets (RST) every open connection, in any mode. */
  resetAll(): void;
  /** Stops listening, destroys every socket and timer; resolves when all of them are closed. Idempotent. */
  close(): Promise<void>;
}

/** Above this many queued bytes in one direction, the proxy stops reading from the sender. */
export const HIGH_WATER_BYTES = 1024 * 1024;
const LOW_WATER_BYTES = 256 * 1024;

interface Pipe {
  readonly name: 'c2s' | 's2c';
  readonly src: net.Socket;
  readonly dst: net.Socket;
  readonly queue: Buffer[];
  queued: number;
  /** The sender half-closed (or closed). */
  ended: boolean;
  endForwarded: boolean;
  pausedByUs: boolean;
  waitingDrain: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

interface Conn {
  readonly id: number;
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  readonly c2s: Pipe;
  readonly s2c: Pipe;
  /** The server's first bytes were forwarded to the client (its handshake response started). */
  serverSpoke: boolean;
  /** Bytes left before a `drop-after` cut; `undefined` when not in that mode. */
  dropBudget: number | undefined;
  cut: boolean;
  clientClosed: boolean;
  clientClosedWithError: boolean;
  upstreamClosed: boolean;
  upstreamClosedWithError: boolean;
  /** The close of one side was held back by `blackhole` and still has to be passed on. */
  closePending: boolean;
}

function normalize(mode: FaultMode): NormalizedFaultMode {
  const value: NormalizedFaultMode = typeof mode === 'string' ? { kind: mode } : mode;
  if (value.kind === 'slow' && !(Number.isFinite(value.bytesPerSecond) && value.bytesPerSecond > 0)) {
    throw new RangeError(`slow mode needs bytesPerSecond > 0, got ${value.bytesPerSecond}`);
  }
  if (value.kind === 'drop-after' && !(Number.isInteger(value.bytes) && value.bytes >= 0)) {
    throw new RangeError(`drop-after mode needs an integer bytes >= 0, got ${value.bytes}`);
  }
  return value;
}

function hardReset(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (typeof socket.resetAndDestroy === 'function') {
    try {
      socket.resetAndDestroy();
      return;
    } catch {
      // Not connected yet (resetAndDestroy needs a handle): fall back to destroy.
    }
  }
  socket.destroy();
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const { target } = options;
  let mode: NormalizedFaultMode = normalize(options.mode ?? 'pass');
  let nextId = 1;
  let accepted = 0;
  let bytesFromClient = 0;
  let bytesToServer = 0;
  let bytesFromServer = 0;
  let bytesToClient = 0;
  let closing: Promise<void> | undefined;

  const conns = new Set<Conn>();
  /** Every socket the proxy owns, with a promise of its 'close'. */
  const sockets = new Map<net.Socket, Promise<void>>();

  const track = (socket: net.Socket): void => {
    sockets.set(
      socket,
      new Promise<void>((resolve) => {
        socket.once('close', () => {
          sockets.delete(socket);
          resolve();
        });
      }),
    );
    // Errors (ECONNRESET, EPIPE, ECONNREFUSED) always end in 'close', which does the work.
    socket.on('error', () => {});
  };

  const clearTimer = (pipe: Pipe): void => {
    if (pipe.timer !== undefined) {
      clearTimeout(pipe.timer);
      pipe.timer = undefined;
    }
  };

  const discard = (pipe: Pipe): void => {
    pipe.queue.length = 0;
    pipe.queued = 0;
    clearTimer(pipe);
    resumeIfLow(pipe);
  };

  const resumeIfLow = (pipe: Pipe): void => {
    if (pipe.pausedByUs && pipe.queued <= LOW_WATER_BYTES) {
      pipe.pausedByUs = false;
      if (!pipe.src.destroyed) pipe.src.resume();
    }
  };

  const pauseIfHigh = (pipe: Pipe): void => {
    if (!pipe.pausedByUs && pipe.queued > HIGH_WATER_BYTES) {
      pipe.pausedByUs = true;
      pipe.src.pause();
    }
  };

  const destroyConn = (conn: Conn): void => {
    clearTimer(conn.c2s);
    clearTimer(conn.s2c);
    conn.client.destroy();
    conn.upstream.destroy();
  };

  /** Ends `socket` after its buffered writes, then destroys it. */
  const endThenDestroy = (socket: net.Socket): void => {
    if (socket.destroyed) return;
    if (socket.writableFinished) {
      socket.destroy();
      return;
    }
    socket.once('finish', () => socket.destroy());
    if (!socket.writableEnded) socket.end();
  };

  const cut = (conn: Conn): void => {
    if (conn.cut) return;
    conn.cut = true;
    discard(conn.c2s);
    discard(conn.s2c);
    endThenDestroy(conn.client);
    endThenDestroy(conn.upstream);
  };

  /** Writes one chunk; false when the caller must stop (waiting for drain, or the connection was cut). */
  const forward = (conn: Conn, pipe: Pipe, chunk: Buffer): boolean => {
    if (pipe.dst.destroyed || conn.cut) return false;
    let piece = chunk;
    let cutAfter = false;
    if (conn.dropBudget !== undefined) {
      if (piece.length >= conn.dropBudget) {
        piece = piece.subarray(0, conn.dropBudget);
        cutAfter = true;
      }
      conn.dropBudget -= piece.length;
    }
    let ok = true;
    if (piece.length > 0) {
      ok = pipe.dst.write(piece);
      if (pipe.name === 'c2s') bytesToServer += piece.length;
      else {
        bytesToClient += piece.length;
        conn.serverSpoke = true;
      }
    }
    if (cutAfter) {
      cut(conn);
      return false;
    }
    if (!ok) {
      pipe.waitingDrain = true;
      pipe.dst.once('drain', () => {
        pipe.waitingDrain = false;
        pump(conn, pipe);
      });
      return false;
    }
    return true;
  };

  const takeFromQueue = (pipe: Pipe, max: number): Buffer | undefined => {
    const head = pipe.queue[0];
    if (head === undefined) return undefined;
    if (head.length <= max) {
      pipe.queue.shift();
      pipe.queued -= head.length;
      return head;
    }
    pipe.queue[0] = head.subarray(max);
    pipe.queued -= max;
    return head.subarray(0, max);
  };

  const afterFlush = (conn: Conn, pipe: Pipe): void => {
    resumeIfLow(pipe);
    if (pipe.queued === 0 && pipe.ended && !pipe.endForwarded && !conn.cut) {
      pipe.endForwarded = true;
      if (!pipe.dst.destroyed) pipe.dst.end();
    }
  };

  const scheduleSlow = (conn: Conn, pipe: Pipe, bytesPerSecond: number): void => {
    if (pipe.timer !== undefined || pipe.queued === 0) return;
    const interval = Math.max(10, Math.ceil(1000 / bytesPerSecond));
    const perTick = Math.max(1, Math.floor((bytesPerSecond * interval) / 1000));
    pipe.timer = setTimeout(() => {
      pipe.timer = undefined;
      if (mode.kind === 'slow' && !conn.cut) {
        let budget = perTick;
        while (budget > 0 && !pipe.waitingDrain) {
          const piece = takeFromQueue(pipe, budget);
          if (piece === undefined) break;
          budget -= piece.length;
          if (!forward(conn, pipe, piece)) break;
        }
      }
      pump(conn, pipe);
    }, interval);
  };

  const pump = (conn: Conn, pipe: Pipe): void => {
    if (conn.cut) return;
    const current = mode;
    if (current.kind === 'blackhole') {
      discard(pipe);
      return;
    }
    if (current.kind === 'stall-handshake' && pipe.name === 's2c' && !conn.serverSpoke) {
      pauseIfHigh(pipe);
      return;
    }
    if (pipe.waitingDrain) {
      pauseIfHigh(pipe);
      return;
    }
    if (current.kind === 'slow') {
      if (pipe.queued === 0) afterFlush(conn, pipe);
      else {
        pauseIfHigh(pipe);
        resumeIfLow(pipe);
        scheduleSlow(conn, pipe, current.bytesPerSecond);
      }
      return;
    }
    clearTimer(pipe);
    while (pipe.queue.length > 0) {
      const chunk = takeFromQueue(pipe, Number.POSITIVE_INFINITY);
      if (chunk === undefined || !forward(conn, pipe, chunk)) {
        if (!conn.cut) pauseIfHigh(pipe);
        return;
      }
    }
    afterFlush(conn, pipe);
  };

  /** One side is fully closed: pass that on (unless frozen by `blackhole`). */
  const propagateClose = (conn: Conn): void => {
    if (conn.cut) return;
    if (mode.kind === 'blackhole') {
      conn.closePending = true;
      return;
    }
    conn.closePending = false;
    if (conn.clientClosed && !conn.upstreamClosed) {
      if (conn.clientClosedWithError) hardReset(conn.upstream);
      else {
        conn.c2s.ended = true;
        pump(conn, conn.c2s);
        discard(conn.s2c);
        if (conn.c2s.endForwarded) endThenDestroy(conn.upstream);
      }
    } else if (conn.upstreamClosed && !conn.clientClosed) {
      if (conn.upstreamClosedWithError) hardReset(conn.client);
      else {
        conn.s2c.ended = true;
        pump(conn, conn.s2c);
        discard(conn.c2s);
        if (conn.s2c.endForwarded) endThenDestroy(conn.client);
      }
    }
  };

  const makePipe = (name: Pipe['name'], src: net.Socket, dst: net.Socket): Pipe => ({
    name,
    src,
    dst,
    queue: [],
    queued: 0,
    ended: false,
    endForwarded: false,
    pausedByUs: false,
    waitingDrain: false,
    timer: undefined,
  });

  const onConnection = (client: net.Socket): void => {
    accepted += 1;
    track(client);
    if (closing !== undefined) {
      client.destroy();
      return;
    }
    client.setNoDelay(true);
    if (mode.kind === 'reset') {
      hardReset(client);
      return;
    }
    if (mode.kind === 'refuse') {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    track(upstream);
    upstream.setNoDelay(true);
    const conn: Conn = {
      id: nextId++,
      client,
      upstream,
      c2s: makePipe('c2s', client, upstream),
      s2c: makePipe('s2c', upstream, client),
      serverSpoke: false,
      dropBudget: mode.kind === 'drop-after' ? mode.bytes : undefined,
      cut: false,
      clientClosed: false,
      clientClosedWithError: false,
      upstreamClosed: false,
      upstreamClosedWithError: false,
      closePending: false,
    };
    conns.add(conn);

    const wire = (socket: net.Socket, pipe: Pipe, side: 'client' | 'upstream'): void => {
      socket.on('data', (chunk: Buffer) => {
        if (side === 'client') bytesFromClient += chunk.length;
        else bytesFromServer += chunk.length;
        if (conn.cut) return;
        if (mode.kind === 'blackhole') return;
        pipe.queue.push(chunk);
        pipe.queued += chunk.length;
        pump(conn, pipe);
      });
      socket.on('end', () => {
        pipe.ended = true;
        if (mode.kind !== 'blackhole') pump(conn, pipe);
      });
      socket.on('close', (hadError: boolean) => {
        if (side === 'client') {
          conn.clientClosed = true;
          conn.clientClosedWithError = hadError;
        } else {
          conn.upstreamClosed = true;
          conn.upstreamClosedWithError = hadError;
        }
        if (conn.clientClosed && conn.upstreamClosed) {
          clearTimer(conn.c2s);
          clearTimer(conn.s2c);
          conns.delete(conn);
          return;
        }
        propagateClose(conn);
      });
    };
    wire(client, conn.c2s, 'client');
    wire(upstream, conn.s2c, 'upstream');
  };

  const server = net.createServer({ allowHalfOpen: true }, onConnection);
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fault proxy: no TCP address');
  const port = address.port;

  const setMode = (next: FaultMode): void => {
    const value = normalize(next);
    mode = value;
    for (const conn of [...conns]) {
      if (conn.cut) continue;
      conn.dropBudget = value.kind === 'drop-after' ? value.bytes : undefined;
      if (value.kind === 'reset') {
        clearTimer(conn.c2s);
        clearTimer(conn.s2c);
        hardReset(conn.client);
        hardReset(conn.upstream);
        continue;
      }
      clearTimer(conn.c2s);
      clearTimer(conn.s2c);
      if (value.kind === 'drop-after' && value.bytes === 0) {
        cut(conn);
        continue;
      }
      pump(conn, conn.c2s);
      pump(conn, conn.s2c);
      if (conn.closePending) propagateClose(conn);
    }
  };

  return {
    port,
    url: (path = '/') => `ws://127.0.0.1:${port}${path.startsWith('/') ? path : `/${path}`}`,
    setMode,
    mode: () => mode,
    connections: () => accepted,
    openConnections: () => conns.size,
    stats: () => ({
      accepted,
      open: conns.size,
      bytesFromClient,
      bytesToServer,
      bytesFromServer,
      bytesToClient,
    }),
    resetAll: () => {
      for (const conn of [...conns]) {
        clearTimer(conn.c2s);
        clearTimer(conn.s2c);
        hardReset(conn.client);
        hardReset(conn.upstream);
      }
    },
    close: () => {
      closing ??= (async () => {
        const listenerClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const conn of conns) destroyConn(conn);
        for (const socket of sockets.keys()) socket.destroy();
        await Promise.all([listenerClosed, ...sockets.values()]);
        conns.clear();
      })();
      return closing;
    },
  };
}
