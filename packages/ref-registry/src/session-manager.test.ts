import { spawn } from 'node:child_process';
import { EventEmitter, getEventListeners, once } from 'node:events';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RefNotFoundError, RefRegistryError, SessionMismatchError } from './errors';
import { createRef } from './ref';
import { ReleaseFailedError } from './releaser';
import {
  SessionManagerDisposedError,
  SessionNotFoundError,
  SessionOwnerConflictError,
} from './session-errors';
import { createSessionManager } from './session-manager';
import type { SessionManager, SessionManagerEvent, SessionManagerOptions } from './session-types';
import { memoryRefStore } from './stores/memory';
import { type ManualClock, manualClock } from './test-support/manual-clock';
import { type RecordingReleaser, recordingReleaser } from './test-support/releasers';

let clock: ManualClock;
let releaser: RecordingReleaser;
let events: SessionManagerEvent[];
let manager: SessionManager;

function setup(options: SessionManagerOptions = {}): SessionManager {
  manager = createSessionManager({
    clock,
    releaser,
    onEvent: (event) => events.push(event),
    ...options,
  });
  return manager;
}

const init = { typeName: 'Pattern', module: 're' };
const ofType = <K extends SessionManagerEvent['type']>(type: K) =>
  events.filter((event): event is Extract<SessionManagerEvent, { type: K }> => event.type === type);

/** Lets promise jobs run (the manual clock drives every timer in these tests). */
const settle = async (): Promise<void> => {
  for (let round = 0; round < 10; round += 1) await Promise.resolve();
};

beforeEach(() => {
  clock = manualClock(1_000);
  releaser = recordingReleaser('python');
  events = [];
  setup();
});

afterEach(async () => {
  vi.restoreAllMocks();
  // Any retry timer still pending belongs to a test that left it on purpose; fire it.
  clock.advance(120_000);
  await manager.dispose();
});

describe('registerSession', () => {
  it('returns the same session for the same owner, or no owner', () => {
    const signal = new AbortController().signal;
    const session = manager.registerSession('a', { owner: signal });
    expect(manager.registerSession('a', { owner: signal })).toBe(session);
    expect(manager.registerSession('a')).toBe(session);
    expect(manager.session('a')).toBe(session);
    expect(ofType('session-registered')).toEqual([
      { type: 'session-registered', sessionId: 'a', shared: false },
    ]);
    expect(session.info()).toMatchObject({ id: 'a', owners: 1, shared: false, createdAt: 1_000 });
  });

  it('throws a typed error for another owner of a session that is not shared', () => {
    manager.registerSession('a', { owner: new AbortController().signal });
    const attempt = () => manager.registerSession('a', { owner: new AbortController().signal });

    expect(attempt).toThrow(SessionOwnerConflictError);
    try {
      attempt();
    } catch (error) {
      expect(RefRegistryError.isInstance(error)).toBe(true);
      expect(error).toMatchObject({ code: 'REF_SESSION_OWNER_CONFLICT', sessionId: 'a' });
      expect((error as Error).message).toContain("session 'a'");
    }
    // Asking for shared on one side only is not enough.
    expect(() => manager.registerSession('a', { owner: new EventEmitter(), shared: true })).toThrow(
      SessionOwnerConflictError,
    );
    // A session registered without an owner is not open to owners either.
    manager.registerSession('b');
    expect(() => manager.registerSession('b', { owner: new EventEmitter() })).toThrow(
      SessionOwnerConflictError,
    );
  });

  it('shares a session when both sides say so; the last owner to end releases it', () => {
    const first = new AbortController();
    const second = new AbortController();
    const session = manager.registerSession('shared', { owner: first.signal, shared: true });
    expect(manager.registerSession('shared', { owner: second.signal, shared: true })).toBe(session);
    expect(session.info()?.owners).toBe(2);

    first.abort();
    expect(manager.sessionExists('shared')).toBe(true);
    expect(session.info()?.owners).toBe(1);

    second.abort();
    expect(manager.sessionExists('shared')).toBe(false);
    expect(ofType('session-released')).toMatchObject([{ sessionId: 'shared', cause: 'owner-ended' }]);
  });

  it('keeps a shared session registered without an owner until it is released', () => {
    const owner = new AbortController();
    manager.registerSession('pinned', { shared: true });
    manager.registerSession('pinned', { owner: owner.signal, shared: true });
    owner.abort();
    expect(manager.sessionExists('pinned')).toBe(true);
    expect(manager.session('pinned')?.info()?.owners).toBe(0);
  });

  it('open() registers a fresh id, or refuses one that is taken', () => {
    const one = manager.open();
    const two = manager.open();
    expect(one.id).not.toBe(two.id);
    expect(() => manager.open({ id: one.id })).toThrow(SessionOwnerConflictError);
    const shared = manager.open({ id: 'x', shared: true });
    expect(manager.open({ id: 'x', shared: true })).toBe(shared);
  });

  it('applies new limits and tags to an existing session', () => {
    const session = manager.registerSession('a', { limits: { maxRefs: 3 }, tags: { user: 'u1' } });
    const refs = [1, 2, 3].map(() => session.registerRef(init));
    manager.registerSession('a', { limits: { maxRefs: 1 }, tags: { tier: 'free' } });

    expect(session.info()).toMatchObject({
      limits: { maxRefs: 1, ttlMs: 3_600_000 },
      tags: { user: 'u1', tier: 'free' },
    });
    expect(session.listRefs()).toEqual([refs[2]]);
    expect(ofType('ref-evicted').map((event) => [event.ref.id, event.reason])).toEqual([
      [refs[0]!.id, 'lru'],
      [refs[1]!.id, 'lru'],
    ]);
  });

  it('rejects bad ids, owners and limits with REF_INVALID_ARGUMENT', () => {
    for (const attempt of [
      () => manager.registerSession(''),
      () => manager.registerSession('a', { owner: {} as never }),
      () => manager.registerSession('a', { owner: 'socket' as never }),
      () => manager.registerSession('a', { limits: { maxRefs: 0 } }),
      () => manager.registerSession('a', { limits: { ttlMs: -1 } }),
    ]) {
      expect(attempt).toThrow(expect.objectContaining({ code: 'REF_INVALID_ARGUMENT' }));
    }
    expect(manager.sessions()).toEqual([]);
  });
});

