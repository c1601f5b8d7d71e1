import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RefRegistryError } from './errors';
import { createSessionContext, type SessionContext } from './session-context';
import { SessionOwnerConflictError } from './session-errors';
import { createSessionManager } from './session-manager';
import type { SessionManager, SessionManagerEvent } from './session-types';
import { type RecordingReleaser, recordingReleaser } from './test-support/releasers';

let manager: SessionManager;
let context: SessionContext;
let releaser: RecordingReleaser;
let events: SessionManagerEvent[];

const init = { typeName: 'Pattern', module: 're' };
const released = () => events.flatMap((event) => (event.type === 'session-released' ? [event] : []));

beforeEach(() => {
  releaser = recordingReleaser();
  events = [];
  manager = createSessionManager({ releaser, onEvent: (event) => events.push(event) });
  context = createSessionContext(manager);
});

afterEach(async () => {
  await manager.dispose();
});

describe('withSession', () => {
  it('restores the outer scope after a nested one', async () => {
    await context.withSession(async () => {
      const outer = context.ensure();
      await context.withSession(async () => {
        const inner = context.ensure();
        expect(inner.id).not.toBe(outer.id);
        await sleep(1);
        expect(context.current()).toBe(inner);
      });
      expect(context.current()).toBe(outer);
      expect(outer.released).toBe(false);
    });
    expect(context.current()).toBeUndefined();
    expect(released().map((event) => event.cause)).toEqual(['scope-ended', 'scope-ended']);
  });

  it('releases the session when fn resolves, rejects, returns or throws', async () => {
    const ids: string[] = [];
    const track = <T>(value: T): T => {
      ids.push(context.ensure().id);
      return value;
    };

    expect(await context.withSession(async () => track(1))).toBe(1);
    await expect(
      context.withSession(async () => {
        track(undefined);
        await Promise.resolve();
        throw new Error('request failed');
      }),
    ).rejects.toThrow('request failed');
    expect(context.withSession(() => track('sync'))).toBe('sync');
    expect(() =>
      context.withSession(() => {
        track(undefined);
        throw new Error('sync failure');
      }),
    ).toThrow('sync failure');

    expect(ids).toHaveLength(4);
    expect(new Set(ids).size).toBe(4);
    expect(manager.sessions()).toEqual([]);
    await manager.flush();
    expect(releaser.calls.map((call) => call.sessionId)).toEqual(ids);
  });

  it('registers the session on first use only', async () => {
    const result = await context.withSession(async () => {
      await sleep(1);
      return 'no session needed';
    });
    expect(result).toBe('no session needed');
    expect(events).toEqual([]);

    await context.withSession(async () => {
      expect(manager.sessions()).toHaveLength(0);
      const session = context.current();
      expect(manager.sessions().map((info) => info.id)).toEqual([session?.id]);
      expect(context.current()).toBe(session);
    });
  });

  it('keeps the session with keep: true until its owner ends', async () => {
    const owner = new AbortController();
    const session = await context.withSession({ keep: true, owner: owner.signal }, async () => {
      await Promise.resolve();
      return context.ensure();
    });
    expect(session.released).toBe(false);
    expect(manager.sessionExists(session.id)).toBe(true);

    owner.abort();
    expect(session.released).toBe(true);
    expect(released()).toMatchObject([{ sessionId: session.id, cause: 'owner-ended' }]);
  });

  it('is ended early by its owner; current() then shows the released session', async () => {
    const owner = new AbortController();
    await context.withSession({ owner: owner.signal }, async () => {
      const session = context.ensure();
      owner.abort();
      expect(context.current()).toBe(session);
      expect(session.released).toBe(true);
      expect(() => session.registerRef(init)).toThrow(
        expect.objectContaining({ code: 'REF_SESSION_NOT_FOUND' }),
      );
    });
    expect(released()).toHaveLength(1);
  });

  it('gives an explicit sessionId to one scope at a time', async () => {
    let release!: () => void;
    const first = context.withSession({ sessionId: 'req-1' }, async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return context.ensure().id;
    });
    expect(() => context.withSession({ sessionId: 'req-1' }, () => 'second')).toThrow(
      SessionOwnerConflictError,
    );
    release();
    expect(await first).toBe('req-1');
    // Once released, the id is free again.
    expect(context.withSession({ sessionId: 'req-1' }, () => context.ensure().id)).toBe('req-1');
  });

  it('a continuation that outlives its scope sees no session and registers none', async () => {
    let late: Promise<unknown> | undefined;
    await context.withSession(async () => {
      late = sleep(5).then(() => context.current());
    });
    expect(await late).toBeUndefined();
    expect(manager.sessions()).toEqual([]);
    expect(events).toEqual([]);
  });

  it('checks its arguments', () => {
    expect(() => context.withSession({}, undefined as never)).toThrow(
      expect.objectContaining({ code: 'REF_INVALID_ARGUMENT' }),
    );
  });
});

