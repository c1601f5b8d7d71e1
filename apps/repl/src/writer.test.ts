import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { createWriter } from './writer';

describe('the REPL writer', () => {
  it('hides async-context bookkeeping on promises and puts it back', async () => {
    const storage = new AsyncLocalStorage<string>();
    const write = createWriter(false);
    const pending = storage.run('evaluation', () => new Promise<void>(() => undefined));
    const before = Object.getOwnPropertySymbols(pending).map((key) => key.description);
    expect(write(pending)).toBe('Promise { <pending> }');
    expect(Object.getOwnPropertySymbols(pending).map((key) => key.description)).toEqual(before);
    expect(write(Promise.resolve(4))).toBe('Promise { 4 }');
    expect(write({ a: [1, 'x'] })).toBe("{ a: [ 1, 'x' ] }");
    expect(write(new Proxy({}, {}))).toBe('{}');
  });
});
