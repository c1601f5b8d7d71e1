import { describe, expect, it } from 'vitest';
import { advance, flush } from './test-support/manual-clock';
import { setup } from './test-support/setup';

const MINUTE = 60_000;

describe('idle sweeper', () => {
  it('ends a session idle for idleTimeoutMs with reason idle (Koru never culled)', async () => {
    const { manager, clock, events } = setup({ idleTimeoutMs: 15 * MINUTE });
    const session = await manager.getOrCreate('user-1', 'free');
    await advance(clock, 15 * MINUTE - MINUTE);
    expect(session.state).toBe('open');
    await advance(clock, MINUTE);
    expect(session.state).not.toBe('open');
    const report = await session.end();
    expect(report.reason).toBe('idle');
    expect(events.map((event) => event.type)).toEqual(['session-created', 'session-ending', 'session-ended']);
    expect(manager.stats()).toMatchObject({ open: 0, ended: { idle: 1 }, sweeperArmed: false });
    expect(clock.pending).toBe(0);
  });

  it('culls between idleTimeoutMs and idleTimeoutMs + sweepIntervalMs after the last activity', async () => {
    const { manager, clock } = setup({ idleTimeoutMs: 10_000, sweepIntervalMs: 4_000 });
    const session = await manager.getOrCreate('user-1', 'free');
    await advance(clock, 3_000);
    session.touch(); // last activity at +3 s: idle from +13 s, seen by the sweep at +16 s
    await advance(clock, 12_000);
    expect(session.state).toBe('open');
    await advance(clock, 1_000);
    expect(session.endReason).toBe('idle');
  });

  it('never culls a busy session, however long its call runs; leaving counts as activity', async () => {
    const { manager, clock } = setup({ idleTimeoutMs: 10 * MINUTE });
    const busy = await manager.getOrCreate('busy', 'free');
    const idle = await manager.getOrCreate('idle', 'free');
    const token = busy.enter();
    await advance(clock, 60 * MINUTE);
    expect(idle.endReason).toBe('idle');
    expect(busy.state).toBe('open');
    expect(manager.sweep()).toBe(0);

    token.leave();
    expect(busy.lastActiveAt).toBe(clock.now());
    await advance(clock, 10 * MINUTE - 1);
    expect(busy.state).toBe('open');
    await advance(clock, MINUTE);
    expect(busy.endReason).toBe('idle');
  });

  it('ends a busy period at the end of a using block', async () => {
    const { manager, clock } = setup({ idleTimeoutMs: MINUTE });
    const session = await manager.getOrCreate('user-1', 'free');
    {
      using _busy = session.enter();
      expect(session.busy).toBe(1);
      clock.advance(5_000);
    }
    expect(session.busy).toBe(0);
    expect(session.lastActiveAt).toBe(clock.now());
  });

  it('counts run() and metered() as busy and as activity', async () => {
    const { manager, clock } = setup({ idleTimeoutMs: MINUTE, sweepIntervalMs: 1_000 });
    const session = await manager.getOrCreate('user-1', 'free');
    let finish!: () => void;
    const call = session.metered(5, () => new Promise<void>((resolve) => (finish = resolve)));
    await flush();
    expect(session.busy).toBe(1);
    await advance(clock, 5 * MINUTE);
    expect(session.state).toBe('open');
    finish();
    await call;
    expect(session.busy).toBe(0);
    expect(session.lastActiveAt).toBe(clock.now());
    await session.run(() => advance(clock, 30_000));
    await advance(clock, 59_000);
    expect(session.state).toBe('open');
    await advance(clock, 1_000);
    expect(session.endReason).toBe('idle');
  });

  it('getOrCreate of an existing session is activity', async () => {
    const { manager, clock } = setup({ idleTimeoutMs: MINUTE, sweepIntervalMs: 1_000 });
    const session = await manager.getOrCreate('user-1', 'free');
    await advance(clock, 50_000);
    await manager.getOrCreate('user-1', 'free');
    await advance(clock, 50_000);
    expect(session.state).toBe('open');
  });

  it('keeps one timer for the whole manager, whatever the number of sessions', async () => {
    const { manager, clock } = setup({ idleTimeoutMs: MINUTE, sweepIntervalMs: 10_000 });
    expect(clock.pending).toBe(0);
    const sessions = [];
    for (let index = 0; index < 500; index += 1)
      sessions.push(await manager.getOrCreate(`s${index}`, 'free'));
    expect(clock.pending).toBe(1);
    expect(clock.created).toBe(1);
    // Sweeps re-arm the same single timer.
    await advance(clock, 30_000);
    expect(clock.pending).toBe(1);
    for (const session of sessions.slice(0, 250)) session.touch();
    await advance(clock, 40_000);
    expect(manager.stats()).toMatchObject({ open: 250, ended: { idle: 250 } });
    expect(clock.pending).toBe(1);
    // Disarmed when no session is open.
    await advance(clock, 60_000);
    expect(manager.stats()).toMatchObject({ open: 0, ended: { idle: 500 }, sweeperArmed: false });
    expect(clock.pending).toBe(0);
    // Armed again by the next session.
    await manager.getOrCreate('late', 'free');
    expect(clock.pending).toBe(1);
    await manager.close();
    expect(clock.pending).toBe(0);
  });

  it('sweeps least recently active first and stops at the first active session', async () => {
    const { manager, clock } = setup({ idleTimeoutMs: 10_000, sweepIntervalMs: 1_000_000 });
    const a = await manager.getOrCreate('a', 'free');
    await advance(clock, 5_000);
    const b = await manager.getOrCreate('b', 'free');
    await advance(clock, 5_000);
    a.touch();
    await advance(clock, 5_000);
    expect(manager.sessions()).toEqual([b, a]);
    expect(manager.sweep()).toBe(1);
    expect(b.endReason).toBe('idle');
    expect(a.state).toBe('open');
  });

  it('switches idle culling off with idleTimeoutMs Infinity: no timer at all', async () => {
    const { manager, clock } = setup({ idleTimeoutMs: Number.POSITIVE_INFINITY });
    const session = await manager.getOrCreate('user-1', 'free');
    expect(clock.pending).toBe(0);
    await advance(clock, 1e12);
    expect(session.state).toBe('open');
    expect(manager.sweep()).toBe(0);
  });
});
