import { describe, expect, it } from 'vitest';
import { parseCli, UsageError } from './cli';

describe('parseCli', () => {
  it('defaults to embedded mode with the history in the home directory', () => {
    expect(parseCli([], { HOME: '/home/u' })).toEqual({
      mode: 'embedded',
      url: undefined,
      token: undefined,
      tier: undefined,
      python: undefined,
      eval: undefined,
      history: '/home/u/.trestle_repl_history',
      color: true,
      report: false,
      connectTimeoutMs: 15_000,
    });
  });

  it('reads remote mode, the token from TRESTLE_TOKEN, and script flags', () => {
    const options = parseCli(['--url', 'ws://h:1/rpc', '-e', '1', '--no-color', '--report'], {
      TRESTLE_TOKEN: 'jwt',
      TRESTLE_REPL_HISTORY: '/tmp/h',
    });
    expect(options).toMatchObject({
      mode: 'remote',
      url: 'ws://h:1/rpc',
      token: 'jwt',
      eval: '1',
      color: false,
      report: true,
      history: '/tmp/h',
    });
    expect(parseCli(['--url', 'ws://h:1/rpc', '--token', 'flag'], { TRESTLE_TOKEN: 'env' })).toMatchObject({
      token: 'flag',
    });
    expect(parseCli(['--no-history', '--tier', 'basic'], {})).toMatchObject({
      history: undefined,
      tier: 'basic',
    });
    expect(parseCli(['-h'], {})).toBe('help');
  });

  it('refuses bad combinations with a UsageError naming the flag', () => {
    const bad: [string[], RegExp][] = [
      [['--embedded', '--url', 'ws://h/rpc'], /--embedded and --url exclude each other/],
      [['--url', 'ws://h/rpc'], /--url needs --token/],
      [['--url', 'http://h/rpc', '--token', 't'], /must be a ws:\/\/ or wss:\/\/ URL/],
      [['--url', 'ws://h/rpc', '--token', 't', '--tier', 'basic'], /--tier applies to embedded mode only/],
      [['--connect-timeout-ms', 'soon'], /--connect-timeout-ms must be a positive integer/],
      [['--frobnicate'], /frobnicate/],
      [['extra'], /extra/],
    ];
    for (const [argv, message] of bad) {
      expect(() => parseCli(argv, {}), argv.join(' ')).toThrow(UsageError);
      expect(() => parseCli(argv, {}), argv.join(' ')).toThrow(message);
    }
  });
});
