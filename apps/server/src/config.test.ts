import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_SERVER_TIERS, loadConfig, SETTINGS, serveUsage } from './config';

const SECRET = 'x'.repeat(32);
const dir = mkdtempSync(join(tmpdir(), 'trestle-config-'));

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig defaults', () => {
  it('fills every field of ServerConfig with its documented default', () => {
    const config = loadConfig({ argv: [], env: {} });
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8765,
      publicUrl: undefined,
      auth: { secret: undefined, jwksFile: undefined, issuer: undefined, audience: undefined },
      maxMessageBytes: 1024 * 1024,
      redisUrl: undefined,
      redisPrefix: 'trestle:',
      endOnBudgetExhausted: false,
      resumeGraceMs: 30_000,
      idleTimeoutMs: 900_000,
      drainMs: 10_000,
      python: {
        executable: undefined,
        workersPerTenant: 1,
        allowModules: null,
        rlimits: {},
        callTimeoutMs: 30_000,
        pythonPath: [],
      },
      tenantIdleMs: 60_000,
      maxSessions: 10_000,
      directoryLeaseMs: 15_000,
      adminSocket: undefined,
      logLevel: 'info',
    });
    expect(config.replicaId).toMatch(/^[A-Za-z0-9._:-]+-\d+$/);
    expect(config.tiers).toEqual({
      free: { capacity: 100, refillPerSec: 2, maxDebt: 100 },
      basic: { capacity: 1000, refillPerSec: 20, maxDebt: 1000 },
      premium: { capacity: 10_000, refillPerSec: 200, maxDebt: 10_000 },
      unlimited: null,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('treats an empty environment variable as unset', () => {
    expect(loadConfig({ env: { TRESTLE_PORT: '', REDIS_URL: '' } })).toMatchObject({
      port: 8765,
      redisUrl: undefined,
    });
  });
});

/** Every setting: a valid value, and what it becomes. */
const cases: {
  key: keyof typeof SETTINGS;
  value: string;
  expect: (config: ReturnType<typeof loadConfig>) => unknown;
  want: unknown;
}[] = [
  { key: 'host', value: '0.0.0.0', expect: (c) => c.host, want: '0.0.0.0' },
  { key: 'port', value: '0', expect: (c) => c.port, want: 0 },
  { key: 'publicUrl', value: 'wss://a.example/rpc', expect: (c) => c.publicUrl, want: 'wss://a.example/rpc' },
  { key: 'replicaId', value: 'replica-1', expect: (c) => c.replicaId, want: 'replica-1' },
  {
    key: 'jwtSecret',
    value: SECRET,
    expect: (c) => Buffer.from(c.auth.secret ?? []).toString(),
    want: SECRET,
  },
  { key: 'jwtIssuer', value: 'https://issuer', expect: (c) => c.auth.issuer, want: 'https://issuer' },
  { key: 'jwtAudience', value: 'trestle', expect: (c) => c.auth.audience, want: 'trestle' },
  { key: 'maxMessageBytes', value: '4096', expect: (c) => c.maxMessageBytes, want: 4096 },
  {
    key: 'redisUrl',
    value: 'redis://127.0.0.1:6379/0',
    expect: (c) => c.redisUrl,
    want: 'redis://127.0.0.1:6379/0',
  },
  { key: 'redisPrefix', value: '{t}:', expect: (c) => c.redisPrefix, want: '{t}:' },
  { key: 'resumeGraceMs', value: '5000', expect: (c) => c.resumeGraceMs, want: 5000 },
  { key: 'idleTimeoutMs', value: '60000', expect: (c) => c.idleTimeoutMs, want: 60_000 },
  { key: 'drainMs', value: '250', expect: (c) => c.drainMs, want: 250 },
  { key: 'python', value: '/usr/bin/python3', expect: (c) => c.python.executable, want: '/usr/bin/python3' },
  { key: 'workersPerTenant', value: '3', expect: (c) => c.python.workersPerTenant, want: 3 },
  {
    key: 'allowModules',
    value: 'json, math,os.path,json',
    expect: (c) => c.python.allowModules,
    want: ['json', 'math', 'os.path'],
  },
  {
    key: 'rlimitAsBytes',
    value: String(512 * 1024 * 1024),
    expect: (c) => c.python.rlimits,
    want: { addressSpaceBytes: 512 * 1024 * 1024 },
  },
  { key: 'rlimitCpuSeconds', value: '10', expect: (c) => c.python.rlimits, want: { cpuSeconds: 10 } },
  { key: 'callTimeoutMs', value: '1500', expect: (c) => c.python.callTimeoutMs, want: 1500 },
  {
    key: 'pythonPath',
    value: '/opt/a:/opt/b',
    expect: (c) => c.python.pythonPath,
    want: ['/opt/a', '/opt/b'],
  },
  { key: 'tenantIdleMs', value: '1000', expect: (c) => c.tenantIdleMs, want: 1000 },
  { key: 'maxSessions', value: '5', expect: (c) => c.maxSessions, want: 5 },
  { key: 'directoryLeaseMs', value: '3000', expect: (c) => c.directoryLeaseMs, want: 3000 },
  {
    key: 'adminSocket',
    value: '/tmp/trestle-admin.sock',
    expect: (c) => c.adminSocket,
    want: '/tmp/trestle-admin.sock',
  },
  { key: 'logLevel', value: 'debug', expect: (c) => c.logLevel, want: 'debug' },
];

