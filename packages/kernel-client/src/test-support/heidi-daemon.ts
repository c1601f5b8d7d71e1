/**
 * Starts `heidi_line_daemon.py` (a heidi-kernel stand-in speaking lines on a Unix socket) as a real
 * `python3` child, waits for its READY line, and stops it by PID. Test support only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tempSocketPath } from './socket-path';

const SCRIPT = fileURLToPath(new URL('./heidi_line_daemon.py', import.meta.url));
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

export interface HeidiDaemon {
  readonly path: string;
  readonly pid: number;
  /** SIGTERM by PID, then SIGKILL if it has not exited within 5 s; resolves once it exited. */
  stop(): Promise<void>;
}

/** Starts the daemon on a fresh temporary socket path. */
export async function startHeidiDaemon(): Promise<HeidiDaemon> {
  const path = tempSocketPath('h');
  const child = spawn('python3', [SCRIPT, path], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => fail(new Error(`no READY within ${START_TIMEOUT_MS} ms`)),
      START_TIMEOUT_MS,
    );
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    const onExit = (code: number | null) =>
      fail(new Error(`the daemon exited (code ${code}) before READY: ${output}`));
    child.once('error', fail);
    child.once('exit', onExit);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (text: string) => {
      output += text;
      if (output.includes('READY\n')) {
        clearTimeout(timer);
        child.off('exit', onExit);
        child.off('error', fail);
        resolve();
      }
    });
  });
  const pid = child.pid!;
  return { path, pid, stop: () => stopChild(child, pid, exited) };
}

async function stopChild(child: ChildProcess, pid: number, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  process.kill(pid, 'SIGTERM');
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    exited,
    new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
        resolve();
      }, STOP_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  await exited;
  child.stdin?.destroy();
  child.stdout?.destroy();
}
