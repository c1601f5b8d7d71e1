/**
 * The server as a real process (issue 7): SIGTERM drains (the call in flight completes, new calls are
 * refused, every session ends with reason `shutdown` in the logs, exit 0, no Python left), and the
 * root start path with no configuration at all (`node apps/server/dist/main.js`).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  describeProcesses,
  type Message,
  mintToken,
  pythonAvailable,
  RpcClient,
  removeTempDirs,
  startServerProcess,
  stopAll,
  survivors,
  tempDir,
  until,
  type WireRef,
  writeHelperModule,
} from './harness';

const hasPython = pythonAvailable();
const DRAIN_MS = 8_000;

describe.runIf(hasPython)('server process lifecycle', () => {
  const clients: RpcClient[] = [];

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await stopAll();
    removeTempDirs();
  });

  it('drains on SIGTERM: the call in flight completes, new calls are refused, sessions end with shutdown, exit 0', async () => {
    const dir = tempDir();
    writeHelperModule(dir);
    const server = await startServerProcess({
      env: { TRESTLE_DRAIN_MS: String(DRAIN_MS), TRESTLE_PYTHONPATH: dir },
    });
    const connect = async (tenant: string): Promise<RpcClient> => {
      const client = await RpcClient.connect(server.url, await mintToken(tenant, 'free'));
      clients.push(client);
      return client;
    };
    const busy = await connect('drain-a');
    const idle = await connect('drain-b');
    const away = await connect('drain-b');
    const sessions = [
      await busy.call<{ sessionId: string }>('session.open', {}),
      await idle.call<{ sessionId: string }>('session.open', {}),
      await away.call<{ sessionId: string }>('session.open', {}),
    ].map((session) => session.sessionId);
    const { value: ref } = await idle.call<{ value: WireRef }>('py.call', {
      module: 'collections',
      fn: 'OrderedDict',
    });
    expect(ref).toMatchObject({ __type__: 'ref' });
    // One session is in its resume grace (no connection) when the signal comes.
    await away.close();
    const workers = server.noteWorkers();
    expect(workers).toHaveLength(2);

    const marker = path.join(dir, 'sleep.started');
    const inFlight = busy.request(
      'py.call',
      { module: 'e2e_helpers', fn: 'sleep_marked', args: [marker, 1] },
      { timeoutMs: DRAIN_MS + 5_000 },
    );
    await until(() => existsSync(marker), 'the 1 s call to start in Python', 10_000);

    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    await server.waitForLog((line) => line.msg === 'shutdown: draining', 'the drain to start', 5_000);

    // Draining: a new call is refused (or, once the drain is over, the socket is closed).
    const refused = await idle.request('py.call', { module: 'math', fn: 'sqrt', args: [4] }).then(
      (message: Message) => message.error?.data?.code,
      (error: Error) => error.message,
    );
    expect(refused === 'SERVER_DRAINING' || /closed/.test(String(refused)), String(refused)).toBe(true);
    const ready = await server.get('/readyz').catch(() => ({ status: 503, text: 'closed' }));
    expect(ready.status).toBe(503);
    // No new connection either.
    const late = await RpcClient.refusal(server.url, await mintToken('drain-c', 'free')).catch(
      (error: Error) => ({ status: 503, body: { error: `connection failed: ${error.message}` } }),
    );
    expect(late.status).toBe(503);

    // The call in flight completes.
    const done = await inFlight;
    expect(done.error).toBeUndefined();
    expect(done.result).toEqual({ value: 'slept' });

    const exit = await server.exited;
    const tookMs = Date.now() - signalledAt;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeLessThan(DRAIN_MS);

    // One session-ended report per session, reason shutdown.
    const reports = server.logs
      .filter((line) => line.msg === 'session ended')
      .map((line) => line.report as { sessionId: string; reason: string; refsReleased: number });
    expect(reports.map((report) => report.sessionId).sort()).toEqual([...sessions].sort());
    expect(reports.every((report) => report.reason === 'shutdown')).toBe(true);
    expect(reports.find((report) => report.sessionId === sessions[1])?.refsReleased).toBe(1);
    // The attached clients were told, then disconnected.
    expect(idle.of('session.ending')).toContainEqual(expect.objectContaining({ reason: 'shutdown' }));
    expect((await idle.closed).code).toBe(1001);
    expect((await busy.closed).code).toBe(1001);

    const left = await survivors(workers);
    expect(left, describeProcesses(left)).toEqual([]);
  });

  it('starts from the repo root with no env and no flags: URL, dev token and REPL line; the dev token works', async () => {
    const server = await startServerProcess({ bare: true });
    const banner = server.stderr();
    expect(server.url).toBe('ws://127.0.0.1:8765/rpc');
    const token = /dev token \(tenant dev, tier free[^\n]*\n\s+(\S+)/.exec(banner)?.[1];
    expect(token, banner).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const repl = banner.split('\n').find((line) => line.includes('attach the REPL'));
    expect(repl).toContain(`--url ${server.url}`);
    expect(repl).toContain(`--token ${token}`);

    const client = await RpcClient.connect(server.url, token);
    clients.push(client);
    expect(await client.call('session.open', {})).toMatchObject({ tenant: 'dev', tier: 'free' });
    expect(await client.call('py.call', { module: 'math', fn: 'sqrt', args: [144] })).toEqual({ value: 12 });
    // The embedded defaults: the memory budget with the default free tier.
    expect(await client.call('budget.get', {})).toMatchObject({
      tier: 'free',
      capacity: 100,
      refillPerSec: 2,
    });
    await client.call('session.end', {});
    await client.close();

    const workers = server.noteWorkers();
    expect(workers).toHaveLength(1);
    expect(await server.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const left = await survivors(workers);
    expect(left, describeProcesses(left)).toEqual([]);
  });
});
