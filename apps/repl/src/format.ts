/** Text for the dot-commands and the session report: ages, the budget bar, small tables. */
import type { BudgetView, EndSummary, HandleView, SessionView } from './backend';
import type { Style } from './style';

/** `850 ms`, `12.3 s`, `4m 05s`, `2h 03m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const seconds = Math.floor(ms / 1_000);
  if (seconds < 3_600) return `${Math.floor(seconds / 60)}m ${String(seconds % 60).padStart(2, '0')}s`;
  const minutes = Math.floor(seconds / 60);
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`;
}

/** A number with at most one decimal: `12`, `12.5`. */
export function formatAmount(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/** `[##########----------]`: `fraction` of `width` filled (clamped to 0..1). */
export function bar(fraction: number, width = 20): string {
  const clamped = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const filled = Math.round(clamped * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

/** `.budget`. */
export function formatBudget(view: BudgetView, style: Style): string {
  if (view.remaining === null || view.capacity === null) {
    return `budget  tier ${style.bold(view.tier)}: unlimited (calls are metered, never denied)`;
  }
  const fraction = view.remaining / view.capacity;
  const colour = fraction > 0.5 ? style.green : fraction > 0.2 ? style.yellow : style.red;
  const refill = view.refillPerSec === null ? '' : `  +${formatAmount(view.refillPerSec)}/s`;
  const full = view.fullAfterMs > 0 ? `, full in ${formatDuration(view.fullAfterMs)}` : ', full';
  return [
    `budget  tier ${style.bold(view.tier)}`,
    `  ${colour(bar(fraction))} ${formatAmount(view.remaining)} / ${formatAmount(view.capacity)} remaining${style.dim(`${refill}${full}`)}`,
  ].join('\n');
}

/** `.session`. */
export function formatSession(view: SessionView, label: string, mode: string, style: Style): string {
  const calls = view.calls;
  const parts = [`${calls.metered ?? 0} calls`];
  if (calls.succeeded !== undefined) parts.push(`${calls.succeeded} ok`);
  if (calls.failed) parts.push(`${calls.failed} failed`);
  if (calls.denied) parts.push(`${calls.denied} denied`);
  if (calls.charged !== undefined) parts.push(`${formatAmount(calls.charged)} units charged`);
  const rows: [string, string][] = [
    ['id', view.id],
    ['mode', mode],
    ...(view.tenant !== undefined ? [['tenant', view.tenant] as [string, string]] : []),
    ['tier', view.tier],
    ['age', formatDuration(view.ageMs)],
    ['refs', `${view.refs} live`],
    ['handles', `${view.handles} open`],
    ['calls', parts.join(', ')],
  ];
  return [`session ${style.bold(label)}`, ...rows.map(([key, value]) => `  ${key.padEnd(8)} ${value}`)].join(
    '\n',
  );
}

/** `.handles`. */
export function formatHandles(handles: readonly HandleView[], style: Style): string {
  if (handles.length === 0) return style.dim('no open handles');
  return table(
    ['handle', 'obligation', 'object', 'age'],
    handles.map((handle) => [handle.id, handle.obligation, handle.label, formatDuration(handle.ageMs)]),
    style,
  );
}

/** A small left-aligned table with a dim header. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], style: Style): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    `  ${cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ')}`.trimEnd();
  return [style.dim(line(header)), ...rows.map(line)].join('\n');
}

/** The report of an ended session. */
export function formatReport(summary: EndSummary, label: string, style: Style): string {
  const calls = summary.calls;
  const callText = [
    `${calls.metered ?? 0} calls`,
    ...(calls.failed ? [`${calls.failed} failed`] : []),
    ...(calls.denied ? [`${calls.denied} denied`] : []),
    ...(calls.charged !== undefined ? [`${formatAmount(calls.charged)} units charged`] : []),
  ].join(', ');
  const lines = [
    `session ${style.bold(label)} ended (${summary.reason}) after ${formatDuration(summary.durationMs)}`,
    `  calls    ${callText}`,
    `  refs     ${summary.refsReleased} released`,
    `  handles  ${summary.discharged.length} closed${summary.undischarged.length > 0 ? style.red(`, ${summary.undischarged.length} not closed`) : ''}`,
  ];
  for (const entry of summary.undischarged) lines.push(style.red(`    ${entry.label}: ${entry.why}`));
  for (const error of summary.errors) lines.push(style.red(`  error: ${error}`));
  return lines.join('\n');
}