describe('owners', () => {
  it('releases at once when the owner has already ended', async () => {
    const aborted = AbortSignal.abort();
    const socket = new net.Socket();
    socket.destroy();
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await once(child, 'exit');

    for (const [id, owner] of [
      ['signal', aborted],
      ['socket', socket],
      ['child', child],
    ] as const) {
      const session = manager.registerSession(id, { owner });
      expect(session.released).toBe(true);
      expect(manager.sessionExists(id)).toBe(false);
    }
    expect(ofType('session-released').map((event) => [event.sessionId, event.cause])).toEqual([
      ['signal', 'owner-ended'],
      ['socket', 'owner-ended'],
      ['child', 'owner-ended'],
    ]);
    expect(manager.stats().owners).toBe(0);
  });

  it('releases on the first of exit and close, once', async () => {
    const emitter = new EventEmitter();
    manager.registerSession('a', { owner: emitter });
    emitter.emit('exit', 0, null);
    emitter.emit('close', 0, null);
    await manager.flush();
    expect(ofType('session-released')).toHaveLength(1);
    expect(releaser.calls).toHaveLength(1);
  });

  it('removes owner listeners when the session is released by other means', async () => {
    const controller = new AbortController();
    const emitter = new EventEmitter();
    manager.registerSession('signal', { owner: controller.signal });
    manager.registerSession('emitter', { owner: emitter, shared: true });
    manager.registerSession('emitter', { owner: new AbortController().signal, shared: true });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    expect(emitter.listenerCount('close') + emitter.listenerCount('exit')).toBe(2);
    expect(manager.stats().owners).toBe(3);

    await manager.releaseSession('signal');
    await manager.releaseSession('emitter');

    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(emitter.listenerCount('close') + emitter.listenerCount('exit')).toBe(0);
    expect(manager.stats().owners).toBe(0);
    controller.abort();
    emitter.emit('close');
    expect(ofType('session-released')).toHaveLength(2);
  });

  it('adds no error listener to an owner', () => {
    const emitter = new EventEmitter();
    manager.registerSession('a', { owner: emitter });
    expect(emitter.listenerCount('error')).toBe(0);
  });
});

