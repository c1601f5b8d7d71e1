import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'bridge',
    include: ['src/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The leak test calls `global.gc()`: vitest 4 passes `execArgv` to each forked worker.
    pool: 'forks',
    execArgv: ['--expose-gc'],
    restoreMocks: true,
  },
});
