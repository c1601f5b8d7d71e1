/**
 * The remote backend against real server processes, through a TCP proxy: resume within the grace,
 * a new session (and the lost refs) after it, cancel with rpc.cancel, refused tokens, errors.
 */
import { PythonError } from '@trestle/python-adapter';
import type { Ref } from '@trestle/ref-registry';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, BackendEvent } from './backend';
import { CancelledError, RemoteError } from './errors';
import { remoteBackend } from './remote-backend';
import { hasPython, hasServer, waitFor } from './test-support/env';
import { runCli } from './test-support/run-cli';
import { mintToken, type ServerProcess, startServer } from './test-support/server-process';
import { TcpProxy } from './test-support/tcp-proxy';

const ready = hasPython() && hasServer();

describe.runIf(ready)('remoteBackend against the server', () => {
  let longGrace: ServerProcess;
  let shortGrace: ServerProcess;
  const proxies: TcpProxy[] = [];
  const backends: Backend[] = [];

  beforeAll(async () => {
    [longGrace, shortGrace] = await Promise.all([
      startServer(['--resume-grace-ms', '20000']),
      startServer(['--resume-grace-ms', '300']),
    ]);
  });

  afterEach(async () => {
    await Promise.all(backends.splice(0).map((backend) => backend.close()));
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
  });

  afterAll(async () => {
    await Promise.all([longGrace?.stop('SIGKILL'), shortGrace?.stop('SIGKILL')]);
  });

  async function connect(server: ServerProcess, token = mintToken('backend-tests', 'basic')) {
    const proxy = await TcpProxy.start(server.port);
    proxies.push(proxy);
    const backend = remoteBackend({
      url: `ws://127.0.0.1:${proxy.port}/rpc`,
      token,
      connectTimeoutMs: 10_000,
    });
    backends.push(backend);
    const events: BackendEvent[] = [];
    backend.on((event) => events.push(event));
    await backend.start();
    return { proxy, backend, events };
  }

  it('decodes values like the embedded backend and raises Python errors as PythonError', async () => {
    const { backend } = await connect(longGrace);
    expect(await backend.call('math', 'sqrt', [16], undefined)).toBe(4);
    expect(await backend.call('builtins', 'pow', [2, 64], undefined)).toBe(18446744073709551616n);
    const ref = (await backend.call('re', 'compile', ['\\d+'], undefined)) as Ref;
    expect(ref).toMatchObject({ typeName: 'Pattern', module: 're', sessionId: backend.sessionId });
    expect(await backend.attr(ref, 'pattern')).toBe('\\d+');
    expect(await backend.call('json', 'dumps', [{ b: 1, a: 2 }], { sort_keys: true })).toBe(
      '{"a": 2, "b": 1}',
    );
    expect(await backend.dir(ref)).toEqual(expect.arrayContaining(['match', 'search']));
    expect(await backend.dir('math')).toEqual(expect.arrayContaining(['sqrt', 'pi']));
    const error = await backend.call('json', 'loads', ['{'], undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PythonError);
    expect(error).toMatchObject({ type: 'JSONDecodeError', module: 'json.decoder', fn: 'json.loads' });
    expect((error as PythonError).traceback).toContain('Traceback (most recent call last):');
    const view = await backend.session();
    expect(view).toMatchObject({ id: backend.sessionId, tier: 'basic', tenant: 'backend-tests', refs: 1 });
    expect((await backend.budget()).capacity).toBeGreaterThan(0);
    expect((await backend.refs()).map((entry) => entry.ref.id)).toEqual([ref.id]);
    expect(await backend.release([ref])).toBe(1);
    expect(await backend.refs()).toEqual([]);
  });

  it('resumes the session with its refs after a cut shorter than the grace', async () => {
    const { backend, proxy, events } = await connect(longGrace);
    const session = backend.sessionId;
    const ref = (await backend.call('re', 'compile', ['\\d+'], undefined)) as Ref;
    proxy.cut(500);
    await waitFor(() => events.some((event) => event.type === 'resumed'), 15_000, 'the resume');
    expect(events.map((event) => event.type)).toEqual(['disconnected', 'resumed']);
    expect(backend.sessionId).toBe(session);
    expect(await backend.method(ref, 'sub', ['#', 'a1b22'], undefined)).toBe('a#b#');
  });

  it('opens a new session and names the lost refs when the grace passed', async () => {
    const { backend, proxy, events } = await connect(shortGrace);
    const first = backend.sessionId;
    const ref = (await backend.call('re', 'compile', ['x'], undefined)) as Ref;
    proxy.cut(1_500);
    const replaced = await waitFor(
      () => events.find((event) => event.type === 'session-replaced'),
      15_000,
      'a new session',
    );
    expect(replaced).toMatchObject({ from: first, to: backend.sessionId, lost: [ref] });
    expect((replaced as { why: string }).why).toMatch(/^SESSION_NOT_FOUND: /);
    expect(backend.sessionId).not.toBe(first);
    expect(await backend.call('math', 'sqrt', [9], undefined)).toBe(3);
    const gone = await backend.method(ref, 'match', ['x'], undefined).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(RemoteError);
    expect((gone as RemoteError).code).toBe('REF_NOT_FOUND');
  });

  it('cancels a call with its signal: rpc.cancel interrupts Python', async () => {
    const { backend } = await connect(longGrace);
    const controller = new AbortController();
    const sleeping = backend.call('time', 'sleep', [30], undefined, { signal: controller.signal });
    setImmediate(() => controller.abort());
    await expect(sleeping).rejects.toBeInstanceOf(CancelledError);
    const started = Date.now();
    // One worker runs synchronous calls in order: this answers only if the sleep was interrupted.
    expect(await backend.call('math', 'sqrt', [4], undefined)).toBe(2);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('ends the session with a report and opens a new one on request', async () => {
    const { backend } = await connect(longGrace);
    const first = backend.sessionId as string;
    await backend.call('math', 'sqrt', [4], undefined);
    const summary = await backend.end({ reopen: true });
    expect(summary).toMatchObject({ sessionId: first, reason: 'logout' });
    expect(summary?.calls.metered).toBe(1);
    expect(backend.sessionId).toMatch(/^s_/);
    expect(backend.sessionId).not.toBe(first);
  });

  it('fails to start with a token the server refuses', async () => {
    const proxy = await TcpProxy.start(longGrace.port);
    proxies.push(proxy);
    const backend = remoteBackend({ url: `ws://127.0.0.1:${proxy.port}/rpc`, token: 'not-a-jwt' });
    backends.push(backend);
    await expect(backend.start()).rejects.toMatchObject({ code: 'WS_UNAUTHORIZED' });
  });

  it('runs --eval against the server', async () => {
    const run = await runCli(['--url', longGrace.url, '--eval', 'await py.math.sqrt(16)'], {
      env: { TRESTLE_TOKEN: mintToken('cli-tests', 'free') },
    });
    expect(run).toEqual({ code: 0, stdout: '4\n', stderr: '' });
  });
});
