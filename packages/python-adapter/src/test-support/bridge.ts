import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createPython, type PythonBridge } from '../python';
import type { PythonOptions } from '../types';

/** The directory of `trestle_fixtures.py`. */
export const fixturesDir = fileURLToPath(new URL('./python', import.meta.url));

let checked: boolean | undefined;

/**
 * Whether python3 runs here. In CI (`CI=true`) a missing interpreter fails loudly; on a developer
 * machine the suite is skipped with a printed reason.
 */
export function hasPython(): boolean {
  if (checked !== undefined) return checked;
  try {
    execFileSync(
      process.env.TRESTLE_PYTHON ?? 'python3',
      ['-c', 'import sys; assert sys.version_info >= (3, 9)'],
      {
        stdio: 'pipe',
      },
    );
    checked = true;
  } catch (error) {
    if (process.env.CI) throw new Error(`python3 >= 3.9 is required in CI: ${(error as Error).message}`);
    console.warn(`[python-adapter tests] skipped: no python3 >= 3.9 (${(error as Error).message})`);
    checked = false;
  }
  return checked;
}

/** Output lines collected from the workers, for assertions. */
export interface Captured {
  readonly lines: { stream: string; line: string; workerId: number }[];
}

/** A bridge with the fixtures on PYTHONPATH and output captured (not printed). */
export function testBridge(options: PythonOptions = {}): PythonBridge & { captured: Captured } {
  const captured: Captured = { lines: [] };
  const bridge = createPython({
    onOutput: (entry) =>
      captured.lines.push({ stream: entry.stream, line: entry.line, workerId: entry.workerId }),
    logger: { info: () => {}, warn: () => {}, error: () => {} },
    ...options,
    env: { PYTHONPATH: fixturesDir, ...options.env },
  });
  return Object.assign(bridge, { captured });
}

/** Whether a process exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return process.platform !== 'linux';
  }
}

/** Polls `predicate` every 20 ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function eventually(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return predicate();
}
