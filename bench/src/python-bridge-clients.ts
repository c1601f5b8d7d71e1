/**
 * Section [8] (python bridge): the peers trestle's Python adapter is measured against, behind one
 * small interface. Each client owns one Python child process and stops it by its PID in `close()`
 * (graceful first, then SIGTERM, then SIGKILL), also after a failed start.
 *
 * - floor: a hand-written newline-delimited JSON RPC over pipes (`python3 -u -c <bench_rpc.py>`).
 * - python-shell: `PythonShell` in json mode running the same bench_rpc.py (replies matched in order).
 * - pythonia (JSPyBridge): `await python('math')`, `await math.sqrt(16)`, `python.exit()`.
 *
 * trestle's client lives in python-bridge-trestle.ts (its package is loaded dynamically).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { delimiter } from 'node:path';
import { fileURLToPath } from 'node:url';

/** bench/python: bench_fixtures.py (every contender imports it) and bench_rpc.py (floor, python-shell). */
export const BENCH_PYTHON_DIR = fileURLToPath(new URL('../python', import.meta.url));
export const RPC_SCRIPT = 'bench_rpc.py';
export const PATTERN_SOURCE = '\\d+';
export const SUB_ARGS = ['#', 'a1b22c333'] as const;
export const SUB_EXPECTED = 'a#b#c#';

/** One Python bridge, prepared for the four scenarios (the `re` pattern is compiled in `start`). */
export interface BridgeClient {
  readonly id: string;
  readonly label: string;
  /** PIDs of the child processes this client started (empty when the library does not expose them). */
  readonly pids: readonly number[];
  /** `math.sqrt(16)`. */
  sqrt(): Promise<number>;
  /** `pattern.sub('#', 'a1b22c333')` on the pattern compiled once at start (a Python-side object). */
  sub(): Promise<string>;
  /** `bench_fixtures.floats(n)` as a JS array of numbers. */
  floats(n: number): Promise<number[]>;
  /** Stops the child process(es). Never throws. */
  close(): Promise<void>;
}

/** PYTHONPATH with bench/python first (the existing value, if any, after it). */
export function benchPythonPath(): string {
  const existing = process.env.PYTHONPATH;
  return existing ? `${BENCH_PYTHON_DIR}${delimiter}${existing}` : BENCH_PYTHON_DIR;
}

/** The environment of the peers' children: bench/python importable, no __pycache__ written into it. */
export function childEnv(): NodeJS.ProcessEnv {
  return { ...process.env, PYTHONPATH: benchPythonPath(), PYTHONDONTWRITEBYTECODE: '1' };
}

// ---- child process bookkeeping ----

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

/** Registers a child so that it is killed (by its PID) if this process exits early (watchdog). */
export function trackChild(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  // A spawn failure (e.g. ENOENT) is an 'error' event: never let it crash the bench. Each client
  // notices the failure on its own (its calls fail, or its start times out).
  child.on('error', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const leftover of live) {
        if (!hasExited(leftover) && leftover.pid !== undefined) {
          try {
            process.kill(leftover.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
    });
  }
}

const waitExit = (child: ChildProcess, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    if (hasExited(child)) {
      resolve(true);
      return;
    }
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(hasExited(child));
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });

/**
 * Stops one child by its PID: waits `graceMs` for it to exit by itself (after its stdin was closed),
 * then SIGTERM, then SIGKILL. Only ever signals this child, and only while it has not exited (so a
 * reused PID is never hit).
 */
export async function stopChild(child: ChildProcess | undefined, graceMs = 500): Promise<void> {
  if (!child || child.pid === undefined) return;
  const pid = child.pid;
  if (await waitExit(child, graceMs)) return;
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    if (hasExited(child)) return;
    try {
      process.kill(pid, signal);
    } catch {
      return; // already gone
    }
    if (await waitExit(child, 1_000)) return;
  }
}