describe('refs', () => {
  it('registers Refs and ref fields, and reads them back', () => {
    const session = manager.registerSession('a');
    const given = createRef({ id: 'r1', sessionId: 'a', typeName: 'Pattern', module: 're' });
    expect(manager.registerRef('a', given)).toBe(given);
    const made = manager.registerRef('a', { ...init, library: 'stdlib' });
    expect(made).toMatchObject({ sessionId: 'a', typeName: 'Pattern', module: 're', library: 'stdlib' });
    expect(made.id).toMatch(/^r_[0-9a-f]{24}$/);
    expect(manager.getRef('a', 'r1')).toBe(given);
    expect(session.getRef(made)).toBe(made);
    expect(manager.listRefs('a')).toEqual([given, made]);
    expect(ofType('ref-registered').map((event) => event.ref)).toEqual([given, made]);
  });

  it('never creates a session for a ref, and refuses refs of another session', () => {
    expect(() => manager.registerRef('nope', init)).toThrow(SessionNotFoundError);
    expect(() => manager.registerRef('nope', init)).toThrow(
      expect.objectContaining({ code: 'REF_SESSION_NOT_FOUND' }),
    );
    expect(manager.sessionExists('nope')).toBe(false);
    expect(manager.listRefs('nope')).toEqual([]);

    manager.registerSession('a');
    const foreign = createRef({ id: 'r1', sessionId: 'b', typeName: 'Pattern', module: 're' });
    expect(() => manager.registerRef('a', foreign)).toThrow(SessionMismatchError);
    expect(() => manager.registerRef('a', { ...init, sessionId: 'b' })).toThrow(SessionMismatchError);
  });

  it('releaseRef drops the ref and calls releaser.releaseRefs', async () => {
    const session = manager.registerSession('a');
    const ref = session.registerRef(init);

    const report = await manager.releaseRef(ref);

    expect(report).toEqual({ ref, status: 'released', released: true });
    expect(releaser.calls).toEqual([{ operation: 'releaseRefs', sessionId: 'a', refIds: [ref.id] }]);
    expect(() => manager.getRef('a', ref)).toThrow(RefNotFoundError);
    expect(ofType('ref-released')).toEqual([{ type: 'ref-released', ref }]);
    expect(await manager.releaseRef(ref)).toEqual({ ref, status: 'unknown', released: false });
  });

  it('a stale handle never touches a later session with the same id', async () => {
    const old = manager.registerSession('a');
    await old.release();
    const fresh = manager.registerSession('a');

    const ref = fresh.registerRef({ ...init, id: 'r1' });
    expect(() => old.registerRef(init)).toThrow(SessionNotFoundError);
    expect(() => old.getRef('r1')).toThrow(expect.objectContaining({ reason: 'session_released' }));
    expect(old.listRefs()).toEqual([]);
    expect(await old.releaseRef(ref)).toEqual({ ref, status: 'unknown', released: false });
    await expect(fresh.releaseRef(createRef({ ...init, id: 'x', sessionId: 'b' }))).rejects.toThrow(
      SessionMismatchError,
    );
    expect(fresh.listRefs()).toEqual([ref]);
    expect(old.info()).toBeUndefined();
    expect(await old.release()).toMatchObject({ status: 'released', cause: 'explicit' });
    expect(fresh.released).toBe(false);
    expect(fresh).not.toBe(old);
  });
});

describe('releaseSession', () => {
  it('drops the session at once and calls the releaser with its refs', async () => {
    const session = manager.registerSession('a');
    const refs = [session.registerRef(init), session.registerRef(init)];

    const pending = manager.releaseSession('a');
    expect(manager.sessionExists('a')).toBe(false);
    expect(manager.stats()).toMatchObject({ sessions: 0, refs: 0 });

    expect(await pending).toEqual({
      sessionId: 'a',
      status: 'released',
      released: true,
      refs,
      reason: 'session_released',
      cause: 'explicit',
    });
    expect(releaser.calls).toEqual([
      {
        operation: 'releaseSession',
        sessionId: 'a',
        refIds: refs.map((ref) => ref.id),
        reason: 'session_released',
      },
    ]);
    expect(() => manager.getRef('a', refs[0]!)).toThrow(
      expect.objectContaining({ reason: 'session_released' }),
    );
  });

  it('is idempotent; concurrent calls share one run', async () => {
    const owner = new AbortController();
    const session = manager.registerSession('a', { owner: owner.signal });
    releaser.hold();

    const first = manager.releaseSession('a');
    const second = manager.releaseSession('a');
    const third = session.release();
    owner.abort();
    expect(second).toBe(first);
    expect(third).toBe(first);
    expect(releaser.resume()).toBe(1);

    const reports = await Promise.all([first, second, third]);
    expect(new Set(reports).size).toBe(1);
    expect(releaser.calls).toHaveLength(1);
    expect(ofType('session-released')).toHaveLength(1);
    expect(await manager.releaseSession('a')).toMatchObject({ status: 'unknown', released: false, refs: [] });
  });

  it('passes the reason through', async () => {
    manager.registerSession('a');
    expect(await manager.releaseSession('a', 'worker_restarted')).toMatchObject({
      reason: 'worker_restarted',
    });
    expect(releaser.calls[0]?.reason).toBe('worker_restarted');
  });

  it('works without a releaser, and with one set later', async () => {
    setup({ releaser: undefined });
    manager.registerSession('a');
    expect(await manager.releaseSession('a')).toMatchObject({ status: 'released' });
    manager.setReleaser(releaser);
    expect(manager.releaser).toBe(releaser);
    manager.registerSession('b');
    await manager.releaseSession('b');
    expect(releaser.calls.map((call) => call.sessionId)).toEqual(['b']);
  });
});

