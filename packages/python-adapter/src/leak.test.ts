import type { Ref } from '@trestle/ref-registry';
import { describe, expect, it } from 'vitest';
import { hasPython, testBridge } from './test-support/bridge';

const heap = (): number => {
  for (let round = 0; round < 3; round++) globalThis.gc?.();
  return process.memoryUsage().heapUsed;
};

describe.runIf(hasPython())('leaks', () => {
  it('1,000,000 calls and 100,000 refs created and released: heap and Python RSS flat, registries empty', async () => {
    if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');
    const py = testBridge();
    try {
      const calls = async (count: number) => {
        const window = 200;
        for (let done = 0; done < count; done += window) {
          const batch: Promise<unknown>[] = [];
          for (let index = 0; index < window; index++) batch.push(py.call('math', 'sqrt', [16]));
          await Promise.all(batch);
        }
      };
      const refs = async (count: number) => {
        const window = 100;
        for (let done = 0; done < count; done += window) {
          const batch: Promise<Ref>[] = [];
          for (let index = 0; index < window; index++) batch.push(py.call<Ref>('builtins', 'object'));
          await py.release(await Promise.all(batch));
        }
      };
      // Warm up: JIT, caches, allocator arenas on both sides.
      await calls(50_000);
      await refs(10_000);
      await py.sessions.flush();
      const heapBefore = heap();
      const rssBefore = (await py.pythonStats())[0]?.rss_bytes as number;

      await calls(1_000_000);
      await refs(100_000);
      await py.sessions.flush();

      const heapGrowth = heap() - heapBefore;
      const [after] = await py.pythonStats();
      const rssGrowth = (after?.rss_bytes as number) - rssBefore;
      console.log(
        `[leak] heap growth ${(heapGrowth / 1024).toFixed(0)} KiB, python RSS growth ${(rssGrowth / 1024).toFixed(0)} KiB`,
      );
      expect(after?.refs).toBe(0);
      expect(py.stats().refs).toBe(0);
      expect(heapGrowth).toBeLessThan(4 * 1024 * 1024);
      expect(rssGrowth).toBeLessThan(8 * 1024 * 1024);
    } finally {
      await py.close();
    }
  }, 180_000);
});
