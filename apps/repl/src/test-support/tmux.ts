/**
 * Drives the real CLI in a pseudo-terminal through tmux (no native addon): a private tmux server per
 * test file (`-S <socket>` in a temporary directory), panes that stay after their process exits (`remain-on-exit`) so the last
 * screen can still be read, and screen polling with a deadline.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './env';

const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** A private tmux server, on a socket in a temporary directory of its own (removed on close). */
export class Tmux {
  readonly #dir = mkdtempSync(join(tmpdir(), 'trestle-repl-tmux-'));
  readonly socket = join(this.#dir, 'socket');
  readonly #panes: TmuxPane[] = [];

  /** Runs `command` (argv) in a new 120x40 session, with `env` set and `unset` removed. */
  start(
    argv: readonly string[],
    options: { env?: Record<string, string>; unset?: string[]; cwd?: string } = {},
  ): TmuxPane {
    const name = `pane${this.#panes.length + 1}`;
    const envArgs = [
      ...(options.unset ?? []).flatMap((key) => ['-u', key]),
      ...Object.entries(options.env ?? {}).map(([key, value]) => `${key}=${value}`),
    ];
    // The shell prints the exit status: tmux's own pane status lags when it reaps the process late.
    const command = ['exec', 'env', ...envArgs, 'sh', '-c', '"$@"; echo "[exited $?]"', 'sh', ...argv]
      .map(quote)
      .join(' ');
    this.run([
      'new-session',
      '-d',
      '-s',
      name,
      '-x',
      '120',
      '-y',
      '40',
      ...(options.cwd !== undefined ? ['-c', options.cwd] : []),
      command,
      ';',
      'set-option',
      '-t',
      name,
      'remain-on-exit',
      'on',
    ]);
    const pane = new TmuxPane(this, name);
    this.#panes.push(pane);
    return pane;
  }

  run(args: readonly string[]): string {
    return execFileSync('tmux', ['-S', this.socket, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** Kills every session of this server (and so every process started in it). */
  close(): void {
    for (const pane of this.#panes) pane.kill();
    try {
      this.run(['kill-server']);
    } catch {
      // Already gone with its last session.
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** One session's pane. */
export class TmuxPane {
  readonly #tmux: Tmux;
  readonly name: string;

  constructor(tmux: Tmux, name: string) {
    this.#tmux = tmux;
    this.name = name;
  }

  /** Sends keys by tmux name (`Enter`, `Tab`, `C-c`). */
  keys(...keys: string[]): void {
    this.#tmux.run(['send-keys', '-t', this.name, ...keys]);
  }

  /** Types `text` literally. */
  type(text: string): void {
    this.#tmux.run(['send-keys', '-t', this.name, '-l', text]);
  }

  /** Types `text` and presses Enter. */
  line(text: string): void {
    this.type(text);
    this.keys('Enter');
  }

  /** The screen and its scrollback, wrapped lines joined. `escapes` keeps the colour codes. */
  screen(escapes = false): string {
    return this.#tmux.run([
      'capture-pane',
      '-p',
      '-J',
      '-S',
      '-2000',
      ...(escapes ? ['-e'] : []),
      '-t',
      this.name,
    ]);
  }

  /** Waits until the screen matches; resolves with the screen. */
  waitFor(pattern: RegExp | ((screen: string) => boolean), timeoutMs = 10_000): Promise<string> {
    return waitFor(
      () => {
        const screen = this.screen();
        const ok = typeof pattern === 'function' ? pattern(screen) : pattern.test(screen);
        return ok ? screen : undefined;
      },
      timeoutMs,
      () => `${String(pattern)} on the screen of ${this.name}:\n${this.screen()}`,
    );
  }

  /** The exit status of the pane's command, once it has exited (printed by the wrapping shell). */
  exitStatus(): number | undefined {
    const match = /^\[exited (\d+)\]$/m.exec(this.screen());
    return match === null ? undefined : Number(match[1]);
  }

  kill(): void {
    try {
      this.#tmux.run(['kill-session', '-t', this.name]);
    } catch {
      // Already gone.
    }
  }
}