describe('every setting from its flag and from its environment variable', () => {
  it.each(cases)('$key', ({ key, value, expect: pick, want }) => {
    const { flag, env } = SETTINGS[key];
    expect(pick(loadConfig({ argv: [`--${flag}`, value], env: {} }))).toEqual(want);
    expect(pick(loadConfig({ argv: [`--${flag}=${value}`], env: {} }))).toEqual(want);
    expect(pick(loadConfig({ argv: [], env: { [env]: value } }))).toEqual(want);
  });

  it('the boolean switch --end-on-budget and TRESTLE_END_ON_BUDGET', () => {
    expect(loadConfig({ argv: ['--end-on-budget'], env: {} }).endOnBudgetExhausted).toBe(true);
    for (const yes of ['1', 'true', 'YES', 'on']) {
      expect(loadConfig({ env: { TRESTLE_END_ON_BUDGET: yes } }).endOnBudgetExhausted).toBe(true);
    }
    for (const no of ['0', 'false', 'no', 'off']) {
      expect(loadConfig({ env: { TRESTLE_END_ON_BUDGET: no } }).endOnBudgetExhausted).toBe(false);
    }
  });

  it('a flag wins over the environment', () => {
    const config = loadConfig({
      argv: ['--port', '9000'],
      env: { TRESTLE_PORT: '9001', TRESTLE_HOST: '::1' },
    });
    expect(config.port).toBe(9000);
    expect(config.host).toBe('::1');
  });

  it('--allow-modules * allows every module', () => {
    expect(loadConfig({ argv: ['--allow-modules', '*'] }).python.allowModules).toBeNull();
  });

  it('resolves relative paths against cwd', () => {
    const config = loadConfig({
      argv: ['--admin-socket', 'admin.sock', '--pythonpath', 'lib'],
      env: {},
      cwd: '/srv/t',
    });
    expect(config.adminSocket).toBe('/srv/t/admin.sock');
    expect(config.python.pythonPath).toEqual(['/srv/t/lib']);
  });

  it('reads a tiers file (the file replaces the default table)', () => {
    const file = join(dir, 'tiers.json');
    writeFileSync(
      file,
      JSON.stringify({ team: { capacity: 50, refillPerSec: 1, onStoreError: 'failClosed' }, max: null }),
    );
    for (const config of [
      loadConfig({ argv: ['--tiers-file', file], env: {} }),
      loadConfig({ env: { TRESTLE_TIERS_FILE: file } }),
    ]) {
      expect(config.tiers).toEqual({
        team: { capacity: 50, refillPerSec: 1, onStoreError: 'failClosed' },
        max: null,
      });
    }
    expect(DEFAULT_SERVER_TIERS.free).not.toBeNull();
  });

  it('reads a JWKS file of public keys', () => {
    const file = join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b' }] }));
    expect(loadConfig({ argv: ['--jwks-file', file] }).auth.jwksFile).toBe(file);
    expect(loadConfig({ env: { TRESTLE_JWKS_FILE: file } }).auth.jwksFile).toBe(file);
  });
});

