import { describe, expect, it } from 'vitest';
import {
  bar,
  formatBudget,
  formatDuration,
  formatHandles,
  formatReport,
  formatSession,
  table,
} from './format';
import { createStyle } from './style';

const plain = createStyle(false);

describe('format', () => {
  it('formats durations', () => {
    expect(formatDuration(0)).toBe('0 ms');
    expect(formatDuration(999.4)).toBe('999 ms');
    expect(formatDuration(12_345)).toBe('12.3 s');
    expect(formatDuration(245_000)).toBe('4m 05s');
    expect(formatDuration(7_380_000)).toBe('2h 03m');
    expect(formatDuration(-1)).toBe('?');
  });

  it('draws a bar, clamped', () => {
    expect(bar(0.5, 10)).toBe('[#####-----]');
    expect(bar(2, 4)).toBe('[####]');
    expect(bar(Number.NaN, 4)).toBe('[----]');
  });

  it('shows a budget with remaining, refill and time to full', () => {
    expect(
      formatBudget(
        { tier: 'free', remaining: 25, capacity: 100, refillPerSec: 2, fullAfterMs: 37_500 },
        plain,
      ),
    ).toBe('budget  tier free\n  [#####---------------] 25 / 100 remaining  +2/s, full in 37.5 s');
    expect(
      formatBudget(
        { tier: 'unlimited', remaining: null, capacity: null, refillPerSec: null, fullAfterMs: 0 },
        plain,
      ),
    ).toBe('budget  tier unlimited: unlimited (calls are metered, never denied)');
    expect(createStyle(true).red('x')).toBe('\u001b[31mx\u001b[39m');
  });

  it('shows a session, handles, a report', () => {
    const session = formatSession(
      {
        id: 's_1',
        tier: 'free',
        ageMs: 61_000,
        refs: 2,
        handles: 1,
        calls: { metered: 3, succeeded: 2, failed: 1, charged: 7 },
      },
      's1',
      'embedded',
      plain,
    );
    expect(session).toBe(
      [
        'session s1',
        '  id       s_1',
        '  mode     embedded',
        '  tier     free',
        '  age      1m 01s',
        '  refs     2 live',
        '  handles  1 open',
        '  calls    3 calls, 2 ok, 1 failed, 7 units charged',
      ].join('\n'),
    );
    expect(formatHandles([], plain)).toBe('no open handles');
    expect(formatHandles([{ id: 'h_1', obligation: 'py:close', label: 'io.File r1', ageMs: 5 }], plain)).toBe(
      '  handle  obligation  object      age\n  h_1     py:close    io.File r1  5 ms',
    );
    expect(table(['a', 'bb'], [['xxx', 'y']], plain)).toBe('  a    bb\n  xxx  y');
    const report = formatReport(
      {
        sessionId: 's_1',
        reason: 'logout',
        durationMs: 3_000,
        calls: { metered: 4, failed: 1, charged: 9 },
        refsReleased: 2,
        discharged: ['io.File r1'],
        undischarged: [{ label: 'gpu', why: 'no-discharger' }],
        errors: [],
      },
      's1',
      plain,
    );
    expect(report).toBe(
      [
        'session s1 ended (logout) after 3.0 s',
        '  calls    4 calls, 1 failed, 9 units charged',
        '  refs     2 released',
        '  handles  1 closed, 1 not closed',
        '    gpu: no-discharger',
      ].join('\n'),
    );
  });
});
