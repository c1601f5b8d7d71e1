#!/usr/bin/env node
// `npm start`: the reference server on embedded defaults (in-memory budget, a local Python worker per
// tenant, a random dev secret and a dev token printed). Works on a fresh machine with only Node >= 20,
// npm and python3: bootstraps pnpm, installs, builds the server and what it uses, then runs it.
// Arguments after `--` go to the server: `npm start -- --port 9000`.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ensurePnpm, env, root, run } from './bootstrap.mjs';

ensurePnpm({ quiet: true });
for (const args of [
  ['install', '--frozen-lockfile'],
  ['exec', 'turbo', 'run', 'build', '--filter', '@trestle/server...', '--filter', '@trestle/repl...'],
]) {
  const status = run('pnpm', args, { quiet: true });
  if (status !== 0) process.exit(status);
}

const server = spawn(process.execPath, [join(root, 'apps/server/dist/main.js'), ...process.argv.slice(2)], {
  cwd: root,
  env,
  stdio: 'inherit',
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.kill(signal));
server.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
