import { BudgetError, BudgetErrorCode } from './errors';

/** Where a reservation lives: the configured store, or the local fallback bucket (degraded). */
export type ReservationOrigin = 'store' | 'local';

export interface ParsedReservationId {
  readonly origin: ReservationOrigin;
  readonly tier: string;
  readonly key: string;
}

/**
 * Reservation ids carry their key and tier, so any replica can settle them:
 * `<origin><nonce>:<tier length>:<tier><key>`.
 */
export function formatReservationId(
  origin: ReservationOrigin,
  nonce: string,
  tier: string,
  key: string,
): string {
  return `${origin === 'local' ? 'L' : 'S'}${nonce}:${tier.length}:${tier}${key}`;
}

/** @throws BudgetError `BUDGET_INVALID_RESERVATION` when the id was not made by `reserve()`. */
export function parseReservationId(id: unknown): ParsedReservationId {
  const invalid = () =>
    new BudgetError(BudgetErrorCode.InvalidReservation, `not a reservation id: ${JSON.stringify(id)}`);
  if (typeof id !== 'string') throw invalid();
  const flag = id[0];
  const first = id.indexOf(':', 1);
  const second = first < 0 ? -1 : id.indexOf(':', first + 1);
  if ((flag !== 'S' && flag !== 'L') || first < 2 || second < 0) throw invalid();
  const length = Number(id.slice(first + 1, second));
  if (!Number.isInteger(length) || length < 1 || second + 1 + length >= id.length) throw invalid();
  return {
    origin: flag === 'L' ? 'local' : 'store',
    tier: id.slice(second + 1, second + 1 + length),
    key: id.slice(second + 1 + length),
  };
}