describe('releaser failures', () => {
  it('retries once after retryDelayMs', async () => {
    manager.registerSession('a');
    releaser.failNext(1);
    let report: unknown;
    void manager.releaseSession('a').then((value) => {
      report = value;
    });
    await settle();
    expect(releaser.calls).toHaveLength(1);

    clock.advance(99);
    await settle();
    expect(releaser.calls).toHaveLength(1);

    clock.advance(1);
    await settle();
    expect(releaser.calls).toHaveLength(2);
    expect(report).toMatchObject({ status: 'released', released: true });
    expect(ofType('release-failed')).toEqual([]);
  });

  it('reports a second failure in the report and as an event, and never rejects', async () => {
    setup({ retryDelayMs: 0 });
    const session = manager.registerSession('a');
    const ref = session.registerRef(init);
    const cause = new Error('worker 3 is gone');
    releaser.failNext(2, cause);

    const report = await manager.releaseSession('a');

    expect(report).toMatchObject({ sessionId: 'a', status: 'failed', released: false, refs: [ref] });
    const error = report.error!;
    expect(error).toBeInstanceOf(ReleaseFailedError);
    expect(error).toMatchObject({
      code: 'REF_RELEASE_FAILED',
      sessionId: 'a',
      releaser: 'python',
      operation: 'releaseSession',
      attempts: 2,
      refIds: [ref.id],
      cause,
    });
    expect(error.message).toContain("session 'a'");
    expect(error.message).toContain('"python"');
    expect(error.message).toContain('worker 3 is gone');
    expect(ofType('release-failed')).toEqual([
      {
        type: 'release-failed',
        sessionId: 'a',
        operation: 'releaseSession',
        refs: [ref],
        attempts: 2,
        error,
      },
    ]);
    expect(manager.sessionExists('a')).toBe(false);
    expect(manager.stats().releaseFailures).toBe(1);
  });

  it('turns a failure nobody observes into a process warning', async () => {
    setup({ retryDelayMs: 0, onEvent: undefined });
    const warning = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const ref = manager.registerSession('a').registerRef(init);
    releaser.failNext(2);

    const report = await manager.releaseRef(ref);

    expect(report.status).toBe('failed');
    expect(warning).toHaveBeenCalledWith(report.error);
  });

  it('counts a releaser call past releaseTimeoutMs as failed', async () => {
    setup({ releaseTimeoutMs: 1_000, retryDelayMs: 10 });
    manager.registerSession('a');
    releaser.hold();
    let report: { status: string; error?: Error } | undefined;
    void manager.releaseSession('a').then((value) => {
      report = value;
    });

    clock.advance(1_000);
    await settle();
    clock.advance(10);
    await settle();
    expect(releaser.calls).toHaveLength(2);
    clock.advance(1_000);
    await settle();

    expect(report?.status).toBe('failed');
    expect(report?.error?.message).toContain('within 1000 ms');
    releaser.resume();
  });

  it('survives a releaser that throws synchronously', async () => {
    setup({
      retryDelayMs: 0,
      releaser: {
        name: 'sync',
        releaseSession: () => {
          throw new Error('boom');
        },
      },
    });
    manager.registerSession('a');
    expect(await manager.releaseSession('a')).toMatchObject({ status: 'failed' });
  });
});

