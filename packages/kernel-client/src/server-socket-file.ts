/**
 * Listening on a Unix socket path: a stale socket file (left by a daemon that died) is removed, but
 * only when it is a socket and nothing answers on it; the file is removed again on close. Internal.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { createConnection, type Server } from 'node:net';

/** How long a connect to an existing socket file may take before it is deemed stale. */
const PROBE_TIMEOUT_MS = 1_000;

/** Identity of the socket file created by `listen`, to remove that file and no other on close. */
export interface SocketFile {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
}

/**
 * Listens on `path`. When the path is taken by a socket nobody answers on, removes it and listens again.
 * @throws Error code `EADDRINUSE` when a process answers on the socket, or the path is not a socket.
 */
export async function listenOnSocketFile(server: Server, path: string): Promise<SocketFile> {
  try {
    await listenOnce(server, path);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'EADDRINUSE') throw error;
    let isSocket = false;
    try {
      isSocket = lstatSync(path).isSocket();
    } catch {
      // Gone meanwhile: listen again below.
    }
    if (isSocket) {
      if (await answers(path))
        throw Object.assign(new Error(`listen EADDRINUSE: another process answers on ${path}`), {
          code: 'EADDRINUSE',
        });
      unlinkQuietly(path);
    } else if (exists(path)) {
      throw Object.assign(new Error(`listen EADDRINUSE: ${path} exists and is not a socket`), {
        code: 'EADDRINUSE',
      });
    }
    await listenOnce(server, path);
  }
  const stat = lstatSync(path);
  return { path, dev: stat.dev, ino: stat.ino };
}

/** Removes the socket file if it is still the one `listen` created. */
export function removeSocketFile(file: SocketFile): void {
  try {
    const stat = lstatSync(file.path);
    if (stat.isSocket() && stat.dev === file.dev && stat.ino === file.ino) unlinkSync(file.path);
  } catch {
    // Already removed (Node removes it when the server closes).
  }
}

function listenOnce(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      server.off('listening', onListening);
      reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(path);
  });
}

/** Whether something accepts a connection on the socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ path });
    const done = (answered: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answered);
    };
    // A listener with a full backlog is alive: count a connect that does not finish as an answer.
    const timer = setTimeout(() => done(true), PROBE_TIMEOUT_MS);
    socket.once('connect', () => done(true));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      done(error.code !== 'ECONNREFUSED' && error.code !== 'ENOENT'),
    );
  });
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Removed meanwhile.
  }
}
