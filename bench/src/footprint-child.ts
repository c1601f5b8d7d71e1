/**
 * Benchmark 3 (one contender per process, so every measurement starts from a clean heap):
 * bytes per key at 100,000 keys. Run as `node --expose-gc --import tsx src/footprint-child.ts <id>`;
 * prints one JSON line.
 *
 *   m0  holder array allocated, no key strings yet; contender created (empty)
 *   m1  100,000 key strings allocated (flat strings, in the holder array)
 *   m2  every key inserted once (cost 1, the bucket is then stored)
 *
 * store bytes/key = (m2 - m1) / N; with key strings = (m2 - m0) / N. Memory = heapUsed + external
 * (external includes arrayBuffers: the memory store keeps its columns in typed arrays).
 */
import { createBudget, memoryStore } from '@trestle/budget';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { MANY_KEYS, RLF_POINTS, STEADY, TIERS } from './config';
import { MapTokenBucket } from './floor';
import { collect } from './harness';

interface Snapshot {
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

const snapshot = (): Snapshot => {
  collect();
  collect();
  const { heapUsed, external, arrayBuffers } = process.memoryUsage();
  return { heapUsed, external, arrayBuffers };
};
const total = (s: Snapshot) => s.heapUsed + s.external;

interface Subject {
  insert(key: string): void;
  /** Keys held after the inserts (sanity check). */
  size(): number;
}

/** RLF keeps a record (and a timer) per key for `duration`; 60 s so nothing expires while measuring. */
const RLF_FOOTPRINT_DURATION_SEC = 60;

const subjects: Record<string, () => Subject> = {
  'trestle-memory': () => {
    const store = memoryStore();
    const budget = createBudget({ store, tiers: TIERS });
    return { insert: (key) => void budget.consumeSync(key, 'steady', 1), size: () => store.size };
  },
  'trestle-memory-maxKeys-100k': () => {
    const store = memoryStore({ maxKeys: MANY_KEYS });
    const budget = createBudget({ store, tiers: TIERS });
    return { insert: (key) => void budget.consumeSync(key, 'steady', 1), size: () => store.size };
  },
  'rlf-memory': () => {
    const limiter = new RateLimiterMemory({ points: RLF_POINTS, duration: RLF_FOOTPRINT_DURATION_SEC });
    let inserted = 0;
    return {
      insert: (key) => {
        // Resolves synchronously inside the executor; the record and timer exist on return.
        void limiter.consume(key, 1).catch(() => undefined);
        inserted++;
      },
      size: () => inserted,
    };
  },
  'floor-map': () => {
    const floor = new MapTokenBucket(STEADY.capacity, STEADY.refillPerSec);
    return { insert: (key) => void floor.take(key, 1), size: () => floor.size };
  },
};

async function main(): Promise<void> {
  const id = process.argv[2] ?? '';
  const make = subjects[id];
  if (!make || typeof globalThis.gc !== 'function') {
    console.log(JSON.stringify({ id, error: make ? 'run with --expose-gc' : `unknown subject "${id}"` }));
    process.exitCode = 1;
    return;
  }
  const n = MANY_KEYS;
  const keys = new Array<string>(n).fill('');
  const subject = make();
  // Let promise jobs of construction (none expected) settle before the baseline.
  await new Promise((resolve) => setImmediate(resolve));
  const m0 = snapshot();
  for (let i = 0; i < n; i++) keys[i] = `user-${i}`;
  const m1 = snapshot();
  for (let i = 0; i < n; i++) subject.insert(keys[i]!);
  await new Promise((resolve) => setImmediate(resolve));
  const m2 = snapshot();
  console.log(
    JSON.stringify({
      id,
      keys: n,
      held: subject.size(),
      storeBytesPerKey: (total(m2) - total(m1)) / n,
      withKeyStringsBytesPerKey: (total(m2) - total(m0)) / n,
      keyStringBytesPerKey: (total(m1) - total(m0)) / n,
      heapBytesPerKey: (m2.heapUsed - m1.heapUsed) / n,
      externalBytesPerKey: (m2.external - m1.external) / n,
      arrayBuffersBytesPerKey: (m2.arrayBuffers - m1.arrayBuffers) / n,
      // Keep the holder alive until after m2.
      lastKey: keys[n - 1],
    }),
  );
}

await main();
// RLF timers are unref'd, but do not wait for anything: the measurement is done.
process.exit();
