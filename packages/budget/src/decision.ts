import { msUntil } from './bucket-math';
import type { ResolvedTier } from './tiers';

/** IETF RateLimit header values (draft-ietf-httpapi-ratelimit-headers), ready to set on a response. */
export interface RateLimitHeaders {
  /** e.g. `"free";q=1000;w=100`: quota and the window (seconds to refill from empty). */
  readonly 'RateLimit-Policy'?: string;
  /** e.g. `"free";r=42;t=96`: remaining units and seconds until the bucket is full again. */
  readonly RateLimit?: string;
  /** Seconds, on denials only. */
  readonly 'Retry-After'?: string;
}

interface DecisionBase {
  readonly key: string;
  readonly tier: string;
  readonly cost: number;
  /** The tier's capacity (`Infinity` for unlimited). */
  readonly limit: number;
  /** Header values for this decision; computed on first read. */
  readonly headers: RateLimitHeaders;
}

/** The store granted the cost. */
export interface AllowedDecision extends DecisionBase {
  readonly kind: 'allowed';
  readonly allowed: true;
  /** Tokens left (fractional; `Infinity` for unlimited). */
  readonly remaining: number;
  readonly retryAfterMs: 0;
  /** Milliseconds until the bucket is full again. */
  readonly fullAfterMs: number;
}

/** The bucket does not hold the cost; nothing was charged. */
export interface DeniedDecision extends DecisionBase {
  readonly kind: 'denied';
  readonly allowed: false;
  readonly remaining: number;
  /** Exact milliseconds until the same call would be allowed. */
  readonly retryAfterMs: number;
  readonly fullAfterMs: number;
}

/** The store failed or timed out; the tier's `onStoreError` policy decided. */
export interface DegradedDecision extends DecisionBase {
  readonly kind: 'degraded';
  readonly allowed: boolean;
  /** Which policy decided: `failOpen`, `failClosed` or `local`. */
  readonly policy: 'failOpen' | 'failClosed' | 'local';
  /** Why the store failed, e.g. `BUDGET_STORE_TIMEOUT: ...`. */
  readonly reason: string;
  /** The store's error. */
  readonly error: unknown;
  /** From the local bucket under the `local` policy; `NaN` otherwise. */
  readonly remaining: number;
  readonly retryAfterMs: number;
  readonly fullAfterMs: number;
}

/** What `consume` / `reserve` return. A denial is a decision, never an exception. */
export type Decision = AllowedDecision | DeniedDecision | DegradedDecision;

/** Node's `util.inspect.custom`, without importing `node:util` (the core stays platform-neutral). */
const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

/**
 * Builds decisions. Only what the hot path knows is stored; `tier`, `limit`, `fullAfterMs` and
 * `headers` are computed on first read (`toJSON` includes them all).
 */
export class DecisionRecord {
  readonly allowed: boolean;
  readonly key: string;
  readonly cost: number;
  readonly remaining: number;
  readonly retryAfterMs: number;
  readonly #tier: ResolvedTier;

  constructor(
    allowed: boolean,
    key: string,
    tier: ResolvedTier,
    cost: number,
    remaining: number,
    retryAfterMs: number,
  ) {
    this.allowed = allowed;
    this.key = key;
    this.cost = cost;
    this.remaining = remaining;
    this.retryAfterMs = retryAfterMs;
    this.#tier = tier;
  }

  get kind(): Decision['kind'] {
    return this.allowed ? 'allowed' : 'denied';
  }

  get tier(): string {
    return this.#tier.name;
  }

  get limit(): number {
    const limits = this.#tier.limits;
    return limits ? limits.capacity : Number.POSITIVE_INFINITY;
  }

  get fullAfterMs(): number {
    const limits = this.#tier.limits;
    if (!limits || Number.isNaN(this.remaining)) return 0;
    return msUntil(this.remaining, limits.capacity, limits);
  }

  /** Computed on each read (cheap, and rarely read twice): the hot path stores nothing for it. */
  get headers(): RateLimitHeaders {
    return rateLimitHeaders(this, this.#tier.windowSec);
  }

  toJSON(): Record<string, unknown> {
    const { kind, allowed, key, tier, cost, limit, remaining, retryAfterMs, fullAfterMs, headers } = this;
    return { kind, allowed, key, tier, cost, limit, remaining, retryAfterMs, fullAfterMs, headers };
  }

  /** `console.log(decision)` shows the computed fields too. */
  [inspectSymbol](): Record<string, unknown> {
    return this.toJSON();
  }
}

/** A degraded decision: the record plus why. */
export class DegradedRecord extends DecisionRecord {
  readonly policy: DegradedDecision['policy'];
  readonly reason: string;
  readonly error: unknown;
  constructor(
    base: DecisionRecord | undefined,
    allowed: boolean,
    key: string,
    tier: ResolvedTier,
    cost: number,
    policy: DegradedDecision['policy'],
    error: unknown,
  ) {
    super(allowed, key, tier, cost, base ? base.remaining : Number.NaN, base ? base.retryAfterMs : 0);
    this.policy = policy;
    this.error = error;
    this.reason = describe(error);
  }

  override get kind(): Decision['kind'] {
    return 'degraded';
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), policy: this.policy, reason: this.reason };
  }

  override [inspectSymbol](): Record<string, unknown> {
    return { ...this.toJSON(), error: this.error };
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

function quote(name: string): string {
  return `"${name.replace(/["\\]/g, '')}"`;
}

function rateLimitHeaders(decision: DecisionRecord, windowSec: number): RateLimitHeaders {
  if (!Number.isFinite(decision.limit) || Number.isNaN(decision.remaining)) return {};
  const name = quote(decision.tier);
  const remaining = Math.max(0, Math.floor(decision.remaining));
  const reset = Math.ceil(decision.fullAfterMs / 1000);
  const headers: Record<string, string> = {
    'RateLimit-Policy': `${name};q=${decision.limit};w=${windowSec}`,
    RateLimit: `${name};r=${remaining};t=${reset}`,
  };
  if (!decision.allowed) headers['Retry-After'] = String(Math.ceil(decision.retryAfterMs / 1000));
  return headers;
}
