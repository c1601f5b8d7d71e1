/**
 * Builds `dist/main.js` (the real CLI the pseudo-terminal and script tests drive) when it is missing or
 * older than a source file, and checks that the server's build exists for the remote tests.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const appDir = fileURLToPath(new URL('../..', import.meta.url));

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'test-support') newest = Math.max(newest, newestSource(path));
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

export default function setup(): void {
  const main = join(appDir, 'dist', 'main.js');
  if (!existsSync(main) || statSync(main).mtimeMs < newestSource(join(appDir, 'src'))) {
    const tsup = join(dirname(createRequire(import.meta.url).resolve('tsup')), 'cli-default.js');
    execFileSync(process.execPath, [tsup], {
      cwd: appDir,
      stdio: 'pipe',
    });
  }
}
