import type { Ref } from '@trestle/ref-registry';
import { describe, expect, it } from 'vitest';
import { PythonAdapterError } from './errors';
import { hasPython, testBridge } from './test-support/bridge';

const codeOf = (error: unknown) => (PythonAdapterError.isInstance(error) ? error.code : String(error));

describe.runIf(hasPython())('worker pool', () => {
  it('strict session affinity: a session always runs on the same worker', async () => {
    const py = testBridge({ size: 2 });
    try {
      await py.ready();
      const pids = new Map<string, Set<number>>();
      await Promise.all(
        ['a', 'b', 'c', 'd'].map(async (session) => {
          const seen = new Set<number>();
          for (let round = 0; round < 5; round++) {
            seen.add(await py.call<number>('trestle_fixtures', 'pid', [], undefined, { session }));
          }
          pids.set(session, seen);
        }),
      );
      for (const seen of pids.values()) expect(seen.size).toBe(1);
      const all = new Set([...pids.values()].flatMap((seen) => [...seen]));
      expect(all.size).toBe(2); // sessions spread over both workers
      const pattern = await py.call<Ref>('re', 'compile', ['\\d'], undefined, { session: 'a' });
      for (let round = 0; round < 5; round++) {
        expect(await py.method(pattern, 'sub', ['#', 'a1'], undefined, { session: 'a' })).toBe('a#');
      }
    } finally {
      await py.close();
    }
  });

  it('several async calls in flight in one worker finish out of order', async () => {
    const py = testBridge();
    try {
      const finished: string[] = [];
      const started = Date.now();
      await Promise.all(
        [
          ['slow', 0.3],
          ['fast', 0.05],
          ['mid', 0.15],
        ].map(async ([name, seconds]) => {
          finished.push(await py.call<string>('trestle_fixtures', 'async_value', [seconds, name]));
        }),
      );
      expect(finished).toEqual(['fast', 'mid', 'slow']);
      expect(Date.now() - started).toBeLessThan(1_500);
    } finally {
      await py.close();
    }
  });

  it('a full queue refuses at once (backpressure); queued calls time out', async () => {
    const py = testBridge({ maxInFlight: 1, maxQueue: 2, queueTimeoutMs: 150 });
    try {
      await py.ready();
      const blocker = py.call('trestle_fixtures', 'sleep', [0.6]);
      const queued = [
        py.call('math', 'sqrt', [1]).catch((e: unknown) => e),
        py.call('math', 'sqrt', [4]).catch((e: unknown) => e),
      ];
      const refused = await py.call('math', 'sqrt', [9]).catch((e: unknown) => e);
      expect(codeOf(refused)).toBe('PY_QUEUE_FULL');
      expect((await Promise.all(queued)).map(codeOf)).toEqual(['PY_QUEUE_TIMEOUT', 'PY_QUEUE_TIMEOUT']);
      expect(await blocker).toBe(0.6);
      expect(await py.call('math', 'sqrt', [9])).toBe(3);
    } finally {
      await py.close();
    }
  });

  it('an AbortSignal cancels a queued call and a running one', async () => {
    const py = testBridge({ maxInFlight: 1 });
    try {
      await py.ready();
      const controller = new AbortController();
      const running = py.call('trestle_fixtures', 'sleep', [20], undefined, { signal: controller.signal });
      const queued = py.call('math', 'sqrt', [4], undefined, { signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      expect(codeOf(await running.catch((e: unknown) => e))).toBe('PY_ABORTED');
      expect(codeOf(await queued.catch((e: unknown) => e))).toBe('PY_ABORTED');
      expect(await py.call('math', 'sqrt', [4])).toBe(2);
      expect(py.stats().workers[0]?.restarts).toBe(0);
      const already = await py
        .call('math', 'sqrt', [4], undefined, { signal: AbortSignal.abort() })
        .catch((e: unknown) => e);
      expect(codeOf(already)).toBe('PY_ABORTED');
    } finally {
      await py.close();
    }
  });

  it('a bad interpreter fails with PY_SPAWN_FAILED, and doctor() says why without throwing', async () => {
    const py = testBridge({ python: '/nonexistent/python3' });
    try {
      const error = await py.call('math', 'sqrt', [4]).catch((e: unknown) => e);
      expect(codeOf(error)).toBe('PY_SPAWN_FAILED');
      const report = await py.doctor();
      expect(report.ok).toBe(false);
      expect(report.error).toContain('/nonexistent/python3');
    } finally {
      await py.close();
    }
  });

  it('doctor() reports the interpreter, its version and importable modules', async () => {
    const py = testBridge();
    try {
      const report = await py.doctor(['json', 'no_such_module_xyz']);
      expect(report.version).toMatch(/^3\.\d+/);
      expect(report.executable).toContain('python');
      expect(report.modules.json).toBe(true);
      expect(report.modules.no_such_module_xyz).toContain('No module named');
      expect(report.ok).toBe(false);
    } finally {
      await py.close();
    }
  });

  it('a request over maxFrameBytes fails alone; so does a reply over it; the worker carries on', async () => {
    const py = testBridge({ maxFrameBytes: 4096 });
    try {
      const big = await py.call('trestle_fixtures', 'echo', ['x'.repeat(5000)]).catch((e: unknown) => e);
      expect(codeOf(big)).toBe('PY_INVALID_ARGUMENT');
      const large = await py.call('operator', 'mul', ['z', 5000]).catch((e: unknown) => e);
      expect(codeOf(large)).toBe('PY_UNENCODABLE');
      expect(await py.call('math', 'sqrt', [16])).toBe(4);
      expect(py.stats().workers[0]?.restarts).toBe(0);
    } finally {
      await py.close();
    }
  });

  it('closing fails queued calls with PY_CLOSED and stops the workers', async () => {
    const py = testBridge({ maxInFlight: 1 });
    await py.ready();
    const pid = py.stats().workers[0]?.pid as number;
    const running = py.call('trestle_fixtures', 'sleep', [0.2]);
    const queued = py.call('math', 'sqrt', [4]).catch((e: unknown) => e);
    await py.close();
    expect(await running).toBe(0.2);
    expect(codeOf(await queued)).toBe('PY_CLOSED');
    expect(codeOf(await py.call('math', 'sqrt', [4]).catch((e: unknown) => e))).toBe('PY_CLOSED');
    expect(() => process.kill(pid, 0)).toThrow();
  });
});
