/**
 * The server as a real process (issue 7): a session survives a disconnect for the resume grace
 * (`TRESTLE_RESUME_GRACE_MS`) with its refs, and is gone after it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeProcesses,
  mintToken,
  pythonAvailable,
  RpcClient,
  type ServerProcess,
  startServerProcess,
  stopAll,
  survivors,
  type WireRef,
} from './harness';

const hasPython = pythonAvailable();
const GRACE_MS = 1_500;

describe.runIf(hasPython)('disconnect and resume (server process)', () => {
  let server: ServerProcess;
  const clients: RpcClient[] = [];
  const connect = async (tenant = 'resume-co'): Promise<RpcClient> => {
    const client = await RpcClient.connect(server.url, await mintToken(tenant, 'free'));
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    server = await startServerProcess({ env: { TRESTLE_RESUME_GRACE_MS: String(GRACE_MS) } });
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await stopAll();
  });

  it('keeps the refs across a reconnect within the grace; after it, SESSION_NOT_FOUND and session_released', async () => {
    const first = await connect();
    const session = await first.call<{ sessionId: string; resumeToken: string; graceMs: number }>(
      'session.open',
      {},
    );
    expect(session.graceMs).toBe(GRACE_MS);
    const { value: pattern } = await first.call<{ value: WireRef }>('py.call', {
      module: 're',
      fn: 'compile',
      args: ['[a-z]+'],
    });
    await first.close();

    // Within the grace, on a new connection.
    const second = await connect();
    const resumed = await second.call('session.resume', {
      sessionId: session.sessionId,
      resumeToken: session.resumeToken,
    });
    expect(resumed).toMatchObject({ sessionId: session.sessionId, tenant: 'resume-co' });
    expect(await second.call('py.method', { ref: pattern, name: 'findall', args: ['ab 12 cd'] })).toEqual({
      value: ['ab', 'cd'],
    });
    // A wrong resume token is refused (and does not disturb the session).
    const third = await connect();
    const forged = await third.error('session.resume', {
      sessionId: session.sessionId,
      resumeToken: 'x'.repeat(43),
    });
    expect(forged.code).toBe('SESSION_FORBIDDEN');
    await third.close();

    // Disconnect again and let the grace run out: the server logs the end (reason owner-lost).
    const detachedAt = Date.now();
    await second.close();
    const ended = await server.waitForLog(
      (line) =>
        line.msg === 'session ended' &&
        (line.report as { sessionId?: string } | undefined)?.sessionId === session.sessionId,
      `the end of ${session.sessionId}`,
      GRACE_MS + 10_000,
    );
    expect(Date.now() - detachedAt).toBeGreaterThanOrEqual(GRACE_MS - 50);
    expect(ended.report).toMatchObject({ reason: 'owner-lost', refsReleased: 1 });

    const late = await connect();
    const notFound = await late.error('session.resume', {
      sessionId: session.sessionId,
      resumeToken: session.resumeToken,
    });
    expect(notFound.code).toBe('SESSION_NOT_FOUND');
    await late.call('session.open', {});
    const gone = await late.error('py.method', { ref: pattern, name: 'findall', args: ['ab'] });
    expect(gone.code).toBe('REF_NOT_FOUND');
    expect(gone.data.reason).toBe('session_released');
    await late.call('session.end', {});
  });

  it('stops on SIGTERM with exit code 0 and leaves no Python worker behind', async () => {
    await Promise.all(clients.map((client) => client.close()));
    expect(server.noteWorkers().length).toBeGreaterThanOrEqual(1);
    expect(await server.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const left = await survivors(server.workers);
    expect(left, describeProcesses(left)).toEqual([]);
  });
});
