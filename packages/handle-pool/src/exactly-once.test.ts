import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DischargeOutcome, DrainReport, Handle } from './index';
import { createHandlePool } from './index';

// Obligations with fixed behaviour; `late` has a discharger only while a `register` op holds it.
const obligations = ['sync-ok', 'async-ok', 'sync-throw', 'async-reject', 'none', 'late'] as const;

type Operation =
  | { kind: 'track'; obligation: (typeof obligations)[number] }
  | { kind: 'discharge'; pick: number; wait: boolean; byId: boolean }
  | { kind: 'discharge-twice'; pick: number }
  | { kind: 'forget'; pick: number; byId: boolean }
  | { kind: 'register' }
  | { kind: 'unregister' };

const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('track' as const),
      obligation: fc.constantFrom(...obligations),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('discharge' as const),
      pick: fc.nat(),
      wait: fc.boolean(),
      byId: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('discharge-twice' as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('forget' as const), pick: fc.nat(), byId: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('register' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unregister' as const) }) },
);

type Status = Exclude<DischargeOutcome['status'], 'unknown'>;

describe('exactly-once reporting (property)', () => {
  it('settles every tracked handle exactly once, consistently across all observers', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { maxLength: 40 }), async (operations) => {
        const calls = new Map<string, number>();
        const count = (handle: Handle) => calls.set(handle.id, (calls.get(handle.id) ?? 0) + 1);
        const pool = createHandlePool({
          retainOutcomes: Number.POSITIVE_INFINITY,
          dischargers: {
            'sync-ok': (handle) => void count(handle),
            'async-ok': async (handle) => {
              count(handle);
              await Promise.resolve();
            },
            'sync-throw': (handle) => {
              count(handle);
              throw new Error('sync');
            },
            'async-reject': async (handle) => {
              count(handle);
              throw new Error('async');
            },
          },
        });
        let unregisterLate: (() => void) | undefined;
        const tracked: Handle[] = [];
        const observed = new Map<string, Set<string>>(); // id -> statuses seen by any observer
        const observe = (id: string, status: Status | 'forgotten') => {
          const seen = observed.get(id) ?? new Set<string>();
          seen.add(status === 'forgotten' ? 'discharged' : status);
          observed.set(id, seen);
        };
        const recordOutcome = (outcome: DischargeOutcome) => {
          if (outcome.status !== 'unknown') observe(outcome.id, outcome.status);
          return outcome;
        };
        const inFlight: Promise<DischargeOutcome>[] = [];
        const settledBeforeDrain = new Set<string>();
        const pickHandle = (pick: number) =>
          tracked.length === 0 ? undefined : tracked[pick % tracked.length];

        for (const op of operations) {
          if (op.kind === 'track') {
            tracked.push(pool.track({ binding: `b${tracked.length}`, obligation: op.obligation }));
          } else if (op.kind === 'discharge') {
            const handle = pickHandle(op.pick);
            if (handle === undefined) continue;
            const pending = pool.discharge(op.byId ? handle.id : handle).then(recordOutcome);
            if (op.wait) {
              const outcome = await pending;
              if (outcome.status !== 'unknown') settledBeforeDrain.add(outcome.id);
            } else {
              inFlight.push(pending);
            }
          } else if (op.kind === 'discharge-twice') {
            const handle = pickHandle(op.pick);
            if (handle === undefined) continue;
            const [first, second] = await Promise.all([pool.discharge(handle), pool.discharge(handle.id)]);
            expect(second).toBe(first);
            recordOutcome(first);
            settledBeforeDrain.add(handle.id);
          } else if (op.kind === 'forget') {
            const handle = pickHandle(op.pick);
            if (handle === undefined) continue;
            if (pool.forget(op.byId ? handle.id : handle)) {
              observe(handle.id, 'forgotten');
              settledBeforeDrain.add(handle.id);
            }
          } else if (op.kind === 'register') {
            if (unregisterLate === undefined) {
              unregisterLate = pool.registerDischarger('late', (handle) => void count(handle));
            }
          } else {
            unregisterLate?.();
            unregisterLate = undefined;
          }
        }

        const liveAtDrain = new Set(pool.list().map((handle) => handle.id));
        const report: DrainReport = await pool.drain();
        await Promise.all(inFlight);

        const inReport = [
          ...report.discharged.map((handle) => [handle.id, 'discharged'] as const),
          ...report.failed.map((failure) => [failure.handle.id, 'failed'] as const),
          ...report.noDischarger.map((handle) => [handle.id, 'no-discharger'] as const),
        ];
        const reportIds = inReport.map(([id]) => id);
        // The report lists each handle at most once, and every handle live at drain start.
        expect(new Set(reportIds).size).toBe(reportIds.length);
        for (const id of liveAtDrain) expect(reportIds).toContain(id);
        // Handles that were settled before the drain are not reported again.
        for (const id of settledBeforeDrain) expect(reportIds).not.toContain(id);
        for (const [id, status] of inReport) observe(id, status);

        for (const handle of tracked) {
          const statuses = observed.get(handle.id);
          // Nothing is lost, and every observer agrees on the single outcome.
          expect(statuses?.size, `handle ${handle.id} (${handle.obligation})`).toBe(1);
          const outcome = await pool.discharge(handle);
          expect(outcome.status).not.toBe('unknown');
          expect(statuses?.has(outcome.status)).toBe(true);
          // The discharger ran exactly when the outcome says it did, and never twice.
          const ran = outcome.status === 'failed' || (outcome.status === 'discharged' && !outcome.forgotten);
          expect(calls.get(handle.id) ?? 0).toBe(ran ? 1 : 0);
        }
        expect(pool.size).toBe(0);
        expect(pool.stats()).toMatchObject({ live: 0, settling: 0, draining: false });
      }),
      { numRuns: 300 },
    );
  });
});
