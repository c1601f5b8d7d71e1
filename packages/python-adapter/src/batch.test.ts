import { isRef, type Ref } from '@trestle/ref-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PythonError } from './errors';
import { hasPython, testBridge } from './test-support/bridge';

describe.runIf(hasPython())('batch: several calls in one round trip', () => {
  const py = testBridge();
  beforeAll(() => py.ready());
  afterAll(() => py.close());

  it('runs calls, method calls and attribute reads in order; each item has its own outcome', async () => {
    const pattern = await py.call<Ref>('re', 'compile', ['\\d+']);
    const results = await py.batch([
      { module: 'math', fn: 'sqrt', args: [16] },
      { ref: pattern, method: 'sub', args: ['#', 'a1b22'] },
      { ref: pattern, attr: 'pattern' },
      { module: 'math', attr: 'pi' },
      { module: 'math', fn: 'sqrt', args: [-1] },
      { module: 're', fn: 'compile', args: ['x'], kwargs: { flags: 2 } },
    ]);
    expect(results.slice(0, 4)).toEqual([
      { ok: true, value: 4 },
      { ok: true, value: 'a#b#' },
      { ok: true, value: '\\d+' },
      { ok: true, value: Math.PI },
    ]);
    const failed = results[4];
    expect(failed?.ok).toBe(false);
    expect(failed?.ok === false && failed.error).toBeInstanceOf(PythonError);
    expect(failed?.ok === false && (failed.error as PythonError).pythonMessage).toBe('math domain error');
    const made = results[5];
    expect(made?.ok === true && isRef(made.value) && made.value.sessionId).toBe(pattern.sessionId);
  });

  it('an empty batch is a typed error', async () => {
    await expect(py.batch([])).rejects.toMatchObject({ code: 'PY_INVALID_ARGUMENT' });
  });
});