describe('isolation', () => {
  it('gives 100 concurrent requests one session each, across awaits', async () => {
    const request = (index: number) =>
      context.withSession(async () => {
        const session = context.ensure();
        const refs = [];
        for (let step = 0; step < 5; step += 1) {
          // Interleave: timers of different lengths and bare microtasks.
          if ((index + step) % 3 === 0) await sleep((index * 7 + step) % 4);
          else await Promise.resolve();
          expect(context.current()).toBe(session);
          refs.push(context.ensure().registerRef({ ...init, typeName: `T${index}` }));
        }
        expect(session.listRefs()).toEqual(refs);
        return session.id;
      });

    const ids = await Promise.all(Array.from({ length: 100 }, (_, index) => request(index)));

    expect(new Set(ids).size).toBe(100);
    expect(manager.sessions()).toEqual([]);
    expect(manager.stats().refs).toBe(0);
  });

  it('outside any scope there is no session, and ensure() says so', () => {
    expect(context.current()).toBeUndefined();
    expect(() => context.ensure()).toThrow(RefRegistryError);
    expect(() => context.ensure()).toThrow(expect.objectContaining({ code: 'REF_SESSION_NOT_FOUND' }));
  });

  it('two contexts on one manager do not see each other', async () => {
    const other = createSessionContext(manager);
    await context.withSession(async () => {
      expect(other.current()).toBeUndefined();
      await other.withSession(async () => {
        expect(other.ensure().id).not.toBe(context.ensure().id);
      });
    });
  });
});

describe('named sessions', () => {
  it('are shared across async contexts on purpose and outlive their scopes', async () => {
    const producer = context.withSession({ name: 'model' }, async () => {
      await sleep(2);
      return context.ensure().registerRef({ typeName: 'LinearRegression', module: 'sklearn.linear_model' });
    });
    const consumer = (async () => {
      await sleep(1);
      return context.withSession({ name: 'model' }, async () => {
        await sleep(3);
        return context.ensure().listRefs();
      });
    })();

    const [model, seen] = await Promise.all([producer, consumer]);

    expect(model.sessionId).toBe('model');
    expect(seen).toEqual([model]);
    expect(manager.sessionExists('model')).toBe(true);
    expect(context.named('model').listRefs()).toEqual([model]);
    expect((await context.named('model').release()).refs).toEqual([model]);
  });

  it('a shared explicit sessionId is joined by concurrent scopes and kept after them', async () => {
    const scope = () =>
      context.withSession({ sessionId: 'batch', shared: true, owner: owner.signal }, async () => {
        await sleep(1);
        return context.ensure().registerRef(init);
      });
    const owner = new AbortController();
    const refs = await Promise.all([scope(), scope()]);
    expect(refs.map((ref) => ref.sessionId)).toEqual(['batch', 'batch']);
    expect(manager.listRefs('batch')).toEqual(refs);
    owner.abort();
    expect(manager.sessionExists('batch')).toBe(false);
  });

  it('refuse a name held by a session that is not shared', () => {
    manager.registerSession('private');
    expect(() => context.named('private')).toThrow(SessionOwnerConflictError);
    expect(() => context.withSession({ name: 'private' }, () => 0)).toThrow(SessionOwnerConflictError);
  });

  it('run() makes an existing session current without releasing it', () => {
    const session = context.named('shared');
    expect(context.run(session, () => context.ensure())).toBe(session);
    expect(session.released).toBe(false);
  });
});

describe('create() and await using', () => {
  it('creates sessions with unique ids', async () => {
    const sessions = Array.from({ length: 50 }, () => context.create());
    expect(new Set(sessions.map((session) => session.id)).size).toBe(50);
    expect(manager.sessions()).toHaveLength(50);
    await Promise.all(sessions.map((session) => session.release()));
  });

  it('releases a session at the end of an await using block', async () => {
    let id: string;
    {
      await using session = context.create();
      id = session.id;
      session.registerRef(init);
      expect(manager.sessionExists(id)).toBe(true);
    }
    expect(manager.sessionExists(id)).toBe(false);
    expect(releaser.calls).toMatchObject([{ sessionId: id, operation: 'releaseSession' }]);
    expect(released()).toMatchObject([{ sessionId: id, cause: 'explicit' }]);
  });

  it('releases it when the block throws too', async () => {
    let id = '';
    await expect(
      (async () => {
        await using session = context.create();
        id = session.id;
        throw new Error('inside');
      })(),
    ).rejects.toThrow('inside');
    expect(manager.sessionExists(id)).toBe(false);
  });

  it('is a plain AsyncDisposable', async () => {
    const session = context.create();
    await session[Symbol.asyncDispose]();
    expect(session.released).toBe(true);
  });
});
