/**
 * Benchmark 9: `@trestle/ws-bridge` against raw `ws` and reconnecting-websocket, all in the same run,
 * against `ws` servers this section starts on 127.0.0.1 (in this process) and stops at the end.
 *
 * - [9A] echo throughput: 100,000 64-byte text messages per round, at most `window` messages in flight
 *   (send while outstanding < window, one more on each echo), messages/s from the first send to the last
 *   echo; one connection per contender, kept across rounds; interleaved rounds in rotated order, median.
 *   Target: trestle >= 0.95x raw `ws`.
 * - [9B] reconnect after the server restarts on the same port (its sockets terminated, listener closed,
 *   listening again at once): time from the server being back to the client's connection open again.
 * - [9C] a frozen peer (the server stops reading its side of the socket: no pong, no data): time until
 *   the client notices (trestle: heartbeat; the peers have none).
 * - [9D] a 401 at the upgrade: time until the client gives up, and the handshakes it made meanwhile.
 *
 * [9B], [9C] and [9D] have no targets (the issue asks to report them); a trestle that does not
 * reconnect, detect or stop within the observation window is listed as a miss. Fresh clients each round
 * there (so one round's backoff state does not carry over), all three contenders at once. Every loop is
 * bounded in count and time; every client and server is closed in `finally`.
 */
import type { Bridge, BridgeOptions } from '@trestle/ws-bridge';
import ReconnectingWebSocket from 'reconnecting-websocket';
import WebSocket, { WebSocketServer } from 'ws';
import { collect, median } from './harness';
import { formatOps, ratioText, readVersion, table } from './report';

export const WS_BRIDGE_CONFIG = {
  /** [9A] messages per timed round, their size (ASCII text, so bytes = characters) and the window. */
  messages: 100_000,
  messageBytes: 64,
  window: 1_000,
  rounds: 5,
  warmupMessages: 20_000,
  /** A round (or warmup) not finished after this fails its contender. */
  roundDeadlineMs: 20_000,
  /** Opening a connection. */
  openTimeoutMs: 5_000,
  /** [9B] server restart; every reconnecting contender uses a 100 ms minimum backoff. */
  restart: { rounds: 5, minBackoffMs: 100, waitMs: 3_000 },
  /** [9C] frozen peer; trestle's heartbeat is set to these (defaults: 30 s / 10 s). */
  frozen: { rounds: 3, heartbeatIntervalMs: 500, heartbeatTimeoutMs: 500, observeMs: 2_500 },
  /** [9D] 401 at the upgrade. */
  unauthorized: { rounds: 3, observeMs: 2_000 },
} as const;

export const WS_BRIDGE_TARGETS = {
  /** trestle messages/s / raw ws messages/s ([9A]). */
  throughputVsRaw: 0.95,
} as const;

const IDS = { raw: 'ws', rawText: 'ws-text', rws: 'reconnecting-websocket', trestle: 'trestle' } as const;
const LABELS: Record<string, string> = {
  [IDS.raw]: 'raw ws (WebSocket from ws)',
  [IDS.rawText]: 'raw ws, echoes decoded (info)',
  [IDS.rws]: 'reconnecting-websocket (ws class)',
  [IDS.trestle]: 'trestle (@trestle/ws-bridge)',
};
const ORDER = [IDS.raw, IDS.rws, IDS.trestle] as const;
/** [9A] also has an information row: raw ws decoding each echo to a string, as the other two deliver it. */
const ECHO_ORDER = [IDS.raw, IDS.rawText, IDS.rws, IDS.trestle] as const;
/** URL path of each contender (the servers count handshakes by path). */
const PATHS: Record<string, string> = {
  [IDS.raw]: '/raw',
  [IDS.rawText]: '/raw-text',
  [IDS.rws]: '/rws',
  [IDS.trestle]: '/trestle',
};
const PAYLOAD = 'm'.repeat(WS_BRIDGE_CONFIG.messageBytes);

/** `@trestle/ws-bridge`, loaded by the section (its `exports` point at dist/, which may not be built). */
let trestle: typeof import('@trestle/ws-bridge') | undefined;

export interface EchoRow {
  readonly id: string;
  readonly label: string;
  /** Median over rounds of messages/s. */
  readonly messagesPerSec: number;
  readonly minMessagesPerSec: number;
  readonly maxMessagesPerSec: number;
  /** Total messages / total time. */
  readonly aggregateMessagesPerSec: number;
  readonly samples: readonly number[];
  readonly messages: number;
  /** Echoes whose size was not `messageBytes` (must be 0). */
  readonly badEchoes: number;
  /** trestle: sends answered `queued` (0 expected: the window stays far below the high-water mark). */
  readonly queued: number;
}

