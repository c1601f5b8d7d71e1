/**
 * The server as a real process (issue 7): authentication at the WebSocket upgrade (the HTTP status and
 * the JSON error code of each refusal) and tier limits from a tiers file (`TRESTLE_TIERS_FILE`), with
 * the retry time the server reports.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeProcesses,
  mintToken,
  pythonAvailable,
  RpcCallError,
  RpcClient,
  removeTempDirs,
  type ServerProcess,
  startServerProcess,
  stopAll,
  survivors,
  tempDir,
} from './harness';

const hasPython = pythonAvailable();

/**
 * `tiny`: 3 units of burst, 0.5 per second, no debt. The cost model (sessions.ts `metered`): a call
 * first reserves 1 unit (denied when the bucket holds less than 1), then settles
 * `1 + floor(python_wall_ms / 100)`, the rest charged as debt down to `-maxDebt` (here 0).
 */
const TIERS = {
  free: { capacity: 100, refillPerSec: 2, maxDebt: 100 },
  tiny: { capacity: 3, refillPerSec: 0.5, maxDebt: 0 },
};

describe.runIf(hasPython)('auth at the upgrade and tier limits (server process)', () => {
  let server: ServerProcess;
  const clients: RpcClient[] = [];

  beforeAll(async () => {
    const dir = tempDir();
    const tiersFile = path.join(dir, 'tiers.json');
    writeFileSync(tiersFile, JSON.stringify(TIERS));
    server = await startServerProcess({ env: { TRESTLE_TIERS_FILE: tiersFile } });
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await stopAll();
    removeTempDirs();
  });

  it('refuses each kind of bad credential with its HTTP status and JSON error code', async () => {
    const missing = await RpcClient.refusal(server.url, undefined);
    expect(missing.status).toBe(401);
    expect(missing.body.error).toBe('AUTH_MISSING');
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer/);

    const malformed = await RpcClient.refusal(server.url, 'not-a-jwt');
    expect(malformed.status).toBe(401);
    expect(malformed.body.error).toBe('AUTH_MALFORMED');
    expect(malformed.headers['www-authenticate']).toContain('error="invalid_token"');
    const badScheme = await RpcClient.refusal(server.url, undefined, { Authorization: 'Basic dXNlcjpwdw==' });
    expect(badScheme.status).toBe(401);
    expect(badScheme.body.error).toBe('AUTH_MALFORMED');

    const otherSecret = await mintToken('acme', 'free', { secret: randomBytes(40).toString('base64url') });
    const signature = await RpcClient.refusal(server.url, otherSecret);
    expect(signature.status).toBe(401);
    expect(signature.body.error).toBe('AUTH_BAD_SIGNATURE');

    // Expired well beyond the server's 5 s leeway.
    const expiredToken = await mintToken('acme', 'free', {
      ttlSeconds: 60,
      now: Math.floor(Date.now() / 1000) - 3600,
    });
    const expired = await RpcClient.refusal(server.url, expiredToken);
    expect(expired.status).toBe(401);
    expect(expired.body.error).toBe('AUTH_EXPIRED');

    const unknownTier = await RpcClient.refusal(server.url, await mintToken('acme', 'gold'));
    expect(unknownTier.status).toBe(403);
    expect(unknownTier.body.error).toBe('AUTH_FORBIDDEN');
    expect(unknownTier.body.message).toContain('gold');

    // None of the refusals leaves a connection behind, and a good token still gets in.
    const good = await RpcClient.connect(server.url, await mintToken('acme', 'free'));
    clients.push(good);
    expect(await good.call('session.open', {})).toMatchObject({ tenant: 'acme', tier: 'free' });
    expect(await good.call('py.call', { module: 'math', fn: 'sqrt', args: [4] })).toEqual({ value: 2 });
    await good.call('session.end', {});
  });

  it('closes a connection with 4401 when its token expires', async () => {
    const client = await RpcClient.connect(
      server.url,
      await mintToken('short-co', 'free', { ttlSeconds: 2 }),
    );
    clients.push(client);
    expect(await client.call('session.open', {})).toMatchObject({ tenant: 'short-co' });
    const closed = await Promise.race([
      client.closed,
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 10_000).unref()),
    ]);
    expect(closed).toMatchObject({ code: 4401 });
  });

  it('enforces a tiny tier: the 4th call of a burst is refused with a retry time, and honoured after it', async () => {
    const client = await RpcClient.connect(server.url, await mintToken('tiny-co', 'tiny'));
    clients.push(client);
    await client.call('session.open', {});
    expect(await client.call('budget.get', {})).toMatchObject({
      tier: 'tiny',
      capacity: 3,
      refillPerSec: 0.5,
      remaining: 3,
    });

    // A burst of 4 calls, one after the other (~ms apart: the refill adds ~0 meanwhile). Each granted
    // call takes at least 1 of the 3 units, so at most 3 are granted and the 4th is always refused;
    // a call under 100 ms of Python time costs 1 (1 + floor(ms / 100)), a slower one more.
    const outcomes: ({ ok: true } | { ok: false; error: RpcCallError })[] = [];
    for (let i = 0; i < 4; i++) {
      const reply = await client.request('py.call', { module: 'math', fn: 'sqrt', args: [i * i] });
      outcomes.push(
        reply.error ? { ok: false, error: new RpcCallError('py.call', reply.error) } : { ok: true },
      );
    }
    expect(outcomes[0]).toEqual({ ok: true });
    const granted = outcomes.filter((outcome) => outcome.ok).length;
    expect(granted).toBeLessThanOrEqual(3);
    // Granted calls come first: once refused, refused until the bucket refills.
    expect(outcomes.slice(granted).every((outcome) => !outcome.ok)).toBe(true);
    const fourth = outcomes[3];
    if (fourth === undefined || fourth.ok) throw new Error('the 4th call of the burst was granted');
    expect(fourth.error.code).toBe('BUDGET_EXCEEDED');
    expect(fourth.error.rpcCode).toBe(-32000);
    expect(fourth.error.data).toMatchObject({ tier: 'tiny' });
    const retryAfterMs = fourth.error.data.retryAfterMs as number;
    expect(retryAfterMs).toBeGreaterThan(0);
    // At most one unit short at 0.5/s (no debt allowed): at most 2 s.
    expect(retryAfterMs).toBeLessThanOrEqual(2_000);
    expect(fourth.error.data.remaining as number).toBeLessThan(1);

    // Waiting the time the server gave (it is exact) is enough.
    await new Promise((resolve) => setTimeout(resolve, retryAfterMs + 20));
    expect(await client.call('py.call', { module: 'math', fn: 'sqrt', args: [25] })).toEqual({ value: 5 });
    const info = await client.call<{ calls: Record<string, number> }>('session.info', {});
    expect(info.calls).toMatchObject({ denied: 4 - granted });
    await client.call('session.end', {});
  });

  it('stops on SIGTERM with exit code 0 and leaves no Python worker behind', async () => {
    await Promise.all(clients.map((client) => client.close()));
    expect(server.noteWorkers().length).toBeGreaterThanOrEqual(1);
    expect(await server.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const left = await survivors(server.workers);
    expect(left, describeProcesses(left)).toEqual([]);
  });
});
