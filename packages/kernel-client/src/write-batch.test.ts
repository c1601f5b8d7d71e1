import { createConnection, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { tempSocketPath } from './test-support/socket-path';
import { until } from './test-support/wait';
import { WriteBatch, writeFrames } from './write-batch';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A connected pair of Unix sockets; `received` collects what the server side reads. */
async function pair(): Promise<{ client: Socket; received: Buffer[]; bytes: () => number }> {
  const path = tempSocketPath('w');
  const received: Buffer[] = [];
  let serverSide: Socket | undefined;
  const server = createServer((socket) => {
    serverSide = socket;
    socket.on('data', (chunk: Buffer) => received.push(chunk));
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const client = createConnection({ path });
  await new Promise<void>((resolve) => client.once('connect', resolve));
  cleanups.push(() => {
    client.destroy();
    serverSide?.destroy();
    server.close();
  });
  return { client, received, bytes: () => received.reduce((sum, chunk) => sum + chunk.length, 0) };
}

describe('WriteBatch', () => {
  it('writes the first frame of a tick at once, and the ones after it together at the end of the tick', async () => {
    const { client } = await pair();
    const writes: number[] = [];
    const write = client.write.bind(client);
    client.write = ((chunk: Uint8Array, ...rest: never[]) => {
      writes.push(chunk.length);
      return write(chunk, ...rest);
    }) as typeof client.write;
    const batch = new WriteBatch(client);
    batch.push(Buffer.from('ab'));
    batch.push(Buffer.from('cde'));
    batch.push(Buffer.from('f'));
    expect(writes).toEqual([2]);
    expect(batch.size).toBe(2);
    await new Promise<void>((resolve) => process.nextTick(resolve));
    expect(writes).toEqual([2, 4]);
    expect(batch.size).toBe(0);
    // A new tick: the first frame goes out at once again.
    batch.push(Buffer.from('gh'));
    expect(writes).toEqual([2, 4, 2]);
  });

  it('delivers the bytes in order, small and large batches alike', async () => {
    const { client, received, bytes } = await pair();
    const batch = new WriteBatch(client);
    const big = Buffer.alloc(80 * 1024, 0x62);
    batch.push(Buffer.from('a'));
    batch.push(big);
    batch.push(Buffer.from('c'));
    const total = 2 + big.length;
    await until(() => bytes() === total, 'all bytes');
    const all = Buffer.concat(received);
    expect(all[0]).toBe(0x61);
    expect(all[total - 1]).toBe(0x63);
    expect(all.subarray(1, total - 1).every((byte) => byte === 0x62)).toBe(true);
  });

  it('drops frames for a destroyed socket and reports it as full', async () => {
    const { client } = await pair();
    client.destroy();
    expect(writeFrames(client, [Buffer.from('x')], 1)).toBe(false);
    const batch = new WriteBatch(client);
    let full = 0;
    batch.onFull = () => full++;
    batch.push(Buffer.from('y'));
    expect(full).toBe(1);
    batch.push(Buffer.from('z'));
    batch.clear();
    expect(batch.size).toBe(0);
  });
});
