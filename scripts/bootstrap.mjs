// Shared by `npm test` and `npm start`: works on a fresh machine with only Node >= 20, npm and python3.
// Bootstraps pnpm (into ./.tools when no pnpm 10 is on PATH) and runs commands from the repo root.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const PNPM_VERSION = '10.34.8';
const tools = join(root, '.tools');
export const env = {
  ...process.env,
  PATH: [join(tools, 'node_modules', '.bin'), process.env.PATH].join(delimiter),
};

/** Runs `command` from the repo root, echoing it (to stderr when `quiet`); returns the exit status. */
export function run(command, args, options = {}) {
  const { quiet = false, ...spawnOptions } = options;
  (quiet ? console.error : console.log)(`\n$ ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, {
    cwd: root,
    env,
    stdio: quiet ? ['inherit', 2, 'inherit'] : 'inherit',
    ...spawnOptions,
  });
  if (result.error) console.error(result.error.message);
  return result.status ?? 1;
}

/** Makes sure `pnpm` 10 runs: the one on PATH, else pnpm@PNPM_VERSION installed into ./.tools. */
export function ensurePnpm(options = {}) {
  const probe = spawnSync('pnpm', ['--version'], { env, encoding: 'utf8' });
  if (probe.status === 0 && probe.stdout.trim().startsWith('10.')) return;
  console.error(`pnpm 10 not found: installing pnpm@${PNPM_VERSION} into .tools/`);
  mkdirSync(tools, { recursive: true });
  const status = run(
    'npm',
    ['install', '--prefix', tools, '--no-audit', '--no-fund', `pnpm@${PNPM_VERSION}`],
    options,
  );
  if (status !== 0) process.exit(status);
}
