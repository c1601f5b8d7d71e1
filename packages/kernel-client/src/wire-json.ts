/**
 * JSON on the wire, shared by the codecs and the server: strict UTF-8 decoding, the shape of a
 * request, and byte chunks gathered into one frame without quadratic copying. Internal.
 */
import { KernelFrameError } from './errors';
import type { KernelParams, KernelRequest } from './types';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes strict UTF-8 and parses JSON.
 * @throws KernelFrameError `malformed` for bad UTF-8 or bad JSON.
 */
export function parseJsonBytes(bytes: Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new KernelFrameError('malformed', `${what} is not valid UTF-8`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new KernelFrameError('malformed', `${what} is not valid JSON`);
  }
}

/**
 * Decodes strict UTF-8.
 * @throws KernelFrameError `malformed` for bad UTF-8.
 */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new KernelFrameError('malformed', `${what} is not valid UTF-8`);
  }
}

/** A JSON object: not `null`, not an array. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A plain object (prototype `Object.prototype` or `null`): what a handler returns as a reply body. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Whether `id` can travel as a request id: an unsigned 32-bit integer. */
export function isWireId(id: unknown): id is number {
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= 0xffff_ffff;
}

/**
 * Checks a parsed value is a request `{method: string, params: object, timestamp?: number, id?: uint32}`.
 * A missing `timestamp` reads as 0.
 * @throws KernelFrameError `malformed` otherwise.
 */
export function toKernelRequest(value: unknown, what = 'request'): KernelRequest {
  if (!isJsonObject(value)) throw new KernelFrameError('malformed', `${what} is not a JSON object`);
  const { method, params, timestamp, id } = value;
  if (typeof method !== 'string' || method.length === 0)
    throw new KernelFrameError('malformed', `${what} has no method string`);
  if (!isJsonObject(params)) throw new KernelFrameError('malformed', `${what} params is not a JSON object`);
  if (timestamp !== undefined && typeof timestamp !== 'number')
    throw new KernelFrameError('malformed', `${what} timestamp is not a number`);
  if (id !== undefined && !isWireId(id))
    throw new KernelFrameError('malformed', `${what} id is not an unsigned 32-bit integer`);
  const request: { method: string; params: KernelParams; timestamp: number; id?: number } = {
    method,
    params,
    timestamp: timestamp ?? 0,
  };
  if (id !== undefined) request.id = id;
  return request;
}

/**
 * Byte chunks held until a frame completes. Chunks are kept by reference; a frame is copied once, and
 * only when it spans chunks, so feeding one byte at a time stays linear.
 */
export class ChunkQueue {
  #chunks: (Uint8Array | undefined)[] = [];
  /** Index of the first chunk still held. */
  #head = 0;
  /** Offset of the first unread byte in the head chunk. */
  #offset = 0;
  #length = 0;

  /** Bytes held. */
  get length(): number {
    return this.#length;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** Removes and returns the next `n` bytes (`n <= length`): a view when they lie in one chunk, else a copy. */
  take(n: number): Uint8Array {
    const first = this.#chunks[this.#head]!;
    const start = this.#offset;
    if (start + n <= first.length) {
      this.#advance(n);
      return first.subarray(start, start + n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[this.#head]!;
      const count = Math.min(chunk.length - this.#offset, n - filled);
      out.set(chunk.subarray(this.#offset, this.#offset + count), filled);
      filled += count;
      this.#advance(count);
    }
    return out;
  }

  /** Removes and returns every byte held (see {@link take}). */
  takeAll(): Uint8Array {
    return this.#length === 0 ? new Uint8Array(0) : this.take(this.#length);
  }

  #advance(n: number): void {
    this.#offset += n;
    this.#length -= n;
    if (this.#offset === this.#chunks[this.#head]!.length) {
      this.#chunks[this.#head] = undefined;
      this.#head++;
      this.#offset = 0;
      if (this.#head === this.#chunks.length) {
        this.#chunks.length = 0;
        this.#head = 0;
      } else if (this.#head > 1024 && this.#head * 2 > this.#chunks.length) {
        this.#chunks = this.#chunks.slice(this.#head);
        this.#head = 0;
      }
    }
  }
}

const framesBeforeError = new WeakMap<object, readonly unknown[]>();

/**
 * Remembers the frames a decoder completed in the same `push` before it threw `error`, so that the
 * caller can still deliver them (a valid request pipelined before a bad one gets its own reply).
 * Returns `error`.
 */
export function keepFramesBefore(error: unknown, frames: readonly unknown[]): unknown {
  if (frames.length > 0 && typeof error === 'object' && error !== null) framesBeforeError.set(error, frames);
  return error;
}

/** The frames completed before `error` in the same `push` (built-in decoders only; else none). */
export function framesBefore<F>(error: unknown): readonly F[] {
  if (typeof error !== 'object' || error === null) return [];
  return (framesBeforeError.get(error) as readonly F[] | undefined) ?? [];
}
