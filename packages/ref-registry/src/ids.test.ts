import { describe, expect, it } from 'vitest';
import { randomId } from './ids';

describe('randomId', () => {
  it('makes distinct 24-hex ids with the prefix, across pool refills', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5_000; i++) {
      const id = randomId('s_');
      expect(id).toMatch(/^s_[0-9a-f]{24}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(5_000);
  });
});
