import { describe, expect, it } from 'vitest';
import { kernelConfigDefaults, kernelConfigFromEnv, resolveKernelConfig } from './config';
import { KernelConfigError, KernelErrorCode } from './errors';
import { nullTransport } from './null-transport';

const configError = (run: () => unknown): KernelConfigError => {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(KernelConfigError);
    return error as KernelConfigError;
  }
  throw new Error('no error');
};

describe('kernelConfigFromEnv', () => {
  it('is disabled with the seed defaults when nothing is set', () => {
    const config = kernelConfigFromEnv({ env: {} });
    expect(config).toMatchObject({
      enabled: false,
      required: false,
      endpoint: undefined,
      timeoutMs: 5_000,
      maxInflight: 3,
      retryAttempts: 2,
      retryDelayMs: 100,
      maxRetryDelayMs: 3_000,
      mode: 'oneshot',
      codec: 'length-json',
      maxResponseBytes: 65_536,
      maxRequestBytes: 65_536,
      idempotentMethods: ['PING', 'STATUS', 'VERSION'],
    });
  });

  it.each(['KERNEL_', 'HEIDI_KERNEL_'])('reads every variable with the prefix %s', (prefix) => {
    const env = {
      [`${prefix}ENABLED`]: 'true',
      [`${prefix}REQUIRED`]: 'YES',
      [`${prefix}ENDPOINT`]: 'unix:///tmp/heidi-kernel.sock',
      [`${prefix}TIMEOUT_MS`]: '1500',
      [`${prefix}MAX_INFLIGHT`]: '8',
      [`${prefix}RETRY_ATTEMPTS`]: '0',
      [`${prefix}RETRY_DELAY_MS`]: '250',
      [`${prefix}MODE`]: 'Persistent',
      [`${prefix}CODEC`]: 'lines',
      [`${prefix}MAX_RESPONSE_BYTES`]: '1024',
      [`${prefix}MAX_REQUEST_BYTES`]: '67108864',
    };
    expect(kernelConfigFromEnv({ env, prefix })).toMatchObject({
      enabled: true,
      required: true,
      endpoint: 'unix:///tmp/heidi-kernel.sock',
      timeoutMs: 1_500,
      maxInflight: 8,
      retryAttempts: 0,
      retryDelayMs: 250,
      maxRetryDelayMs: 7_500,
      mode: 'persistent',
      codec: 'lines',
      maxResponseBytes: 1_024,
      maxRequestBytes: 67_108_864,
    });
  });

  it('ignores variables of another prefix', () => {
    const env = { HEIDI_KERNEL_ENABLED: 'true', HEIDI_KERNEL_ENDPOINT: 'unix:///tmp/k.sock' };
    expect(kernelConfigFromEnv({ env }).enabled).toBe(false);
    expect(kernelConfigFromEnv({ env, prefix: 'HEIDI_KERNEL_' }).enabled).toBe(true);
  });

  it.each([
    ['1', true],
    ['0', false],
    ['yes', true],
    ['No', false],
    ['TRUE', true],
    [' false ', false],
  ])('reads the boolean %j', (text, value) => {
    expect(kernelConfigFromEnv({ env: { KERNEL_REQUIRED: text } }).required).toBe(value);
  });

  it.each(['maybe', 'on', 'y', '2'])('refuses the boolean %j, naming the variable', (text) => {
    const error = configError(() =>
      kernelConfigFromEnv({ env: { HEIDI_KERNEL_ENABLED: text }, prefix: 'HEIDI_KERNEL_' }),
    );
    expect(error.variable).toBe('HEIDI_KERNEL_ENABLED');
    expect(error.code).toBe(KernelErrorCode.ConfigInvalid);
    expect(error.message).toContain(JSON.stringify(text));
  });

  it.each([
    ['TIMEOUT_MS', '50', 'between 100 and 30000'],
    ['TIMEOUT_MS', '30001', 'between 100 and 30000'],
    ['TIMEOUT_MS', '1500.5', 'between 100 and 30000'],
    ['TIMEOUT_MS', 'abc', 'between 100 and 30000'],
    ['TIMEOUT_MS', '5e3', 'between 100 and 30000'],
    ['MAX_INFLIGHT', '0', 'between 1 and 256'],
    ['MAX_INFLIGHT', '257', 'between 1 and 256'],
    ['MAX_INFLIGHT', '2.5', 'between 1 and 256'],
    ['RETRY_ATTEMPTS', '6', 'between 0 and 5'],
    ['RETRY_ATTEMPTS', '-1', 'between 0 and 5'],
    ['RETRY_DELAY_MS', '9', 'between 10 and 1000'],
    ['RETRY_DELAY_MS', '1001', 'between 10 and 1000'],
    ['MAX_RESPONSE_BYTES', '1023', 'between 1024 and 67108864'],
    ['MAX_REQUEST_BYTES', '67108865', 'between 1024 and 67108864'],
    ['MODE', 'multiplexed', '"oneshot" or "persistent"'],
    ['CODEC', 'msgpack', '"length-json" or "lines"'],
  ])('refuses %s=%j, naming the variable and the value', (suffix, text, expected) => {
    const error = configError(() =>
      kernelConfigFromEnv({ env: { [`HEIDI_KERNEL_${suffix}`]: text }, prefix: 'HEIDI_KERNEL_' }),
    );
    expect(error.variable).toBe(`HEIDI_KERNEL_${suffix}`);
    expect(error.message).toContain(expected);
    expect(error.message).toContain(`(got ${JSON.stringify(text)})`);
  });

  it('phrases a bound error as documented', () => {
    const error = configError(() =>
      kernelConfigFromEnv({ env: { HEIDI_KERNEL_TIMEOUT_MS: '50' }, prefix: 'HEIDI_KERNEL_' }),
    );
    expect(error.message).toBe(
      '[kernel-client] HEIDI_KERNEL_TIMEOUT_MS: must be an integer between 100 and 30000 (got "50")',
    );
  });

  it('accepts the bounds themselves', () => {
    const low = kernelConfigFromEnv({ env: { KERNEL_TIMEOUT_MS: '100', KERNEL_MAX_INFLIGHT: '1' } });
    const high = kernelConfigFromEnv({ env: { KERNEL_TIMEOUT_MS: '30000', KERNEL_MAX_INFLIGHT: '256' } });
    expect([low.timeoutMs, low.maxInflight, high.timeoutMs, high.maxInflight]).toEqual([100, 1, 30_000, 256]);
  });

  it('treats blank variables as unset', () => {
    expect(kernelConfigFromEnv({ env: { KERNEL_TIMEOUT_MS: '', KERNEL_ENDPOINT: '  ' } })).toMatchObject({
      timeoutMs: 5_000,
      endpoint: undefined,
    });
  });

  it('requires an endpoint when enabled, naming the variable', () => {
    const error = configError(() =>
      kernelConfigFromEnv({ env: { HEIDI_KERNEL_ENABLED: '1' }, prefix: 'HEIDI_KERNEL_' }),
    );
    expect(error.variable).toBe('HEIDI_KERNEL_ENDPOINT');
  });

  it.each(['unix://relative.sock', 'http://localhost.evil.example', 'http://localhost@evil.example'])(
    'refuses the endpoint %s, naming the variable',
    (endpoint) => {
      const error = configError(() =>
        kernelConfigFromEnv({ env: { KERNEL_ENABLED: 'true', KERNEL_ENDPOINT: endpoint } }),
      );
      expect(error.variable).toBe('KERNEL_ENDPOINT');
      expect(error.code).toBe(KernelErrorCode.EndpointInvalid);
    },
  );

  it('lets overrides win, and names the option for an override', () => {
    const env = { KERNEL_ENABLED: 'true', KERNEL_TIMEOUT_MS: '50' };
    const config = kernelConfigFromEnv({ env, overrides: { timeoutMs: 1_000, transport: nullTransport() } });
    expect(config.timeoutMs).toBe(1_000);
    expect(configError(() => kernelConfigFromEnv({ env: {}, overrides: { timeoutMs: 50 } })).variable).toBe(
      'timeoutMs',
    );
  });
});

