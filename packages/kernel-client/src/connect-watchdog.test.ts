import { describe, expect, it } from 'vitest';
import { type Connecting, ConnectWatchdog } from './connect-watchdog';

/** A connect that records when it was timed out, and resolves `timedOut`. */
function connecting(): Connecting & { timedOut: Promise<number>; calls: number } {
  let resolve: (at: number) => void = () => {};
  const timedOut = new Promise<number>((r) => {
    resolve = r;
  });
  const entry = {
    connectStartedAt: 0,
    calls: 0,
    timedOut,
    connectTimedOut() {
      entry.calls++;
      resolve(performance.now());
    },
  };
  return entry;
}

describe('ConnectWatchdog', () => {
  it('times out a connect after the timeout, once', async () => {
    const watchdog = new ConnectWatchdog(20);
    const entry = connecting();
    const started = performance.now();
    watchdog.watch(entry);
    const at = await entry.timedOut;
    expect(at - started).toBeGreaterThanOrEqual(19);
    expect(entry.calls).toBe(1);
    watchdog.stop();
  });

  it('leaves a connect alone once forgotten, and serves later ones with the same timer', async () => {
    const watchdog = new ConnectWatchdog(20);
    const forgotten = connecting();
    const kept = connecting();
    watchdog.watch(forgotten);
    watchdog.watch(kept);
    watchdog.forget(forgotten);
    await kept.timedOut;
    expect(forgotten.calls).toBe(0);
    expect(kept.calls).toBe(1);
    // Armed again for a connect started after the timer fired.
    const later = connecting();
    watchdog.watch(later);
    await later.timedOut;
    expect(later.calls).toBe(1);
    watchdog.stop();
  });

  it('times out connects in the order they started, each after its own timeout', async () => {
    const watchdog = new ConnectWatchdog(30);
    const first = connecting();
    watchdog.watch(first);
    const firstAt = await first.timedOut;
    const second = connecting();
    const secondStarted = performance.now();
    watchdog.watch(second);
    const secondAt = await second.timedOut;
    expect(secondAt).toBeGreaterThan(firstAt);
    expect(secondAt - secondStarted).toBeGreaterThanOrEqual(29);
    watchdog.stop();
  });

  it('holds no referenced timer: it never keeps the process alive', () => {
    const watchdog = new ConnectWatchdog(60_000);
    const before = process.getActiveResourcesInfo().filter((type) => type === 'Timeout').length;
    watchdog.watch(connecting());
    expect(process.getActiveResourcesInfo().filter((type) => type === 'Timeout').length).toBe(before);
    watchdog.stop();
  });
});
