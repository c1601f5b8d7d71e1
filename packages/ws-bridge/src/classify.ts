import { isPermanent } from './errors';
import type { Classification, Failure } from './types';

/** Close codes that stop the bridge by default (a reconnect would be refused the same way). */
export const defaultPermanentCloseCodes: readonly number[] = Object.freeze([1002, 1003, 1007, 1008, 1010]);

/**
 * Parses `Retry-After` (delay-seconds or an HTTP date) into milliseconds from `now`; `undefined` when
 * absent or malformed. A date in the past gives 0.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

const transient = (delayMs?: number): Classification =>
  delayMs === undefined ? { class: 'transient' } : { class: 'transient', delayMs };
const permanent: Classification = Object.freeze({ class: 'permanent' });

function classifyStatus(status: number, failure: Failure): Classification {
  if (status === 401)
    return failure.forcedRefresh ? permanent : { class: 'transient', refreshToken: true, delayMs: 0 };
  if (status === 403) return permanent;
  if (status === 429 || status === 503) return transient(failure.retryAfterMs);
  if (status >= 500) return transient(failure.retryAfterMs);
  if (status === 408) return transient(failure.retryAfterMs);
  return permanent;
}

/**
 * The default classification (README "Failure classification"):
 * - handshake: 401 → one forced token refresh and an immediate retry, then permanent; 403 → permanent;
 *   408, 429, 5xx → transient (honouring `Retry-After`); other statuses → permanent;
 * - close: a code in `permanentCloseCodes` → permanent; 4400–4499 mirror HTTP (4401 like 401, 4429
 *   transient, others permanent); anything else (1000, 1001, 1005, 1006, 1011, 1012, 1013, …) → transient;
 * - token: the provider never delivered a token, or the error says `permanent: true` → permanent;
 *   otherwise transient;
 * - timeout, heartbeat, network → transient.
 */
export function defaultClassify(failure: Failure, permanentCloseCodes: ReadonlySet<number>): Classification {
  switch (failure.source) {
    case 'handshake':
      return classifyStatus(failure.status ?? 0, failure);
    case 'close': {
      const code = failure.code ?? 1005;
      if (permanentCloseCodes.has(code)) return permanent;
      if (code >= 4400 && code <= 4499) return classifyStatus(code - 4000, failure);
      return transient();
    }
    case 'token':
      return failure.tokensObtained === 0 || isPermanent(failure.error?.cause) || isPermanent(failure.error)
        ? permanent
        : transient();
    default:
      return transient();
  }
}