describe('errors name the setting as the user wrote it, and the value', () => {
  it.each([
    [['--port', 'abc'], {}, '--port: expected an integer from 0 to 65535, got "abc"'],
    [[], { TRESTLE_PORT: '70000' }, 'TRESTLE_PORT: expected an integer from 0 to 65535, got "70000"'],
    [['--host', 'bad host!'], {}, '--host: expected a host name or an IP address'],
    [
      [],
      { TRESTLE_PUBLIC_URL: 'http://x' },
      'TRESTLE_PUBLIC_URL: expected a ws:// or wss:// URL, got "http://x"',
    ],
    [['--redis-url', 'localhost:6379'], {}, '--redis-url: expected a redis:// or rediss:// URL'],
    [
      [],
      { TRESTLE_MAX_MESSAGE_BYTES: '10' },
      'TRESTLE_MAX_MESSAGE_BYTES: expected an integer from 256 to 67108864, got "10"',
    ],
    [[], { TRESTLE_END_ON_BUDGET: 'maybe' }, 'TRESTLE_END_ON_BUDGET: expected true or false, got "maybe"'],
    [
      ['--log-level', 'loud'],
      {},
      '--log-level: expected one of fatal, error, warn, info, debug, trace, silent',
    ],
    [['--allow-modules', 'json,os;rm'], {}, '--allow-modules: "os;rm" is not a module name'],
    [[], { TRESTLE_WORKERS_PER_TENANT: '0' }, 'TRESTLE_WORKERS_PER_TENANT: expected an integer from 1 to 64'],
    [['--drain-ms', '1.5'], {}, '--drain-ms: expected an integer'],
    [['--replica-id', 'a b'], {}, '--replica-id: expected 1 to 128 characters'],
    [['--admin-socket', `/tmp/${'s'.repeat(200)}`], {}, '--admin-socket: the socket path is'],
  ] as const)('%j %j', (argv, env, message) => {
    const error = configError(() => loadConfig({ argv, env }));
    expect(error.message).toContain(message);
    expect(error.setting).toBe(message.split(':')[0]);
  });

  it('refuses a JWT secret shorter than 32 bytes without echoing it', () => {
    for (const [argv, env, setting] of [
      [['--jwt-secret', 'short-secret'], {}, '--jwt-secret'],
      [[], { TRESTLE_JWT_SECRET: 'short-secret' }, 'TRESTLE_JWT_SECRET'],
    ] as const) {
      const error = configError(() => loadConfig({ argv, env }));
      expect(error.setting).toBe(setting);
      expect(error.message).toContain('at least 32 bytes');
      expect(error.message).not.toContain('short-secret');
      expect(error.value).toBeUndefined();
    }
  });

  it('refuses unknown flags, positionals and a flag without its value', () => {
    expect(configError(() => loadConfig({ argv: ['--prot', '1'] })).message).toBe(
      '--prot: unknown flag (see --help)',
    );
    expect(configError(() => loadConfig({ argv: ['extra'] })).message).toContain('unexpected argument');
    expect(configError(() => loadConfig({ argv: ['--port'] })).message).toContain('--port: needs a value');
    expect(configError(() => loadConfig({ argv: ['--end-on-budget=yes'] })).message).toContain(
      '--end-on-budget: is a switch',
    );
  });

  it('names the tiers file and the bad field', () => {
    const bad = join(dir, 'bad-tiers.json');
    writeFileSync(bad, JSON.stringify({ free: { capacity: -1, refillPerSec: 1 } }));
    expect(configError(() => loadConfig({ env: { TRESTLE_TIERS_FILE: bad } })).message).toContain(
      `TRESTLE_TIERS_FILE: ${bad}: free.capacity: capacity must be > 0`,
    );
    const notJson = join(dir, 'not-json.json');
    writeFileSync(notJson, '{');
    expect(configError(() => loadConfig({ argv: ['--tiers-file', notJson] })).message).toContain(
      `--tiers-file: ${notJson} is not JSON`,
    );
    expect(
      configError(() => loadConfig({ argv: ['--tiers-file', join(dir, 'missing.json')] })).message,
    ).toContain('--tiers-file: cannot read');
    const empty = join(dir, 'empty-tiers.json');
    writeFileSync(empty, '{}');
    expect(configError(() => loadConfig({ argv: ['--tiers-file', empty] })).message).toContain(
      'at least one tier',
    );
  });

  it('refuses a JWKS file that is missing, not a JWKS, or holds private keys', () => {
    expect(
      configError(() => loadConfig({ env: { TRESTLE_JWKS_FILE: join(dir, 'nope.json') } })).message,
    ).toContain('TRESTLE_JWKS_FILE: cannot read');
    const notJwks = join(dir, 'not-jwks.json');
    writeFileSync(notJwks, '{"keys": []}');
    expect(configError(() => loadConfig({ argv: ['--jwks-file', notJwks] })).message).toContain(
      'is not a JWKS',
    );
    const privateKey = join(dir, 'private-jwks.json');
    writeFileSync(
      privateKey,
      JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b', d: 'c' }] }),
    );
    expect(configError(() => loadConfig({ argv: ['--jwks-file', privateKey] })).message).toContain(
      'public keys only',
    );
  });
});

describe('serveUsage', () => {
  it('lists every flag with its variable', () => {
    const usage = serveUsage();
    for (const { flag, env } of Object.values(SETTINGS)) {
      expect(usage).toContain(`--${flag}`);
      expect(usage).toContain(env);
    }
  });
});
