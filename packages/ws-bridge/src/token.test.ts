import { describe, expect, it } from 'vitest';
import { BridgeError } from './errors';
import { manualClock, seededRandom } from './manual-clock';
import { refreshDelay, sharedTokenProvider, staticToken, tokenRefresher } from './token';
import type { Token, TokenProvider } from './types';

describe('staticToken', () => {
  it('returns the token, never expiring by default', async () => {
    expect(await staticToken('abc').getToken()).toEqual({
      accessToken: 'abc',
      expiresAt: Number.POSITIVE_INFINITY,
    });
    expect(() => staticToken('')).toThrowError(expect.objectContaining({ code: 'WS_INVALID_ARGUMENT' }));
    expect(
      BridgeError.isInstance(
        (() => {
          try {
            staticToken('');
          } catch (e) {
            return e;
          }
        })(),
      ),
    ).toBe(true);
  });
});

describe('refreshDelay', () => {
  const token = (expiresAt: number): Token => ({ accessToken: 't', expiresAt });
  it('is expiresAt - buffer, earlier by up to jitter * buffer', () => {
    expect(refreshDelay(token(3_600_000), 0, 300_000, 0.1, () => 0)).toBe(3_300_000);
    expect(refreshDelay(token(3_600_000), 0, 300_000, 0.1, () => 0.5)).toBe(3_285_000);
    expect(refreshDelay(token(3_600_000), 0, 300_000, 0.1, () => 0.999_999)).toBe(3_270_000);
  });
  it('refreshes a short-lived token at half its remaining life, never for Infinity or expired', () => {
    expect(refreshDelay(token(60_000), 0, 300_000, 0.1, () => 0)).toBe(30_000);
    expect(refreshDelay(token(1_500), 0, 300_000, 0.1, () => 0)).toBe(1_000);
    expect(refreshDelay(token(Number.POSITIVE_INFINITY), 0, 300_000, 0.1, () => 0)).toBeUndefined();
    expect(refreshDelay(token(10), 10, 300_000, 0.1, () => 0)).toBeUndefined();
  });
});

describe('tokenRefresher', () => {
  it('fires exactly at the jittered refresh time on the clock', () => {
    const clock = manualClock(1_000);
    const random = seededRandom(7);
    const r = seededRandom(7)();
    let due = 0;
    const refresher = tokenRefresher({
      clock,
      random,
      refreshBufferMs: 60_000,
      jitter: 0.2,
      onDue: () => due++,
    });
    const delay = refresher.schedule({ accessToken: 'x', expiresAt: 1_000 + 600_000 }) as number;
    expect(delay).toBe(Math.round(600_000 - 60_000 * (1 + 0.2 * r)));
    clock.advance(delay - 1);
    expect(due).toBe(0);
    clock.advance(1);
    expect(due).toBe(1);
    expect(refresher.pending).toBe(false);
    refresher.scheduleIn(5);
    refresher.cancel();
    expect(clock.pending).toBe(0);
  });
});

describe('sharedTokenProvider', () => {
  it('shares one in-flight call among concurrent callers', async () => {
    let calls = 0;
    const inner: TokenProvider = {
      name: 'counting',
      getToken: async () => ({ accessToken: String(++calls), expiresAt: 1 }),
    };
    const shared = sharedTokenProvider(inner);
    const tokens = await Promise.all([shared.getToken(), shared.getToken(), shared.getToken()]);
    expect(tokens.map((t) => t.accessToken)).toEqual(['1', '1', '1']);
    const forced = await Promise.all([shared.getToken({ forceRefresh: true }), shared.getToken()]);
    expect(forced.map((t) => t.accessToken)).toEqual(['2', '2']);
    expect((await shared.getToken()).accessToken).toBe('3');
  });
});