/** Rejects after `ms` (and runs `onTimeout`), so that no await on a child can hang the bench. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
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

const tail = (text: string, max = 600): string => (text.length > max ? `...${text.slice(-max)}` : text);

interface Waiter {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface Reply {
  id?: number;
  result?: unknown;
  error?: string;
}

// ---- 1. raw floor: newline-delimited JSON over pipes, replies matched by id ----

export async function startFloor(rpcSource: string): Promise<BridgeClient> {
  const child = spawn('python3', ['-u', '-c', rpcSource], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: childEnv(),
  });
  trackChild(child);
  const pending = new Map<number, Waiter>();
  let nextId = 1;
  let stderr = '';
  let failure: Error | undefined;
  const failAll = (error: Error) => {
    failure ??= error;
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };
  child.on('error', failAll);
  child.on('exit', (code, signal) =>
    failAll(new Error(`floor child exited (${signal ?? code}) ${tail(stderr)}`.trim())),
  );
  child.stdin.on('error', failAll);
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = tail(stderr + chunk, 4_000);
  });

  const onLine = (line: string) => {
    const reply = JSON.parse(line) as Reply;
    const waiter = pending.get(reply.id!);
    if (!waiter) return;
    pending.delete(reply.id!);
    if (reply.error !== undefined) waiter.reject(new Error(reply.error));
    else waiter.resolve(reply.result);
  };
  // Split stdout by newlines; a partial line is kept as pieces (a 1 MB reply arrives in ~16 chunks).
  let pieces: string[] = [];
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    let start = 0;
    let newline = chunk.indexOf('\n');
    while (newline !== -1) {
      const part = chunk.slice(start, newline);
      if (pieces.length > 0) {
        pieces.push(part);
        onLine(pieces.join(''));
        pieces = [];
      } else {
        onLine(part);
      }
      start = newline + 1;
      newline = chunk.indexOf('\n', start);
    }
    if (start < chunk.length) pieces.push(chunk.slice(start));
  });

  const call = (message: Record<string, unknown>): Promise<unknown> => {
    if (failure) return Promise.reject(failure);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      child.stdin.write(`${JSON.stringify({ id, ...message })}\n`);
    });
  };

  const close = async () => {
    child.stdin.end();
    await stopChild(child);
  };
  return rpcContender('floor', 'floor (raw NDJSON over pipes)', child.pid, call, close);
}

// ---- 3. python-shell: json mode, the same bench_rpc.py, replies matched in order ----

interface PythonShellLike {
  readonly childProcess: ChildProcess;
  send(message: unknown): unknown;
  end(callback: (error: unknown) => void): unknown;
  on(event: string, listener: (...args: never[]) => void): unknown;
}

export async function startPythonShell(): Promise<BridgeClient> {
  const { PythonShell } = (await import('python-shell')) as unknown as {
    PythonShell: new (script: string, options: Record<string, unknown>) => PythonShellLike;
  };
  const shell = new PythonShell(RPC_SCRIPT, {
    mode: 'json',
    pythonPath: 'python3',
    pythonOptions: ['-u'],
    scriptPath: BENCH_PYTHON_DIR,
    env: childEnv(),
  });
  const child = shell.childProcess;
  trackChild(child);
  // The protocol answers in order: a FIFO of waiters (head index, compacted now and then).
  let queue: Waiter[] = [];
  let head = 0;
  let nextId = 1;
  let stderr = '';
  let failure: Error | undefined;
  const failAll = (error: Error) => {
    failure ??= error;
    for (let i = head; i < queue.length; i++) queue[i]!.reject(error);
    queue = [];
    head = 0;
  };
  shell.on('message', (reply: Reply) => {
    const waiter = queue[head++];
    if (head > 1_024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
    if (!waiter) return;
    if (reply.error !== undefined) waiter.reject(new Error(reply.error));
    else waiter.resolve(reply.result);
  });
  shell.on('stderr', (line: string) => {
    stderr = tail(`${stderr}${line}\n`, 4_000);
  });
  shell.on('error', (error: Error) => failAll(error));
  shell.on('pythonError', (error: Error) => failAll(error));
  child.on('exit', (code, signal) =>
    failAll(new Error(`python-shell child exited (${signal ?? code}) ${tail(stderr)}`.trim())),
  );

  const call = (message: Record<string, unknown>): Promise<unknown> => {
    if (failure) return Promise.reject(failure);
    return new Promise((resolve, reject) => {
      queue.push({ resolve, reject });
      shell.send({ id: nextId++, ...message });
    });
  };
  const close = async () => {
    try {
      shell.end(() => undefined);
    } catch {
      // stdin already closed
    }
    await stopChild(child);
  };
  return rpcContender('python-shell', 'python-shell (json mode)', child.pid, call, close);
}

// ---- 2. pythonia (JSPyBridge) ----

/** A pythonia proxy: any property is a callable proxy, awaiting a call gives a value or a proxy. */
type PyProxy = { [key: string]: (...args: unknown[]) => Promise<unknown> } & {
  valueOf(): Promise<unknown>;
};

