import { PythonError } from '@trestle/python-adapter';
import { describe, expect, it } from 'vitest';
import { CancelledError, ConnectionLostError, RemoteError } from './errors';
import { formatError, isBridgeError, trimTraceback } from './format-error';
import { createStyle, wantsColor } from './style';

const plain = createStyle(false);

function traceback(frames: number): string {
  const lines = ['Traceback (most recent call last):'];
  for (let i = 0; i < frames; i++) {
    lines.push(`  File "/lib/m${i}.py", line ${i + 1}, in f${i}`, `    call_${i}()`, '    ^^^^^^^^^');
  }
  lines.push('RecursionError: too deep');
  return `${lines.join('\n')}\n`;
}

describe('Python errors', () => {
  it('keeps a short traceback, without the caret lines', () => {
    expect(trimTraceback(traceback(2))).toBe(
      [
        'Traceback (most recent call last):',
        '  File "/lib/m0.py", line 1, in f0',
        '    call_0()',
        '  File "/lib/m1.py", line 2, in f1',
        '    call_1()',
        'RecursionError: too deep',
      ].join('\n'),
    );
  });

  it('hides the middle frames of a long traceback', () => {
    const trimmed = trimTraceback(traceback(50), { maxFrames: 6 });
    expect(trimmed).toContain('  [... 44 frames hidden ...]');
    expect(trimmed).toContain('/lib/m0.py');
    expect(trimmed).toContain('/lib/m1.py');
    expect(trimmed).not.toContain('/lib/m2.py');
    expect(trimmed).toContain('/lib/m49.py');
    expect(trimmed.split('\n').filter((line) => line.startsWith('  File'))).toHaveLength(6);
    expect(trimmed.endsWith('RecursionError: too deep')).toBe(true);
  });

  it('shows the traceback, the exception and where it was called', () => {
    const error = new PythonError({
      type: 'JSONDecodeError',
      module: 'json.decoder',
      pythonMessage: 'Expecting value',
      traceback: traceback(1).replace(
        'RecursionError: too deep',
        'json.decoder.JSONDecodeError: Expecting value',
      ),
      fn: 'json.loads',
    });
    expect(isBridgeError(error)).toBe(true);
    expect(formatError(error, plain)).toBe(
      [
        'Traceback (most recent call last):',
        '  File "/lib/m0.py", line 1, in f0',
        '    call_0()',
        'json.decoder.JSONDecodeError: Expecting value  (in json.loads)',
      ].join('\n'),
    );
    const bare = new PythonError({
      type: 'ValueError',
      module: 'builtins',
      pythonMessage: 'bad',
      traceback: 'ValueError: bad\n',
      fn: 'math.sqrt',
    });
    expect(formatError(bare, plain)).toBe('ValueError: bad  (in math.sqrt)');
    expect(formatError(bare, createStyle(true))).toContain('\u001b[31mValueError: bad\u001b[39m');
  });

  it('formats cancellations and bridge errors; leaves other errors to node:repl', () => {
    expect(formatError(new CancelledError(), plain)).toBe('cancelled');
    expect(
      formatError(Object.assign(new Error('x'), { code: 'ERR_SCRIPT_EXECUTION_INTERRUPTED' }), plain),
    ).toBe('cancelled');
    const remote = new RemoteError('REF_NOT_FOUND', 'ref r1 is gone', -32000);
    expect(isBridgeError(remote)).toBe(true);
    expect(formatError(remote, plain)).toBe('REF_NOT_FOUND: ref r1 is gone');
    expect(isBridgeError(new ConnectionLostError('py.call', 'WS_CONNECTION_LOST'))).toBe(true);
    const adapter = Object.assign(new Error('[python-adapter] the adapter is closed'), { code: 'PY_CLOSED' });
    expect(formatError(adapter, plain)).toBe('PY_CLOSED: the adapter is closed');
    expect(isBridgeError(new TypeError('x'))).toBe(false);
    expect(isBridgeError(Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG_TYPE' }))).toBe(false);
  });
});

describe('colours', () => {
  it('are on for a TTY only, off with NO_COLOR, TERM=dumb or --no-color', () => {
    expect(wantsColor({ isTTY: true }, {})).toBe(true);
    expect(wantsColor({ isTTY: false }, {})).toBe(false);
    expect(wantsColor({}, {})).toBe(false);
    expect(wantsColor({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(wantsColor({ isTTY: true }, { NO_COLOR: '' })).toBe(true);
    expect(wantsColor({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
    expect(wantsColor({ isTTY: true }, {}, true)).toBe(false);
  });
});
