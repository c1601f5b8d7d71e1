import { describe, expect, it } from 'vitest';
import { refProxy } from './proxies';
import { createRuntime } from './runtime';
import { ScopeNames } from './scope-names';
import { fakeBackend, fakeRef } from './test-support/fake-backend';

describe('ScopeNames', () => {
  it('finds the names that hold refs among the assigned ones', () => {
    const runtime = createRuntime(fakeBackend());
    const a = fakeRef();
    const b = fakeRef('Match');
    const scope: Record<string, unknown> = {
      p: refProxy(runtime, a),
      q: refProxy(runtime, a),
      m: refProxy(runtime, b),
      n: 1,
    };
    const names = new ScopeNames();
    names.note("const p = await py.re.compile('x'); let n = 1");
    names.note('q = p; if (x == 1 || y => 2) {}');
    names.note('m=await p.match("x")');
    const evaluate = (name: string) => {
      if (!(name in scope)) throw new ReferenceError(name);
      return scope[name];
    };
    const byRef = names.byRef(evaluate, ['undefinedName']);
    expect(byRef.get(a.id)).toEqual(['p', 'q']);
    expect(byRef.get(b.id)).toEqual(['m']);
    expect(byRef.size).toBe(2);
  });
});
