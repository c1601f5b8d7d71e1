/**
 * A raw Unix-socket client for server tests: writes any bytes, decodes what comes back with a codec,
 * and tells when the server closed the connection. Test support only.
 */
import { createConnection, type Socket } from 'node:net';
import { lengthPrefixedJson } from '../codec-length';
import type { KernelCodec, KernelReplyFrame } from '../types';

export interface RawClient {
  readonly socket: Socket;
  /** Reply frames received so far. */
  readonly frames: KernelReplyFrame[];
  /** Bytes received so far. */
  readonly received: number;
  write(bytes: Uint8Array | string): void;
  /** Resolves once `count` frames have been received. */
  framesCount(count: number): Promise<KernelReplyFrame[]>;
  /** Resolves when the server closed or ended the connection. */
  readonly ended: Promise<void>;
  destroy(): void;
}

/** Connects (resolves once connected, rejects on error). */
export async function rawClient(path: string, codec: KernelCodec = lengthPrefixedJson()): Promise<RawClient> {
  const socket = createConnection({ path });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => {});
  const decoder = codec.replyDecoder({ maxFrameBytes: 16 * 1024 * 1024 });
  const frames: KernelReplyFrame[] = [];
  let received = 0;
  const waiters: { count: number; resolve: (frames: KernelReplyFrame[]) => void }[] = [];
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    frames.push(...decoder.push(chunk));
    for (const waiter of [...waiters])
      if (frames.length >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(frames);
      }
  });
  const ended = new Promise<void>((resolve) => {
    socket.once('end', resolve);
    socket.once('close', resolve);
  });
  return {
    socket,
    frames,
    get received() {
      return received;
    },
    write: (bytes) => {
      socket.write(bytes);
    },
    framesCount: (count) =>
      new Promise((resolve) => {
        if (frames.length >= count) resolve(frames);
        else waiters.push({ count, resolve });
      }),
    ended,
    destroy: () => socket.destroy(),
  };
}