describe('evictions', () => {
  it('reports LRU evictions and releases the evicted refs remotely', async () => {
    const session = manager.registerSession('a', { limits: { maxRefs: 2 } });
    const [first, second, third] = [
      session.registerRef(init),
      session.registerRef(init),
      session.registerRef(init),
    ];

    expect(ofType('ref-evicted')).toEqual([{ type: 'ref-evicted', ref: first, reason: 'lru' }]);
    expect(session.listRefs()).toEqual([second, third]);
    await manager.flush();
    expect(releaser.calls).toEqual([{ operation: 'releaseRefs', sessionId: 'a', refIds: [first!.id] }]);
  });

  it('reports TTL evictions found by sweep, by the sweep timer and on access', () => {
    setup({ sweepIntervalMs: 5_000 });
    const session = manager.registerSession('a', { limits: { ttlMs: 1_000 } });
    const swept = session.registerRef(init);
    clock.advance(1_000);
    expect(manager.sweep()).toEqual([{ ref: swept, reason: 'ttl' }]);

    const timed = session.registerRef(init);
    clock.advance(4_000);
    expect(ofType('ref-evicted').map((event) => event.ref)).toEqual([swept, timed]);

    const touched = session.registerRef(init);
    clock.advance(1_000);
    expect(() => session.getRef(touched)).toThrow(expect.objectContaining({ reason: 'ttl' }));
    expect(ofType('ref-evicted').map((event) => [event.ref, event.reason])).toEqual([
      [swept, 'ttl'],
      [timed, 'ttl'],
      [touched, 'ttl'],
    ]);
  });

  it('reports evictions returned by a store it does not own', () => {
    const store = memoryRefStore();
    setup({ store });
    const session = manager.registerSession('a', { limits: { maxRefs: 1 } });
    const first = session.registerRef(init);
    session.registerRef(init);
    expect(ofType('ref-evicted')).toEqual([{ type: 'ref-evicted', ref: first, reason: 'lru' }]);
  });

  it('keeps one sweep timer, only while sessions exist', async () => {
    setup({ sweepIntervalMs: 5_000 });
    expect(clock.pending).toBe(0);
    manager.registerSession('a');
    manager.registerSession('b');
    expect(clock.pending).toBe(1);
    clock.advance(5_000);
    expect(clock.pending).toBe(1);
    await manager.releaseSession('a');
    expect(clock.pending).toBe(1);
    await manager.releaseSession('b');
    expect(clock.pending).toBe(0);
  });
});

describe('events', () => {
  it('on() subscribes to one type and returns the unsubscribe function', async () => {
    const seen: string[] = [];
    const unsubscribe = manager.on('session-released', (event) => seen.push(event.sessionId));
    manager.registerSession('a');
    manager.registerSession('b');
    await manager.releaseSession('a');
    unsubscribe();
    await manager.releaseSession('b');
    expect(seen).toEqual(['a']);
  });

  it('a listener that throws does not stop a release; it becomes a warning', async () => {
    const warning = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    manager.on('session-released', () => {
      throw new Error('observer bug');
    });
    manager.registerSession('a');
    expect(await manager.releaseSession('a')).toMatchObject({ status: 'released' });
    expect(warning).toHaveBeenCalledTimes(1);
    expect(releaser.calls).toHaveLength(1);
  });
});

describe('dispose', () => {
  it('releases every session, stops every watch and the timer, then refuses new sessions', async () => {
    setup({ sweepIntervalMs: 5_000 });
    const controller = new AbortController();
    manager.registerSession('a', { owner: controller.signal });
    manager.registerSession('b').registerRef(init);

    await manager.dispose();

    expect(manager.sessions()).toEqual([]);
    expect(manager.stats()).toEqual({ sessions: 0, refs: 0, owners: 0, releasing: 0, releaseFailures: 0 });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(clock.pending).toBe(0);
    expect(ofType('session-released').map((event) => event.cause)).toEqual(['disposed', 'disposed']);
    expect(releaser.calls).toHaveLength(2);
    expect(() => manager.registerSession('c')).toThrow(SessionManagerDisposedError);
    await manager.dispose();
  });

  it('is what await using calls', async () => {
    let sessionId: string;
    {
      await using scoped = createSessionManager({ releaser });
      sessionId = scoped.open().id;
    }
    expect(releaser.calls.map((call) => call.sessionId)).toEqual([sessionId]);
  });
});
