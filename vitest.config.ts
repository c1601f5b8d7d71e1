import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*'],
    restoreMocks: true,
    retry: process.env.CI ? 2 : 0,
  },
});
