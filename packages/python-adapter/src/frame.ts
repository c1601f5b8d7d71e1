import type { BlobList } from './codec';
import { adapterError, type PythonAdapterError, PythonAdapterErrorCode } from './errors';

/**
 * Framing (PROTOCOL.md "Frames"): `[u32be N][payload]`. A JSON frame's payload is one JSON object
 * (`{`…); a binary frame's is `0x01`, `[u32be J]`, `J` bytes of JSON, then the blob region.
 */

const KIND_JSON = 0x7b; // '{'
const KIND_BINARY = 0x01;
/** The largest length a 4-byte prefix can carry. */
const MAX_U32 = 0xffff_ffff;

/** @default 1 GiB, the protocol's `max_frame_bytes` default. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024 * 1024;

/**
 * Encodes one message as a frame: a JSON frame when `blobs` is absent or empty, else a binary frame whose
 * blob region is `blobs.parts` in order (the offsets `Encoder.value` wrote into the message). One buffer,
 * the JSON written into it directly.
 * @param maxFrameBytes the receiver's limit on the payload (`N`).
 * @throws PythonAdapterError `PY_INVALID_ARGUMENT` when the payload would exceed `maxFrameBytes` (the
 *   receiver would treat it as a protocol error), or when `message` has no JSON form.
 * @example
 * ```ts
 * const blobs = blobList();
 * const args = encoder.value([Buffer.alloc(1 << 20)], blobs);
 * socket.write(encodeFrame({ id: 7, op: 'call', session: 's', module: 'zlib', fn: 'crc32', args }, blobs));
 * ```
 */
export function encodeFrame(message: object, blobs?: BlobList, maxFrameBytes: number = MAX_U32): Buffer {
  const json = JSON.stringify(message) as string | undefined;
  if (typeof json !== 'string' || json.charCodeAt(0) !== KIND_JSON) {
    throw adapterError(PythonAdapterErrorCode.InvalidArgument, 'a frame message must be a JSON object');
  }
  // JSON.stringify escapes lone surrogates, so the UTF-8 length is exact.
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  if (blobs === undefined || blobs.parts.length === 0) {
    checkSize(jsonBytes, maxFrameBytes);
    const frame = Buffer.allocUnsafe(4 + jsonBytes);
    frame.writeUInt32BE(jsonBytes, 0);
    frame.write(json, 4, jsonBytes, 'utf8');
    return frame;
  }
  let blobBytes = 0;
  for (const part of blobs.parts) blobBytes += part.byteLength;
  if (blobBytes !== blobs.size) {
    throw adapterError(
      PythonAdapterErrorCode.InvalidArgument,
      `blobs.size is ${blobs.size} but its parts hold ${blobBytes} bytes`,
    );
  }
  const payload = 5 + jsonBytes + blobBytes;
  checkSize(payload, maxFrameBytes);
  const frame = Buffer.allocUnsafe(4 + payload);
  frame.writeUInt32BE(payload, 0);
  frame[4] = KIND_BINARY;
  frame.writeUInt32BE(jsonBytes, 5);
  frame.write(json, 9, jsonBytes, 'utf8');
  let offset = 9 + jsonBytes;
  for (const part of blobs.parts) {
    frame.set(part, offset);
    offset += part.byteLength;
  }
  return frame;
}

function checkSize(payload: number, maxFrameBytes: number): void {
  const limit = Math.min(maxFrameBytes, MAX_U32);
  if (payload > limit) {
    throw adapterError(
      PythonAdapterErrorCode.InvalidArgument,
      `the message is ${payload} bytes framed, over the frame limit of ${limit} bytes (maxFrameBytes)`,
    );
  }
}

/** Options of {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /**
   * The largest payload (`N`) accepted; a larger length prefix is a protocol error, raised before
   * anything is buffered or allocated for the frame.
   * @default 1073741824 (1 GiB)
   */
  readonly maxFrameBytes?: number | undefined;
  /**
   * Called with each frame's message (a JSON object) and, for a binary frame, its blob region (a view of
   * the received bytes, never reused by the decoder). If it throws, the chunk's remaining frames are still
   * delivered, then `push` rethrows the first error (the decoder is not poisoned by it).
   */
  readonly onFrame: (message: Record<string, unknown>, blob: Uint8Array | undefined) => void;
}

/**
 * Decodes a byte stream of frames, split across chunks at arbitrary boundaries. Chunks are kept as they
 * arrive and joined only when a frame spanning several is complete; frames inside one chunk are decoded
 * from it without copying.
 *
 * After a protocol error the decoder is poisoned: every later `push` throws the same error.
 * @example
 * ```ts
 * const decoder = new FrameDecoder({ onFrame: (message, blob) => handle(message, blob) });
 * replies.on('data', (chunk: Buffer) => decoder.push(chunk));
 * ```
 */
export class FrameDecoder {
  readonly #maxFrameBytes: number;
  readonly #onFrame: (message: Record<string, unknown>, blob: Uint8Array | undefined) => void;
  /** Chunks (or their tails) of the incomplete frame at the head of the stream. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** The payload length of the incomplete frame, once its 4-byte prefix has arrived; -1 before. */
  #frameLength = -1;
  #error: PythonAdapterError | undefined;
  #callbackError: { error: unknown } | undefined;
  #pushing = false;

