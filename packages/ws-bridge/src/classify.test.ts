import { describe, expect, it } from 'vitest';
import { defaultClassify, defaultPermanentCloseCodes, parseRetryAfter } from './classify';
import { PermanentError } from './errors';
import type { Failure } from './types';

const codes = new Set(defaultPermanentCloseCodes);
const base = { tokensObtained: 1, forcedRefresh: false, wasOpen: false } as const;
const classify = (failure: Partial<Failure> & Pick<Failure, 'source'>) =>
  defaultClassify({ ...base, ...failure }, codes);

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('7', 0)).toBe(7_000);
    expect(parseRetryAfter(' 0 ', 0)).toBe(0);
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    expect(parseRetryAfter(undefined, 0)).toBeUndefined();
  });
});

describe('defaultClassify', () => {
  it.each([
    [401, false, { class: 'transient', refreshToken: true, delayMs: 0 }],
    [401, true, { class: 'permanent' }],
    [403, false, { class: 'permanent' }],
    [404, false, { class: 'permanent' }],
    [400, false, { class: 'permanent' }],
    [429, false, { class: 'transient', delayMs: 5_000 }],
    [503, false, { class: 'transient', delayMs: 5_000 }],
    [500, false, { class: 'transient', delayMs: 5_000 }],
    [502, false, { class: 'transient', delayMs: 5_000 }],
  ] as const)('handshake %i (forced refresh done: %s)', (status, forcedRefresh, expected) => {
    expect(classify({ source: 'handshake', status, forcedRefresh, retryAfterMs: 5_000 })).toEqual(expected);
  });

  it('429 without Retry-After is plain transient', () => {
    expect(classify({ source: 'handshake', status: 429 })).toEqual({ class: 'transient' });
  });

  it.each([
    [1000, 'transient'],
    [1001, 'transient'],
    [1005, 'transient'],
    [1006, 'transient'],
    [1011, 'transient'],
    [1012, 'transient'],
    [1013, 'transient'],
    [1002, 'permanent'],
    [1003, 'permanent'],
    [1007, 'permanent'],
    [1008, 'permanent'],
    [1010, 'permanent'],
    [4000, 'transient'],
    [4403, 'permanent'],
    [4400, 'permanent'],
    [4429, 'transient'],
    [4500, 'transient'],
  ] as const)('close %i is %s', (code, expected) => {
    expect(classify({ source: 'close', code }).class).toBe(expected);
  });

  it('close 4401 mirrors 401: one forced refresh, then permanent', () => {
    expect(classify({ source: 'close', code: 4401 })).toMatchObject({
      class: 'transient',
      refreshToken: true,
    });
    expect(classify({ source: 'close', code: 4401, forcedRefresh: true })).toEqual({ class: 'permanent' });
  });

  it('a configured close code is permanent', () => {
    expect(defaultClassify({ ...base, source: 'close', code: 4000 }, new Set([4000])).class).toBe(
      'permanent',
    );
    expect(defaultClassify({ ...base, source: 'close', code: 1008 }, new Set()).class).toBe('transient');
  });

  it('the first token failure is permanent, later ones transient unless marked permanent', () => {
    expect(classify({ source: 'token', tokensObtained: 0 }).class).toBe('permanent');
    expect(classify({ source: 'token', tokensObtained: 3 }).class).toBe('transient');
    const revoked = new PermanentError('WS_TOKEN_FAILED', 'revoked');
    expect(classify({ source: 'token', tokensObtained: 3, error: revoked }).class).toBe('permanent');
    const marked = Object.assign(new Error('invalid_client'), { permanent: true });
    expect(
      classify({ source: 'token', tokensObtained: 3, error: new Error('x', { cause: marked }) }).class,
    ).toBe('permanent');
  });

  it.each(['timeout', 'heartbeat', 'network'] as const)('%s is transient', (source) => {
    expect(classify({ source }).class).toBe('transient');
  });
});
