// 10,000 calls through one transport: no abort listener, socket, timer or handle is left behind.
import { getEventListeners, setMaxListeners } from 'node:events';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createKernelServer } from './server';
import { tempSocketPath } from './test-support/socket-path';
import { activeResources, rejection, until } from './test-support/wait';
import { type UnixTransportMode, unixTransport } from './unix-transport';

const CALLS = 10_000;
const IN_FLIGHT = 16;

describe.each(['oneshot', 'persistent'] as const)('unixTransport leaks (%s)', (mode: UnixTransportMode) => {
  it(`leaves no listener, socket or handle behind after ${CALLS} calls`, async () => {
    const path = tempSocketPath('l');
    let echoed = 0;
    const server = createKernelServer({
      methods: {
        ECHO: (params) => {
          echoed++;
          return params;
        },
        NEVER: (_params, context) =>
          new Promise((resolve) => context.signal.addEventListener('abort', resolve)),
      },
    });
    await server.listen({ path });
    onTestFinished(() => server.close());
    const baseline = activeResources();
    const transport = unixTransport({ path, mode });
    // One long-lived signal for every call: each call must remove the listener it added.
    const controller = new AbortController();
    setMaxListeners(IN_FLIGHT * 2, controller.signal);
    const options = { signal: controller.signal, maxResponseBytes: 65_536 };
    let done = 0;
    const worker = async (lane: number) => {
      for (let n = lane; n < CALLS; n += IN_FLIGHT) {
        const reply = await transport.send({ method: 'ECHO', params: { n }, timestamp: 0 }, options);
        expect((reply.body as { n: number }).n).toBe(n);
        done++;
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, (_, lane) => worker(lane)));
    expect(done).toBe(CALLS);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);

    // Aborted calls clean up too.
    for (let n = 0; n < 50; n++) {
      const abort = new AbortController();
      const pending = transport.send(
        { method: 'NEVER', params: {}, timestamp: 0 },
        { ...options, signal: abort.signal },
      );
      abort.abort();
      expect(getEventListeners(abort.signal, 'abort')).toHaveLength(0);
      expect(await rejection(pending)).toMatchObject({ kind: 'aborted' });
    }

    await transport.close();
    await until(
      () => server.connections === 0 && server.inflight === 0,
      'the server to see every connection close',
    );
    // Nothing beyond the baseline (the runner's own timers may have finished meanwhile).
    const after = activeResources();
    for (const [type, count] of Object.entries(after))
      expect(count, type).toBeLessThanOrEqual(baseline[type] ?? 0);
    expect(echoed).toBe(CALLS);
    expect(server.served).toBeGreaterThanOrEqual(CALLS);
    await server.close();
  });
});
