import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'handle-pool',
    // The heap test calls `global.gc()`; vitest 4 takes `execArgv` at the top level of `test`
    // (v3's `poolOptions.forks.execArgv` was removed) and passes it to each forked worker.
    pool: 'forks',
    execArgv: ['--expose-gc'],
    restoreMocks: true,
  },
});
