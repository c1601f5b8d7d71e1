/**
 * The server as a real process (issue 7), over real WebSockets: calls, refs, streams with credit,
 * tenant isolation, a file closed at the session's end (seen in /proc), malformed and oversized
 * messages. One `node dist/main.js` for the file; every tenant here is its own.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeProcesses,
  mintToken,
  openFiles,
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
  writeHelperModule,
} from './harness';

const hasPython = pythonAvailable();
const MAX_MESSAGE_BYTES = 4096;

describe.runIf(hasPython)('the server process over real WebSockets', () => {
  let server: ServerProcess;
  let dir: string;
  const clients: RpcClient[] = [];

  const open = async (tenant: string, tier = 'free'): Promise<RpcClient> => {
    const client = await RpcClient.connect(server.url, await mintToken(tenant, tier));
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    dir = tempDir();
    writeHelperModule(dir);
    server = await startServerProcess({
      env: {
        TRESTLE_MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES),
        TRESTLE_PYTHONPATH: dir,
      },
    });
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await stopAll();
    removeTempDirs();
  });

  it('opens a session and calls functions, methods and attributes; a released ref is gone', async () => {
    const client = await open('calls-co');
    const opened = await client.call<Record<string, unknown>>('session.open', {});
    expect(opened).toMatchObject({ tenant: 'calls-co', tier: 'free' });
    expect(opened.sessionId).toMatch(/^s_/);
    expect(typeof opened.resumeToken).toBe('string');

    expect(await client.call('py.call', { module: 'math', fn: 'sqrt', args: [16] })).toEqual({ value: 4 });

    const { value: pattern } = await client.call<{ value: WireRef }>('py.call', {
      module: 're',
      fn: 'compile',
      args: ['\\d+'],
    });
    expect(pattern).toMatchObject({ __type__: 'ref', type_name: 'Pattern' });
    expect(await client.call('py.method', { ref: pattern, name: 'sub', args: ['#', 'a1b22c333'] })).toEqual({
      value: 'a#b#c#',
    });
    expect(await client.call('py.attr', { ref: pattern, name: 'pattern' })).toEqual({ value: '\\d+' });
    expect(await client.call('py.attr', { module: 'math', name: 'pi' })).toEqual({ value: Math.PI });
    const refs = await client.call<{ refs: { ref: WireRef }[] }>('refs.list', {});
    expect(refs.refs.map((entry) => entry.ref.id)).toContain(pattern.id);

    expect(await client.call('py.release', { refs: [pattern] })).toEqual({ released: 1 });
    const gone = await client.error('py.method', { ref: pattern, name: 'sub', args: ['#', '1'] });
    expect(gone.code).toBe('REF_NOT_FOUND');
    expect(gone.data.reason).toBe('released');
    const attrGone = await client.error('py.attr', { ref: pattern, name: 'pattern' });
    expect(attrGone.code).toBe('REF_NOT_FOUND');

    const report = await client.call<{ reason: string }>('session.end', {});
    expect(report.reason).toBe('logout');
    expect((await client.error('py.call', { module: 'math', fn: 'sqrt', args: [1] })).code).toBe(
      'NO_SESSION',
    );
  });

  it('streams with credit: never more items than granted, more on stream.credit, cancel ends it', async () => {
    const client = await open('streams-co');
    await client.call('session.open', {});

    // itertools.count() is infinite: only the credit stops it.
    let granted = 5;
    const overruns: string[] = [];
    const received = (streamId: string): unknown[] =>
      client
        .of('stream.items')
        .flatMap((params) => (params.streamId === streamId ? (params.items as unknown[]) : []));
    // Checked as each notification arrives (after the client has recorded it); the only stream yet.
    const onMessage = (): void => {
      const count = client.of('stream.items').flatMap((params) => params.items as unknown[]).length;
      if (count > granted) overruns.push(`${count} items with ${granted} granted`);
    };
    client.ws.on('message', onMessage);
    const { streamId } = await client.call<{ streamId: string }>('py.stream', {
      module: 'itertools',
      fn: 'count',
      credit: granted,
    });
    try {
      await client.waitFor(() => received(streamId).length >= 5, 'the first 5 items');
      // A round trip later, still exactly the credit: the server waits for more.
      expect(await client.call('session.info', {})).toMatchObject({ tenant: 'streams-co' });
      expect(received(streamId)).toEqual([0, 1, 2, 3, 4]);

      granted += 3; // counted before the request leaves: items may arrive before its reply
      expect(await client.call('stream.credit', { streamId, credit: 3 })).toEqual({ ok: true });
      await client.waitFor(() => received(streamId).length >= 8, 'three more items');
      expect(await client.call('session.info', {})).toMatchObject({ tenant: 'streams-co' });
      expect(received(streamId)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);

      // Every notification, checked as it arrived, stayed within the credit granted so far.
      for (const params of client.of('stream.items')) {
        expect((params.items as unknown[]).length).toBeLessThanOrEqual(5);
      }
      expect(overruns).toEqual([]);

      expect(await client.call('stream.cancel', { streamId })).toEqual({ ok: true });
      const afterCancel = client.notifications.length;
      expect(await client.call('stream.credit', { streamId, credit: 10 })).toEqual({ ok: true });
      expect(await client.call('session.info', {})).toMatchObject({ tenant: 'streams-co' });
      expect(client.notifications.slice(afterCancel).filter((n) => n.method === 'stream.items')).toEqual([]);
      expect(received(streamId)).toHaveLength(8);
    } finally {
      client.ws.off('message', onMessage);
    }

    // A generator: cancel closes it in Python (its finally runs before stream.cancel answers).
    const marker = path.join(dir, 'counting.closed');
    const generator = await client.call<{ streamId: string }>('py.stream', {
      module: 'e2e_helpers',
      fn: 'counting',
      args: [marker],
      credit: 2,
    });
    await client.waitFor(() => received(generator.streamId).length >= 2, 'two generator items');
    expect(received(generator.streamId)).toEqual([0, 1]);
    expect(existsSync(marker)).toBe(false);
    expect(await client.call('stream.cancel', { streamId: generator.streamId })).toEqual({ ok: true });
    expect(readFileSync(marker, 'utf8')).toBe('closed');

    // A finite iterator ends with stream.end.
    const finite = await client.call<{ streamId: string }>('py.stream', {
      module: 'builtins',
      fn: 'range',
      args: [3],
    });
    await client.waitFor(
      () => client.of('stream.end').some((params) => params.streamId === finite.streamId),
      'stream.end of range(3)',
    );
    expect(received(finite.streamId)).toEqual([0, 1, 2]);
    expect((await client.error('stream.credit', { streamId: 'st_nope', credit: 1 })).code).toBe(
      'STREAM_NOT_FOUND',
    );
    await client.call('session.end', {});
  });

  it('closes a file opened through Python when the session ends (seen in /proc, outside the server)', async () => {
    const client = await open('files-co');
    await client.call('session.open', {});
    const file = path.join(dir, 'written.txt');
    const { value: handle } = await client.call<{ value: WireRef }>('py.call', {
      module: 'io',
      fn: 'open',
      args: [file, 'w'],
    });
    expect(handle).toMatchObject({ __type__: 'ref', type_name: 'TextIOWrapper' });
    expect(await client.call('py.method', { ref: handle, name: 'write', args: ['hello'] })).toEqual({
      value: 5,
    });
    const { value: pid } = await client.call<{ value: number }>('py.call', { module: 'os', fn: 'getpid' });
    // The worker is a child of the server process, and it holds the file open.
    expect(server.noteWorkers()).toContain(pid);
    expect(openFiles(pid)).toContain(file);
    const listed = await client.call<{ handles: { obligation: string }[] }>('handles.list', {});
    expect(listed.handles).toEqual([expect.objectContaining({ obligation: 'py:close' })]);

    const report = await client.call<{ reason: string; discharged: unknown[]; undischarged: unknown[] }>(
      'session.end',
      {},
    );
    expect(report.reason).toBe('logout');
    expect(report.discharged).toHaveLength(1);
    expect(report.undischarged).toEqual([]);
    await until(() => !openFiles(pid).includes(file), `${file} to be closed by worker ${pid}`, 5_000);
    expect(openFiles(pid)).not.toContain(file);
    // Closed, not just forgotten: the buffered write reached the file.
    expect(readFileSync(file, 'utf8')).toBe('hello');
  });

  it("keeps tenants apart: B cannot use A's ref (REF_NOT_FOUND, nothing revealed), A's object is intact", async () => {
    const a = await open('tenant-a');
    const b = await open('tenant-b');
    const sessionA = await a.call<{ sessionId: string; resumeToken: string }>('session.open', {});
    await b.call('session.open', {});
    const { value: pattern } = await a.call<{ value: WireRef }>('py.call', {
      module: 're',
      fn: 'compile',
      args: ['x+'],
    });

    const method = await b.error('py.method', { ref: pattern, name: 'match', args: ['xx'] });
    expect(method.code).toBe('REF_NOT_FOUND');
    expect(method.data.reason).toBeUndefined();
    const attr = await b.error('py.attr', { ref: pattern, name: 'pattern' });
    expect(attr.code).toBe('REF_NOT_FOUND');
    const nested = await b.error('py.call', { module: 'builtins', fn: 'repr', args: [[pattern]] });
    expect(nested.code).toBe('REF_NOT_FOUND');
    // Releasing is idempotent: a ref B cannot see counts as already gone, and nothing is released.
    expect(await b.call('py.release', { refs: [pattern] })).toEqual({ released: 0 });
    // Nor can B take A's session over, even with A's resume token.
    const b2 = await open('tenant-b');
    const takeover = await b2.error('session.resume', {
      sessionId: sessionA.sessionId,
      resumeToken: sessionA.resumeToken,
    });
    expect(takeover.code).toBe('SESSION_FORBIDDEN');

    // Separate worker processes.
    const { value: pidA } = await a.call<{ value: number }>('py.call', { module: 'os', fn: 'getpid' });
    const { value: pidB } = await b.call<{ value: number }>('py.call', { module: 'os', fn: 'getpid' });
    expect(pidA).not.toBe(pidB);

    // A's object is intact.
    expect(await a.call('py.attr', { ref: pattern, name: 'pattern' })).toEqual({ value: 'x+' });
    expect(await a.call('py.method', { ref: pattern, name: 'sub', args: ['-', 'axxb'] })).toEqual({
      value: 'a-b',
    });
    await a.call('session.end', {});
    await b.call('session.end', {});
  });

  it('refuses oversized and malformed messages with the JSON-RPC error, and the same connection still works', async () => {
    const client = await open('frames-co');
    await client.call('session.open', {});

    // Between the limit and 4x the limit: MESSAGE_TOO_LARGE, answered to the request's id.
    const big = JSON.stringify({
      jsonrpc: '2.0',
      id: 'too-big',
      method: 'py.call',
      params: { module: 'builtins', fn: 'len', args: ['x'.repeat(MAX_MESSAGE_BYTES * 2)] },
    });
    const reply = await client.requestRaw('too-big', big);
    expect(reply).toMatchObject({
      id: 'too-big',
      error: { code: -32000, data: { code: 'MESSAGE_TOO_LARGE' } },
    });

    // Not JSON: -32700 with id null.
    const orphansBefore = client.orphans.length;
    client.sendRaw('{not json');
    await client.waitFor(() => client.orphans.length > orphansBefore, 'the parse error');
    expect(client.orphans.at(-1)?.error).toMatchObject({ code: -32700, data: { code: 'PARSE_ERROR' } });

    // A batch: -32600.
    client.sendRaw(JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'session.info' }]));
    await client.waitFor(() => client.orphans.length > orphansBefore + 1, 'the batch refusal');
    expect(client.orphans.at(-1)?.error).toMatchObject({ code: -32600, data: { code: 'BATCH_UNSUPPORTED' } });

    // Not a request object: -32600.
    const invalid = await client.request('', {});
    expect(invalid.error).toMatchObject({ code: -32600, data: { code: 'INVALID_REQUEST' } });

    // Wrong params: -32602 naming the field.
    const params = await client.error('py.call', { module: 5, fn: 'sqrt' });
    expect(params.rpcCode).toBe(-32602);
    expect(params.code).toBe('INVALID_PARAMS');
    expect(params.message).toContain('params.module');

    // Unknown method: -32601.
    const unknown = await client.error('py.nope', {});
    expect(unknown.rpcCode).toBe(-32601);
    expect(unknown.code).toBe('METHOD_NOT_FOUND');

    // The same connection and session still work.
    expect(client.isOpen).toBe(true);
    expect(await client.call('py.call', { module: 'math', fn: 'sqrt', args: [81] })).toEqual({ value: 9 });
    await client.call('session.end', {});

    // Above 4x the limit, ws closes the socket with 1009 (a fresh connection).
    const huge = await open('frames-co');
    huge.sendRaw('x'.repeat(MAX_MESSAGE_BYTES * 4 + 1024));
    expect((await huge.closed).code).toBe(1009);
  });

  it('stops on SIGTERM with exit code 0 and leaves no Python worker behind', async () => {
    await Promise.all(clients.map((client) => client.close()));
    const workers = server.noteWorkers();
    expect(workers.length).toBeGreaterThanOrEqual(4);
    const exit = await server.stop('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    const left = await survivors(server.workers);
    expect(left, describeProcesses(left)).toEqual([]);
  });
});
