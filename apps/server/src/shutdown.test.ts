import { describe, expect, it } from 'vitest';
import { installSignalHandlers, type SignalProcess, shutdownServer } from './shutdown';
import { connect, deferred, refused, startTestServer } from './test-support/protocol-harness';

describe('shutdownServer', () => {
  it('in-flight calls finish, new ones get SERVER_DRAINING, app.shutdown gets the deadline, sockets close 1001', async () => {
    const t = await startTestServer();
    const client = await connect(t.server.url, await t.token());
    const inFlight = client.request('gate', {});
    await t.app.running(1);

    const done = shutdownServer(t.server, { deadlineMs: 5_000 });
    expect(t.server.draining).toBe(true);
    expect((await client.request('echo', { value: 1 })).error?.data.code).toBe('SERVER_DRAINING');
    expect((await refused(connect(t.server.url, await t.token()))).status).toBe(503);
    expect((await fetch(`${t.server.httpUrl}/readyz`)).status).toBe(503);

    t.app.releaseGate();
    expect(await inFlight).toEqual({ jsonrpc: '2.0', id: expect.any(Number), result: { released: true } });
    const report = await done;
    expect(report).toMatchObject({ drained: true, appShutdownSettled: true });
    expect(t.app.shutdowns).toEqual([5_000]);
    expect((await client.closed).code).toBe(1001);
    await expect(fetch(`${t.server.httpUrl}/healthz`)).rejects.toThrow();
  });

  it('past the deadline, aborts what still runs (answered SERVER_DRAINING) and closes anyway', async () => {
    const t = await startTestServer();
    const client = await connect(t.server.url, await t.token());
    const slow = client.request('slow', {});
    await t.app.running(1);
    const report = await shutdownServer(t.server, { deadlineMs: 20 });
    expect(report.drained).toBe(false);
    expect(t.app.slowSignals[0]?.aborted).toBe(true);
    expect((await slow).error).toEqual({
      code: -32000,
      message: 'the server is shutting down',
      data: { code: 'SERVER_DRAINING' },
    });
    expect(t.app.shutdowns).toEqual([20]);
    await client.closed;
  });

  it('never rejects when app.shutdown fails', async () => {
    const t = await startTestServer();
    t.app.shutdown = async () => {
      throw new Error('redis gone');
    };
    const report = await shutdownServer(t.server, { deadlineMs: 10 });
    expect(report).toMatchObject({ drained: true, appShutdownSettled: true });
  });
});

function fakeProcess() {
  const listeners = new Map<string, (signal: NodeJS.Signals) => void>();
  const exited = deferred<number>();
  const exits: number[] = [];
  const target: SignalProcess = {
    on: (signal, listener) => listeners.set(signal, listener),
    off: (signal) => listeners.delete(signal),
    exit: ((code?: number) => {
      exits.push(code ?? 0);
      exited.resolve(code ?? 0);
    }) as SignalProcess['exit'],
  };
  return { target, listeners, exits, exited: exited.promise };
}

describe('installSignalHandlers', () => {
  it('SIGTERM drains with config.drainMs, closes and exits 0', async () => {
    const t = await startTestServer();
    const fake = fakeProcess();
    installSignalHandlers(t.server, { process: fake.target });
    expect([...fake.listeners.keys()]).toEqual(['SIGTERM', 'SIGINT']);
    fake.listeners.get('SIGTERM')?.('SIGTERM');
    expect(await fake.exited).toBe(0);
    expect(t.app.shutdowns).toEqual([t.server.config.drainMs]);
    await expect(fetch(`${t.server.httpUrl}/healthz`)).rejects.toThrow();
  });

  it('a second signal exits at once with 128 + its number', async () => {
    const t = await startTestServer();
    const client = await connect(t.server.url, await t.token());
    void client.request('gate', {});
    await t.app.running(1);
    const fake = fakeProcess();
    const uninstall = installSignalHandlers(t.server, { process: fake.target, deadlineMs: 60_000 });
    fake.listeners.get('SIGINT')?.('SIGINT');
    fake.listeners.get('SIGINT')?.('SIGINT');
    expect(fake.exits).toEqual([130]);
    uninstall();
    expect(fake.listeners.size).toBe(0);
    t.app.releaseGate();
    expect(await fake.exited).toBe(130);
    await t.server.close();
  });
});
