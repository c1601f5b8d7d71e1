import { RefRegistryError, RefRegistryErrorCode } from './errors';
import { describe } from './ref';
import type { SessionLimits } from './store';

export function invalidArgument(message: string): RefRegistryError {
  return new RefRegistryError(RefRegistryErrorCode.InvalidArgument, message);
}

/**
 * `override` over `base`, validated.
 * @throws RefRegistryError `REF_INVALID_ARGUMENT`
 */
export function resolveLimits(
  base: SessionLimits,
  override: Partial<SessionLimits> | undefined,
): SessionLimits {
  if (override === undefined) return base;
  const limits = {
    maxRefs: override.maxRefs ?? base.maxRefs,
    ttlMs: override.ttlMs ?? base.ttlMs,
  };
  if (!(limits.maxRefs >= 1) || (Number.isFinite(limits.maxRefs) && !Number.isInteger(limits.maxRefs))) {
    throw invalidArgument(`maxRefs must be a positive integer or Infinity, got ${describe(limits.maxRefs)}`);
  }
  if (!(limits.ttlMs > 0)) {
    throw invalidArgument(`ttlMs must be positive or Infinity, got ${describe(limits.ttlMs)}`);
  }
  return Object.freeze(limits);
}

/** @throws RefRegistryError `REF_INVALID_ARGUMENT` for a negative or non-numeric duration. */
export function durationOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw invalidArgument(`${name} must be a non-negative number of milliseconds, got ${describe(value)}`);
  }
  return value;
}
