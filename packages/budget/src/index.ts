export {
  type Budget,
  type BudgetAccount,
  type BudgetOptions,
  type ChargeEvent,
  createBudget,
  type DebitOutcome,
  type Reservation,
  type ReserveResult,
  type SettleOutcome,
  type TierName,
} from './budget';
export { type Clock, systemClock } from './clock';
export type {
  AllowedDecision,
  Decision,
  DegradedDecision,
  DeniedDecision,
  RateLimitHeaders,
} from './decision';
export { BudgetError, BudgetErrorCode } from './errors';
export type {
  BudgetStore,
  BudgetStoreFactory,
  DebitResult,
  MaybePromise,
  SettleResult,
  TakeResult,
} from './store';
export { type MemoryStore, type MemoryStoreOptions, memoryStore } from './stores/memory';
export {
  type BucketLimits,
  DEFAULT_TIERS,
  type DefaultTierName,
  type ResolvedTier,
  resolveTier,
  type StoreFailurePolicy,
  type TierSpec,
  type TierTable,
} from './tiers';
