const marker = Symbol.for('trestle.kernel-client.method-error');

/**
 * Thrown by a method handler of `createKernelServer` to answer with an error reply
 * `{ error: true, code, message }`. Any other error thrown becomes code `INTERNAL` (its message only,
 * never its stack).
 *
 * @example
 * ```ts
 * createKernelServer({
 *   methods: {
 *     APPLY_POLICY: (params) => {
 *       if (typeof params.mode !== 'string') throw new KernelMethodError('BAD_POLICY', 'mode must be a string');
 *       return { applied: true };
 *     },
 *   },
 * });
 * ```
 */
export class KernelMethodError extends Error {
  readonly [marker] = true;
  override readonly name: string = 'KernelMethodError';
  /** The `code` of the error reply (the daemon's own vocabulary: `BAD_POLICY`, `NOT_FOUND`...). */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
  /** Works across duplicate installs, where `instanceof` does not. */
  static isInstance(value: unknown): value is KernelMethodError {
    return typeof value === 'object' && value !== null && marker in value;
  }
}
