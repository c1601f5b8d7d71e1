import { afterAll, describe, expect, it } from 'vitest';
import type { PyCodec } from './codec';
import { createPython } from './python';
import type { PythonOptions } from './types';

/** Options of {@link testPyCodec}. */
export interface TestPyCodecOptions<T> {
  /** Host values the codec claims; each must survive host → Python → host. */
  readonly samples: readonly T[];
  /** Equality of a sample and its round-tripped value. @default vitest's `toEqual` */
  readonly equals?: (a: T, b: T) => boolean;
  /** Adapter options (e.g. `env: { PYTHONPATH }` so the codec's Python half imports). */
  readonly python?: PythonOptions;
}

/**
 * The conformance suite of a codec plugin: registers vitest tests checking that the codec claims its
 * samples, that `decode(encode(x))` is `x` on the host, and that each sample survives a round trip
 * through a real Python worker (`copy.copy` in Python, so the Python half both decodes and encodes).
 * @example
 * ```ts
 * testPyCodec(decimalCodec, { samples: [new Dec('1.10')], python: { env: { PYTHONPATH: dir } } });
 * ```
 */
export function testPyCodec<T>(codec: PyCodec<T>, options: TestPyCodecOptions<T>): void {
  const same = (a: T, b: T) => {
    if (options.equals) expect(options.equals(a, b)).toBe(true);
    else expect(b).toEqual(a);
  };
  describe(`PyCodec "${codec.name}"`, () => {
    it('has a name made of word characters', () => {
      expect(codec.name).toMatch(/^[\w.-]+$/);
    });

    it('claims every sample and decodes what it encodes', () => {
      expect(options.samples.length).toBeGreaterThan(0);
      for (const sample of options.samples) {
        expect(codec.test?.(sample) ?? false).toBe(true);
        const encoded = codec.encode ? codec.encode(sample) : sample;
        same(sample, codec.decode(JSON.parse(JSON.stringify(encoded))));
      }
    });

    if (codec.python !== undefined) {
      const py = createPython({ ...options.python, codecs: [codec] });
      afterAll(() => py.close());
      it('round-trips every sample through Python', async () => {
        for (const sample of options.samples) {
          same(sample, await py.call<T>('copy', 'copy', [sample]));
        }
      });
    }
  });
}
