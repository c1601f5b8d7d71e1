/**
 * Latency rounds shared by the request/reply sections ([10] kernel client, [11] server): `calls` calls
 * made by `inflight` loops, each call timed, each answer checked; and the table that prints them.
 */
import { formatOps, table } from './report';

/** One round: calls/s over the round, every call's latency (us), and the answers that were wrong. */
export interface LatencyRound {
  readonly callsPerSec: number;
  readonly latencies: Float64Array;
  readonly bad: number;
}

/**
 * Runs `calls` calls of `call(i)` from `inflight` loops; `call` resolves whether its answer was right.
 * @throws when the round takes longer than `deadlineMs` (checked before each call).
 */
export async function runLatencyRound(
  call: (i: number) => Promise<boolean>,
  calls: number,
  inflight: number,
  deadlineMs: number,
): Promise<LatencyRound> {
  const latencies = new Float64Array(calls);
  let issued = 0;
  let bad = 0;
  const deadline = performance.now() + deadlineMs;
  const loop = async (): Promise<void> => {
    while (issued < calls) {
      if (performance.now() > deadline) throw new Error(`a round exceeded ${deadlineMs} ms`);
      const i = issued++;
      const start = performance.now();
      const right = await call(i);
      latencies[i] = (performance.now() - start) * 1_000;
      if (!right) bad++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: inflight }, loop));
  return { callsPerSec: calls / ((performance.now() - started) / 1_000), latencies, bad };
}

/** The `p` quantile (0..1) of sorted values. */
export const percentile = (sorted: Float64Array, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;

/** What {@link latencyTable} prints of a contender at one number of calls in flight. */
export interface LatencyRow {
  readonly label: string;
  readonly inflight: number;
  readonly callsPerSec: number;
  readonly minCallsPerSec: number;
  readonly maxCallsPerSec: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly calls: number;
  readonly bad: number;
}

/** The table of rows: calls/s, range over rounds, p50, p99 (with `digits` decimals), calls, wrong answers. */
export function latencyTable(rows: readonly LatencyRow[], digits: number): string {
  return table(
    ['contender', 'in flight', 'calls/s', 'range', 'p50', 'p99', 'calls', 'bad'],
    rows.map((row) => [
      row.label,
      String(row.inflight),
      formatOps(row.callsPerSec),
      `${formatOps(row.minCallsPerSec)} .. ${formatOps(row.maxCallsPerSec)}`,
      `${row.p50Us.toFixed(digits)} us`,
      `${row.p99Us.toFixed(digits)} us`,
      String(row.calls),
      String(row.bad),
    ]),
    [1, 2, 4, 5, 6, 7],
  );
}