export interface EventRow {
  readonly id: string;
  readonly label: string;
  readonly rounds: number;
  /** Rounds in which the event happened within the window. */
  readonly happened: number;
  /** Milliseconds, one per round where it happened. */
  readonly timesMs: readonly number[];
  readonly medianMs: number;
  readonly detail: string;
}

export interface ContenderStatus {
  readonly id: string;
  readonly label: string;
  status: 'measured' | 'failed' | 'excluded';
  reason?: string;
}

export type WsBridgeOutcome =
  | { readonly skipped: true; readonly reason: string }
  | {
      readonly skipped: false;
      readonly versions: Record<string, string>;
      readonly config: typeof WS_BRIDGE_CONFIG;
      readonly targets: typeof WS_BRIDGE_TARGETS;
      readonly contenders: readonly ContenderStatus[];
      readonly echo: {
        readonly rows: readonly EchoRow[];
        readonly ratios: readonly {
          subject: string;
          peer: string;
          ratio: number;
          target?: number;
          pass?: boolean;
        }[];
      };
      readonly restart: readonly EventRow[];
      readonly frozen: readonly EventRow[];
      readonly unauthorized: readonly EventRow[];
      readonly durationSec: number;
    };

// ---- small helpers ----

const noop = (): void => {};
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const settle = (): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, typeof globalThis.gc === 'function' ? 25 : 0));
const rotate = <T>(items: readonly T[], by: number): T[] =>
  items.map((_, i) => items[(i + by) % items.length]!);
const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `done` every 5 ms until it is true or `ms` passed. */
async function waitUntil(done: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!done()) {
    if (performance.now() >= deadline) return false;
    await sleep(5);
  }
  return true;
}

/** Closes a `ws` client: closing handshake, terminated if it takes longer than `ms`. */
async function closeWs(socket: WebSocket, ms = 1_000): Promise<void> {
  if (socket.readyState === WebSocket.CLOSED) return;
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
  else socket.close(1000, 'bench done');
  const timer = setTimeout(() => socket.terminate(), ms);
  await closed;
  clearTimeout(timer);
}

// ---- servers ----

interface TestServer {
  readonly port: number;
  /** Server-side sockets currently open. */
  readonly sockets: Set<WebSocket>;
  /** Upgrade requests seen, by path. */
  readonly handshakes: Map<string, number>;
  /** Terminates every socket, then closes the listener. */
  stop(): Promise<void>;
}

/**
 * A `ws` server on 127.0.0.1 that echoes every message as received (no decoding). `rejectWith`: every
 * upgrade is refused with that HTTP status.
 */
async function startServer(port = 0, rejectWith?: number): Promise<TestServer> {
  const sockets = new Set<WebSocket>();
  const handshakes = new Map<string, number>();
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port,
    verifyClient: (info, done) => {
      const path = info.req.url ?? '/';
      handshakes.set(path, (handshakes.get(path) ?? 0) + 1);
      if (rejectWith === undefined) done(true);
      else done(false, rejectWith, 'Unauthorized');
    },
  });
  wss.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('message', (data, isBinary) => socket.send(data as Buffer, { binary: isBinary }));
    socket.on('error', noop);
    socket.on('close', () => sockets.delete(socket));
  });
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    }),
    WS_BRIDGE_CONFIG.openTimeoutMs,
    `ws server listen on port ${port}`,
  );
  wss.on('error', noop);
  const address = wss.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  let stopped = false;
  return {
    port: actualPort,
    sockets,
    handshakes,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const socket of sockets) socket.terminate();
      await withTimeout(
        new Promise<void>((resolve) => wss.close(() => resolve())),
        WS_BRIDGE_CONFIG.openTimeoutMs,
        'ws server close',
      ).catch(noop);
    },
  };
}

// ---- clients ----

/** A connected client for the echo loop. `onEcho` is swapped by each run. */
interface EchoClient {
  readonly id: string;
  onEcho: (size: number) => void;
  /** false: the library refused the message. */
  send(data: string): boolean;
  queued: number;
  close(): Promise<void>;
}

async function openRaw(url: string, decode: boolean): Promise<EchoClient> {
  const id = decode ? IDS.rawText : IDS.raw;
  const socket = new WebSocket(`${url}${PATHS[id]}`);
  socket.on('error', noop);
  const client: EchoClient = {
    id,
    onEcho: noop,
    send(data) {
      socket.send(data);
      return true;
    },
    queued: 0,
    close: () => closeWs(socket),
  };
  if (decode) socket.on('message', (data: Buffer) => client.onEcho(data.toString('utf8').length));
  else socket.on('message', (data: Buffer) => client.onEcho(data.length));
  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('close', (code) => reject(new Error(`closed ${code} before open`)));
      }),
      WS_BRIDGE_CONFIG.openTimeoutMs,
      'raw ws open',
    );
  } catch (error) {
    socket.terminate();
    throw error;
  }
  return client;
}

