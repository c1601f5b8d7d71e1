/** The embedded backend: python-adapter and a BridgeManager in this process. */
import type { Ref } from '@trestle/ref-registry';
import { afterEach, describe, expect, it } from 'vitest';
import type { Backend, BackendEvent } from './backend';
import { embeddedBackend } from './embedded-backend';
import { hasPython, waitFor } from './test-support/env';

describe.runIf(hasPython())('embeddedBackend', () => {
  const backends: Backend[] = [];
  afterEach(async () => {
    await Promise.all(backends.splice(0).map((backend) => backend.close()));
  });

  async function start(tier?: string) {
    const backend = embeddedBackend(tier === undefined ? {} : { tier });
    backends.push(backend);
    const events: BackendEvent[] = [];
    backend.on((event) => events.push(event));
    await backend.start();
    return { backend, events };
  }

  it('meters every call on the tier and reports it', async () => {
    const { backend } = await start('basic');
    expect(await backend.call('math', 'sqrt', [16], undefined)).toBe(4);
    const ref = (await backend.call('re', 'compile', ['\\d+'], undefined)) as Ref;
    expect(await backend.attr(ref, 'pattern')).toBe('\\d+');
    expect(await backend.attr('math', 'pi')).toBeCloseTo(Math.PI);
    expect(await backend.dir(ref)).toEqual(expect.arrayContaining(['match', 'search']));
    expect(await backend.dir('math')).toContain('sqrt');
    expect(await backend.modules?.()).toEqual(expect.arrayContaining(['json', 'math', 're']));
    const session = await backend.session();
    expect(session).toMatchObject({ id: backend.sessionId, tier: 'basic', refs: 1, handles: 0 });
    expect(session.calls.metered).toBe(7);
    const budget = await backend.budget();
    expect(budget).toMatchObject({ tier: 'basic', capacity: 5000, refillPerSec: 50 });
    expect(budget.remaining).toBeLessThan(5000);
    expect((await backend.refs()).map((view) => view.ref.id)).toEqual([ref.id]);
  });

  it('tracks objects with a close() as handles, closed on release and at the end', async () => {
    const { backend } = await start();
    const kept = (await backend.call('tempfile', 'TemporaryFile', [], undefined)) as Ref;
    const released = (await backend.call('tempfile', 'TemporaryFile', [], undefined)) as Ref;
    const handles = await backend.handles();
    expect(handles.map((handle) => handle.obligation)).toEqual(['py:close', 'py:close']);
    expect(handles.map((handle) => handle.label)).toEqual([
      expect.stringContaining(kept.id),
      expect.stringContaining(released.id),
    ]);
    expect(await backend.release([released])).toBe(1);
    expect(await backend.release([released])).toBe(0);
    expect((await backend.handles()).map((handle) => handle.label)).toEqual([
      expect.stringContaining(kept.id),
    ]);
    const summary = await backend.end({ reopen: false });
    expect(summary).toMatchObject({ reason: 'logout', refsReleased: 1, undischarged: [] });
    expect(summary?.discharged).toEqual([expect.stringContaining(kept.id)]);
    expect(backend.sessionId).toBeUndefined();
  });

  it('aborts a running call with its signal', async () => {
    const { backend } = await start();
    const controller = new AbortController();
    const sleeping = backend.call('time', 'sleep', [30], undefined, { signal: controller.signal });
    setImmediate(() => controller.abort());
    await expect(sleeping).rejects.toMatchObject({ code: 'PY_ABORTED' });
    expect(await backend.call('math', 'sqrt', [9], undefined)).toBe(3);
  });

  it('replaces a session whose worker died and names the lost refs', async () => {
    const { backend, events } = await start();
    const first = backend.sessionId;
    const ref = (await backend.call('re', 'compile', ['x'], undefined)) as Ref;
    await expect(backend.call('os', '_exit', [3], undefined)).rejects.toMatchObject({
      code: 'PY_WORKER_CRASHED',
    });
    const replaced = await waitFor(
      () => events.find((event) => event.type === 'session-replaced'),
      15_000,
      'a new session',
    );
    expect(replaced).toMatchObject({ from: first, lost: [ref] });
    expect(backend.sessionId).not.toBe(first);
    expect(await backend.call('math', 'sqrt', [4], undefined)).toBe(2);
  });

  it('refuses an unknown tier at start', async () => {
    const backend = embeddedBackend({ tier: 'gold' });
    backends.push(backend);
    await expect(backend.start()).rejects.toThrow(
      /unknown tier "gold" \(known: free, basic, premium, unlimited\)/,
    );
  });
});
