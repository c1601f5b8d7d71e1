import {
  InvalidRefError,
  isRef,
  type Ref,
  RefNotFoundError,
  SessionMismatchError,
} from '@trestle/ref-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPython, testBridge } from './test-support/bridge';

// The SnakeBridge "Refs and Sessions" examples, against a real python3.
describe.runIf(hasPython())('SnakeBridge doc examples', () => {
  const py = testBridge();
  beforeAll(() => py.ready());
  afterAll(() => py.close());

  it('re.compile returns a ref; math.sqrt(16) returns 4', async () => {
    const pattern = await py.call<Ref>('re', 'compile', ['\\d+']);
    expect(isRef(pattern)).toBe(true);
    expect(pattern.typeName).toBe('Pattern');
    expect(pattern.module).toBe('re');
    expect(await py.call('math', 'sqrt', [16])).toBe(4);
    expect(isRef(await py.call('math', 'sqrt', [16]))).toBe(false);
  });

  it('method, attr, release, then RefNotFoundError(released)', async () => {
    const pattern = await py.call<Ref>('re', 'compile', ['\\d+']);
    const match = await py.method<Ref>(pattern, 'match', ['123abc']);
    expect(isRef(match)).toBe(true);
    expect(match.typeName).toBe('Match');
    expect(await py.method(match, 'group', [])).toBe('123');
    expect(await py.attr(pattern, 'pattern')).toBe('\\d+');
    await py.release(pattern);
    const error = await py.method(pattern, 'match', ['1']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RefNotFoundError);
    expect((error as RefNotFoundError).reason).toBe('released');
    expect((error as RefNotFoundError).refId).toBe(pattern.id);
  });

  it('refs of one session used in another give SessionMismatchError', async () => {
    const a = await py.withSession({ keep: true }, async () => py.call<Ref>('re', 'compile', ['a']));
    const error = await py.withSession(async () => py.method(a, 'match', ['a'])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SessionMismatchError);
    expect((error as SessionMismatchError).expectedSession).toBe(a.sessionId);
    await py.releaseSession(a.sessionId);
  });

  it('all refs of a scope share its session; the session ends with the scope', async () => {
    const [one, two, session] = await py.withSession(async () => {
      const first = await py.call<Ref>('re', 'compile', ['\\d+']);
      const second = await py.call<Ref>('re', 'compile', ['\\w+']);
      return [first, second, py.context.current()?.id] as const;
    });
    expect(one.sessionId).toBe(two.sessionId);
    expect(one.sessionId).toBe(session);
    await py.sessions.flush();
    const error = await py
      .method(one, 'match', ['1'], undefined, { session: one.sessionId })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RefNotFoundError);
    expect((error as RefNotFoundError).reason).toBe('session_released');
  });

  it('a malformed ref gives InvalidRefError', async () => {
    const forged = { id: '', sessionId: 's', typeName: 'Pattern', module: 're' } as unknown as Ref;
    const missing = await py.method(forged, 'match', ['1']).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(InvalidRefError);
    expect((missing as InvalidRefError).code).toBe('REF_INVALID');
    // A ref in its wire form, as a remote client sends it.
    const wire = {
      __type__: 'ref',
      __schema__: 2,
      id: 'x',
      session_id: 's',
      type_name: 'T',
      python_module: 'm',
    };
    const error = await py.method(wire as unknown as Ref, 'match', ['1']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidRefError);
    expect((error as InvalidRefError).reason).toBe('unknown_schema');
    const noId = { __type__: 'ref', __schema__: 1, session_id: 's', type_name: 'T', python_module: 'm' };
    const error2 = await py.attr(noId as unknown as Ref, 'x').catch((e: unknown) => e);
    expect((error2 as InvalidRefError).reason).toBe('missing_id');
  });
});

describe.runIf(hasPython())('session limits reach Python', () => {
  it('TTL expiry gives RefNotFoundError(ttl)', async () => {
    let now = 0;
    const clock = {
      now: () => now,
      setTimeout: (fn: () => void, ms: number) => {
        const handle = setTimeout(fn, ms);
        handle.unref();
        return handle;
      },
      clearTimeout: (handle: unknown) => clearTimeout(handle as NodeJS.Timeout),
    };
    const py = testBridge({ clock, defaults: { ttlMs: 50 } });
    try {
      const pattern = await py.call<Ref>('re', 'compile', ['x']);
      now += 60;
      const error = await py.method(pattern, 'match', ['x']).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RefNotFoundError);
      expect((error as RefNotFoundError).reason).toBe('ttl');
    } finally {
      await py.close();
    }
  });

  it('TTL is enforced in Python too (a ref the host never saw expire)', async () => {
    const py = testBridge({ defaults: { ttlMs: 100 } });
    try {
      const pattern = await py.call<Ref>('re', 'compile', ['x']);
      await new Promise((resolve) => setTimeout(resolve, 150));
      // Bypass the host's check: send the ref inside a value, so only Python looks it up.
      const error = await py.call('trestle_fixtures', 'echo', [[pattern]]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RefNotFoundError);
      expect((error as RefNotFoundError).reason).toBe('ttl');
    } finally {
      await py.close();
    }
  });

  it('max refs evicts the least recently used ref of that session (lru), never another session', async () => {
    const py = testBridge({ defaults: { maxRefs: 2 } });
    try {
      const other = await py.call<Ref>('re', 'compile', ['other'], undefined, { session: 'other' });
      const first = await py.call<Ref>('re', 'compile', ['1'], undefined, { session: 'mine' });
      await py.call('re', 'compile', ['2'], undefined, { session: 'mine' });
      await py.call('re', 'compile', ['3'], undefined, { session: 'mine' });
      const error = await py.method(first, 'match', ['1']).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RefNotFoundError);
      expect((error as RefNotFoundError).reason).toBe('lru');
      expect(await py.attr(other, 'pattern')).toBe('other');
    } finally {
      await py.close();
    }
  });
});
