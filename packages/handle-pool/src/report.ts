import { HandlePoolDrainError } from './errors';
import type { DischargeOutcome, DrainReport, Handle, LeakReportEntry } from './types';

// Keeps the aggregate message readable when thousands of handles fail; `errors` has them all.
const MAX_NAMED_FAILURES = 10;

/** Live handles at least `olderThanMs` old at `now`, oldest first (ties by tracking order). */
export function buildLeakReport(
  handles: Iterable<Handle>,
  now: number,
  olderThanMs: number,
): LeakReportEntry[] {
  const entries: LeakReportEntry[] = [];
  for (const handle of handles) {
    const ageMs = Math.max(0, now - handle.createdAt);
    if (ageMs < olderThanMs) continue;
    const entry: LeakReportEntry = {
      id: handle.id,
      binding: handle.binding,
      obligation: handle.obligation,
      createdAt: handle.createdAt,
      ageMs,
    };
    entries.push(handle.stack === undefined ? entry : { ...entry, stack: handle.stack });
  }
  // Array#sort is stable, so equal ages keep tracking order.
  return entries.sort((left, right) => right.ageMs - left.ageMs);
}

/** Accumulates a drain's outcomes; each handle is recorded at most once. */
export class DrainReportBuilder {
  readonly #seen = new Set<Handle>();
  readonly discharged: Handle[] = [];
  readonly failed: DrainReport['failed'] = [];
  readonly noDischarger: Handle[] = [];

  record(outcome: DischargeOutcome): void {
    if (outcome.status === 'unknown' || this.#seen.has(outcome.handle)) return;
    this.#seen.add(outcome.handle);
    if (outcome.status === 'discharged') this.discharged.push(outcome.handle);
    else if (outcome.status === 'failed') this.failed.push({ handle: outcome.handle, error: outcome.error });
    else this.noDischarger.push(outcome.handle);
  }

  finish(durationMs: number): DrainReport {
    const report: DrainReport = {
      discharged: this.discharged,
      failed: this.failed,
      noDischarger: this.noDischarger,
      durationMs,
    };
    if (this.failed.length > 0) {
      const total = this.discharged.length + this.failed.length + this.noDischarger.length;
      const named = this.failed
        .slice(0, MAX_NAMED_FAILURES)
        .map((failure) => `${failure.handle.id} (${failure.error.code})`);
      if (this.failed.length > MAX_NAMED_FAILURES) {
        named.push(`and ${this.failed.length - MAX_NAMED_FAILURES} more`);
      }
      report.error = new HandlePoolDrainError(
        this.failed.map((failure) => failure.error),
        report,
        `${this.failed.length} of ${total} handles failed to discharge: ${named.join(', ')}`,
      );
    }
    return report;
  }
}
