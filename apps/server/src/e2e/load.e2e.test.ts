/**
 * The server as a real process (issue 7), under a bounded load on loopback: 1,000 WebSocket sessions
 * open at once across 10 tenants, 20 calls each, then nothing leaked: no session, no handle, no Python
 * object (the admin socket's STATUS reports each tenant's refs, Node side and in every worker).
 */
import path from 'node:path';
import { KernelClient } from '@trestle/kernel-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeProcesses,
  mintToken,
  pythonAvailable,
  RpcClient,
  removeTempDirs,
  type ServerProcess,
  startServerProcess,
  stopAll,
  survivors,
  tempDir,
  until,
  type WireRef,
} from './harness';

const hasPython = pythonAvailable();

const TENANTS = 10;
const SESSIONS = 1_000;
const CALLS = 20;
/** Connections opened at once while ramping up (all of them stay open). */
const WAVE = 100;

interface TenantStatus {
  readonly tenant: string;
  readonly sessions: number;
  readonly refSessions: number;
  readonly refs: number;
  readonly workers: readonly { pid: number; sessions: number; refs: number }[];
}
interface Status {
  readonly sessions: number;
  readonly tenants: number;
  readonly python: readonly TenantStatus[];
}

function metric(text: string, name: string): number | undefined {
  const match = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

describe.runIf(hasPython)('1,000 concurrent sessions across 10 tenants (server process)', () => {
  let server: ServerProcess;
  let admin: KernelClient;
  const clients: RpcClient[] = [];

  const status = async (): Promise<Status> => {
    const result = await admin.getStatus();
    if (!result.success) throw new Error(`STATUS failed: ${result.status} ${result.reason}`);
    return result.payload as unknown as Status;
  };

  beforeAll(async () => {
    const socket = path.join(tempDir(), 'admin.sock');
    server = await startServerProcess({
      env: { TRESTLE_ADMIN_SOCKET: socket, TRESTLE_LOG_LEVEL: 'warn' },
    });
    admin = new KernelClient({ enabled: true, endpoint: `unix://${socket}`, timeoutMs: 10_000 });
    await until(async () => (await admin.ping()).success, 'the admin socket', 10_000, 50);
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await admin?.close();
    await stopAll();
    removeTempDirs();
  });

  it('serves 1,000 open sessions x 20 calls without an error, then leaks no session, handle or Python object', async () => {
    const tokens = await Promise.all(
      Array.from({ length: TENANTS }, (_, i) => mintToken(`load-${i}`, 'unlimited')),
    );

    // Ramp up in waves; every session stays open.
    for (let start = 0; start < SESSIONS; start += WAVE) {
      const wave = await Promise.all(
        Array.from({ length: Math.min(WAVE, SESSIONS - start) }, async (_, j) => {
          const client = await RpcClient.connect(server.url, tokens[(start + j) % TENANTS]);
          clients.push(client);
          await client.call('session.open', {}, 30_000);
          return client;
        }),
      );
      expect(wave.every((client) => client.isOpen)).toBe(true);
    }
    expect(clients).toHaveLength(SESSIONS);

    // The peak: 1,000 sessions and connections open at once.
    const peak = await status();
    expect(peak.sessions).toBe(SESSIONS);
    expect(peak.tenants).toBe(TENANTS);
    expect(peak.python.map((tenant) => tenant.sessions)).toEqual(Array(TENANTS).fill(SESSIONS / TENANTS));
    const peakMetrics = (await server.get('/metrics')).text;
    expect(metric(peakMetrics, 'trestle_sessions')).toBe(SESSIONS);
    expect(metric(peakMetrics, 'trestle_connections')).toBe(SESSIONS);

    // 20 calls per session, all sessions at once; plus one Python object and one file handle each,
    // left for the session's end to clean up.
    const failures: string[] = [];
    await Promise.all(
      clients.map(async (client, index) => {
        for (let i = 0; i < CALLS; i++) {
          const reply = await client.request(
            'py.call',
            { module: 'math', fn: 'sqrt', args: [i * i] },
            { timeoutMs: 60_000 },
          );
          if (reply.error || (reply.result as { value: unknown }).value !== i) {
            failures.push(`session ${index} call ${i}: ${JSON.stringify(reply.error ?? reply.result)}`);
          }
        }
        const pattern = await client.request('py.call', { module: 're', fn: 'compile', args: [`s${index}`] });
        const file = await client.request('py.call', { module: 'io', fn: 'open', args: ['/dev/null'] });
        for (const reply of [pattern, file]) {
          if (reply.error || (reply.result as { value: WireRef }).value.__type__ !== 'ref') {
            failures.push(`session ${index}: ${JSON.stringify(reply.error ?? reply.result)}`);
          }
        }
      }),
    );
    expect(failures.slice(0, 5)).toEqual([]);
    const busy = await status();
    expect(busy.sessions).toBe(SESSIONS);
    expect(busy.python.reduce((sum, tenant) => sum + tenant.refs, 0)).toBe(2 * SESSIONS);

    // Every session ends: its handle closed, its refs released.
    const reports = await Promise.all(
      clients.map((client) =>
        client.call<{ reason: string; discharged: unknown[]; undischarged: unknown[]; refsReleased: number }>(
          'session.end',
          {},
          60_000,
        ),
      ),
    );
    expect(reports.filter((report) => report.reason !== 'logout')).toEqual([]);
    expect(
      reports.filter((report) => report.discharged.length !== 1 || report.undischarged.length > 0),
    ).toEqual([]);
    expect(reports.filter((report) => report.refsReleased !== 2)).toEqual([]);
    await Promise.all(clients.map((client) => client.close()));

    // Nothing left: no session, no ref in any tenant's registry, no object in any worker.
    const after = await until(
      async () => {
        const now = await status();
        const clean =
          now.sessions === 0 &&
          now.python.every(
            (tenant) =>
              tenant.sessions === 0 &&
              tenant.refSessions === 0 &&
              tenant.refs === 0 &&
              tenant.workers.every((worker) => worker.refs === 0 && worker.sessions === 0),
          );
        return clean ? now : undefined;
      },
      'STATUS to show no session, ref or Python object',
      10_000,
      100,
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(await status())}`);
    });
    expect(after.python).toHaveLength(TENANTS);
    expect(after.python.every((tenant) => tenant.workers.length === 1)).toBe(true);
    const text = await until(
      async () => {
        const body = (await server.get('/metrics')).text;
        return metric(body, 'trestle_connections') === 0 ? body : undefined;
      },
      'trestle_connections 0',
      10_000,
      100,
    );
    expect(metric(text, 'trestle_sessions')).toBe(0);
    expect(metric(text, 'trestle_handles_discharged_total{outcome="discharged"}')).toBe(SESSIONS);
    expect(metric(text, 'trestle_calls_total{method="py.call",outcome="ok"}')).toBe(SESSIONS * (CALLS + 2));
  }, 150_000);

  it('stops on SIGTERM with exit code 0 and leaves no Python worker behind', async () => {
    const workers = server.noteWorkers();
    expect(workers).toHaveLength(TENANTS);
    expect(await server.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const left = await survivors(workers);
    expect(left, describeProcesses(left)).toEqual([]);
  });
});
