const marker = Symbol.for('trestle.budget.error');

/** Stable error codes of `@trestle/budget`. A published code never changes. */
export const BudgetErrorCode = {
  /** A cost, amount or lease is not a finite number >= 0 (or > 0 where required). */
  InvalidArgument: 'BUDGET_INVALID_ARGUMENT',
  /** A cost larger than the tier's capacity can never be granted. */
  CostExceedsCapacity: 'BUDGET_COST_EXCEEDS_CAPACITY',
  /** The tier name is not registered with this budget. */
  UnknownTier: 'BUDGET_UNKNOWN_TIER',
  /** A tier definition is malformed. */
  InvalidTier: 'BUDGET_INVALID_TIER',
  /** A reservation id was not produced by `reserve()`. */
  InvalidReservation: 'BUDGET_INVALID_RESERVATION',
  /** The store did not answer within its deadline. */
  StoreTimeout: 'BUDGET_STORE_TIMEOUT',
  /** The store failed (connection refused, script error, ...). */
  StoreUnavailable: 'BUDGET_STORE_UNAVAILABLE',
  /** A synchronous call was made on a budget whose store is asynchronous. */
  NotSynchronous: 'BUDGET_NOT_SYNCHRONOUS',
} as const;
export type BudgetErrorCode = (typeof BudgetErrorCode)[keyof typeof BudgetErrorCode];

/**
 * The one error class of `@trestle/budget`. Denials are never errors: they are decisions.
 * Errors are for bad input and, inside stores, for store failures (which the budget turns into
 * `degraded` decisions).
 */
export class BudgetError extends Error {
  readonly [marker] = true;
  override readonly name = 'BudgetError';
  readonly code: BudgetErrorCode;
  constructor(code: BudgetErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[budget] ${message}`, options);
    this.code = code;
  }
  /** Works across duplicate installs, where `instanceof` does not. */
  static isInstance(value: unknown): value is BudgetError {
    return typeof value === 'object' && value !== null && marker in value;
  }
}
