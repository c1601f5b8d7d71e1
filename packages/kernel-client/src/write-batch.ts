/**
 * Frames written within one tick: the first goes out at once (so the peer starts on it), the others
 * together at the end of the tick, one `write` of their concatenation when small, a corked burst
 * otherwise. Internal: used by the server (the persistent Unix connection does the same inline).
 */
import type { Socket } from 'node:net';

/** Above this many bytes a batch is written as separate corked writes instead of copied into one. */
const CONCAT_LIMIT = 64 * 1024;

/** Writes frames for one socket: the first of a tick at once, the rest at the end of the tick (`process.nextTick`). */
export class WriteBatch {
  readonly #socket: Socket;
  #frames: Uint8Array[] = [];
  #bytes = 0;
  #scheduled = false;
  /** Called after a flush whose write hit the socket's high-water mark (wait for `drain`). */
  onFull: (() => void) | undefined;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  /** Frames waiting for the end-of-tick flush. */
  get size(): number {
    return this.#frames.length;
  }

  push(frame: Uint8Array): void {
    if (this.#scheduled) {
      this.#frames.push(frame);
      this.#bytes += frame.length;
      return;
    }
    // The first frame of a tick goes out at once (the peer starts on it); the frames that follow
    // in the same tick are gathered into one write at the end of the tick.
    this.#scheduled = true;
    process.nextTick(flushBatch, this);
    if (!writeFrames(this.#socket, [frame], frame.length)) this.onFull?.();
  }

  /** Writes what is gathered now. A destroyed or ended socket drops it. */
  flush(): void {
    this.#scheduled = false;
    const frames = this.#frames;
    const bytes = this.#bytes;
    if (frames.length === 0) return;
    this.#frames = [];
    this.#bytes = 0;
    if (!writeFrames(this.#socket, frames, bytes)) this.onFull?.();
  }

  /** Forgets what is gathered (the socket is going away). */
  clear(): void {
    this.#frames = [];
    this.#bytes = 0;
  }
}

/**
 * Writes `frames` (`bytes` in total) in one go: a single write when small, corked writes otherwise.
 * Returns `false` when the socket is past its high-water mark, or gone (the frames are dropped).
 */
export function writeFrames(socket: Socket, frames: readonly Uint8Array[], bytes: number): boolean {
  if (socket.destroyed || !socket.writable) return false;
  if (frames.length === 1) return socket.write(frames[0]!);
  if (bytes <= CONCAT_LIMIT) return socket.write(Buffer.concat(frames, bytes));
  socket.cork();
  let ok = true;
  for (const frame of frames) ok = socket.write(frame) && ok;
  socket.uncork();
  return ok;
}

function flushBatch(batch: WriteBatch): void {
  batch.flush();
}