const rwsOptions = (minReconnectionDelay: number) => ({
  WebSocket,
  minReconnectionDelay,
  maxReconnectionDelay: 10_000,
  connectionTimeout: WS_BRIDGE_CONFIG.openTimeoutMs,
});

/** Stops reconnecting-websocket and its current socket (terminated if the close handshake stalls). */
async function closeRws(rws: ReconnectingWebSocket): Promise<void> {
  const inner = (rws as unknown as { _ws?: WebSocket })._ws;
  rws.close(1000, 'bench done');
  if (inner) await closeWs(inner);
}

async function openRws(url: string): Promise<EchoClient> {
  const rws = new ReconnectingWebSocket(`${url}/rws`, [], rwsOptions(1_000));
  const client: EchoClient = {
    id: IDS.rws,
    onEcho: noop,
    send(data) {
      rws.send(data);
      return true;
    },
    queued: 0,
    close: () => closeRws(rws),
  };
  rws.addEventListener('message', (event) =>
    client.onEcho(typeof event.data === 'string' ? event.data.length : (event.data as Buffer).length),
  );
  try {
    await withTimeout(
      new Promise<void>((resolve) => rws.addEventListener('open', () => resolve())),
      WS_BRIDGE_CONFIG.openTimeoutMs,
      'reconnecting-websocket open',
    );
  } catch (error) {
    await closeRws(rws);
    throw error;
  }
  return client;
}

/** A trestle bridge with its run() promise (never left unhandled) and its close. */
function startBridge(url: string, options: Omit<BridgeOptions, 'url' | 'tokenProvider'>) {
  const { createBridge, staticToken } = trestle!;
  const bridge: Bridge = createBridge({ url, tokenProvider: staticToken('t'), ...options });
  let runError: unknown;
  let runSettledAt: number | undefined;
  const running = bridge.run().then(
    () => {
      runSettledAt = performance.now();
    },
    (error: unknown) => {
      runSettledAt = performance.now();
      runError = error;
    },
  );
  return {
    bridge,
    running,
    get runError() {
      return runError;
    },
    get runSettledAt() {
      return runSettledAt;
    },
    async close() {
      await bridge.close();
      await withTimeout(running, WS_BRIDGE_CONFIG.openTimeoutMs, 'trestle run() after close').catch(noop);
    },
  };
}

async function openTrestle(url: string): Promise<EchoClient> {
  let onConnected = noop;
  const connected = new Promise<void>((resolve) => {
    onConnected = resolve;
  });
  const client: EchoClient = {
    id: IDS.trestle,
    onEcho: noop,
    send(data) {
      const result = started.bridge.send(data);
      if (result.status === 'rejected') return false;
      if (result.status === 'queued') client.queued++;
      return true;
    },
    queued: 0,
    close: () => started.close(),
  };
  const started = startBridge(`${url}/trestle`, {
    handler: {
      onConnect: () => onConnected(),
      onMessage: (data) => client.onEcho(typeof data === 'string' ? data.length : data.byteLength),
    },
  });
  try {
    await withTimeout(connected, WS_BRIDGE_CONFIG.openTimeoutMs, 'trestle connect');
  } catch (error) {
    await started.close();
    throw error;
  }
  return client;
}

// ---- [9A] echo loop ----

interface EchoRun {
  readonly ms: number;
  readonly bad: number;
}

/**
 * Sends `total` messages keeping at most `window` in flight; resolves at the last echo. Bounded by
 * `deadlineMs` (rejects, and the contender is dropped).
 */
function echoRun(client: EchoClient, total: number, window: number, deadlineMs: number): Promise<EchoRun> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let received = 0;
    let bad = 0;
    let done = false;
    const finish = (error?: Error) => {
      done = true;
      clearTimeout(timer);
      client.onEcho = noop;
      if (error) reject(error);
      else resolve({ ms: performance.now() - start, bad });
    };
    const pump = () => {
      while (sent - received < window && sent < total) {
        if (!client.send(PAYLOAD)) {
          finish(new Error(`send #${sent} was rejected`));
          return;
        }
        sent++;
      }
    };
    const timer = setTimeout(
      () => finish(new Error(`${received}/${total} echoes after ${deadlineMs} ms`)),
      deadlineMs,
    );
    client.onEcho = (size) => {
      if (done) return;
      received++;
      if (size !== WS_BRIDGE_CONFIG.messageBytes) bad++;
      if (received === total) finish();
      else pump();
    };
    const start = performance.now();
    pump();
  });
}

// ---- [9B] [9C] [9D]: one round with all three contenders at once ----

/** Observes one contender in an event scenario. */
interface Probe {
  readonly id: string;
  /** Time of the event, when it happened. */
  at?: number;
  /** Handshakes / errors / notes gathered. */
  count: number;
  note?: string;
  close(): Promise<void>;
}

