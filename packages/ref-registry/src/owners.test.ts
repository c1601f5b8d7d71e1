import { spawn } from 'node:child_process';
import { EventEmitter, getEventListeners, once } from 'node:events';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { linkOwner, ownerHasEnded, ownerKind, type SessionOwner } from './owners';
import { collectUntil } from './test-support/wait';

describe('ownerKind', () => {
  it('detects signals, emitters and gc owners', () => {
    expect(ownerKind(new AbortController().signal)).toBe('signal');
    expect(ownerKind(AbortSignal.timeout(60_000))).toBe('signal');
    expect(ownerKind(new EventEmitter())).toBe('emitter');
    expect(ownerKind(new net.Socket())).toBe('emitter');
    expect(ownerKind(new PassThrough())).toBe('emitter');
    expect(ownerKind({ gc: {} })).toBe('gc');
    expect(ownerKind({ gc: () => {} })).toBe('gc');
  });

  it('rejects anything else with REF_INVALID_ARGUMENT', () => {
    for (const owner of [
      undefined,
      null,
      'socket',
      42,
      {},
      { gc: 'string' },
      { on() {} },
      { addEventListener() {} },
    ]) {
      expect(() => ownerKind(owner)).toThrow(expect.objectContaining({ code: 'REF_INVALID_ARGUMENT' }));
    }
  });
});

describe('ownerHasEnded', () => {
  it('sees aborted signals, finished children and closed sockets and streams', async () => {
    expect(ownerHasEnded(AbortSignal.abort())).toBe(true);
    expect(ownerHasEnded(new AbortController().signal)).toBe(false);

    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    expect(ownerHasEnded(child)).toBe(false);
    await once(child, 'exit');
    expect(ownerHasEnded(child)).toBe(true);

    const killed = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    killed.kill('SIGKILL');
    await once(killed, 'exit');
    expect(killed.exitCode).toBeNull();
    expect(ownerHasEnded(killed)).toBe(true);

    const socket = new net.Socket();
    expect(ownerHasEnded(socket)).toBe(false);
    socket.destroy();
    expect(ownerHasEnded(socket)).toBe(true);

    const stream = new PassThrough();
    stream.destroy();
    await once(stream, 'close');
    expect(ownerHasEnded(stream)).toBe(true);

    // A plain emitter carries no state: it has ended only when it says so.
    expect(ownerHasEnded(new EventEmitter())).toBe(false);
    expect(ownerHasEnded({ gc: {} })).toBe(false);
  });
});

describe('linkOwner', () => {
  it('returns undefined for an owner that has already ended', () => {
    const onEnd = vi.fn();
    expect(linkOwner(AbortSignal.abort(), 'session', onEnd)).toBeUndefined();
    expect(onEnd).not.toHaveBeenCalled();
  });

  it('calls onEnd once per link and can be stopped', () => {
    const controller = new AbortController();
    const onEnd = vi.fn();
    const link = linkOwner(controller.signal, 'session', onEnd)!;
    expect(link).toMatchObject({ kind: 'signal', session: 'session' });
    expect(link.matches(controller.signal)).toBe(true);
    expect(link.matches(new AbortController().signal)).toBe(false);
    controller.abort();
    controller.signal.dispatchEvent(new Event('abort'));
    expect(onEnd).toHaveBeenCalledTimes(1);
    expect(onEnd).toHaveBeenCalledWith(link);

    const emitter = new EventEmitter();
    const stopped = linkOwner(emitter, 'other', onEnd)!;
    stopped.stop();
    stopped.stop();
    emitter.emit('close');
    expect(onEnd).toHaveBeenCalledTimes(1);
    expect(emitter.eventNames()).toEqual([]);
  });

  it('works with an emitter that has removeListener but no off', () => {
    const inner = new EventEmitter();
    const owner = {
      on: (event: string, listener: () => void) => inner.on(event, listener),
      removeListener: (event: string, listener: () => void) => inner.removeListener(event, listener),
    } as SessionOwner;
    const onEnd = vi.fn();
    const link = linkOwner(owner, 1, onEnd)!;
    expect(inner.listenerCount('close')).toBe(1);
    link.stop();
    expect(inner.eventNames()).toEqual([]);
  });

  it('removes the abort listener when stopped', () => {
    const controller = new AbortController();
    linkOwner(controller.signal, 1, () => {})!.stop();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('does not keep a gc owner alive, and reports its collection', async () => {
    const onEnd = vi.fn();
    const { link, target } = linkCollectable(onEnd);
    expect(link.kind).toBe('gc');

    expect(await collectUntil(() => onEnd.mock.calls.length > 0)).toBe(true);
    expect(target.deref()).toBeUndefined();
    expect(onEnd).toHaveBeenCalledWith(link);
  });

  it('a stopped gc link reports nothing', async () => {
    const onEnd = vi.fn();
    const { link, target } = linkCollectable(onEnd);
    link.stop();
    expect(await collectUntil(() => target.deref() === undefined)).toBe(true);
    // Give a pending finalization callback time to run, if one were (wrongly) registered.
    await collectUntil(() => false, 5);
    expect(onEnd).not.toHaveBeenCalled();
  });

  it('matches a gc owner by its object', () => {
    const object = {};
    const link = linkOwner({ gc: object }, 1, () => {})!;
    expect(link.matches({ gc: object })).toBe(true);
    expect(link.matches({ gc: {} })).toBe(false);
    expect(link.matches(new EventEmitter())).toBe(false);
    link.stop();
  });
});

function linkCollectable(onEnd: () => void) {
  const object = { payload: new Array(32).fill(1) };
  return { link: linkOwner({ gc: object }, 'session', onEnd)!, target: new WeakRef(object) };
}
