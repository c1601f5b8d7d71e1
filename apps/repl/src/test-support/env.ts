/** What the CLI tests need: python3, tmux, the built bins; each checked once. */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The REPL's bin (built by global-setup). */
export const replMain = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
/** The reference server's bin (built by `turbo run build --filter @trestle/repl...`). */
export const serverMain = fileURLToPath(new URL('../../../server/dist/main.js', import.meta.url));

const checks = new Map<string, boolean>();

/**
 * Whether a tool the tests need is here. Under CI (`CI` set) a missing one fails loudly; on a
 * developer machine the suite is skipped with a printed reason.
 */
function available(name: string, probe: () => void): boolean {
  const known = checks.get(name);
  if (known !== undefined) return known;
  let ok = true;
  try {
    probe();
  } catch (error) {
    const reason = `${name} is not available: ${(error as Error).message.split('\n')[0]}`;
    if (process.env.CI) throw new Error(`${reason} (required under CI)`);
    console.warn(`[repl tests] skipped: ${reason}`);
    ok = false;
  }
  checks.set(name, ok);
  return ok;
}

/** python3 >= 3.9. */
export const hasPython = (): boolean =>
  available('python3 >= 3.9', () =>
    execFileSync(
      process.env.TRESTLE_PYTHON ?? 'python3',
      ['-c', 'import sys; assert sys.version_info >= (3, 9)'],
      {
        stdio: 'pipe',
      },
    ),
  );

/** tmux (the pseudo-terminal driver). */
export const hasTmux = (): boolean =>
  available('tmux', () => execFileSync('tmux', ['-V'], { stdio: 'pipe' }));

/** The server's build. */
export const hasServer = (): boolean =>
  available('the built server (apps/server/dist/main.js)', () => {
    if (!existsSync(serverMain)) throw new Error(`${serverMain} is missing: run the build first`);
  });

/** Polls `check` every 50 ms until it returns a value (not `undefined`/`false`) or `timeoutMs` passes. */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  what: string | (() => string),
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
