import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Ref, RefNotFoundError } from '@trestle/ref-registry';
import { describe, expect, it } from 'vitest';
import { PythonAdapterError, WorkerCrashedError } from './errors';
import { alive, eventually, fixturesDir, hasPython, testBridge } from './test-support/bridge';

describe.runIf(hasPython())('faults: crashes, deadlines, noise, host death', () => {
  it('os._exit(3) mid-call: in-flight calls reject at once with the exit code; the next call runs on a new worker', async () => {
    const py = testBridge();
    try {
      await py.ready();
      const pidBefore = await py.call<number>('trestle_fixtures', 'pid');
      const slow = py.call('trestle_fixtures', 'async_value', [5, 'late']).catch((e: unknown) => e);
      const started = Date.now();
      const crash = await py.call('trestle_fixtures', 'exit_now', [3]).catch((e: unknown) => e);
      const elapsed = Date.now() - started;
      expect(crash).toBeInstanceOf(WorkerCrashedError);
      expect((crash as WorkerCrashedError).exitCode).toBe(3);
      expect((crash as WorkerCrashedError).stderrTail).toContain('exiting with 3');
      console.log(`[faults] os._exit(3): in-flight calls rejected ${elapsed} ms after the call`);
      expect(elapsed).toBeLessThan(200);
      const other = await slow;
      expect(other).toBeInstanceOf(WorkerCrashedError);
      expect(await py.call('math', 'sqrt', [16])).toBe(4);
      expect(await py.call('trestle_fixtures', 'pid')).not.toBe(pidBefore);
      expect(py.stats().workers[0]?.restarts).toBe(1);
    } finally {
      await py.close();
    }
  });

  it('a segfault (ctypes) rejects with the signal; the pool recovers', async () => {
    const py = testBridge();
    try {
      await py.ready();
      const crash = await py.call('trestle_fixtures', 'segfault').catch((e: unknown) => e);
      expect(crash).toBeInstanceOf(WorkerCrashedError);
      expect((crash as WorkerCrashedError).signal ?? (crash as WorkerCrashedError).exitCode).toBeTruthy();
      expect(await py.call('math', 'sqrt', [16])).toBe(4);
    } finally {
      await py.close();
    }
  });

  it('refs held by a crashed worker report worker_restarted', async () => {
    const py = testBridge();
    try {
      const pattern = await py.call<Ref>('re', 'compile', ['x'], undefined, { session: 'held' });
      await py
        .call('trestle_fixtures', 'exit_now', [1], undefined, { session: 'held' })
        .catch(() => undefined);
      const error = await py
        .method(pattern, 'match', ['x'], undefined, { session: 'held' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RefNotFoundError);
      expect((error as RefNotFoundError).reason).toBe('worker_restarted');
    } finally {
      await py.close();
    }
  });

  it('time.sleep(30) with timeoutMs 200 rejects in time, is cancelled in Python, and the worker stays', async () => {
    const py = testBridge();
    try {
      await py.ready();
      const pid = await py.call<number>('trestle_fixtures', 'pid');
      const started = Date.now();
      const error = await py
        .call('trestle_fixtures', 'sleep', [30], undefined, { timeoutMs: 200 })
        .catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(PythonAdapterError.isInstance(error) && error.code).toBe('PY_TIMEOUT');
      expect(await py.call('math', 'sqrt', [16])).toBe(4);
      expect(await py.call('trestle_fixtures', 'pid')).toBe(pid);
    } finally {
      await py.close();
    }
  });

  it('a call stuck in C code does not yield: the worker is killed and respawned after the grace', async () => {
    const py = testBridge({ cancelGraceMs: 200 });
    try {
      const pattern = await py.call<Ref>('re', 'compile', ['x'], undefined, { session: 'stuck' });
      const controller = new AbortController();
      const pending = py.call('trestle_fixtures', 'stuck', [], undefined, {
        session: 'stuck',
        signal: controller.signal,
      });
      setTimeout(() => controller.abort(), 100);
      const error = await pending.catch((e: unknown) => e);
      expect(PythonAdapterError.isInstance(error) && error.code).toBe('PY_ABORTED');
      expect(await eventually(() => (py.stats().workers[0]?.restarts ?? 0) === 1, 3_000)).toBe(true);
      const gone = await py
        .method(pattern, 'match', ['x'], undefined, { session: 'stuck' })
        .catch((e: unknown) => e);
      expect((gone as RefNotFoundError).reason).toBe('worker_restarted');
      expect(await py.call('math', 'sqrt', [16])).toBe(4);
    } finally {
      await py.close();
    }
  });

  it('1 MB of print() during a call does not corrupt the protocol; lines reach the logger', async () => {
    const py = testBridge();
    try {
      expect(await py.call('trestle_fixtures', 'print_mb')).toBe('ok');
      expect(await py.call('math', 'sqrt', [16])).toBe(4);
      await eventually(() => py.captured.lines.some((entry) => entry.line === 'to stderr'), 2_000);
      const lines = py.captured.lines;
      expect(lines.some((entry) => entry.stream === 'stdout' && entry.line === 'after the megabyte')).toBe(
        true,
      );
      expect(lines.some((entry) => entry.stream === 'stderr' && entry.line === 'to stderr')).toBe(true);
      const xs = lines.filter((entry) => entry.stream === 'stdout' && entry.line.startsWith('x'));
      expect(xs.reduce((sum, entry) => sum + entry.line.length, 0)).toBe(1024 * 1024);
    } finally {
      await py.close();
    }
  });

  it('killing the Node host leaves no Python process behind (nor what Python started)', async () => {
    const script = fileURLToPath(new URL('./test-support/host.mjs', import.meta.url));
    const host = spawn(process.execPath, [script], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, PYTHONPATH: fixturesDir },
    });
    try {
      const pids = await new Promise<{ worker: number; sleeper: number }>((resolve, reject) => {
        let text = '';
        host.stdout.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          const line = text.split('\n').find((candidate) => candidate.startsWith('{'));
          if (line) resolve(JSON.parse(line));
        });
        host.on('exit', (code) => reject(new Error(`host exited early (${code})`)));
        setTimeout(() => reject(new Error('host did not report its pids')), 20_000).unref();
      });
      expect(alive(pids.worker)).toBe(true);
      expect(alive(pids.sleeper)).toBe(true);
      host.kill('SIGKILL');
      expect(await eventually(() => !alive(pids.worker), 5_000)).toBe(true);
      expect(await eventually(() => !alive(pids.sleeper), 5_000)).toBe(true);
    } finally {
      if (host.exitCode === null) host.kill('SIGKILL');
    }
  });
});
