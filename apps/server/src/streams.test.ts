import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type ServerApp } from './app';
import {
  call,
  callError,
  captureLogger,
  eventually,
  FakeConnection,
  pythonAvailable,
  testConfig,
  testMetrics,
} from './testing-domain';

const hasPython = pythonAvailable();

const FIXTURES = `
import time

state = {"produced": 0, "closed": 0}

def count(n, delay=0):
    try:
        for i in range(n):
            state["produced"] += 1
            if delay:
                time.sleep(delay)
            yield i
    finally:
        state["closed"] += 1

def boom(n):
    for i in range(n):
        yield i
    raise ValueError("boom after %d" % n)

def get_state():
    return dict(state)

def reset():
    state.update(produced=0, closed=0)
`;

describe.runIf(hasPython)('streams with credit (real python3)', () => {
  let app: ServerApp;
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'trestle-streams-'));
    writeFileSync(path.join(dir, 'stream_fixtures.py'), FIXTURES);
    app = createApp({
      config: testConfig({
        python: { pythonPath: [dir], callTimeoutMs: 10_000 } as never,
        tiers: { free: { capacity: 100_000, refillPerSec: 1_000 } },
      }),
      metrics: testMetrics(),
      logger: captureLogger().logger,
      publicUrl: 'ws://127.0.0.1:1/rpc',
    });
  });

  afterAll(async () => {
    await app?.shutdown(2_000);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh session of its own tenant (its own worker, so the fixture's state is the test's). */
  async function session(tenant: string) {
    const conn = new FakeConnection(tenant);
    await call(app, conn, 'session.open');
    return conn;
  }

  const items = (conn: FakeConnection, streamId: string) =>
    conn
      .of('stream.items')
      .filter((params) => params.streamId === streamId)
      .flatMap((params) => params.items as unknown[]);

  const state = async (conn: FakeConnection) =>
    (
      await call<{ value: { produced: number; closed: number } }>(app, conn, 'py.call', {
        module: 'stream_fixtures',
        fn: 'get_state',
      })
    ).value;

  it('never sends more items than the credit granted; cancel closes the generator in Python', async () => {
    const conn = await session('t-credit');
    const { streamId } = await call<{ streamId: string }>(app, conn, 'py.stream', {
      module: 'stream_fixtures',
      fn: 'count',
      args: [1_000],
      credit: 3,
    });
    await conn.until(() => items(conn, streamId).length >= 3);
    // Give the pump every chance to overrun.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(items(conn, streamId)).toEqual([0, 1, 2]);
    expect(await call(app, conn, 'stream.credit', { streamId, credit: 2 })).toEqual({ ok: true });
    await conn.until(() => items(conn, streamId).length >= 5);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(items(conn, streamId)).toEqual([0, 1, 2, 3, 4]);
    // Python ran at most one chunk (min(credit, 64) = 3) ahead of what was sent.
    expect((await state(conn)).produced).toBeLessThanOrEqual(5 + 3);
    expect((await state(conn)).closed).toBe(0);
    expect(await call(app, conn, 'stream.cancel', { streamId })).toEqual({ ok: true });
    expect((await state(conn)).closed).toBe(1);
    expect(conn.of('stream.end')).toEqual([]);
    // Cancelling again (or crediting) a finished stream is a no-op; an unknown one is STREAM_NOT_FOUND.
    expect(await call(app, conn, 'stream.cancel', { streamId })).toEqual({ ok: true });
    expect((await callError(app, conn, 'stream.credit', { streamId: 'st_nope', credit: 1 })).code).toBe(
      'STREAM_NOT_FOUND',
    );
  });

  it('streams to the end, and an error after the items produced before it', async () => {
    const conn = await session('t-end');
    const done = await call<{ streamId: string }>(app, conn, 'py.stream', {
      module: 'stream_fixtures',
      fn: 'count',
      args: [5],
      credit: 100,
    });
    await conn.until(() => conn.of('stream.end').some((params) => params.streamId === done.streamId));
    expect(items(conn, done.streamId)).toEqual([0, 1, 2, 3, 4]);

    const failing = await call<{ streamId: string }>(app, conn, 'py.stream', {
      module: 'stream_fixtures',
      fn: 'boom',
      args: [2],
      credit: 10,
    });
    await conn.until(() => conn.of('stream.error').length > 0);
    expect(items(conn, failing.streamId)).toEqual([0, 1]);
    const [error] = conn.of('stream.error');
    expect(error).toMatchObject({
      streamId: failing.streamId,
      error: { code: 'PY_EXCEPTION', data: { type: 'ValueError', message: 'boom after 2' } },
    });

    // A failure to open is the error of py.stream itself.
    const missing = await callError(app, conn, 'py.stream', { module: 'stream_fixtures', fn: 'nope' });
    expect(missing.code).toBe('PY_EXCEPTION');
  });

  it('streams an iterable ref, with tagged items', async () => {
    const conn = await session('t-ref');
    const { value: iterator } = await call<{ value: Record<string, unknown> }>(app, conn, 'py.call', {
      module: 'builtins',
      fn: 'iter',
      args: [
        [
          { __type__: 'int', v: '18446744073709551616' },
          { __type__: 'tuple', items: [1] },
        ],
      ],
    });
    const { streamId } = await call<{ streamId: string }>(app, conn, 'py.stream', {
      ref: iterator,
      credit: 5,
    });
    await conn.until(() => conn.of('stream.end').some((params) => params.streamId === streamId));
    expect(items(conn, streamId)).toEqual([
      { __type__: 'int', v: '18446744073709551616' },
      { __type__: 'tuple', items: [1] },
    ]);
  });

  it('closes a session streams in Python on disconnect and on session end', async () => {
    const conn = await session('t-close');
    const opened = app.sessions.attachedTo(conn);
    const first = await call<{ streamId: string }>(app, conn, 'py.stream', {
      module: 'stream_fixtures',
      fn: 'count',
      args: [100],
      credit: 1,
    });
    await conn.until(() => items(conn, first.streamId).length === 1);
    expect(app.streams.size).toBe(1);
    conn.close();
    app.onDisconnect(conn);
    await eventually(() => app.streams.size === 0);
    const back = new FakeConnection('t-close');
    const record = opened as NonNullable<typeof opened>;
    // Resume needs the token: open a new session of the same tenant instead (same worker).
    await call(app, back, 'session.open');
    await eventually(async () => (await state(back)).closed === 1);
    const second = await call<{ streamId: string }>(app, back, 'py.stream', {
      module: 'stream_fixtures',
      fn: 'count',
      args: [100],
      credit: 2,
    });
    await back.until(() => items(back, second.streamId).length === 2);
    await app.sessions.end(record, 'logout');
    const report = await call<{ reason: string }>(app, back, 'session.end');
    expect(report.reason).toBe('logout');
    expect(app.streams.size).toBe(0);
    const check = new FakeConnection('t-close');
    await call(app, check, 'session.open');
    expect((await state(check)).closed).toBe(2);
  });
});
