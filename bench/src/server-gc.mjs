// Preloaded into the benchmarked server (`node --expose-gc --import ./server-gc.mjs main.js`) by
// section [11]: SIGUSR2 runs a full garbage collection, so memory is read after a GC. Nothing else.
process.on('SIGUSR2', () => {
  globalThis.gc?.();
  globalThis.gc?.();
});
