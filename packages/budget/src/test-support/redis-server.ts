import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';

/** Whether a `redis-server` binary is on PATH (the outage tests start their own servers). */
export const hasRedisServer = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
if (!hasRedisServer) {
  if (process.env.CI)
    throw new Error('redis-server is required in CI (the outage and store suites start their own)');
  console.warn('[budget tests] skipping suites that start their own Redis: no redis-server on PATH');
}

/** A TCP port nothing listens on right now: listen on 0, read the port, close. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One raw `PING` over a fresh socket, bounded by `timeoutMs`; true on `+PONG`. */
export function ping(port: number, timeoutMs = 200): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let answer = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('error', () => done(false));
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
  });
}

/** A `redis-server` this test started: only this process is ever signalled, by its own handle. */
export interface OwnedRedisServer {
  readonly port: number;
  readonly pid: number;
  readonly url: string;
  /** SIGKILL, resolved once the process is gone. Idempotent. */
  kill(): Promise<void>;
  /** SIGSTOP: the process and its sockets stay, nothing answers. */
  freeze(): void;
  /** SIGCONT. */
  thaw(): void;
  readonly exited: boolean;
}

/**
 * Starts `redis-server --port <port> --save '' --appendonly no --daemonize no` and waits (bounded) until
 * it answers PING. Nothing is written to disk.
 */
export async function startRedisServer(port: number, readyWithinMs = 5_000): Promise<OwnedRedisServer> {
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--dir',
      tmpdir(),
      '--loglevel',
      'warning',
    ],
    { stdio: 'ignore' },
  );
  let exited = false;
  let frozen = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', () => {
      exited = true;
      resolve();
    });
  });
  const server: OwnedRedisServer = {
    port,
    pid: child.pid ?? -1,
    url: `redis://127.0.0.1:${port}`,
    get exited() {
      return exited;
    },
    async kill() {
      if (!exited) {
        if (frozen) child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
      await exit;
    },
    freeze() {
      frozen = true;
      child.kill('SIGSTOP');
    },
    thaw() {
      frozen = false;
      child.kill('SIGCONT');
    },
  };
  const deadline = performance.now() + readyWithinMs;
  while (!(await ping(port))) {
    if (exited || performance.now() > deadline) {
      await server.kill();
      throw new Error(`redis-server on port ${port} did not answer PING within ${readyWithinMs} ms`);
    }
    await sleep(20);
  }
  return server;
}
