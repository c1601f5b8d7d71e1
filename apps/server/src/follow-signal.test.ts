import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { followSignal } from './follow-signal';

describe('followSignal', () => {
  it('aborts the target with the source reason, and leaves no listener on the source once done', () => {
    const session = new AbortController(); // long-lived, like a session's signal
    for (let i = 0; i < 10_000; i++) {
      const call = new AbortController();
      const unfollow = followSignal(call, session.signal);
      unfollow();
    }
    expect(getEventListeners(session.signal, 'abort')).toHaveLength(0);

    const call = new AbortController();
    followSignal(call, session.signal);
    session.abort(new Error('session ended'));
    expect(call.signal.aborted).toBe(true);
    expect((call.signal.reason as Error).message).toBe('session ended');

    const late = new AbortController();
    followSignal(late, session.signal)();
    expect(late.signal.reason).toBe(session.signal.reason);
  });
});
