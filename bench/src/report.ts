import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
/** Report model (what latest.json holds) and plain-text table formatting. */
import type { RedisRow } from './budget-redis';
import type { FootprintRow } from './footprint';
import type { Measurement } from './harness';

export interface Comparison {
  /** `sync` / `await`: like for like; `mixed`: sync trestle vs an awaited peer (informational). */
  readonly kind: 'sync' | 'await' | 'mixed' | 'concurrent' | 'bytes';
  readonly subject: string;
  readonly peer: string;
  /** Short peer name printed as "x <peer>". */
  readonly peerName: string;
  /** subject / peer for throughput; peer / subject for bytes (higher is better for trestle either way). */
  readonly ratio: number;
  /** Minimum ratio required, when the comparison has a target. */
  readonly target?: number;
  /** Strict: ratio must exceed the target (e.g. "above RLF"). */
  readonly strict?: boolean;
  readonly pass?: boolean;
}

export interface ThroughputSection {
  readonly id: string;
  readonly title: string;
  readonly notes: readonly string[];
  /** Header of the success column (default `allowed`). */
  readonly okHeader?: string;
  readonly rows: readonly Measurement[];
  readonly comparisons: readonly Comparison[];
}

export interface Report {
  readonly machine: Record<string, unknown>;
  readonly config: Record<string, unknown>;
  readonly memory: readonly ThroughputSection[];
  readonly footprint: {
    readonly rows: readonly FootprintRow[];
    readonly errors: readonly { id: string; error: string }[];
    readonly targetBytesPerKey: number;
    readonly comparisons: readonly Comparison[];
  };
  readonly redis:
    | { readonly skipped: true; readonly reason: string }
    | {
        readonly skipped: false;
        readonly title: string;
        readonly serverVersion: string;
        readonly keysDeleted: number;
        readonly rows: readonly RedisRow[];
        readonly comparisons: readonly Comparison[];
      };
  readonly handlePool:
    | { readonly skipped: true; readonly reason: string }
    | {
        readonly skipped: false;
        readonly rows: readonly Measurement[];
        readonly comparisons: readonly Comparison[];
      };
  readonly misses: readonly string[];
  readonly durationSec: number;
}

export function compare(
  kind: Comparison['kind'],
  rows: readonly { id: string; opsPerSec: number }[],
  subject: string,
  peer: string,
  peerName: string,
  target?: number,
  strict = false,
): Comparison {
  const a = rows.find((row) => row.id === subject);
  const b = rows.find((row) => row.id === peer);
  const ratio = a && b && b.opsPerSec > 0 ? a.opsPerSec / b.opsPerSec : Number.NaN;
  if (target === undefined) return { kind, subject, peer, peerName, ratio };
  const pass = strict ? ratio > target : ratio >= target;
  return { kind, subject, peer, peerName, ratio, target, strict, pass };
}

export const formatOps = (opsPerSec: number): string => {
  if (!Number.isFinite(opsPerSec)) return 'n/a';
  if (opsPerSec >= 1e6) return `${(opsPerSec / 1e6).toFixed(2)} M/s`;
  if (opsPerSec >= 1e3) return `${(opsPerSec / 1e3).toFixed(1)} k/s`;
  return `${opsPerSec.toFixed(0)} /s`;
};

const pct = (fraction: number): string => `${(fraction * 100).toFixed(1)}%`;
const ratioText = (ratio: number): string => (Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : 'n/a');

export function table(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  rightAlign: number[],
): string {
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    `  ${cells
      .map((cell, i) => (rightAlign.includes(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()}`;
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function comparisonLines(comparisons: readonly Comparison[], labels: Map<string, string>): string {
  const kindText: Record<Comparison['kind'], string> = {
    sync: 'sync vs sync',
    await: 'await vs await',
    mixed: 'sync vs await',
    concurrent: '64 in flight',
    bytes: 'bytes/key',
  };
  const rows = comparisons.map((c) => [
    kindText[c.kind],
    `${labels.get(c.subject) ?? c.subject}  vs  ${labels.get(c.peer) ?? c.peer}`,
    `${ratioText(c.ratio)} ${c.peerName}`,
    c.target === undefined ? '' : `${c.strict ? '>' : '>='} ${c.target}x`,
    c.pass === undefined ? '' : c.pass ? 'ok' : 'MISS',
  ]);
  return table(['compare', 'subject vs peer', 'ratio', 'target', ''], rows, [2]);
}

export function throughputText(section: ThroughputSection): string {
  const labels = new Map(section.rows.map((row) => [row.id, row.label]));
  const rows = section.rows.map((row) => [
    row.label,
    row.mode,
    formatOps(row.opsPerSec),
    pct(row.madPct),
    `${formatOps(row.minOpsPerSec)} .. ${formatOps(row.maxOpsPerSec)}`,
    row.allowedFraction === 1 ? '100%' : pct(row.allowedFraction),
  ]);
  return [
    `\n${section.title}`,
    ...section.notes.map((note) => `  ${note}`),
    table(
      ['contender', 'mode', 'ops/s', 'MAD', 'range of samples', section.okHeader ?? 'allowed'],
      rows,
      [2, 3],
    ),
    comparisonLines(section.comparisons, labels),
  ].join('\n');
}

export { pct, ratioText };

/** The installed version of a bench dependency, or `unknown`. */
export function readVersion(pkg: string): string {
  try {
    const path = fileURLToPath(new URL(`../node_modules/${pkg}/package.json`, import.meta.url));
    return (JSON.parse(readFileSync(path, 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