  /** @throws PythonAdapterError `PY_INVALID_ARGUMENT` for a bad `maxFrameBytes` or a missing `onFrame`. */
  constructor(options: FrameDecoderOptions) {
    const max = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw adapterError(PythonAdapterErrorCode.InvalidArgument, 'maxFrameBytes must be a positive integer');
    }
    if (typeof options.onFrame !== 'function') {
      throw adapterError(PythonAdapterErrorCode.InvalidArgument, 'FrameDecoder needs an onFrame function');
    }
    this.#maxFrameBytes = max;
    this.#onFrame = options.onFrame;
  }

  /** Bytes received and not yet decoded (the incomplete frame at the head of the stream). */
  get bufferedBytes(): number {
    return this.#pendingBytes;
  }

  /** The protocol error that poisoned the decoder, if any. */
  get error(): PythonAdapterError | undefined {
    return this.#error;
  }

  /**
   * Takes the next bytes of the stream and delivers every frame they complete, in order. The decoder
   * takes ownership of `chunk` (blobs may be views of it): do not modify it afterwards.
   * @throws PythonAdapterError `PY_PROTOCOL` for a length over `maxFrameBytes`, an empty frame, an unknown
   *   kind byte, a JSON length past the payload, malformed JSON, or JSON that is not an object (frames
   *   before the bad one are delivered first); the same error on every later call.
   * @throws whatever `onFrame` threw (after the chunk's other frames are delivered).
   */
  push(chunk: Buffer): void {
    if (this.#error !== undefined) throw this.#error;
    if (this.#pushing) {
      throw adapterError(PythonAdapterErrorCode.InvalidArgument, 'FrameDecoder.push called from onFrame');
    }
    if (chunk.length === 0) return;
    this.#pushing = true;
    try {
      if (this.#pendingBytes === 0) {
        this.#drain(chunk);
      } else {
        this.#pending.push(chunk);
        this.#pendingBytes += chunk.length;
        if (this.#frameLength < 0 && this.#pendingBytes >= 4)
          this.#frameLength = this.#checkLength(this.#peekLength());
        if (this.#frameLength >= 0 && this.#pendingBytes >= 4 + this.#frameLength) {
          const joined = Buffer.concat(this.#pending, this.#pendingBytes);
          this.#pending = [];
          this.#pendingBytes = 0;
          this.#frameLength = -1;
          this.#drain(joined);
        }
      }
    } catch (error) {
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#callbackError = undefined;
      this.#error = error as PythonAdapterError;
      throw error;
    } finally {
      this.#pushing = false;
    }
    const failed = this.#callbackError;
    if (failed !== undefined) {
      this.#callbackError = undefined;
      throw failed.error;
    }
  }

  /** Decodes the whole frames at the start of `buffer` (nothing pending) and keeps the rest. */
  #drain(buffer: Buffer): void {
    const end = buffer.length;
    let offset = 0;
    while (end - offset >= 4) {
      const length = this.#checkLength(buffer.readUInt32BE(offset));
      if (end - offset - 4 < length) {
        this.#frameLength = length;
        break;
      }
      this.#frame(buffer, offset + 4, offset + 4 + length);
      offset += 4 + length;
    }
    if (offset < end) {
      // Keep a view of the tail; copy it when it is a small part of a big buffer (not to pin the buffer).
      const tail = buffer.subarray(offset);
      this.#pending = [end > 65536 && tail.length < end >>> 1 ? Buffer.from(tail) : tail];
      this.#pendingBytes = tail.length;
    }
  }

  /** The length prefix at the head of the pending chunks (at least 4 bytes are pending). */
  #peekLength(): number {
    const first = this.#pending[0] as Buffer;
    if (first.length >= 4) return first.readUInt32BE(0);
    const head = Buffer.concat(this.#pending, 4);
    return head.readUInt32BE(0);
  }

  #checkLength(length: number): number {
    if (length > this.#maxFrameBytes) {
      throw adapterError(
        PythonAdapterErrorCode.Protocol,
        `frame of ${length} bytes is over maxFrameBytes (${this.#maxFrameBytes})`,
      );
    }
    if (length === 0) throw adapterError(PythonAdapterErrorCode.Protocol, 'empty frame (length 0)');
    return length;
  }

  /** Decodes the payload `buffer[start, end)` and delivers it. */
  #frame(buffer: Buffer, start: number, end: number): void {
    const kind = buffer[start];
    let message: unknown;
    let blob: Uint8Array | undefined;
    if (kind === KIND_JSON) {
      message = parse(buffer, start, end);
    } else if (kind === KIND_BINARY) {
      if (end - start < 5)
        throw adapterError(PythonAdapterErrorCode.Protocol, 'binary frame shorter than its header');
      const jsonBytes = buffer.readUInt32BE(start + 1);
      if (jsonBytes > end - start - 5) {
        throw adapterError(
          PythonAdapterErrorCode.Protocol,
          `binary frame's JSON length ${jsonBytes} is past its payload (${end - start - 5} bytes)`,
        );
      }
      message = parse(buffer, start + 5, start + 5 + jsonBytes);
      blob = buffer.subarray(start + 5 + jsonBytes, end);
    } else {
      throw adapterError(
        PythonAdapterErrorCode.Protocol,
        `unknown frame kind 0x${(kind ?? 0).toString(16).padStart(2, '0')}`,
      );
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      throw adapterError(PythonAdapterErrorCode.Protocol, 'frame JSON is not an object');
    }
    try {
      this.#onFrame(message as Record<string, unknown>, blob);
    } catch (error) {
      this.#callbackError ??= { error };
    }
  }
}

function parse(buffer: Buffer, start: number, end: number): unknown {
  try {
    return JSON.parse(buffer.toString('utf8', start, end));
  } catch (error) {
    throw adapterError(
      PythonAdapterErrorCode.Protocol,
      `malformed JSON in frame: ${(error as Error).message}`,
      error,
    );
  }
}
