/**
 * Measurement loops. Every contender owns its hot loop (`run(n)` performs `n` operations and returns
 * how many were allowed), so the timed code is monomorphic per contender and the harness adds one
 * call per sample, not one per operation. Samples are taken after a full GC (with --expose-gc) and a
 * short settle; the median sample is reported. See `measureThroughput` for the two orderings.
 */

export type Mode = 'sync' | 'async';

export interface Contender {
  /** Stable id used in the JSON and in comparisons. */
  readonly id: string;
  /** Human label for the table. */
  readonly label: string;
  readonly mode: Mode;
  /** Performs `n` operations; returns how many were allowed (checked: the bench measures the allowed path). */
  run(n: number): number | Promise<number>;
  /** Optional teardown once the scenario is measured. */
  dispose?(): void | Promise<void>;
}

export interface ThroughputOptions {
  /** Measured rounds; each contender gets one sample per round. */
  readonly rounds: number;
  /** Target duration of one sample. */
  readonly sampleMs: number;
  /** Warmup time per contender (JIT, inline caches, store growth). */
  readonly warmupMs: number;
  /** Hard cap on operations in one sample (bounds every loop in count). */
  readonly maxOpsPerSample: number;
}

export interface Measurement {
  readonly id: string;
  readonly label: string;
  readonly mode: Mode;
  /** The headline figure: `medianOpsPerSec` when interleaved, `aggregateOpsPerSec` when isolated. */
  readonly opsPerSec: number;
  readonly statistic: 'median' | 'aggregate';
  readonly medianOpsPerSec: number;
  /** Total operations / total timed seconds over all samples. */
  readonly aggregateOpsPerSec: number;
  readonly minOpsPerSec: number;
  readonly maxOpsPerSec: number;
  /** Median absolute deviation over samples, as a fraction of the median. */
  readonly madPct: number;
  readonly samples: readonly number[];
  readonly opsPerSample: number;
  /** Fraction of operations that were allowed (should be 1). */
  readonly allowedFraction: number;
}

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export const mad = (values: readonly number[]): number => {
  const m = median(values);
  return median(values.map((value) => Math.abs(value - m)));
};

/** Full collection when the process runs with --expose-gc (two passes: weak/finalizer leftovers). */
export function collect(): void {
  const gc = globalThis.gc;
  if (typeof gc === 'function') {
    gc();
    gc();
  }
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** After a full GC, V8 keeps sweeping on helper threads: let that finish before timing. */
const settle = (): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, typeof globalThis.gc === 'function' ? SETTLE_MS : 0));
const SETTLE_MS = 25;

const rotate = <T>(items: readonly T[], by: number): T[] =>
  items.map((_, i) => items[(i + by) % items.length]!);

async function timeOnce(contender: Contender, n: number): Promise<{ ms: number; allowed: number }> {
  const start = performance.now();
  const result = contender.run(n);
  const allowed = typeof result === 'number' ? result : await result;
  return { ms: performance.now() - start, allowed };
}

/** Warms a contender up and returns its estimated ops/s. Bounded by `warmupMs` and by count. */
async function warmup(contender: Contender, options: ThroughputOptions): Promise<number> {
  let n = 1_000;
  let rate = 0;
  const deadline = performance.now() + options.warmupMs;
  for (let i = 0; i < 1_000 && performance.now() < deadline; i++) {
    // Turn the event loop like a server would (expiry timers of the peers fire during warmup too).
    await yieldToEventLoop();
    const { ms } = await timeOnce(contender, n);
    rate = ms > 0 ? (n / ms) * 1000 : rate;
    if (ms < options.sampleMs / 4) n = Math.min(n * 2, options.maxOpsPerSample);
  }
  return rate;
}

/**
 * Measures every contender and reports the median sample of each.
 *
 * - `interleaved` (default): all contenders live at once; each round times one sample of each, in
 *   rotated order. Best against drift; right when contenders hold little state (one hot key).
 * - `isolated`: contenders are created one at a time from their factory, measured alone and disposed
 *   (so a 100,000-key store is never timed next to another contender's 100,000 keys and timers), in
 *   counterbalanced passes: A B C ... then ... C B A, `rounds / passes` samples per pass. The headline
 *   is the aggregate (total ops / total timed time), so periodic costs (e.g. rate-limiter-flexible
 *   re-creating every record once per window) count in proportion instead of being dropped by a median.
 */
