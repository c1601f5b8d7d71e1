import { type ChildProcess, fork } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What one worker process (`budget-worker.mjs`) reports. Times are Redis server times in ms. */
export interface WorkerResult {
  readonly pid: number;
  readonly skewMs: number;
  readonly loops: number;
  readonly allowed: number;
  readonly denied: number;
  readonly degraded: number;
  readonly errors: number;
  readonly calls: number;
  /** Callers that stopped at `maxPerLoop` instead of the deadline. */
  readonly hitMax: number;
  readonly lastError?: string;
  /** Before this process's first call was sent. */
  readonly firstBefore: number;
  /** After this process's first call returned. */
  readonly firstAfter: number;
  /** Before the last calls of this process were sent (each caller makes one more call after it). */
  readonly lastBefore: number;
  /** After every call of this process returned. */
  readonly lastAfter: number;
}

export interface HarnessOptions {
  readonly mode: 'budget' | 'naive';
  readonly url: string;
  readonly prefix: string;
  readonly key: string;
  /** Concurrent callers per process; one process per entry. */
  readonly loops: readonly number[];
  /** Clock skew per process (same length as `loops`). */
  readonly skewsMs: readonly number[];
  readonly durationMs: number;
  readonly maxPerLoop?: number;
  readonly timeoutMs?: number;
  /** Bound on the whole run (spawn, ready, run, report). */
  readonly limitMs?: number;
}

export interface HarnessSummary {
  readonly workers: readonly WorkerResult[];
  readonly allowed: number;
  readonly denied: number;
  readonly degraded: number;
  readonly errors: number;
  readonly calls: number;
  readonly hitMax: number;
  /** Seconds: max(lastAfter) - min(firstBefore). Every call executed inside this window. */
  readonly outerElapsedSec: number;
  /** Seconds: max(lastBefore) - min(firstAfter). The first and the last call are at least this far apart. */
  readonly innerElapsedSec: number;
}

const workerPath = fileURLToPath(new URL('./budget-worker.mjs', import.meta.url));
const packageRoot = fileURLToPath(new URL('../../', import.meta.url));
const distFiles = ['dist/index.js', 'dist/redis.js'].map((file) => join(packageRoot, file));

/**
 * The workers import the built package. Missing `dist/` is an error with the fix in the message; a
 * `dist/` older than a source file is only a warning (the root test command builds first).
 */
export function assertBuilt(): void {
  const missing = distFiles.filter((file) => !existsSync(file));
  if (missing.length > 0) {
    throw new Error(
      `the distributed harness runs the BUILT package in child processes, but ${missing.join(', ')} is missing: ` +
        'run `pnpm --filter @trestle/budget build` (tsup) first',
    );
  }
  const built = Math.min(...distFiles.map((file) => statSync(file).mtimeMs));
  const sources = join(packageRoot, 'src');
  const newer = readdirSync(sources, { recursive: true, encoding: 'utf8' }).filter(
    (file) =>
      file.endsWith('.ts') &&
      !file.endsWith('.test.ts') &&
      !file.startsWith('test-support') &&
      statSync(join(sources, file)).mtimeMs > built,
  );
  if (newer.length > 0) {
    console.warn(
      `[budget tests] dist/ is older than src/${newer.join(', src/')}: the workers run the old build`,
    );
  }
}

type Message =
  | { type: 'ready'; pid: number }
  | ({ type: 'result' } & WorkerResult)
  | { type: 'error'; message: string };

/**
 * Forks one process per `loops` entry, waits until all are connected (barrier), sends `go` to all,
 * and collects their reports. Kills its own children (by their handles) if anything fails.
 */
export async function runHarness(options: HarnessOptions): Promise<HarnessSummary> {
  const limitMs = options.limitMs ?? options.durationMs + 15_000;
  const children: ChildProcess[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const work = new Promise<WorkerResult[]>((resolve, reject) => {
      const results: WorkerResult[] = [];
      let ready = 0;
      options.loops.forEach((loops, index) => {
        const config = {
          mode: options.mode,
          url: options.url,
          prefix: options.prefix,
          key: options.key,
          loops,
          skewMs: options.skewsMs[index] ?? 0,
          maxPerLoop: options.maxPerLoop ?? 50_000,
          timeoutMs: options.timeoutMs ?? 1_000,
        };
        const child = fork(workerPath, [JSON.stringify(config)], {
          execArgv: [],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        children.push(child);
        child.on('message', (message: Message) => {
          if (message.type === 'ready') {
            ready++;
            if (ready === options.loops.length) {
              for (const each of children) each.send({ type: 'go', durationMs: options.durationMs });
            }
          } else if (message.type === 'result') {
            const { type: _type, ...result } = message;
            results.push(result);
            if (results.length === options.loops.length) resolve(results);
          } else {
            reject(new Error(`worker ${child.pid} failed: ${message.message}`));
          }
        });
        child.on('error', reject);
        child.on('exit', (code, signal) => {
          if (code !== 0) reject(new Error(`worker ${child.pid} exited with ${code ?? signal}`));
        });
      });
    });
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`harness did not finish within ${limitMs} ms`)), limitMs);
    });
    const workers = await Promise.race([work, limit]);
    const sum = (field: 'allowed' | 'denied' | 'degraded' | 'errors' | 'calls' | 'hitMax') =>
      workers.reduce((total, worker) => total + worker[field], 0);
    const max = (values: number[]) => Math.max(...values);
    const min = (values: number[]) => Math.min(...values);
    return {
      workers,
      allowed: sum('allowed'),
      denied: sum('denied'),
      degraded: sum('degraded'),
      errors: sum('errors'),
      calls: sum('calls'),
      hitMax: sum('hitMax'),
      outerElapsedSec: (max(workers.map((w) => w.lastAfter)) - min(workers.map((w) => w.firstBefore))) / 1000,
      innerElapsedSec: (max(workers.map((w) => w.lastBefore)) - min(workers.map((w) => w.firstAfter))) / 1000,
    };
  } finally {
    clearTimeout(timer);
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }
}
