import type { RefGoneReason, SessionReleaseCause } from '@trestle/ref-registry';
import type { EndReason } from './types';

/** Every end reason. */
export const END_REASONS: readonly EndReason[] = Object.freeze([
  'logout',
  'idle',
  'budget',
  'shutdown',
  'owner-lost',
  'worker-lost',
  'error',
]);

/**
 * The reason the refs of an ended session carry (`RefNotFoundError.reason`, and the releaser's
 * `reason`). Ref reasons say why a ref is gone, not why its session ended: only `idle` (the session's
 * time to live ran out) and `worker-lost` (the objects died with their worker) have their own; the
 * end report keeps the precise end reason.
 */
export const REF_REASON_BY_END_REASON: Readonly<Record<EndReason, RefGoneReason>> = Object.freeze({
  logout: 'session_released',
  idle: 'ttl',
  budget: 'session_released',
  shutdown: 'session_released',
  'owner-lost': 'session_released',
  'worker-lost': 'worker_restarted',
  error: 'session_released',
});

export function isEndReason(value: unknown): value is EndReason {
  return typeof value === 'string' && (END_REASONS as readonly string[]).includes(value);
}

/** The end reason of a bridge session whose ref session was released by something other than the bridge. */
export function endReasonOfRefRelease(reason: RefGoneReason, cause: SessionReleaseCause): EndReason {
  if (reason === 'worker_restarted') return 'worker-lost';
  if (cause === 'disposed') return 'shutdown';
  if (cause === 'evicted') return 'idle';
  return 'owner-lost';
}
