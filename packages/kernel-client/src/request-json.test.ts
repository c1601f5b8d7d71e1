import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { requestJson } from './request-json';

const jsonObject = fc.dictionary(fc.string(), fc.jsonValue()) as fc.Arbitrary<Record<string, unknown>>;

describe('requestJson', () => {
  it('writes what JSON.stringify writes for {method, params, timestamp[, id]}, with or without paramsJson', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        jsonObject,
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.option(fc.nat({ max: 0xffff_ffff }), { nil: undefined }),
        (method, params, timestamp, id) => {
          const expected =
            id === undefined
              ? JSON.stringify({ method, params, timestamp })
              : JSON.stringify({ method, params, timestamp, id });
          expect(requestJson({ method, params, timestamp, ...(id === undefined ? {} : { id }) })).toBe(
            expected,
          );
          const withJson = {
            method,
            params,
            timestamp,
            paramsJson: JSON.stringify(params),
            ...(id === undefined ? {} : { id }),
          };
          expect(requestJson(withJson)).toBe(expected);
          expect(requestJson(withJson, false)).toBe(JSON.stringify({ method, params, timestamp }));
        },
      ),
    );
  });
});
