#!/usr/bin/env node
// The one test command (`npm test`): works on a fresh machine with only Node >= 20, npm and python3.
// It bootstraps pnpm (into ./.tools when no pnpm 10 is on PATH), installs, builds, runs every
// vitest project and every package's Python unittest suite, and ends with `N passed, N failed`.
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePnpm, root, run } from './bootstrap.mjs';
import { summarize } from './summary.mjs';

ensurePnpm();
for (const [args, label] of [
  [['install', '--frozen-lockfile'], 'install'],
  [['run', 'build'], 'build'],
]) {
  const status = run('pnpm', args);
  if (status !== 0) {
    console.error(`${label} failed`);
    console.log('0 passed, 1 failed');
    process.exit(status);
  }
}

const reports = join(root, 'reports');
rmSync(reports, { recursive: true, force: true });
mkdirSync(reports, { recursive: true });

let failed = false;
const vitest = run('pnpm', [
  'exec',
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${join(reports, 'vitest.json')}`,
]);
if (vitest !== 0) failed = true;

// Python suites: every package that ships a `python/` folder with tests.
for (const dir of readdirSync(join(root, 'packages'))) {
  const python = join(root, 'packages', dir, 'python');
  if (!existsSync(python)) continue;
  const status = run('python3', [
    join(root, 'scripts', 'pyunit.py'),
    python,
    join(reports, `python-${dir}.json`),
  ]);
  if (status !== 0) failed = true;
}

const { passed, failed: failedCount } = summarize(reports);
if (passed === 0) failed = true;
console.log(`\n${passed} passed, ${failedCount} failed`);
process.exit(failed || failedCount > 0 ? 1 : 0);