describe('resolveKernelConfig (programmatic options)', () => {
  it('applies the defaults', () => {
    expect(resolveKernelConfig()).toMatchObject({ ...kernelConfigDefaults, maxRetryDelayMs: 3_000 });
  });

  it.each([
    [{ timeoutMs: 99 }, 'timeoutMs', 'between 100 and 30000 (got 99)'],
    [{ timeoutMs: 1000.5 }, 'timeoutMs', '(got 1000.5)'],
    [{ timeoutMs: '1000' }, 'timeoutMs', '(got "1000")'],
    [{ maxInflight: 0 }, 'maxInflight', 'between 1 and 256'],
    [{ maxInflight: 257 }, 'maxInflight', 'between 1 and 256'],
    [{ maxInflight: 1.5 }, 'maxInflight', 'between 1 and 256'],
    [{ retryAttempts: 6 }, 'retryAttempts', 'between 0 and 5'],
    [{ enabled: 'yes' }, 'enabled', 'boolean'],
    [{ mode: 'both' }, 'mode', 'oneshot'],
    [{ codec: 'xml' }, 'codec', 'length-json'],
    [{ transport: {} }, 'transport', 'KernelTransport'],
    [{ idempotentMethods: ['no spaces'] }, 'idempotentMethods', 'method names'],
    [{ retryDelayMs: 500, maxRetryDelayMs: 100 }, 'maxRetryDelayMs', 'at least retryDelayMs'],
    [{ timeout: 100 }, 'timeout', 'not an option'],
    [{ enabled: true }, 'endpoint', 'required'],
    [{ endpoint: 'unix:relative' }, 'endpoint', 'unix:///absolute'],
  ])('refuses %j, naming %s', (options, variable, text) => {
    const error = configError(() => resolveKernelConfig(options as never));
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(text);
  });

  it('takes a transport instead of an endpoint', () => {
    const transport = nullTransport();
    expect(resolveKernelConfig({ enabled: true, transport }).transport).toBe(transport);
  });

  it('accepts [::1] and caps the backoff at 30 s', () => {
    const config = resolveKernelConfig({ enabled: true, endpoint: 'http://[::1]:8080', retryDelayMs: 1_000 });
    expect(config.endpoint).toBe('http://[::1]:8080');
    expect(config.maxRetryDelayMs).toBe(30_000);
  });
});
