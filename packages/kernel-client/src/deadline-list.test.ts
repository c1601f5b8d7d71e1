import { manualClock } from '@trestle/ws-bridge/testing';
import { describe, expect, it } from 'vitest';
import { type DeadlineEntry, DeadlineList } from './deadline-list';

const entry = (at: number, expired: number[]): DeadlineEntry => ({
  at,
  prev: undefined,
  next: undefined,
  expire: () => expired.push(at),
});

describe('DeadlineList', () => {
  it('expires each entry exactly at its deadline, on one timer', () => {
    const clock = manualClock();
    const list = new DeadlineList(clock);
    const expired: number[] = [];
    const a = entry(100, expired);
    const b = entry(150, expired);
    const c = entry(150, expired);
    list.add(a);
    list.add(b);
    list.add(c);
    expect(clock.pending).toBe(1);
    clock.advance(99);
    expect(expired).toEqual([]);
    clock.advance(1);
    expect(expired).toEqual([100]);
    expect(clock.pending).toBe(1); // re-armed for 150
    clock.advance(50);
    expect(expired).toEqual([100, 150, 150]);
    expect(clock.pending).toBe(0);
    expect(list.lastAt).toBe(Number.NEGATIVE_INFINITY);
  });

  it('never expires a removed entry, and re-arms for the next one when the timer was armed for it', () => {
    const clock = manualClock();
    const list = new DeadlineList(clock);
    const expired: number[] = [];
    const a = entry(100, expired);
    const b = entry(200, expired);
    list.add(a);
    list.add(b);
    list.remove(a);
    list.remove(a); // twice: nothing
    expect(list.lastAt).toBe(200);
    clock.advance(100);
    expect(expired).toEqual([]);
    clock.advance(100);
    expect(expired).toEqual([200]);
    const c = entry(300, expired);
    list.add(c);
    list.remove(c);
    list.dispose();
    expect(clock.pending).toBe(0);
    clock.advance(1_000);
    expect(expired).toEqual([200]);
  });
});
