/**
 * The seed's framing: a 4-byte big-endian unsigned length, then that many bytes of UTF-8 JSON.
 */

import { KernelFrameError } from './errors';
import { requestJson } from './request-json';
import type {
  DecoderLimits,
  FrameDecoder,
  KernelCodec,
  KernelReplyFrame,
  KernelRequest,
  KernelRequestFrame,
} from './types';
import { ChunkQueue, isJsonObject, keepFramesBefore, parseJsonBytes, toKernelRequest } from './wire-json';

/** Bytes of the length prefix. */
export const LENGTH_PREFIX_BYTES = 4;

/** Options of {@link lengthPrefixedJson}. */
export interface LengthPrefixedJsonOptions {
  /**
   * How replies find their request on a persistent connection. `id`: requests carry an `id` that the
   * daemon echoes in its reply object, so many may be in flight and answered in any order. `order`:
   * no `id` is sent, and the daemon answers in request order (for daemons that do not echo ids).
   * @default 'id'
   */
  readonly matching?: 'id' | 'order';
}

/**
 * The length-prefixed JSON codec (name `length-prefixed-json`): each frame is a 4-byte big-endian
 * unsigned length followed by that many bytes of UTF-8 JSON. A request is
 * `{"method", "params", "timestamp"[, "id"]}`; a reply is any JSON value, an object with an `id` in
 * persistent mode (the decoder takes the `id` out of the body).
 *
 * The decoders refuse a length prefix above `maxFrameBytes` (prefix included) as soon as its 4 bytes
 * arrive, before allocating anything; a zero length, bad UTF-8, bad JSON, and (requests) a value that
 * is not `{method: string, params: object}` are `malformed`.
 *
 * @example
 * ```ts
 * const transport = unixTransport({ path: '/run/me/kernel.sock', codec: lengthPrefixedJson(), mode: 'persistent' });
 * ```
 */
export function lengthPrefixedJson(options: LengthPrefixedJsonOptions = {}): KernelCodec {
  const matching = options.matching === 'order' ? 'order' : 'id';
  const withId = matching === 'id';
  return {
    name: 'length-prefixed-json',
    matching,
    encodeRequest(request: KernelRequest): Uint8Array {
      return frameJson(requestJson(request, withId));
    },
    encodeReply(reply: { readonly id?: number; readonly body: unknown }): Uint8Array {
      const { id, body } = reply;
      if (id === undefined || !withId) return frameJson(stringify(body));
      if (!isJsonObject(body))
        throw new KernelFrameError('malformed', 'a reply with an id must be a JSON object');
      return frameJson(withReplyId(body, id));
    },
    requestDecoder(limits: DecoderLimits): FrameDecoder<KernelRequestFrame> {
      return new LengthPrefixedDecoder(limits, (bytes, wireBytes) => ({
        request: toKernelRequest(parseJsonBytes(bytes, 'request frame')),
        wireBytes,
      }));
    },
    replyDecoder(limits: DecoderLimits): FrameDecoder<KernelReplyFrame> {
      return new LengthPrefixedDecoder(limits, (bytes, wireBytes) =>
        replyFrame(parseJsonBytes(bytes, 'reply frame'), wireBytes, withId),
      );
    },
  };
}

/** A JSON text with its 4-byte big-endian length in front. */
export function frameJson(json: string): Uint8Array {
  const size = Buffer.byteLength(json, 'utf8');
  const frame = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES + size);
  frame.writeUInt32BE(size, 0);
  frame.write(json, LENGTH_PREFIX_BYTES, 'utf8');
  return frame;
}

function stringify(body: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(body);
  } catch (error) {
    throw new KernelFrameError(
      'malformed',
      `reply body is not JSON-serialisable: ${(error as Error).message}`,
    );
  }
  if (json === undefined) throw new KernelFrameError('malformed', 'reply body is not JSON-serialisable');
  return json;
}

/** `{...body, id}` as JSON, without copying the body when it has no `id` of its own. */
function withReplyId(body: Record<string, unknown>, id: number): string {
  if (!Object.hasOwn(body, 'id')) {
    const json = stringify(body);
    if (json === '{}') return `{"id":${id}}`;
    if (json.charCodeAt(0) === 0x7b && json.charCodeAt(json.length - 1) === 0x7d)
      return `${json.slice(0, -1)},"id":${id}}`;
  }
  return stringify({ ...body, id });
}

/** The reply frame of a decoded JSON value: a numeric `id` is taken out of an object body. */
function replyFrame(body: unknown, wireBytes: number, withId: boolean): KernelReplyFrame {
  if (withId && isJsonObject(body)) {
    const id = body.id;
    if (typeof id === 'number') {
      // The encoder appends `id` last, and deleting the last-added property is cheap in V8.
      delete body.id;
      return { id, body, wireBytes };
    }
  }
  return { body, wireBytes };
}

/** Reads length-prefixed frames; `toFrame` gets each frame's payload (a view when possible). */
class LengthPrefixedDecoder<F> implements FrameDecoder<F> {
  readonly #limits: DecoderLimits;
  readonly #toFrame: (payload: Uint8Array, wireBytes: number) => F;
  readonly #queue = new ChunkQueue();
  /** Payload length announced by the header being completed; -1 while reading a header. */
  #payloadLength = -1;

  constructor(limits: DecoderLimits, toFrame: (payload: Uint8Array, wireBytes: number) => F) {
    this.#limits = limits;
    this.#toFrame = toFrame;
  }

  get pending(): number {
    return this.#queue.length + (this.#payloadLength >= 0 ? LENGTH_PREFIX_BYTES : 0);
  }

  push(chunk: Uint8Array): F[] {
    const frames: F[] = [];
    if (chunk.length === 0) return frames;
    try {
      this.#read(chunk, frames);
    } catch (error) {
      throw keepFramesBefore(error, frames);
    }
    return frames;
  }

  #read(chunk: Uint8Array, frames: F[]): void {
    if (this.#queue.length === 0 && this.#payloadLength < 0) {
      // Fast path: nothing held, so whole frames are read straight from the chunk.
      let offset = 0;
      while (chunk.length - offset >= LENGTH_PREFIX_BYTES) {
        const length = readUint32(chunk, offset);
        this.#check(length);
        const end = offset + LENGTH_PREFIX_BYTES + length;
        if (end > chunk.length) break;
        frames.push(this.#toFrame(chunk.subarray(offset + LENGTH_PREFIX_BYTES, end), end - offset));
        offset = end;
      }
      if (offset === chunk.length) return;
      chunk = chunk.subarray(offset);
    }
    const queue = this.#queue;
    queue.push(chunk);
    for (;;) {
      if (this.#payloadLength < 0) {
        if (queue.length < LENGTH_PREFIX_BYTES) return;
        const length = readUint32(queue.take(LENGTH_PREFIX_BYTES), 0);
        this.#check(length);
        this.#payloadLength = length;
      }
      const length = this.#payloadLength;
      if (queue.length < length) return;
      this.#payloadLength = -1;
      frames.push(this.#toFrame(queue.take(length), LENGTH_PREFIX_BYTES + length));
    }
  }

  #check(length: number): void {
    if (length === 0) throw new KernelFrameError('malformed', 'zero-length frame');
    const max = this.#limits.maxFrameBytes;
    if (LENGTH_PREFIX_BYTES + length > max)
      throw new KernelFrameError(
        'too_large',
        `frame of ${LENGTH_PREFIX_BYTES + length} bytes exceeds the limit of ${max} bytes`,
      );
  }
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return (
    ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>>
    0
  );
}
