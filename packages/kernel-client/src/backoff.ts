import { KernelError, KernelErrorCode } from './errors';

/** Options of {@link retryDelay}. */
export interface RetryDelayOptions {
  /** The delay before the first retry, before jitter (the client's `retryDelayMs`). */
  readonly baseMs: number;
  /** Upper bound of the delay before jitter. @default 30 * baseMs */
  readonly maxMs?: number;
  /** A source of numbers in [0, 1). @default Math.random */
  readonly random?: () => number;
}

/**
 * The delay before retry number `attempt + 1` (`attempt` is 0-based: 0 before the first retry).
 * Exponential with "equal jitter": `d = min(baseMs * 2^attempt, maxMs)`, delay = `d/2 + random() * d/2`,
 * so it always lies in `[d/2, d]`: it grows (unlike the seed's constant delay) and concurrent clients
 * do not retry in lockstep. Pure: the same `random()` value gives the same delay.
 * @throws KernelError (`KERNEL_INVALID_ARGUMENT`) when `attempt` is not a non-negative integer or
 *   `baseMs`/`maxMs` are not finite non-negative numbers.
 * @example
 * ```ts
 * retryDelay(0, { baseMs: 100, random: () => 0.5 }); // 75
 * retryDelay(2, { baseMs: 100, random: () => 0.5 }); // 300
 * ```
 */
export function retryDelay(attempt: number, options: RetryDelayOptions): number {
  const { baseMs, maxMs = 30 * baseMs, random = Math.random } = options;
  if (!Number.isSafeInteger(attempt) || attempt < 0)
    throw new KernelError(
      KernelErrorCode.InvalidArgument,
      `attempt must be a non-negative integer (got ${attempt})`,
    );
  for (const [name, value] of [
    ['baseMs', baseMs],
    ['maxMs', maxMs],
  ] as const)
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
      throw new KernelError(
        KernelErrorCode.InvalidArgument,
        `${name} must be a finite number >= 0 (got ${value})`,
      );
  const d = Math.min(baseMs * 2 ** attempt, maxMs);
  const r = Math.min(1, Math.max(0, random()));
  return d / 2 + (r * d) / 2;
}
