import { createRef } from '@trestle/ref-registry';
import { describe, expect, it } from 'vitest';
import { collectRefs } from './collect-refs';
import { tuple } from './values';

const ref = (id: string) => createRef({ id, sessionId: 's1', typeName: 'Pattern', module: 're' });

describe('collectRefs', () => {
  it('finds refs in arrays, tuples, sets, maps and plain objects, not in bytes, up to the limit', () => {
    const [a, b, c, d] = [ref('a'), ref('b'), ref('c'), ref('d')];
    const cycle: Record<string, unknown> = { d };
    cycle.self = cycle;
    const found = collectRefs([tuple(a), { x: new Set([b]) }, new Map([[c, 1]]), Buffer.from('x'), 3, cycle]);
    expect(found.map((r) => r.id)).toEqual(['a', 'b', 'c', 'd']);
    expect(collectRefs([a, b, c], 2)).toHaveLength(2);
    expect(collectRefs('text')).toEqual([]);
  });
});
