// The scenarios of the SnakeBridge Domain 5 plan (session_manager_test.exs and
// session_context_test.exs), in TypeScript, with owners that really end.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSessionContext } from './session-context';
import { createSessionManager } from './session-manager';
import type { SessionManager } from './session-types';
import { type RecordingReleaser, recordingReleaser } from './test-support/releasers';
import { collectUntil, nextEvent } from './test-support/wait';

let sequence = 0;
const uniqueId = (): string => `test_session_${process.pid}_${++sequence}`;

let manager: SessionManager;
let releaser: RecordingReleaser;

beforeEach(() => {
  releaser = recordingReleaser('domain5');
  manager = createSessionManager({ releaser });
});

afterEach(async () => {
  await manager.dispose();
});

describe('session lifecycle', () => {
  it('session registered on first call', async () => {
    const sessionId = uniqueId();
    const controller = new AbortController();
    expect(manager.sessionExists(sessionId)).toBe(false);

    manager.registerSession(sessionId, { owner: controller.signal });

    expect(manager.sessionExists(sessionId)).toBe(true);

    // The same through a session context: a scope's session is registered when it is first used.
    const context = createSessionContext(manager);
    await context.withSession(async () => {
      expect(manager.sessions()).toHaveLength(1);
      const session = context.ensure();
      expect(manager.sessionExists(session.id)).toBe(true);
      expect(manager.sessions()).toHaveLength(2);
    });
  });

  describe('session released when its owner ends', () => {
    it('an AbortSignal that is aborted', async () => {
      const sessionId = uniqueId();
      const controller = new AbortController();
      const session = manager.registerSession(sessionId, { owner: controller.signal });
      const ref = session.registerRef({ typeName: 'Pattern', module: 're' });
      expect(manager.sessionExists(sessionId)).toBe(true);

      controller.abort();

      expect(manager.sessionExists(sessionId)).toBe(false);
      await manager.flush();
      expect(releaser.calls).toEqual([
        { operation: 'releaseSession', sessionId, refIds: [ref.id], reason: 'session_released' },
      ]);
    });

    it('a socket closed by the client', async () => {
      await using server = await startServer();
      const socket = await server.connect();
      const sessionId = uniqueId();
      manager.registerSession(sessionId, { owner: socket });
      const released = nextEvent(manager, 'session-released', (event) => event.sessionId === sessionId);
      expect(manager.sessionExists(sessionId)).toBe(true);

      socket.destroy();

      expect((await released).cause).toBe('owner-ended');
      expect(manager.sessionExists(sessionId)).toBe(false);
    });

    it('a socket closed by the server', async () => {
      await using server = await startServer();
      const socket = await server.connect();
      const sessionId = uniqueId();
      manager.registerSession(sessionId, { owner: socket });
      const released = nextEvent(manager, 'session-released', (event) => event.sessionId === sessionId);

      server.closeAccepted();

      await released;
      expect(manager.sessionExists(sessionId)).toBe(false);
      expect(socket.destroyed).toBe(true);
    });

    it('a child process that exits', async () => {
      const child = spawn(process.execPath, ['-e', 'setTimeout(() => process.exit(3), 20)'], {
        stdio: 'ignore',
      });
      try {
        const sessionId = uniqueId();
        manager.registerSession(sessionId, { owner: child });
        const released = nextEvent(manager, 'session-released', (event) => event.sessionId === sessionId);
        expect(manager.sessionExists(sessionId)).toBe(true);

        await released;

        expect(child.exitCode).toBe(3);
        expect(manager.sessionExists(sessionId)).toBe(false);
      } finally {
        kill(child);
      }
    });

    it('a child process killed with SIGKILL', async () => {
      const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      try {
        await once(child, 'spawn');
        const sessionId = uniqueId();
        manager.registerSession(sessionId, { owner: child });
        const released = nextEvent(manager, 'session-released', (event) => event.sessionId === sessionId);
        expect(manager.sessionExists(sessionId)).toBe(true);

        child.kill('SIGKILL');

        await released;
        expect(child.signalCode).toBe('SIGKILL');
        expect(manager.sessionExists(sessionId)).toBe(false);
        expect(child.listenerCount('exit') + child.listenerCount('close')).toBe(0);
      } finally {
        kill(child);
      }
    });

    it('an object that is garbage collected (--expose-gc)', async () => {
      const sessionId = uniqueId();
      registerWithCollectableOwner(manager, sessionId);
      expect(manager.sessionExists(sessionId)).toBe(true);

      // The FinalizationRegistry callback runs after a collection, on a later task.
      expect(await collectUntil(() => !manager.sessionExists(sessionId))).toBe(true);

      await manager.flush();
      expect(releaser.calls.map((call) => call.sessionId)).toEqual([sessionId]);
    });
  });

  it('refs tracked per session', () => {
    const sessionId = uniqueId();
    const other = uniqueId();
    const controller = new AbortController();
    manager.registerSession(sessionId, { owner: controller.signal });
    manager.registerSession(other);

    const ref1 = manager.registerRef(sessionId, { id: 'ref1', typeName: 'Pattern', module: 're' });
    const ref2 = manager.registerRef(sessionId, { id: 'ref2', typeName: 'Match', module: 're' });
    manager.registerRef(other, { id: 'ref3', typeName: 'Path', module: 'pathlib' });

    const refs = manager.listRefs(sessionId);
    expect(refs).toHaveLength(2);
    expect(refs).toEqual([ref1, ref2]);
    expect(refs.every((ref) => ref.sessionId === sessionId)).toBe(true);
    expect(manager.listRefs(other).map((ref) => ref.id)).toEqual(['ref3']);
  });
});

