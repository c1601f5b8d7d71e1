import { describe, expect, it } from 'vitest';
import { KernelTransportError } from './errors';
import { nullTransport } from './null-transport';

const options = { signal: new AbortController().signal, maxResponseBytes: 65_536 };

describe('nullTransport', () => {
  it('echoes the request with mock: true and counts the bytes', async () => {
    const transport = nullTransport();
    const reply = await transport.send({ method: 'PING', params: { a: 1 }, timestamp: 12.5 }, options);
    const body = { method: 'PING', params: { a: 1 }, mock: true, timestamp: 12.5 };
    expect(reply).toEqual({ body, wireBytes: Buffer.byteLength(JSON.stringify(body)) });
    expect([transport.name, transport.endpoint]).toEqual(['null', 'null://']);
  });

  it('is always available, even after close()', async () => {
    const transport = nullTransport();
    expect(await transport.isAvailable({ signal: options.signal })).toBe(true);
    await transport.close();
    expect(await transport.isAvailable({ signal: options.signal })).toBe(true);
  });

  it('honours an aborted signal and the size limit', async () => {
    const transport = nullTransport();
    const request = { method: 'PING', params: { big: 'x'.repeat(2_000) }, timestamp: 0 };
    await expect(transport.send(request, { ...options, signal: AbortSignal.abort() })).rejects.toMatchObject({
      kind: 'aborted',
    });
    const error = await transport
      .send(request, { ...options, maxResponseBytes: 1_024 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KernelTransportError);
    expect((error as KernelTransportError).kind).toBe('too_large');
  });
});