export async function measureThroughput(
  factories: readonly (() => Contender)[],
  options: ThroughputOptions & { readonly isolated?: boolean; readonly passes?: number },
): Promise<Measurement[]> {
  const samples: number[][] = factories.map(() => []);
  const allowed: number[] = factories.map(() => 0);
  const ops: number[] = factories.map(() => 0);
  const timedMs: number[] = factories.map(() => 0);
  const meta: Pick<Contender, 'id' | 'label' | 'mode'>[] = [];

  const sample = async (index: number, contender: Contender, n: number) => {
    // Let due timers (e.g. rate-limiter-flexible's expiry timers) run outside the timed window,
    // collect the previous contender's garbage, and let concurrent sweeping finish.
    await yieldToEventLoop();
    collect();
    await settle();
    const { ms, allowed: ok } = await timeOnce(contender, n);
    samples[index]!.push((n / ms) * 1000);
    timedMs[index]! += ms;
    allowed[index]! += ok;
    ops[index]! += n;
  };
  const batchOf = async (contender: Contender) => {
    collect();
    const rate = await warmup(contender, options);
    return Math.max(1_000, Math.min(options.maxOpsPerSample, Math.round((rate * options.sampleMs) / 1000)));
  };

  if (options.isolated) {
    const passes = Math.max(1, options.passes ?? 2);
    const perPass = Math.max(1, Math.round(options.rounds / passes));
    for (let pass = 0; pass < passes; pass++) {
      const order = factories.map((_, i) => (pass % 2 === 0 ? i : factories.length - 1 - i));
      for (const index of order) {
        const contender = factories[index]!();
        meta[index] = contender;
        const n = await batchOf(contender);
        for (let round = 0; round < perPass; round++) await sample(index, contender, n);
        await contender.dispose?.();
      }
    }
  } else {
    const contenders = factories.map((factory) => factory());
    contenders.forEach((contender, i) => {
      meta[i] = contender;
    });
    const batch: number[] = [];
    for (const contender of contenders) batch.push(await batchOf(contender));
    for (let round = 0; round < options.rounds; round++) {
      for (const index of rotate(
        contenders.map((_, i) => i),
        round,
      )) {
        await sample(index, contenders[index]!, batch[index]!);
      }
    }
    for (const contender of contenders) await contender.dispose?.();
  }
  await yieldToEventLoop();
  collect();

  return meta.map((m, index) => {
    const values = samples[index]!;
    const mid = median(values);
    const aggregate = (ops[index]! / timedMs[index]!) * 1000;
    return {
      id: m.id,
      label: m.label,
      mode: m.mode,
      opsPerSec: options.isolated ? aggregate : mid,
      statistic: options.isolated ? 'aggregate' : 'median',
      medianOpsPerSec: mid,
      aggregateOpsPerSec: aggregate,
      minOpsPerSec: Math.min(...values),
      maxOpsPerSec: Math.max(...values),
      madPct: mid > 0 ? mad(values) / mid : 0,
      samples: values,
      opsPerSample: Math.round(ops[index]! / values.length),
      allowedFraction: allowed[index]! / ops[index]!,
    };
  });
}

export interface ConcurrentResult {
  readonly ops: number;
  readonly ms: number;
  readonly opsPerSec: number;
  readonly allowed: number;
  /** Operations whose outcome was not a real store answer (errors, degraded decisions). */
  readonly failed: number;
}

/**
 * Keeps `concurrency` operations in flight (one async loop each) until `total` operations were issued
 * or `deadlineMs` passed. Loop `w` always uses `keys[w % keys.length]`.
 * `op` resolves `true` (allowed), `false` (denied) or `null` (failed / degraded).
 */
export async function runConcurrent(
  op: (key: string) => Promise<boolean | null>,
  keys: readonly string[],
  total: number,
  concurrency: number,
  deadlineMs: number,
): Promise<ConcurrentResult> {
  let issued = 0;
  let allowed = 0;
  let failed = 0;
  const start = performance.now();
  const deadline = start + deadlineMs;
  const loop = async (worker: number) => {
    const key = keys[worker % keys.length]!;
    while (issued < total && performance.now() < deadline) {
      issued++;
      try {
        const outcome = await op(key);
        if (outcome === true) allowed++;
        else if (outcome === null) failed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, worker) => loop(worker)));
  const ms = performance.now() - start;
  return { ops: issued, ms, opsPerSec: (issued / ms) * 1000, allowed, failed };
}
