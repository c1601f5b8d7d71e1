/** The reference server as a child process (for the remote tests), and tokens for it. */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { serverMain, waitFor } from './env';

/** A fixed secret, so a restarted server accepts the same token. */
export const TEST_SECRET = 'trestle-repl-tests-secret-0123456789abcdef';

/** A running server. */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  /** What it wrote on stderr (start-up lines, errors). */
  readonly stderr: () => string;
  /** Stops it (`SIGKILL` simulates a crash: sessions are not ended) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `trestle-server --port 0` and resolves once it listens. */
export async function startServer(flags: readonly string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [serverMain, '--port', '0', '--log-level', 'warn', ...flags], {
    env: { ...process.env, TRESTLE_JWT_SECRET: TEST_SECRET },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}):\n${stderr}`);
      return /listening on (ws:\/\/\S+)/.exec(stderr)?.[1];
    },
    20_000,
    () => `the server to listen; stderr so far:\n${stderr}`,
  );
  return {
    child,
    url,
    port: Number(new URL(url).port),
    stderr: () => stderr,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** A token for tenant `tenant` on `tier`, minted by `trestle-server token`. */
export function mintToken(tenant = 'repl-tests', tier = 'basic'): string {
  return execFileSync(
    process.execPath,
    [serverMain, 'token', '--sub', tenant, '--tier', tier, '--ttl', '1h'],
    {
      env: { ...process.env, TRESTLE_JWT_SECRET: TEST_SECRET },
      encoding: 'utf8',
    },
  ).trim();
}
