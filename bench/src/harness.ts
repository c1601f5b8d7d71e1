/**
 * Measurement loops. Every contender owns its hot loop (`run(n)` performs `n` operations and returns
 * how many were allowed), so the timed code is monomorphic per contender and the harness adds one
 * call per sample, not one per operation. Contenders of one scenario are interleaved round by round
 * (rotated order) and the median round is reported, so drift and order effects hit all of them alike.
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
  /** Median over rounds. */
  readonly opsPerSec: number;
  readonly minOpsPerSec: number;
  readonly maxOpsPerSec: number;
  /** Median absolute deviation over rounds, as a fraction of the median. */
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
  for (let i = 0; i < 64 && performance.now() < deadline; i++) {
    const { ms } = await timeOnce(contender, n);
    rate = ms > 0 ? (n / ms) * 1000 : rate;
    if (ms < options.sampleMs / 4) n = Math.min(n * 2, options.maxOpsPerSample);
  }
  return rate;
}

export async function measureThroughput(
  contenders: readonly Contender[],
  options: ThroughputOptions,
): Promise<Measurement[]> {
  const batch = new Map<Contender, number>();
  for (const contender of contenders) {
    collect();
    const rate = await warmup(contender, options);
    const n = Math.round((rate * options.sampleMs) / 1000);
    batch.set(contender, Math.max(1_000, Math.min(options.maxOpsPerSample, n)));
  }
  const samples = new Map<Contender, number[]>(contenders.map((c) => [c, []]));
  const allowed = new Map<Contender, number>(contenders.map((c) => [c, 0]));
  for (let round = 0; round < options.rounds; round++) {
    for (const contender of rotate(contenders, round)) {
      const n = batch.get(contender)!;
      // Let due timers (e.g. rate-limiter-flexible's expiry timers) run outside the timed window, and
      // collect each contender's garbage before the next one is timed.
      await yieldToEventLoop();
      collect();
      const { ms, allowed: ok } = await timeOnce(contender, n);
      samples.get(contender)!.push((n / ms) * 1000);
      allowed.set(contender, allowed.get(contender)! + ok);
    }
  }
  return contenders.map((contender) => {
    const values = samples.get(contender)!;
    const m = median(values);
    return {
      id: contender.id,
      label: contender.label,
      mode: contender.mode,
      opsPerSec: m,
      minOpsPerSec: Math.min(...values),
      maxOpsPerSec: Math.max(...values),
      madPct: m > 0 ? mad(values) / m : 0,
      samples: values,
      opsPerSample: batch.get(contender)!,
      allowedFraction: allowed.get(contender)! / (batch.get(contender)! * options.rounds),
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
