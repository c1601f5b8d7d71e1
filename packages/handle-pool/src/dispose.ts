/**
 * `Symbol.asyncDispose`, or the `Symbol.for('nodejs.asyncDispose')` stand-in the TC39 polyfills and
 * Node use where the runtime lacks it. The package never writes to the global `Symbol`.
 */
export const asyncDisposeSymbol: typeof Symbol.asyncDispose =
  (Symbol as { asyncDispose?: typeof Symbol.asyncDispose }).asyncDispose ??
  (Symbol.for('nodejs.asyncDispose') as typeof Symbol.asyncDispose);
