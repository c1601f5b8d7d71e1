import { type Budget, type BudgetOptions, createBudget } from '@trestle/budget';
import { createBridgeManager } from '../manager';
import type { BridgeEvent, BridgeManager, BridgeManagerOptions, SessionMeta } from '../types';
import { type ManualClock, manualClock } from './manual-clock';

export interface Setup<TMeta extends SessionMeta = SessionMeta> {
  clock: ManualClock;
  budget: Budget;
  manager: BridgeManager<TMeta>;
  events: BridgeEvent<TMeta>[];
}

/** A manager on a manual clock (shared with its memory-store budget), recording every event. */
export function setup<TMeta extends SessionMeta = SessionMeta>(
  options: Partial<Omit<BridgeManagerOptions<TMeta>, 'clock'>> & { clock?: ManualClock } = {},
  budgetOptions: BudgetOptions = {},
): Setup<TMeta> {
  const clock = options.clock ?? manualClock(1_000);
  const budget = options.budget ?? createBudget({ clock, ...budgetOptions });
  const events: BridgeEvent<TMeta>[] = [];
  const manager = createBridgeManager<TMeta>({
    clock,
    onEvent: (event) => events.push(event),
    ...options,
    budget,
  });
  return { clock, budget, manager, events };
}