describe('session context', () => {
  it('creates context with unique session id', async () => {
    const context = createSessionContext(manager);
    const controller = new AbortController();
    const first = context.create({ owner: controller.signal });
    const second = context.create();

    expect(first.id).toMatch(/^s_[0-9a-f]{24}$/);
    expect(second.id).not.toBe(first.id);
    expect(first.info()?.owners).toBe(1);
    expect(manager.sessionExists(first.id)).toBe(true);
    expect(manager.sessionExists(second.id)).toBe(true);

    controller.abort();
    expect(first.released).toBe(true);
    await second.release();
  });

  it('with_session scopes calls to session', async () => {
    const context = createSessionContext(manager);
    // A "call" deep inside the scope finds the session without being handed it.
    const call = async (typeName: string) => {
      await Promise.resolve();
      return context.ensure().registerRef({ typeName, module: 're' });
    };

    const result = await context.withSession(async () => {
      const session = context.current();
      expect(session).toBeDefined();
      const first = await call('Pattern');
      await new Promise((resolve) => setTimeout(resolve, 1));
      const second = await call('Match');
      expect(first.sessionId).toBe(session?.id);
      expect(second.sessionId).toBe(session?.id);
      expect(session?.listRefs()).toEqual([first, second]);
      return 'ok';
    });

    expect(result).toBe('ok');
  });

  it('context cleaned up after block', async () => {
    const context = createSessionContext(manager);
    let sessionId: string | undefined;

    await context.withSession(async () => {
      sessionId = context.current()?.id;
      expect(context.current()).toBeDefined();
    });

    expect(context.current()).toBeUndefined();
    expect(sessionId).toBeDefined();
    expect(manager.sessionExists(sessionId!)).toBe(false);
  });
});

// --- helpers ---

// In its own function, so no variable of the test keeps the owner alive.
function registerWithCollectableOwner(target: SessionManager, sessionId: string): void {
  const owner = { payload: new Array(64).fill(sessionId) };
  target.registerSession(sessionId, { owner: { gc: owner } });
}

function kill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

interface TestServer extends AsyncDisposable {
  connect(): Promise<net.Socket>;
  /** Destroys the server side of every accepted connection. */
  closeAccepted(): void;
}

async function startServer(): Promise<TestServer> {
  const accepted = new Set<net.Socket>();
  const clients = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    accepted.add(socket);
    socket.on('close', () => accepted.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    async connect() {
      const socket = net.connect(port, '127.0.0.1');
      clients.add(socket);
      await once(socket, 'connect');
      return socket;
    },
    closeAccepted() {
      for (const socket of accepted) socket.destroy();
    },
    async [Symbol.asyncDispose]() {
      for (const socket of clients) socket.destroy();
      for (const socket of accepted) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
