import { jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { configWarnings, parseTtl, runCli, startupBanner } from './cli';
import { ConfigError, loadConfig } from './config';
import { createLogger } from './log';
import { connect, fakeApp, TEST_SECRET } from './test-support/protocol-harness';

function io(env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const app = fakeApp();
  return {
    out,
    err,
    app,
    io: {
      env,
      stdout: { write: (text: string) => out.push(text) },
      stderr: { write: (text: string) => err.push(text) },
      createApp: () => app,
      logger: createLogger('silent'),
      signals: false as const,
    },
  };
}

describe('trestle-server token', () => {
  it('prints only a token that verifies with the same secret', async () => {
    const run = io({ TRESTLE_JWT_SECRET: TEST_SECRET });
    const result = await runCli(['token', '--sub', 'acme', '--tier', 'basic', '--ttl', '2h'], run.io);
    expect(result).toEqual({ exitCode: 0 });
    expect(run.out).toHaveLength(1);
    const token = run.out[0]!.trim();
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const { payload } = await jwtVerify(token, new TextEncoder().encode(TEST_SECRET), {
      algorithms: ['HS256'],
    });
    expect(payload).toMatchObject({ sub: 'acme', tier: 'basic' });
    expect(payload.exp! - payload.iat!).toBe(7200);
  });

  it('--secret wins over the environment; --issuer and --audience are set', async () => {
    const other = 'another-secret-another-secret-another';
    const run = io({ TRESTLE_JWT_SECRET: TEST_SECRET });
    await runCli(
      ['token', '--sub', 'a', '--tier', 'free', '--secret', other, '--issuer', 'i', '--audience', 'x'],
      run.io,
    );
    const { payload } = await jwtVerify(run.out[0]!.trim(), new TextEncoder().encode(other), {
      issuer: 'i',
      audience: 'x',
    });
    expect(payload.exp! - payload.iat!).toBe(3600);
  });

  it.each([
    [['token', '--tier', 'free'], { TRESTLE_JWT_SECRET: TEST_SECRET }, '--sub: is required'],
    [
      ['token', '--sub', 'a b', '--tier', 'free'],
      { TRESTLE_JWT_SECRET: TEST_SECRET },
      '--sub: expected 1 to 128',
    ],
    [
      ['token', '--sub', 'a', '--tier', 'gold'],
      { TRESTLE_JWT_SECRET: TEST_SECRET },
      '--tier: is not a tier of the server',
    ],
    [['token', '--sub', 'a', '--tier', 'free'], {}, '--secret: no secret'],
    [
      ['token', '--sub', 'a', '--tier', 'free'],
      { TRESTLE_JWT_SECRET: 'short' },
      'TRESTLE_JWT_SECRET: must be at least 32 bytes',
    ],
    [
      ['token', '--sub', 'a', '--tier', 'free', '--ttl', '5y'],
      { TRESTLE_JWT_SECRET: TEST_SECRET },
      '--ttl: expected a lifetime',
    ],
    [
      ['token', '--sub', 'a', '--tier', 'free', '--bogus'],
      { TRESTLE_JWT_SECRET: TEST_SECRET },
      '--bogus: unknown flag',
    ],
  ] as const)('%j fails with exit 2: %s', async (argv, env, message) => {
    const run = io(env);
    expect(await runCli(argv, run.io)).toEqual({ exitCode: 2 });
    expect(run.out).toEqual([]);
    expect(run.err.join('')).toContain(message);
  });

  it('parseTtl', () => {
    expect([parseTtl('3600'), parseTtl('30s'), parseTtl('15m'), parseTtl('12h'), parseTtl('7d')]).toEqual([
      3600, 30, 900, 43_200, 604_800,
    ]);
    expect(() => parseTtl('0')).toThrow(ConfigError);
    expect(() => parseTtl('1w')).toThrow('--ttl');
  });
});

describe('trestle-server serve', () => {
  it('prints the URL, a dev token that connects, and how to attach the REPL', async () => {
    const run = io();
    const result = await runCli(['--port', '0', '--log-level', 'silent'], run.io);
    if (!('server' in result))
      throw new Error(`expected a server, got ${JSON.stringify(result)} ${run.err.join('')}`);
    try {
      const { server, devToken } = result;
      const text = run.err.join('');
      expect(text).toContain(`trestle-server listening on ${server.url}`);
      expect(text).toContain('dev token (tenant dev, tier free, valid 12 h');
      expect(text).toContain(`attach the REPL: npm run repl -- --url ${server.url} --token ${devToken}`);
      expect(run.out).toEqual([]);
      const client = await connect(server.url, devToken);
      expect((await client.request('whoami', {})).result).toMatchObject({ tenant: 'dev', tier: 'free' });
      await client.close();
    } finally {
      await result.server.close();
    }
  });

  it('prints no dev token when a secret is configured (explicit serve command)', async () => {
    const run = io({ TRESTLE_JWT_SECRET: TEST_SECRET });
    const result = await runCli(['serve', '--port', '0'], run.io);
    if (!('server' in result)) throw new Error('expected a server');
    try {
      expect(result.devToken).toBeUndefined();
      expect(run.err.join('')).toContain(
        `attach the REPL: npm run repl -- --url ${result.server.url} --token <token>`,
      );
      expect(run.err.join('')).not.toContain('dev token');
    } finally {
      await result.server.close();
    }
  });

  it('a configuration error prints the message and exits 2', async () => {
    const run = io({ TRESTLE_PORT: 'eighty' });
    expect(await runCli([], run.io)).toEqual({ exitCode: 2 });
    expect(run.err.join('')).toBe(
      'trestle-server: TRESTLE_PORT: expected an integer from 0 to 65535, got "eighty"\n',
    );
  });

  it('--help prints the usage; an unknown command exits 2', async () => {
    const help = io();
    expect(await runCli(['--help'], help.io)).toEqual({ exitCode: 0 });
    expect(help.out.join('')).toContain('usage: trestle-server [serve] [flags]');
    const tokenHelp = io();
    expect(await runCli(['token', '--help'], tokenHelp.io)).toEqual({ exitCode: 0 });
    expect(tokenHelp.out.join('')).toContain('--sub');
    const unknown = io();
    expect(await runCli(['serv'], unknown.io)).toEqual({ exitCode: 2 });
    expect(unknown.err.join('')).toContain('unknown command "serv"');
  });

  it('warns about a wide-open configuration on a public interface', () => {
    const config = loadConfig({ argv: ['--host', '0.0.0.0'], env: {} });
    expect(configWarnings(config)).toHaveLength(2);
    expect(configWarnings(loadConfig({ env: {} }))).toEqual([]);
    expect(
      startupBanner({
        url: 'ws://h/rpc',
        httpUrl: 'http://h',
        replicaId: 'r',
        warnings: configWarnings(config),
      }),
    ).toContain('warning: every Python module is allowed');
  });
});