interface PythoniaModule {
  python: ((module: string) => Promise<unknown>) & { exit(): void };
  com: { proc: ChildProcess | null };
}

/**
 * pythonia spawns its Python child (`python3 .../interface.py`, over a Node IPC channel) when the
 * module is first evaluated, with `process.env` as it is then: PYTHONPATH is set around that import
 * and restored right after. A singleton: start it once per process.
 */
export async function startPythonia(): Promise<BridgeClient> {
  const saved = {
    PYTHONPATH: process.env.PYTHONPATH,
    PYTHONDONTWRITEBYTECODE: process.env.PYTHONDONTWRITEBYTECODE,
  };
  let mod: PythoniaModule;
  try {
    process.env.PYTHONPATH = benchPythonPath();
    process.env.PYTHONDONTWRITEBYTECODE = '1';
    const imported = (await import('pythonia')) as unknown as Partial<PythoniaModule> & {
      default?: PythoniaModule;
    };
    mod = imported.python && imported.com ? (imported as PythoniaModule) : imported.default!;
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
  const { python, com } = mod;
  if (!com.proc) throw new Error('pythonia did not start its Python child (com.proc is null)');
  const child = com.proc;
  trackChild(child);
  let closed = false;
  const close = async () => {
    if (!closed) {
      closed = true;
      try {
        python.exit(); // clears its 1 s timer and SIGTERMs the child
      } catch {
        // nothing more to do than the PID below
      }
    }
    await stopChild(child, 200);
  };
  // A child that dies (e.g. a missing module on its side) leaves pythonia's calls waiting for its
  // 100 s request timeout: fail fast instead.
  const exited = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`pythonia child exited (${signal ?? code})`)));
    child.once('error', (error) => reject(new Error(`pythonia child: ${error.message}`)));
  });
  exited.catch(() => undefined);
  try {
    const [math, re, fixtures] = (await Promise.race([
      Promise.all([python('math'), python('re'), python('bench_fixtures')]),
      exited,
    ])) as PyProxy[];
    const pattern = (await re!.compile!(PATTERN_SOURCE)) as PyProxy;
    return {
      id: 'pythonia',
      label: 'pythonia (JSPyBridge)',
      pids: child.pid === undefined ? [] : [child.pid],
      sqrt: () => math!.sqrt!(16) as Promise<number>,
      sub: () => pattern.sub!(...SUB_ARGS) as Promise<string>,
      // A list comes back as a proxy (a Python-side ref); .valueOf() fetches it as JSON: 2 round trips.
      floats: async (n) => (await ((await fixtures!.floats!(n)) as PyProxy).valueOf()) as number[],
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The floor and python-shell speak the same little RPC (bench_rpc.py): one contender shape for both. */
async function rpcContender(
  id: string,
  label: string,
  pid: number | undefined,
  call: (message: Record<string, unknown>) => Promise<unknown>,
  close: () => Promise<void>,
) {
  try {
    const ref = await call({ fn: 'compile', args: [PATTERN_SOURCE] });
    return {
      id,
      label,
      pids: pid === undefined ? [] : [pid],
      sqrt: () => call({ fn: 'sqrt', args: [16] }) as Promise<number>,
      sub: () => call({ fn: 'method', ref, method: 'sub', args: SUB_ARGS }) as Promise<string>,
      floats: (n: number) => call({ fn: 'floats', args: [n] }) as Promise<number[]>,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