async function restartRound(port: number, minBackoffMs: number, waitMs: number) {
  let server = await startServer(port);
  const url = `ws://127.0.0.1:${server.port}`;
  const probes: Probe[] = [];
  const opens = { raw: 0, rws: 0, trestle: 0 };
  try {
    const raw = new WebSocket(`${url}/raw`);
    raw.on('error', noop);
    const rawProbe: Probe = { id: IDS.raw, count: 0, close: () => closeWs(raw) };
    raw.on('open', () => opens.raw++);
    raw.on('close', (code) => {
      rawProbe.note = `closed ${code}, no reconnect (raw ws never reconnects)`;
    });
    probes.push(rawProbe);

    const rws = new ReconnectingWebSocket(`${url}/rws`, [], rwsOptions(minBackoffMs));
    const rwsProbe: Probe = { id: IDS.rws, count: 0, close: () => closeRws(rws) };
    rws.addEventListener('open', () => {
      opens.rws++;
      if (opens.rws === 2) rwsProbe.at = performance.now();
    });
    probes.push(rwsProbe);

    const trestle = startBridge(`${url}/trestle`, { retry: { minBackoffMs } });
    const trestleProbe: Probe = { id: IDS.trestle, count: 0, close: () => trestle.close() };
    trestle.bridge.on('connect', () => {
      opens.trestle++;
      if (opens.trestle === 2) trestleProbe.at = performance.now();
    });
    probes.push(trestleProbe);

    const allOpen = await waitUntil(
      () => opens.raw === 1 && opens.rws === 1 && opens.trestle === 1,
      WS_BRIDGE_CONFIG.openTimeoutMs,
    );
    if (!allOpen) throw new Error(`not every client connected (${JSON.stringify(opens)})`);
    const down = performance.now();
    await server.stop();
    server = await startServer(port === 0 ? server.port : port);
    const up = performance.now();
    await waitUntil(() => rwsProbe.at !== undefined && trestleProbe.at !== undefined, waitMs);
    for (const probe of probes) probe.count = server.handshakes.get(PATHS[probe.id]!) ?? 0;
    return { probes, down, up, port: server.port };
  } finally {
    for (const probe of probes) await probe.close().catch(noop);
    await server.stop();
  }
}

async function frozenRound(round: number) {
  const cfg = WS_BRIDGE_CONFIG.frozen;
  const server = await startServer();
  const url = `ws://127.0.0.1:${server.port}`;
  const probes: Probe[] = [];
  const opened = { raw: false, rws: false, trestle: false };
  let frozenAt = Number.NaN;
  /** True from the freeze to the end of the window (closing the clients afterwards is no detection). */
  let watching = false;
  let closeTrestle: () => Promise<void> = async () => {};
  try {
    const raw = new WebSocket(`${url}/raw`);
    raw.on('error', noop);
    const rawProbe: Probe = { id: IDS.raw, count: 0, close: async () => raw.terminate() };
    raw.on('open', () => {
      opened.raw = true;
    });
    raw.on('close', () => {
      if (watching) rawProbe.at ??= performance.now();
    });
    probes.push(rawProbe);

    const rws = new ReconnectingWebSocket(
      `${url}/rws`,
      [],
      rwsOptions(WS_BRIDGE_CONFIG.restart.minBackoffMs),
    );
    const rwsProbe: Probe = { id: IDS.rws, count: 0, close: () => closeRws(rws) };
    rws.addEventListener('open', () => {
      opened.rws = true;
    });
    rws.addEventListener('close', () => {
      if (watching) rwsProbe.at ??= performance.now();
    });
    probes.push(rwsProbe);

    const trestle = startBridge(`${url}/trestle`, {
      heartbeat: { intervalMs: cfg.heartbeatIntervalMs, timeoutMs: cfg.heartbeatTimeoutMs },
    });
    closeTrestle = () => trestle.close();
    const trestleProbe: Probe = { id: IDS.trestle, count: 0, close: async () => {} };
    trestle.bridge.on('connect', () => {
      opened.trestle = true;
    });
    trestle.bridge.on('disconnect', ({ error }) => {
      if (watching && trestleProbe.at === undefined) {
        trestleProbe.at = performance.now();
        trestleProbe.note = (error as { code?: string }).code ?? error.message;
      }
    });
    probes.push(trestleProbe);

    const allOpen = await waitUntil(
      () => opened.raw && opened.rws && opened.trestle,
      WS_BRIDGE_CONFIG.openTimeoutMs,
    );
    if (!allOpen) throw new Error(`not every client connected (${JSON.stringify(opened)})`);
    // Freeze at a different phase of trestle's ping interval each round.
    await sleep((cfg.heartbeatIntervalMs * (round + 0.5)) / cfg.rounds);
    frozenAt = performance.now();
    watching = true;
    for (const socket of server.sockets) socket.pause();
    // The peers have no way to notice: watch the whole window for them.
    await sleep(cfg.observeMs);
    watching = false;
    return { probes, frozenAt };
  } finally {
    watching = false;
    // The clients start closing first (reconnecting-websocket stops reconnecting), then the server drops
    // its (paused) sockets, so no closing handshake waits on the frozen side.
    await Promise.all([
      ...probes.map((probe) => probe.close().catch(noop)),
      closeTrestle().catch(noop),
      server.stop(),
    ]);
  }
}

