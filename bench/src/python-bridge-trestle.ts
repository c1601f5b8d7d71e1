/**
 * Section [8] (python bridge): trestle's contender, `@trestle/python-adapter`.
 *
 * Written against the adapter's announced API (createPython({ size, env, cwd }), ready(),
 * call(module, fn, args), method(ref, name, args), close()). The package is loaded with a dynamic
 * import of a variable specifier, so this file neither type-checks against nor breaks on a package
 * that is still being written: when it is missing or not built, the section prints
 * `trestle: skipped (<reason>)` and measures the peers alone.
 *
 * The adapter owns its worker process and `close()` stops it. Its PIDs are read from `stats()` when
 * the adapter offers them; a worker that is still this process's child after `close()` is killed by
 * its PID.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type BridgeClient, benchPythonPath, PATTERN_SOURCE, SUB_ARGS } from './python-bridge-clients';

/** The part of the adapter's API this bench uses. */
interface TrestlePython {
  ready(): Promise<void>;
  call(module: string, fn: string, args: readonly unknown[]): Promise<unknown>;
  method(ref: unknown, name: string, args: readonly unknown[]): Promise<unknown>;
  close(): Promise<void>;
  stats?(): { workers?: readonly { pid?: number | undefined }[] };
}

type CreatePython = (options: { size?: number; env?: Record<string, string>; cwd?: string }) => TrestlePython;

/** Why trestle is not measured (printed as `trestle: skipped (<reason>)`). */
export class TrestleSkipped extends Error {}

const CLOSE_TIMEOUT_MS = 10_000;

const distEntry = fileURLToPath(
  new URL('../node_modules/@trestle/python-adapter/dist/index.js', import.meta.url),
);

const isFunction = (value: unknown): value is (...args: never[]) => unknown => typeof value === 'function';

/** The workers' PIDs from `stats()`, if the adapter reports them. */
function workerPids(py: TrestlePython): number[] {
  try {
    const workers = isFunction(py.stats) ? py.stats().workers : undefined;
    return (workers ?? []).flatMap((w) => (typeof w.pid === 'number' ? [w.pid] : []));
  } catch {
    return [];
  }
}

/** True while `pid` is a live (not zombie) child of this process (Linux /proc; false elsewhere). */
function isLiveChild(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid ...: comm may hold spaces, so parse after the last ')'.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return state !== 'Z' && Number(ppid) === process.pid;
  } catch {
    return false;
  }
}

export async function startTrestle(): Promise<BridgeClient> {
  if (!existsSync(distEntry)) {
    throw new TrestleSkipped(
      'packages/python-adapter/dist/index.js does not exist (build it with `pnpm --filter @trestle/python-adapter build`)',
    );
  }
  let mod: Record<string, unknown>;
  try {
    // A variable specifier: no compile-time dependency on the package's types.
    const specifier = '@trestle/python-adapter';
    mod = (await import(specifier)) as Record<string, unknown>;
  } catch (error) {
    throw new TrestleSkipped(`import('@trestle/python-adapter') failed: ${String(error)}`);
  }
  if (!isFunction(mod.createPython)) throw new TrestleSkipped('createPython is not exported');
  const py = (mod.createPython as CreatePython)({
    size: 1,
    env: { PYTHONPATH: benchPythonPath(), PYTHONDONTWRITEBYTECODE: '1' },
  });
  for (const name of ['ready', 'call', 'method', 'close'] as const) {
    if (!isFunction(py?.[name])) throw new TrestleSkipped(`createPython() returned no ${name}()`);
  }
  let closed = false;
  let pids: number[] = [];
  const close = async () => {
    if (closed) return;
    closed = true;
    pids = [...new Set([...pids, ...workerPids(py)])];
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        py.close(),
        new Promise((resolve) => {
          timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
        }),
      ]);
    } catch {
      // close() failing leaves nothing more this bench can do
    } finally {
      clearTimeout(timer);
    }
    // Backstop: a worker close() left running is still our child: stop it by its PID.
    for (const pid of pids) {
      if (!isLiveChild(pid)) continue;
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (!isLiveChild(pid)) continue;
      console.log(`  trestle: worker ${pid} still running after close(): SIGKILL`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  };
  try {
    await py.ready();
    pids = workerPids(py);
    const pattern = await py.call('re', 'compile', [PATTERN_SOURCE]);
    return {
      id: 'trestle',
      label: 'trestle (@trestle/python-adapter, size 1)',
      get pids() {
        return pids;
      },
      sqrt: () => py.call('math', 'sqrt', [16]) as Promise<number>,
      sub: () => py.method(pattern, 'sub', SUB_ARGS) as Promise<string>,
      floats: (n) => py.call('bench_fixtures', 'floats', [n]) as Promise<number[]>,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
