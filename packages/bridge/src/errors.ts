import type { Decision } from '@trestle/budget';

const marker = Symbol.for('trestle.bridge.error');

/** Stable error codes of `@trestle/bridge`. A published code never changes. */
export const BridgeErrorCode = {
  /** An argument is malformed: an empty id, an unknown end reason, a negative cost, a bad option. */
  InvalidArgument: 'BRIDGE_INVALID_ARGUMENT',
  /** The tier is not registered with the manager's budget. */
  UnknownTier: 'BRIDGE_UNKNOWN_TIER',
  /** The session is ending or has ended: it takes no new work (settling a reservation still works). */
  SessionEnded: 'BRIDGE_SESSION_ENDED',
  /** `maxSessions` sessions exist (open or ending); a new one cannot be created. */
  TooManySessions: 'BRIDGE_TOO_MANY_SESSIONS',
  /** `metered()` could not reserve its cost: the decision says when to retry. */
  BudgetExceeded: 'BRIDGE_BUDGET_EXCEEDED',
  /** The owner given to `getOrCreate` has already ended (an aborted signal, a closed socket). */
  OwnerEnded: 'BRIDGE_OWNER_ENDED',
  /** The manager was closed: it creates no sessions. */
  ManagerClosed: 'BRIDGE_MANAGER_CLOSED',
  /** An event listener threw; reported as a process warning, never thrown at the caller. */
  ListenerFailed: 'BRIDGE_LISTENER_FAILED',
} as const;
export type BridgeErrorCode = (typeof BridgeErrorCode)[keyof typeof BridgeErrorCode];

/** The error class of `@trestle/bridge`. Budget errors (`BUDGET_*`) pass through unchanged. */
export class BridgeError extends Error {
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: read by `isInstance` through `in`.
  private readonly [marker] = true;
  override readonly name: string = 'BridgeError';
  readonly code: BridgeErrorCode;
  /** The session the error is about, when there is one. */
  readonly sessionId: string | undefined;
  constructor(code: BridgeErrorCode, message: string, options?: { cause?: unknown; sessionId?: string }) {
    super(`[bridge] ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.sessionId = options?.sessionId;
  }
  /** Works across duplicate installs, where `instanceof` does not. */
  static isInstance(value: unknown): value is BridgeError {
    return typeof value === 'object' && value !== null && marker in value;
  }
}

/** `metered()` was denied by the budget (code `BRIDGE_BUDGET_EXCEEDED`). Nothing was charged. */
export class BudgetExceededError extends BridgeError {
  override readonly name = 'BudgetExceededError';
  /** The budget's decision: `retryAfterMs`, `remaining`, the RateLimit `headers`. */
  readonly decision: Decision;
  /** Milliseconds until the same call could be allowed (`decision.retryAfterMs`). */
  readonly retryAfterMs: number;
  constructor(sessionId: string, cost: number, decision: Decision) {
    const why =
      decision.kind === 'degraded'
        ? `the budget store failed and policy "${decision.policy}" denied it (${decision.reason})`
        : `retry in ${decision.retryAfterMs} ms`;
    super(
      BridgeErrorCode.BudgetExceeded,
      `session "${sessionId}": cost ${cost} denied on tier "${decision.tier}"${formatRemaining(decision.remaining)}: ${why}`,
      { sessionId },
    );
    this.decision = decision;
    this.retryAfterMs = decision.retryAfterMs;
  }
}

function formatRemaining(remaining: number): string {
  // NaN when a failed store decided: there is no balance to show.
  return Number.isFinite(remaining) ? ` (${Math.floor(remaining * 1000) / 1000} left)` : '';
}

/** Formats a user-supplied value for an error message: strings quoted, the rest by type. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  return `a value of type ${typeof value}`;
}

export function invalidArgument(message: string, sessionId?: string): BridgeError {
  return new BridgeError(
    BridgeErrorCode.InvalidArgument,
    message,
    sessionId === undefined ? undefined : { sessionId },
  );
}