async function unauthorizedRound() {
  const cfg = WS_BRIDGE_CONFIG.unauthorized;
  const server = await startServer(0, 401);
  const url = `ws://127.0.0.1:${server.port}`;
  const probes: Probe[] = [];
  let closeTrestle: () => Promise<void> = async () => {};
  const start = performance.now();
  try {
    const raw = new WebSocket(`${url}/raw`);
    const rawProbe: Probe = { id: IDS.raw, count: 0, close: () => closeWs(raw) };
    raw.on('error', (error) => {
      rawProbe.at ??= performance.now();
      rawProbe.note = `'error' event (${error.message}); raw ws never retries anything`;
    });
    probes.push(rawProbe);

    const rws = new ReconnectingWebSocket(
      `${url}/rws`,
      [],
      rwsOptions(WS_BRIDGE_CONFIG.restart.minBackoffMs),
    );
    const rwsProbe: Probe = { id: IDS.rws, count: 0, close: () => closeRws(rws) };
    probes.push(rwsProbe);

    const trestle = startBridge(`${url}/trestle`, {
      retry: { minBackoffMs: WS_BRIDGE_CONFIG.restart.minBackoffMs },
    });
    closeTrestle = () => trestle.close();
    const trestleProbe: Probe = { id: IDS.trestle, count: 0, close: async () => {} };
    probes.push(trestleProbe);

    // RWS retries forever: watch the whole window.
    await sleep(cfg.observeMs);
    if (trestle.runSettledAt !== undefined) {
      trestleProbe.at = trestle.runSettledAt;
      const error = trestle.runError as { name?: string; code?: string } | undefined;
      trestleProbe.note = error ? `run() rejected: ${error.name} ${error.code}` : 'run() resolved (no error)';
    }
    rwsProbe.note = `still retrying after ${cfg.observeMs} ms (state ${['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'][rws.readyState]})`;
    for (const probe of probes) probe.count = server.handshakes.get(PATHS[probe.id]!) ?? 0;
    return { probes, start };
  } finally {
    for (const probe of probes) await probe.close().catch(noop);
    await closeTrestle().catch(noop);
    await server.stop();
  }
}

function eventRows(
  rounds: readonly { probes: readonly Probe[]; from: number }[],
  total: number,
  detail: (id: string, probes: readonly Probe[]) => string,
): EventRow[] {
  return ORDER.map((id) => {
    const probes = rounds.flatMap((r) => r.probes.filter((p) => p.id === id));
    const timesMs = rounds.flatMap((r) => {
      const probe = r.probes.find((p) => p.id === id);
      return probe?.at === undefined ? [] : [probe.at - r.from];
    });
    return {
      id,
      label: LABELS[id]!,
      rounds: total,
      happened: timesMs.length,
      timesMs,
      medianMs: timesMs.length ? median(timesMs) : Number.NaN,
      detail: detail(id, probes),
    };
  });
}

const fmtMs = (ms: number): string => (Number.isFinite(ms) ? `${ms.toFixed(ms < 10 ? 1 : 0)} ms` : '');

function eventText(title: string, notes: readonly string[], rows: readonly EventRow[], what: string): string {
  return [
    `\n${title}`,
    ...notes.map((note) => `  ${note}`),
    table(
      ['contender', what, 'median', 'min .. max', 'detail'],
      rows.map((row) => [
        row.label,
        `${row.happened}/${row.rounds}`,
        fmtMs(row.medianMs),
        row.timesMs.length
          ? `${fmtMs(Math.min(...row.timesMs))} .. ${fmtMs(Math.max(...row.timesMs))}`
          : 'never',
        row.detail,
      ]),
      [1, 2, 3],
    ),
  ].join('\n');
}

/** The most frequent string (for per-round notes). */
const mostCommon = (values: readonly (string | undefined)[]): string => {
  const counts = new Map<string, number>();
  for (const value of values) if (value) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
};

// ---- the section ----

