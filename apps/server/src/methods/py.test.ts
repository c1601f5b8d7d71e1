import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type ServerApp } from '../app';
import {
  call,
  callError,
  captureLogger,
  FakeConnection,
  metricValue,
  pythonAvailable,
  testConfig,
  testMetrics,
} from '../testing-domain';

const hasPython = pythonAvailable();

type Wire = Record<string, unknown>;

/** Paths the worker process holds open (from /proc: observed from outside Python). */
function openFiles(pid: number): string[] {
  const dir = `/proc/${pid}/fd`;
  return readdirSync(dir).flatMap((fd) => {
    try {
      return [readlinkSync(path.join(dir, fd))];
    } catch {
      return [];
    }
  });
}

describe.runIf(hasPython)('py.* methods (real python3)', () => {
  let app: ServerApp;
  const metrics = testMetrics();
  const { logger } = captureLogger();
  let dir: string;
  let conn: FakeConnection;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'trestle-py-'));
    app = createApp({
      config: testConfig({
        tiers: { free: { capacity: 10_000, refillPerSec: 0.01, maxDebt: 100 } },
        python: { allowModules: null, callTimeoutMs: 10_000 } as never,
      }),
      metrics,
      logger,
      publicUrl: 'ws://127.0.0.1:1/rpc',
    });
    conn = new FakeConnection('acme');
    await call(app, conn, 'session.open');
  });

  afterAll(async () => {
    await app?.shutdown(2_000);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses calls before a session with NO_SESSION', async () => {
    const fresh = new FakeConnection('acme');
    const error = await callError(app, fresh, 'py.call', { module: 'math', fn: 'sqrt', args: [4] });
    expect(error.code).toBe('NO_SESSION');
  });

  it('calls functions, methods and attributes, lists names, releases refs', async () => {
    expect(await call(app, conn, 'py.call', { module: 'math', fn: 'sqrt', args: [16] })).toEqual({
      value: 4,
    });
    const { value: pattern } = await call<{ value: Wire }>(app, conn, 'py.call', {
      module: 're',
      fn: 'compile',
      args: ['\\d+'],
    });
    expect(pattern).toMatchObject({ __type__: 'ref', type_name: 'Pattern', python_module: 're' });
    const match = await call<{ value: Wire }>(app, conn, 'py.method', {
      ref: pattern,
      name: 'match',
      args: ['123abc'],
    });
    expect(await call(app, conn, 'py.method', { ref: match.value, name: 'group' })).toEqual({ value: '123' });
    expect(await call(app, conn, 'py.attr', { ref: pattern, name: 'pattern' })).toEqual({ value: '\\d+' });
    expect(await call(app, conn, 'py.attr', { module: 'math', name: 'pi' })).toEqual({ value: Math.PI });
    const { names } = await call<{ names: string[] }>(app, conn, 'py.dir', { ref: pattern });
    expect(names).toEqual(expect.arrayContaining(['match', 'sub', 'pattern']));
    const math = await call<{ names: string[] }>(app, conn, 'py.dir', { module: 'math' });
    expect(math.names).toContain('sqrt');
    const listed = await call<{ refs: { ref: Wire; typeName: string; ageMs: number }[] }>(
      app,
      conn,
      'refs.list',
    );
    expect(listed.refs.map((entry) => entry.ref.id)).toEqual(
      expect.arrayContaining([pattern.id, match.value.id]),
    );
    expect(await call(app, conn, 'py.release', { refs: [pattern, match.value] })).toEqual({ released: 2 });
    // Idempotent: releasing again releases nothing.
    expect(await call(app, conn, 'py.release', { refs: [pattern] })).toEqual({ released: 0 });
    const gone = await callError(app, conn, 'py.method', { ref: pattern, name: 'match', args: ['1'] });
    expect(gone.code).toBe('REF_NOT_FOUND');
    expect(gone.data).toMatchObject({ reason: 'released' });
  });

  it('carries values both ways: bigint, NaN, -0, bytes, tuples, sets, maps, refs', async () => {
    const big = { __type__: 'int', v: '18446744073709551616' };
    expect(await call(app, conn, 'py.call', { module: 'operator', fn: 'add', args: [big, 1] })).toEqual({
      value: { __type__: 'int', v: '18446744073709551617' },
    });
    expect(
      await call(app, conn, 'py.call', {
        module: 'math',
        fn: 'isnan',
        args: [{ __type__: 'float', v: 'nan' }],
      }),
    ).toEqual({ value: true });
    expect(await call(app, conn, 'py.call', { module: 'builtins', fn: 'float', args: ['nan'] })).toEqual({
      value: { __type__: 'float', v: 'nan' },
    });
    expect(await call(app, conn, 'py.call', { module: 'operator', fn: 'neg', args: [0.0] })).toEqual({
      value: 0,
    });
    expect(
      await call(app, conn, 'py.call', {
        module: 'math',
        fn: 'copysign',
        args: [0, { __type__: 'float', v: '-0' }],
      }),
    ).toEqual({ value: { __type__: 'float', v: '-0' } });
    const bytes = { __type__: 'bytes', b64: Buffer.from([0, 1, 2, 255]).toString('base64') };
    expect(await call(app, conn, 'py.call', { module: 'operator', fn: 'add', args: [bytes, bytes] })).toEqual(
      {
        value: { __type__: 'bytes', b64: Buffer.from([0, 1, 2, 255, 0, 1, 2, 255]).toString('base64') },
      },
    );
    expect(await call(app, conn, 'py.call', { module: 'builtins', fn: 'divmod', args: [7, 2] })).toEqual({
      value: { __type__: 'tuple', items: [3, 1] },
    });
    expect(
      await call(app, conn, 'py.call', {
        module: 'builtins',
        fn: 'len',
        args: [{ __type__: 'set', items: [1, 2, 2, 3] }],
      }),
    ).toEqual({ value: 3 });
    expect(
      await call(app, conn, 'py.call', {
        module: 'builtins',
        fn: 'dict',
        args: [{ __type__: 'dict', items: [[1, 'one']] }],
      }),
    ).toEqual({ value: { __type__: 'dict', items: [[1, 'one']] } });
    // A ref inside nested arguments reaches Python as the object.
    const { value: pattern } = await call<{ value: Wire }>(app, conn, 'py.call', {
      module: 're',
      fn: 'compile',
      args: ['a+'],
    });
    expect(
      await call(app, conn, 'py.call', {
        module: 'builtins',
        fn: 'getattr',
        args: [pattern, 'pattern'],
      }),
    ).toEqual({ value: 'a+' });
    expect(
      await call(app, conn, 'py.call', {
        module: 'builtins',
        fn: 'isinstance',
        args: [pattern],
        kwargs: {},
      }).catch((error: { code: string }) => error.code),
    ).toBe('PY_EXCEPTION');
  });

  it('maps Python failures to the SPEC codes', async () => {
    const exception = await callError(app, conn, 'py.call', { module: 'math', fn: 'sqrt', args: [-1] });
    expect(exception.code).toBe('PY_EXCEPTION');
    expect(exception.message).toBe('ValueError: math domain error (in math.sqrt)');
    expect(exception.data).toMatchObject({
      type: 'ValueError',
      module: 'builtins',
      message: 'math domain error',
    });
    expect(String(exception.data?.traceback)).toContain('ValueError: math domain error');
    const internal = await callError(app, conn, 'py.call', {
      module: 'trestle_server_support',
      fn: 'dir_module',
      args: ['os'],
    });
    expect(internal.code).toBe('PY_FORBIDDEN');
    const timeout = await callError(app, conn, 'py.call', {
      module: 'time',
      fn: 'sleep',
      args: [5],
      timeoutMs: 200,
    });
    expect(timeout.code).toBe('PY_TIMEOUT');
    const controller = new AbortController();
    const pending = call(app, conn, 'py.call', { module: 'time', fn: 'sleep', args: [5] }, controller.signal);
    setTimeout(() => controller.abort(), 100);
    await expect(pending).rejects.toMatchObject({ code: 'PY_ABORTED' });
    const badTag = await callError(app, conn, 'py.call', {
      module: 'math',
      fn: 'sqrt',
      args: [{ __type__: 'int', v: 'x' }],
    });
    expect(badTag).toMatchObject({ code: 'INVALID_PARAMS', rpcCode: -32602 });
    expect(badTag.message).toContain('args[0]');
    expect(() =>
      app.methods['py.call']?.params.parse({ module: 'math', fn: 'sqrt', timeoutMs: 60_000 }),
    ).toThrow();
    expect(() => app.methods['py.call']?.params.parse({ module: 'x'.repeat(300), fn: 'f' })).toThrow();
    // Still usable after all that.
    expect(await call(app, conn, 'py.call', { module: 'math', fn: 'sqrt', args: [9] })).toEqual({ value: 3 });
  });

  it('tracks a file opened in Python as a py:close handle, closed at session end', async () => {
    const file = path.join(dir, 'data.txt');
    writeFileSync(file, 'hello');
    const c = new FakeConnection('files');
    await call(app, c, 'session.open');
    const { value: handle } = await call<{ value: Wire }>(app, c, 'py.call', {
      module: 'io',
      fn: 'open',
      args: [file],
    });
    expect(handle).toMatchObject({ __type__: 'ref', type_name: 'TextIOWrapper' });
    const listed = await call<{ handles: { obligation: string; label: string }[] }>(app, c, 'handles.list');
    expect(listed.handles).toHaveLength(1);
    expect(listed.handles[0]).toMatchObject({ obligation: 'py:close' });
    expect(listed.handles[0]?.label).toContain(String(handle.id));
    expect(await call(app, c, 'py.method', { ref: handle, name: 'read' })).toEqual({ value: 'hello' });
    const pid = app.tenants.peek('files')?.python?.stats().workers[0]?.pid as number;
    expect(openFiles(pid)).toContain(file);
    // A non-closable result (a str) is no handle; a second file is.
    const second = await call<{ value: Wire }>(app, c, 'py.call', { module: 'io', fn: 'open', args: [file] });
    expect((await call<{ handles: unknown[] }>(app, c, 'handles.list')).handles).toHaveLength(2);
    // py.release of a closable ref closes it and forgets the handle.
    expect(await call(app, c, 'py.release', { refs: [second.value] })).toEqual({ released: 1 });
    expect((await call<{ handles: unknown[] }>(app, c, 'handles.list')).handles).toHaveLength(1);
    expect(openFiles(pid).filter((target) => target === file)).toHaveLength(1);
    const report = await call<{ reason: string; discharged: { label: string }[]; refsReleased: number }>(
      app,
      c,
      'session.end',
    );
    expect(report.reason).toBe('logout');
    expect(report.discharged).toHaveLength(1);
    expect(report.discharged[0]?.label).toContain(String(handle.id));
    expect(openFiles(pid)).not.toContain(file);
    expect(await metricValue(metrics.handlesDischarged, { outcome: 'discharged' })).toBeGreaterThanOrEqual(2);
  });

  it('keeps tenants apart: another tenant cannot use a ref, a sibling session gets a mismatch', async () => {
    const { value: pattern } = await call<{ value: Wire }>(app, conn, 'py.call', {
      module: 're',
      fn: 'compile',
      args: ['x'],
    });
    const other = new FakeConnection('globex');
    await call(app, other, 'session.open');
    expect(await call(app, other, 'py.call', { module: 'math', fn: 'sqrt', args: [4] })).toEqual({
      value: 2,
    });
    const foreign = await callError(app, other, 'py.method', { ref: pattern, name: 'match', args: ['x'] });
    expect(foreign.code).toBe('REF_NOT_FOUND');
    expect(foreign.data?.reason).toBeUndefined();
    const nested = await callError(app, other, 'py.call', {
      module: 'builtins',
      fn: 'repr',
      args: [[pattern]],
    });
    expect(nested.code).toBe('REF_NOT_FOUND');
    const acmePid = app.tenants.peek('acme')?.python?.stats().workers[0]?.pid;
    const globexPid = app.tenants.peek('globex')?.python?.stats().workers[0]?.pid;
    expect(acmePid).toBeDefined();
    expect(globexPid).toBeDefined();
    expect(acmePid).not.toBe(globexPid);
    const sibling = new FakeConnection('acme');
    await call(app, sibling, 'session.open');
    const mismatch = await callError(app, sibling, 'py.attr', { ref: pattern, name: 'pattern' });
    expect(mismatch.code).toBe('REF_SESSION_MISMATCH');
    await call(app, sibling, 'session.end');
    await call(app, other, 'session.end');
  });

  it('reports the session, its budget and counts calls', async () => {
    const info = await call<Record<string, unknown>>(app, conn, 'session.info');
    expect(info).toMatchObject({ tenant: 'acme', tier: 'free' });
    expect((info.calls as { metered: number }).metered).toBeGreaterThan(5);
    const budget = await call<Record<string, number>>(app, conn, 'budget.get');
    expect(budget).toMatchObject({ tier: 'free', capacity: 10_000, refillPerSec: 0.01 });
    expect(budget.remaining).toBeLessThan(10_000 - 5);
    expect(budget.fullAfterMs).toBeGreaterThan(0);
    expect(await metricValue(metrics.budgetDecisions, { decision: 'allowed' })).toBeGreaterThan(5);
  });
});
