/** Script mode of the real CLI: piped stdin and `--eval`, their output and exit codes. */
import { describe, expect, it } from 'vitest';
import { hasPython } from './test-support/env';
import { runCli } from './test-support/run-cli';

describe.runIf(hasPython())('trestle-repl scripts (piped stdin, --eval)', () => {
  it('runs piped lines in order, awaiting each, and prints the values', async () => {
    const script = [
      'await py.math.sqrt(16)',
      "const re = await py.import('re')",
      "p = await re.compile('\\\\d+')",
      "await (await p.findall('a1 b22 c333')).length",
      'await p.findall("a1 b22")',
      'function add(a, b) {',
      '  return a + b',
      '}',
      'add(20, 22)',
      'await py.json.dumps({ a: [1, 2] }, kw({ sort_keys: true }))',
      '.refs',
    ].join('\n');
    const run = await runCli([], { stdin: `${script}\n` });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines[1]).toMatch(/^<ref re\.Pattern #[0-9a-f]{4} session s1>$/);
    expect(lines.slice(0, 6)).toEqual(['4', lines[1], '3', "[ '1', '22' ]", '42', `'{"a": [1, 2]}'`]);
    expect(run.stdout).toMatch(/1 live ref in session s1\n.*\n {2}#[0-9a-f]{4} +re\.Pattern +p /);
  });

  it('stops at the first error with exit code 1 and the Python traceback on stderr', async () => {
    const run = await runCli([], {
      stdin: ['await py.math.sqrt(9)', "await py.json.loads('{')", 'await py.math.sqrt(4)'].join('\n'),
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('3\n');
    expect(run.stderr).toContain('Traceback (most recent call last):');
    expect(run.stderr).toMatch(/json\.decoder\.JSONDecodeError: Expecting property name/);
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });

  it('--eval prints the value and exits 0', async () => {
    const run = await runCli(['--eval', 'await py.math.sqrt(16)']);
    expect(run).toEqual({ code: 0, stdout: '4\n', stderr: '' });
  });

  it('--eval runs several lines and statements', async () => {
    const run = await runCli(['-e', "const m = await py.import('math')\nawait m.floor(await m.pi)"]);
    expect(run).toEqual({ code: 0, stdout: '3\n', stderr: '' });
  });

  it('--eval exits 1 on a Python error and on a JavaScript error', async () => {
    const python = await runCli(['--eval', 'await py.math.sqrt(-1)']);
    expect(python.code).toBe(1);
    expect(python.stdout).toBe('');
    expect(python.stderr).toBe('ValueError: math domain error  (in math.sqrt)\n');
    const js = await runCli(['--eval', 'throw new RangeError("nope")']);
    expect(js.code).toBe(1);
    expect(js.stderr).toBe('Uncaught RangeError: nope\n');
  });

  it('fails on input that ends inside a statement', async () => {
    const run = await runCli([], { stdin: 'function broken() {\n' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('SyntaxError: unexpected end of input');
  });

  it('--report prints the session report on stderr', async () => {
    const run = await runCli(['--report', '--eval', "await py.re.compile('x')"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^<ref re\.Pattern #[0-9a-f]{4} session s1>\n$/);
    expect(run.stderr).toMatch(
      /session s1 ended \(logout\) after .+\n {2}calls +1 calls, \d+ units charged\n {2}refs +1 released/,
    );
  });

  it('writes no colour codes when the output is not a terminal', async () => {
    const run = await runCli(['--eval', '[1, "a", await py.math.sqrt(-1)]'], { env: { FORCE_COLOR: '1' } });
    expect(`${run.stdout}${run.stderr}`).not.toContain('\u001b[');
  });
});

describe('trestle-repl usage', () => {
  it('exits 2 on bad flags, with the usage', async () => {
    const run = await runCli(['--url', 'ws://127.0.0.1:1/rpc']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--url needs --token/);
    expect(run.stderr).toContain('usage: trestle-repl');
  });

  it('exits 3 when the server cannot be reached', async () => {
    const run = await runCli([
      '--url',
      'ws://127.0.0.1:9/rpc',
      '--token',
      't',
      '--connect-timeout-ms',
      '1500',
      '-e',
      '1',
    ]);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/could not start \(remote ws:\/\/127\.0\.0\.1:9\/rpc\)/);
  });

  it('--help prints the usage and exits 0', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('--embedded');
    expect(run.stdout).toContain('exit codes: 0 ok, 1 an evaluation failed');
  });
});