/** Runs section [9], prints its tables, and returns the outcome (for the JSON) and its missed targets. */
export async function runWsBridgeSection(): Promise<{ outcome: WsBridgeOutcome; misses: string[] }> {
  const started = performance.now();
  const cfg = WS_BRIDGE_CONFIG;
  const misses: string[] = [];
  const versions = {
    ws: readVersion('ws'),
    'reconnecting-websocket': readVersion('reconnecting-websocket'),
    '@trestle/ws-bridge': readVersion('@trestle/ws-bridge'),
  };
  try {
    trestle = await import('@trestle/ws-bridge');
  } catch (error) {
    const reason =
      `@trestle/ws-bridge could not be loaded (${message(error)}); ` +
      'build it: pnpm --filter @trestle/ws-bridge build';
    console.log(`\n[9] ws bridge SKIPPED: ${reason}`);
    return { outcome: { skipped: true, reason }, misses: [`[9] skipped: ${reason}`] };
  }
  console.log(
    `\n[9] ws bridge: ws ${versions.ws}, reconnecting-websocket ${versions['reconnecting-websocket']}, ` +
      `@trestle/ws-bridge ${versions['@trestle/ws-bridge']}; ws servers on 127.0.0.1 in this process`,
  );

  const contenders: ContenderStatus[] = ECHO_ORDER.map((id) => ({
    id,
    label: LABELS[id]!,
    status: 'measured' as const,
  }));
  const statusOf = (id: string) => contenders.find((c) => c.id === id)!;
  const openers: Record<string, (url: string) => Promise<EchoClient>> = {
    [IDS.raw]: (url) => openRaw(url, false),
    [IDS.rawText]: (url) => openRaw(url, true),
    [IDS.rws]: openRws,
    [IDS.trestle]: openTrestle,
  };

  // ---- [9A] echo throughput ----
  const echoServer = await startServer();
  const live: EchoClient[] = [];
  const samples = new Map<string, number[]>();
  const bad = new Map<string, number>();
  const timedMs = new Map<string, number>();
  const drop = async (client: EchoClient, error: unknown) => {
    const status = statusOf(client.id);
    status.status = 'failed';
    status.reason = `[9A] ${message(error)}`;
    console.log(`  ${status.label}: FAILED ${status.reason} (dropped)`);
    live.splice(live.indexOf(client), 1);
    await client.close().catch(noop);
  };
  let echoRows: EchoRow[] = [];
  try {
    const url = `ws://127.0.0.1:${echoServer.port}`;
    for (const id of ECHO_ORDER) {
      try {
        live.push(await openers[id]!(url));
        samples.set(id, []);
        bad.set(id, 0);
        timedMs.set(id, 0);
      } catch (error) {
        const status = statusOf(id);
        status.status = 'excluded';
        status.reason = message(error);
        console.log(`  ${status.label}: excluded (${status.reason})`);
      }
    }
    for (const client of [...live]) {
      try {
        await echoRun(client, cfg.warmupMessages, cfg.window, cfg.roundDeadlineMs);
      } catch (error) {
        await drop(client, error);
      }
    }
    for (let round = 0; round < cfg.rounds; round++) {
      for (const client of rotate([...live], round)) {
        await yieldToEventLoop();
        collect();
        await settle();
        try {
          const run = await echoRun(client, cfg.messages, cfg.window, cfg.roundDeadlineMs);
          samples.get(client.id)!.push((cfg.messages / run.ms) * 1000);
          timedMs.set(client.id, timedMs.get(client.id)! + run.ms);
          bad.set(client.id, bad.get(client.id)! + run.bad);
        } catch (error) {
          await drop(client, error);
        }
      }
    }
    echoRows = live.map((client) => {
      const values = samples.get(client.id)!;
      return {
        id: client.id,
        label: LABELS[client.id]!,
        messagesPerSec: median(values),
        minMessagesPerSec: Math.min(...values),
        maxMessagesPerSec: Math.max(...values),
        aggregateMessagesPerSec: ((values.length * cfg.messages) / timedMs.get(client.id)!) * 1000,
        samples: values,
        messages: values.length * cfg.messages,
        badEchoes: bad.get(client.id)!,
        queued: client.queued,
      };
    });
  } finally {
    for (const client of live) await client.close().catch(noop);
    await echoServer.stop();
  }
  const rowOf = (id: string) => echoRows.find((row) => row.id === id);
  const echoRatio = (subject: string, peer: string, target?: number) => {
    const a = rowOf(subject);
    const b = rowOf(peer);
    const ratio = a && b && b.messagesPerSec > 0 ? a.messagesPerSec / b.messagesPerSec : Number.NaN;
    if (target === undefined) return { subject, peer, ratio };
    return Number.isFinite(ratio)
      ? { subject, peer, ratio, target, pass: ratio >= target }
      : { subject, peer, ratio, target };
  };
  const ratios = [
    echoRatio(IDS.trestle, IDS.raw, WS_BRIDGE_TARGETS.throughputVsRaw),
    echoRatio(IDS.trestle, IDS.rawText),
    echoRatio(IDS.trestle, IDS.rws),
    echoRatio(IDS.rws, IDS.raw),
    echoRatio(IDS.rawText, IDS.raw),
  ];
  console.log(
    [
      `\n[9A] echo throughput: ${cfg.messages.toLocaleString('en-US')} messages of ${cfg.messageBytes} bytes (text) per round, ` +
        `at most ${cfg.window.toLocaleString('en-US')} in flight`,
      `  one connection each to a ws echo server (echoes the received frame as is); ${cfg.rounds} interleaved rounds ` +
        `(rotated order) after a warmup of ${cfg.warmupMessages.toLocaleString('en-US')}; msg/s = first send to last echo, median round`,
      '  raw ws counts Buffer echoes (no decoding); reconnecting-websocket and trestle deliver text as a string, ' +
        'as does the information row "raw ws, echoes decoded" (data.toString())',
      `  target: trestle >= ${WS_BRIDGE_TARGETS.throughputVsRaw}x raw ws`,
      table(
        ['contender', 'msg/s', 'range of rounds', 'aggregate', 'messages', 'bad echoes'],
        echoRows.map((row) => [
          row.label,
          formatOps(row.messagesPerSec),
          `${formatOps(row.minMessagesPerSec)} .. ${formatOps(row.maxMessagesPerSec)}`,
          formatOps(row.aggregateMessagesPerSec),
          String(row.messages),
          String(row.badEchoes),
        ]),
        [1, 2, 3, 4, 5],
      ),
      table(
        ['compare', 'subject / peer', 'ratio', 'target', ''],
        ratios.map((r) => [
          'throughput',
          `${r.subject} / ${r.peer}`,
          ratioText(r.ratio),
          'target' in r && r.target !== undefined ? `>= ${r.target}x` : '',
          'pass' in r && r.pass !== undefined ? (r.pass ? 'ok' : 'MISS') : '',
        ]),
        [2],
      ),
    ].join('\n'),
  );
  for (const r of ratios) {
    if ('pass' in r && r.pass === false) {
      misses.push(`[9A] ${r.subject} throughput = ${r.ratio.toFixed(2)}x ${r.peer} (target >= ${r.target}x)`);
    }
  }
  for (const row of echoRows) {
    if (row.badEchoes > 0) misses.push(`[9A] ${row.label}: ${row.badEchoes} echoes of the wrong size`);
  }
  if (rowOf(IDS.trestle)?.queued) {
    console.log(`  note: trestle answered 'queued' ${rowOf(IDS.trestle)!.queued} times`);
  }

  // ---- [9B] restart on the same port ----
  const restartRounds: { probes: Probe[]; from: number }[] = [];
  const sinceDrop: number[][] = [[], [], []];
  let restartPort = 0;
  for (let round = 0; round < cfg.restart.rounds; round++) {
    try {
      const r = await restartRound(restartPort, cfg.restart.minBackoffMs, cfg.restart.waitMs);
      restartPort = r.port;
      restartRounds.push({ probes: r.probes, from: r.up });
      ORDER.forEach((id, i) => {
        const at = r.probes.find((p) => p.id === id)?.at;
        if (at !== undefined) sinceDrop[i]!.push(at - r.down);
      });
    } catch (error) {
      console.log(`  [9B] round ${round + 1} FAILED: ${message(error)}`);
      misses.push(`[9B] round ${round + 1} failed: ${message(error)}`);
      restartPort = 0;
    }
  }
  const restartRows = eventRows(restartRounds, cfg.restart.rounds, (id, probes) => {
    if (id === IDS.raw) return mostCommon(probes.map((p) => p.note));
    const handshakes = probes.map((p) => p.count);
    const drop = median(sinceDrop[ORDER.indexOf(id as (typeof ORDER)[number])]!);
    return `median ${fmtMs(drop)} from the drop; handshakes on the new server: ${handshakes.join(' ')}`;
  });
  console.log(
    eventText(
      `[9B] reconnect after the server restarts on the same port (min backoff ${cfg.restart.minBackoffMs} ms)`,
      [
        'server-side sockets terminated (clients see 1006), listener closed, listening again on the same port at once; ' +
          'time from the server listening again to the client open again',
        `${cfg.restart.rounds} rounds, fresh clients each round, all three at once; watched up to ${cfg.restart.waitMs} ms`,
        `trestle: retry.minBackoffMs ${cfg.restart.minBackoffMs} (jitter 0.5: first retry after 50-100 ms); ` +
          `reconnecting-websocket: minReconnectionDelay ${cfg.restart.minBackoffMs} (no jitter)`,
      ],
      restartRows,
      'reconnected',
    ),
  );
  const trestleRestart = restartRows.find((row) => row.id === IDS.trestle)!;
  if (trestleRestart.happened < trestleRestart.rounds) {
    misses.push(
      `[9B] trestle reconnected in ${trestleRestart.happened}/${trestleRestart.rounds} rounds within ${cfg.restart.waitMs} ms`,
    );
  }

  // ---- [9C] frozen peer ----
  const frozenRounds: { probes: Probe[]; from: number }[] = [];
  for (let round = 0; round < cfg.frozen.rounds; round++) {
    try {
      const r = await frozenRound(round);
      frozenRounds.push({ probes: r.probes, from: r.frozenAt });
    } catch (error) {
      console.log(`  [9C] round ${round + 1} FAILED: ${message(error)}`);
      misses.push(`[9C] round ${round + 1} failed: ${message(error)}`);
    }
  }
  const frozenRows = eventRows(frozenRounds, cfg.frozen.rounds, (id, probes) =>
    id === IDS.trestle
      ? mostCommon(probes.map((p) => p.note))
      : probes.some((p) => p.at !== undefined)
        ? 'closed'
        : `not detected within ${cfg.frozen.observeMs} ms (no heartbeat)`,
  );
  console.log(
    eventText(
      '[9C] time to detect a frozen peer',
      [
        'the server stops reading its side of each socket (ws pause(): no pong, no data; TCP stays up) at a different ' +
          `phase of trestle's ping interval each round; time from the freeze to the client's disconnect`,
        `trestle: heartbeat { intervalMs: ${cfg.frozen.heartbeatIntervalMs}, timeoutMs: ${cfg.frozen.heartbeatTimeoutMs} } ` +
          `(defaults 30,000 / 10,000): expect ${cfg.frozen.heartbeatTimeoutMs}..${cfg.frozen.heartbeatIntervalMs + cfg.frozen.heartbeatTimeoutMs} ms`,
        `${cfg.frozen.rounds} rounds, fresh clients each round, all three at once, each watched for ${cfg.frozen.observeMs} ms`,
      ],
      frozenRows,
      'detected',
    ),
  );
  const trestleFrozen = frozenRows.find((row) => row.id === IDS.trestle)!;
  if (trestleFrozen.happened < trestleFrozen.rounds) {
    misses.push(
      `[9C] trestle detected the frozen peer in ${trestleFrozen.happened}/${trestleFrozen.rounds} rounds within ${cfg.frozen.observeMs} ms`,
    );
  }

  // ---- [9D] 401 at the upgrade ----
  const unauthorizedRounds: { probes: Probe[]; from: number }[] = [];
  for (let round = 0; round < cfg.unauthorized.rounds; round++) {
    try {
      const r = await unauthorizedRound();
      unauthorizedRounds.push({ probes: r.probes, from: r.start });
    } catch (error) {
      console.log(`  [9D] round ${round + 1} FAILED: ${message(error)}`);
      misses.push(`[9D] round ${round + 1} failed: ${message(error)}`);
    }
  }
  const unauthorizedRows = eventRows(
    unauthorizedRounds,
    cfg.unauthorized.rounds,
    (_id, probes) =>
      `${mostCommon(probes.map((p) => p.note))}; handshakes: ${probes.map((p) => p.count).join(' ')}`,
  );
  console.log(
    eventText(
      '[9D] time to fail on a 401 at the upgrade',
      [
        'every upgrade refused with HTTP 401; time from creating the client to its giving up; handshakes per round',
        `${cfg.unauthorized.rounds} rounds, all three at once, each watched for ${cfg.unauthorized.observeMs} ms; ` +
          `min backoff ${cfg.restart.minBackoffMs} ms for trestle and reconnecting-websocket`,
      ],
      unauthorizedRows,
      'gave up',
    ),
  );
  const trestle401 = unauthorizedRows.find((row) => row.id === IDS.trestle)!;
  if (trestle401.happened < trestle401.rounds) {
    misses.push(
      `[9D] trestle stopped on the 401 in ${trestle401.happened}/${trestle401.rounds} rounds within ${cfg.unauthorized.observeMs} ms`,
    );
  }

  for (const status of contenders) {
    if (status.status === 'failed' || (status.id === IDS.trestle && status.status === 'excluded')) {
      misses.push(`[9] ${status.label} ${status.status}: ${status.reason}`);
    }
  }
  const durationSec = Number(((performance.now() - started) / 1000).toFixed(1));
  console.log(`  [9] took ${durationSec} s; every client and server closed`);
  return {
    outcome: {
      skipped: false,
      versions,
      config: cfg,
      targets: WS_BRIDGE_TARGETS,
      contenders,
      echo: { rows: echoRows, ratios },
      restart: restartRows,
      frozen: frozenRows,
      unauthorized: unauthorizedRows,
      durationSec,
    },
    misses,
  };
}
