/**
 * The real CLI in a pseudo-terminal (tmux), embedded mode: values, refs, Python tracebacks, tab
 * completion, dot-commands, Ctrl-C, multi-line input, colours, history, the report on exit.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPython, hasTmux, replMain, waitFor } from './test-support/env';
import { Tmux, type TmuxPane } from './test-support/tmux';

const ready = hasPython() && hasTmux();
const PROMPT = /^py>\s*$/m;

describe.runIf(ready)('trestle-repl in a terminal (embedded)', () => {
  let tmux: Tmux;
  let home: string;
  let pane: TmuxPane;

  /** Types a line and waits for the prompt to come back after it; resolves with what it printed. */
  async function enter(text: string, timeoutMs = 10_000): Promise<string> {
    const before = pane.screen().split('\n').filter(Boolean).length;
    pane.line(text);
    const screen = await pane.waitFor((s) => {
      const lines = s.split('\n').filter(Boolean);
      return lines.length > before && /^py>\s*$/.test(lines[lines.length - 1] ?? '');
    }, timeoutMs);
    const lines = screen.split('\n').filter(Boolean);
    const start = lines.findLastIndex((line) => line === `py> ${text}` || line === `... ${text}`);
    return lines.slice(start + 1, -1).join('\n');
  }

  beforeAll(async () => {
    tmux = new Tmux();
    home = mkdtempSync(join(tmpdir(), 'trestle-repl-pty-'));
    pane = tmux.start([process.execPath, replMain], {
      env: { TRESTLE_REPL_HISTORY: join(home, 'history') },
      unset: ['NO_COLOR', 'FORCE_COLOR', 'CI'],
    });
    await pane.waitFor(PROMPT, 20_000);
  });

  afterAll(() => {
    tmux?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('shows the banner with the mode and the session', () => {
    expect(pane.screen()).toMatch(/Trestle REPL: embedded \(.+\), session s1/);
  });

  it('prints a value: await py.math.sqrt(16) is 4', async () => {
    expect(await enter('await py.math.sqrt(16)')).toBe('4');
  });

  it('prints a readable ref and calls methods on it', async () => {
    expect(await enter("p = await py.re.compile('\\\\d+')")).toMatch(
      /^<ref re\.Pattern #[0-9a-f]{4} session s1>$/,
    );
    expect(await enter("await (await p.match('123abc')).group()")).toBe("'123'");
    expect(await enter("const math = await py.import('math')")).toBe('');
    expect(await enter('await math.floor(2.7)')).toBe('2');
  });

  it('shows a Python error with its traceback, not a Node stack', async () => {
    const out = await enter("await py.json.loads('{')");
    expect(out).toContain('Traceback (most recent call last):');
    expect(out).toMatch(/File ".*json.*", line \d+, in /);
    expect(out).toMatch(/json\.decoder\.JSONDecodeError: Expecting property name/);
    expect(out).not.toMatch(/^\s+at /m);
    expect(out).not.toContain('Uncaught');
    expect(await enter('await py.math.sqrt(-1)')).toMatch(
      /^ValueError: math domain error {2}\(in math\.sqrt\)$/,
    );
  });

  it('completes Python attributes of a ref from dir()', async () => {
    pane.type('p.');
    // A first Tab finds no common prefix; the next one lists the names (pressed until they show).
    let last = 0;
    const screen = await waitFor(
      () => {
        const now = pane.screen();
        if (/\bsearch\b/.test(now)) return now;
        if (Date.now() - last > 250) {
          last = Date.now();
          pane.keys('Tab');
        }
        return undefined;
      },
      10_000,
      'the completion list',
    );
    const listing = screen.slice(screen.lastIndexOf('math domain error'));
    expect(listing).toMatch(/\bmatch\b/);
    expect(listing).toMatch(/\bsearch\b/);
    expect(listing).toMatch(/\bfullmatch\b/);
    expect(listing).not.toContain('__class__');
    pane.keys('C-u');
    pane.type('p.sea');
    pane.keys('Tab');
    await pane.waitFor(/py> p\.search$/m);
    pane.keys('C-u');
  });

  it('shows the budget with a bar', async () => {
    const out = await enter('.budget');
    expect(out).toMatch(/budget {2}tier free/);
    expect(out).toMatch(/\[#+-*\] [\d.]+ \/ 1000 remaining {2}\+10\/s/);
  });

  it('shows the session and the refs with their names', async () => {
    const session = await enter('.session');
    expect(session).toMatch(/session s1\n {2}id +s_[0-9a-f]+/);
    expect(session).toMatch(/tier +free/);
    expect(session).toMatch(/age +[\d.]+ (ms|s)/);
    const refs = await enter('.refs');
    expect(refs).toMatch(/#[0-9a-f]{4} +re\.Pattern +p +/);
  });

  it('cancels a running Python call with Ctrl-C and keeps the REPL', async () => {
    pane.line('await py.time.sleep(30)');
    await waitFor(() => pane.screen().includes('py> await py.time.sleep(30)'), 5_000, 'the call to start');
    const started = Date.now();
    pane.keys('C-c');
    const screen = await pane.waitFor(/py> await py\.time\.sleep\(30\)\ncancelled\npy>\s*$/m, 5_000);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(screen).not.toContain('To exit, press Ctrl+C again');
    expect(await enter('await py.math.sqrt(81)')).toBe('9');
  });

  it('takes multi-line input', async () => {
    pane.line('const twice = (x) => {');
    await pane.waitFor(/^\.\.\.\s*$/m);
    expect(await enter('return x * 2 }')).toBe('');
    expect(await enter('twice(21)')).toBe('42');
  });

  it('reports a failing call nobody awaited above the prompt, keeping the typed line', async () => {
    pane.line('py.time.sleep(0.3).then(() => py.math.sqrt(-2))');
    await pane.waitFor(/Promise \{ <pending> \}\npy>/);
    pane.type('await py.ma');
    const screen = await pane.waitFor(
      /Promise \{ <pending> \}\nValueError: math domain error {2}\(in math\.sqrt\)\npy> await py\.ma$/m,
    );
    expect(screen).not.toContain('kResourceStore');
    pane.keys('C-u');
  });

  it('shows the help', async () => {
    const out = await enter('.help');
    expect(out).toMatch(/^In scope\n {2}py +the bridge/);
    expect(out).toMatch(/\.release <name> +release the ref held by a name/);
  });

  it('colours output in a terminal', () => {
    // `.budget`'s bar and the traceback above were coloured.
    expect(pane.screen(true)).toMatch(new RegExp(`${String.fromCharCode(27)}\\[(3\\d|2)m`));
  });

  it('releases a ref by name and ends the session with a report', async () => {
    expect(await enter('.release p')).toMatch(/^released p <ref re\.Pattern #[0-9a-f]{4} session s1>$/);
    expect(await enter('p')).toMatch(/<ref re\.Pattern #[0-9a-f]{4} session s1 released>/);
    expect(await enter('.handles')).toBe('no open handles');
    const out = await enter('.end');
    expect(out).toMatch(/session s1 ended \(logout\) after/);
    expect(out).toMatch(/calls +\d+ calls/);
    expect(out).toMatch(/new session s2/);
    expect(await enter('await py.math.sqrt(4)')).toBe('2');
  });

  it('exits on a second Ctrl-C at an empty prompt, shows the report and keeps the history', async () => {
    pane.keys('C-c');
    await pane.waitFor(/To exit, press Ctrl\+C again/);
    pane.keys('C-c');
    const screen = await pane.waitFor(/session s2 ended \(logout\)/);
    expect(screen).toMatch(/calls +1 calls/);
    const status = await waitFor(() => pane.exitStatus(), 10_000, 'the REPL to exit');
    expect(status).toBe(0);
    const history = readFileSync(join(home, 'history'), 'utf8');
    expect(history).toContain('await py.math.sqrt(16)');
    expect(history).toContain('.budget');
  });
});

describe.runIf(ready)('trestle-repl in a terminal with NO_COLOR', () => {
  let tmux: Tmux;

  beforeAll(() => {
    tmux = new Tmux();
  });
  afterAll(() => tmux?.close());

  it('prints no colour codes and reads no history with --no-history', async () => {
    const pane = tmux.start([process.execPath, replMain, '--no-history'], { env: { NO_COLOR: '1' } });
    await pane.waitFor(PROMPT, 20_000);
    pane.line('.budget');
    pane.line('await py.math.sqrt(-1)');
    await pane.waitFor(/ValueError: math domain error/);
    pane.line('.exit');
    await pane.waitFor(/session s1 ended/);
    expect(pane.screen(true)).not.toContain('\u001b[');
  });
});
