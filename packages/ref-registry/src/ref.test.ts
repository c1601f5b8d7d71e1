import { describe, expect, it } from 'vitest';
import { InvalidRefError, RefNotFoundError, RefRegistryError, SessionMismatchError } from './errors';
import { createRef, decodeRef, encodeRef, isRef, isRefWire, REF_SCHEMA_VERSION } from './ref';

const wire = {
  __type__: 'ref',
  __schema__: 1,
  id: 'abc123',
  session_id: 'default',
  type_name: 'DataFrame',
  python_module: 'pandas',
  library: 'pandas',
} as const;

describe('Domain 5: decoder and encoder', () => {
  it('decoder accepts the ref structure', () => {
    const ref = decodeRef(wire);
    expect(isRef(ref)).toBe(true);
    expect(ref).toMatchObject({
      id: 'abc123',
      sessionId: 'default',
      typeName: 'DataFrame',
      module: 'pandas',
    });
    expect(ref.library).toBe('pandas');
    expect(ref.schema).toBe(REF_SCHEMA_VERSION);
  });

  it('encoder does not stringify refs', () => {
    const encoded = encodeRef(
      createRef({ id: 'test123', sessionId: 'default', typeName: 'Pattern', module: 're' }),
    );
    expect(typeof encoded).toBe('object');
    expect(encoded).toEqual({
      __type__: 'ref',
      __schema__: 1,
      id: 'test123',
      session_id: 'default',
      type_name: 'Pattern',
      python_module: 're',
    });
  });
});

describe('refs', () => {
  it('are frozen, branded and round-trip through the wire form', () => {
    const ref = createRef({ id: 'r1', sessionId: 's1', typeName: 'Pattern', module: 're', poolName: 'main' });
    expect(Object.isFrozen(ref)).toBe(true);
    expect(isRef(ref)).toBe(true);
    expect(isRef({ ...ref })).toBe(false);
    expect(isRefWire(encodeRef(ref))).toBe(true);
    expect(decodeRef(JSON.parse(JSON.stringify(encodeRef(ref))))).toEqual(ref);
  });

  it('rejects malformed payloads with the reason and the ref named', () => {
    const cases: [unknown, string][] = [
      ['a string', 'not_an_object'],
      [[1], 'not_an_object'],
      [{ id: 'x', session_id: 's' }, 'missing_type'],
      [{ ...wire, __type__: 'tuple' }, 'not_a_ref'],
      [{ ...wire, __schema__: 2 }, 'unknown_schema'],
      [{ ...wire, id: undefined }, 'missing_id'],
      [{ ...wire, id: '' }, 'missing_id'],
      [{ ...wire, session_id: undefined }, 'missing_session'],
      [{ ...wire, type_name: undefined }, 'missing_type_name'],
      [{ ...wire, python_module: 42 }, 'invalid_field'],
      [{ ...wire, pool_name: 7 }, 'invalid_field'],
    ];
    for (const [payload, reason] of cases) {
      const error = (() => {
        try {
          decodeRef(payload);
        } catch (caught) {
          return caught;
        }
        return undefined;
      })();
      expect(error, reason).toBeInstanceOf(InvalidRefError);
      expect((error as InvalidRefError).reason, JSON.stringify(payload)).toBe(reason);
      expect((error as InvalidRefError).code).toBe('REF_INVALID');
    }
    const named = (() => {
      try {
        decodeRef({ ...wire, __schema__: 9 });
      } catch (caught) {
        return caught as InvalidRefError;
      }
    })();
    expect(named?.message).toContain("'abc123'");
    expect(named?.message).toContain("'default'");
  });

  it('validates fields at creation', () => {
    expect(() => createRef({ id: '', sessionId: 's', typeName: 'T', module: 'm' })).toThrow(
      expect.objectContaining({ reason: 'missing_id' }),
    );
    expect(() => createRef({ id: 'i', sessionId: '', typeName: 'T', module: 'm' })).toThrow(
      expect.objectContaining({ reason: 'missing_session' }),
    );
  });
});

describe('errors', () => {
  it('carry stable codes, the fields of the seed and messages that name ref and session', () => {
    const gone = new RefNotFoundError('abc123', 'my_session', 'ttl');
    expect(gone).toMatchObject({
      code: 'REF_NOT_FOUND',
      refId: 'abc123',
      sessionId: 'my_session',
      reason: 'ttl',
    });
    expect(gone.message).toContain("reference 'abc123' not found in session 'my_session'");
    const mismatch = new SessionMismatchError('abc123', 'session_a', 'session_b');
    expect(mismatch).toMatchObject({
      code: 'REF_SESSION_MISMATCH',
      expectedSession: 'session_a',
      actualSession: 'session_b',
    });
    expect(mismatch.message).toContain("belongs to session 'session_a'");
    expect(RefRegistryError.isInstance(mismatch)).toBe(true);
    expect(RefRegistryError.isInstance(new Error('x'))).toBe(false);
    expect(mismatch.name).toBe('SessionMismatchError');
  });
});
