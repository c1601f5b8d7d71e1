import { describe, expect, it, vi } from 'vitest';
import { blobList, Decoder, Encoder } from './codec';
import { PythonAdapterError } from './errors';
import { encodeFrame, FrameDecoder } from './frame';

type Frame = { message: Record<string, unknown>; blob: Uint8Array | undefined };

function collector(options: { maxFrameBytes?: number } = {}) {
  const frames: Frame[] = [];
  const decoder = new FrameDecoder({
    ...options,
    onFrame: (message, blob) => frames.push({ message, blob }),
  });
  return { frames, decoder };
}

/** A raw frame: the 4-byte length, then `payload`. */
function raw(payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(payload.length);
  return Buffer.concat([head, payload]);
}

function binaryPayload(json: string, blob: Buffer, jsonLength = Buffer.byteLength(json)): Buffer {
  const head = Buffer.alloc(5);
  head[0] = 1;
  head.writeUInt32BE(jsonLength, 1);
  return Buffer.concat([head, Buffer.from(json), blob]);
}

function caught(fn: () => unknown): PythonAdapterError {
  try {
    fn();
  } catch (error) {
    expect(PythonAdapterError.isInstance(error)).toBe(true);
    return error as PythonAdapterError;
  }
  throw new Error('expected a throw');
}

describe('encodeFrame', () => {
  it('writes a JSON frame: the UTF-8 length, then the JSON', () => {
    const frame = encodeFrame({ id: 1, text: 'é😀' });
    const json = '{"id":1,"text":"é😀"}';
    expect(frame.readUInt32BE(0)).toBe(Buffer.byteLength(json));
    expect(frame.length).toBe(4 + Buffer.byteLength(json));
    expect(frame.subarray(4).toString()).toBe(json);
  });

  it('escapes lone surrogates, so the length stays exact', () => {
    const frame = encodeFrame({ s: '\ud800x' });
    expect(frame.subarray(4).toString()).toBe('{"s":"\\ud800x"}');
    expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
  });

  it('writes a binary frame when there are blobs', () => {
    const blobs = blobList();
    const args = new Encoder({ binaryThreshold: 2 }).value(
      [Buffer.from('abc'), new Uint8Array([9, 8])],
      blobs,
    );
    const frame = encodeFrame({ id: 2, args }, blobs);
    const json = JSON.stringify({ id: 2, args });
    const jsonBytes = Buffer.byteLength(json);
    expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
    expect(frame[4]).toBe(0x01);
    expect(frame.readUInt32BE(5)).toBe(jsonBytes);
    expect(frame.subarray(9, 9 + jsonBytes).toString()).toBe(json);
    expect([...frame.subarray(9 + jsonBytes)]).toEqual([0x61, 0x62, 0x63, 9, 8]);
  });

  it('writes a JSON frame for an empty blob list', () => {
    expect(encodeFrame({ a: 1 }, blobList())[4]).toBe(0x7b);
  });

  it('refuses inconsistent blob lists, non-objects and frames over the limit', () => {
    expect(caught(() => encodeFrame({}, { parts: [new Uint8Array(3)], size: 2 })).code).toBe(
      'PY_INVALID_ARGUMENT',
    );
    expect(caught(() => encodeFrame([1, 2])).code).toBe('PY_INVALID_ARGUMENT');
    expect(caught(() => encodeFrame({ text: 'x'.repeat(100) }, undefined, 50)).code).toBe(
      'PY_INVALID_ARGUMENT',
    );
    expect(encodeFrame({ text: 'x'.repeat(10) }, undefined, 50).length).toBeLessThanOrEqual(54);
  });
});

describe('FrameDecoder', () => {
  it('decodes JSON and binary frames, several to a chunk', () => {
    const { frames, decoder } = collector();
    const blobs = blobList();
    blobs.parts.push(Buffer.from('BLOB'));
    blobs.size = 4;
    decoder.push(
      Buffer.concat([encodeFrame({ id: 1 }), encodeFrame({ id: 2 }, blobs), encodeFrame({ id: 3 })]),
    );
    expect(frames.map((frame) => frame.message)).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    expect(frames[0]?.blob).toBeUndefined();
    expect(Buffer.from(frames[1]?.blob ?? []).toString()).toBe('BLOB');
    expect(frames[2]?.blob).toBeUndefined();
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('hands out blobs as views of the chunk when the frame is inside one chunk', () => {
    const { frames, decoder } = collector();
    const chunk = raw(binaryPayload('{}', Buffer.from('xyz')));
    decoder.push(chunk);
    expect(frames[0]?.blob?.buffer).toBe(chunk.buffer);
  });

  it('gives an empty blob region for a binary frame without blob bytes', () => {
    const { frames, decoder } = collector();
    decoder.push(raw(binaryPayload('{"a":1}', Buffer.alloc(0))));
    expect(frames[0]?.message).toEqual({ a: 1 });
    expect(frames[0]?.blob?.length).toBe(0);
  });

  it('reassembles frames split at every byte, counting buffered bytes', () => {
    const { frames, decoder } = collector();
    const stream = Buffer.concat([encodeFrame({ id: 1, s: 'héllo' }), encodeFrame({ id: 2 })]);
    const firstLength = stream.readUInt32BE(0) + 4;
    for (let i = 0; i < stream.length; i++) {
      decoder.push(stream.subarray(i, i + 1));
      if (i + 1 < firstLength) expect(decoder.bufferedBytes).toBe(i + 1);
    }
    expect(frames.map((frame) => frame.message)).toEqual([{ id: 1, s: 'héllo' }, { id: 2 }]);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('ignores empty chunks', () => {
    const { frames, decoder } = collector();
    decoder.push(Buffer.alloc(0));
    decoder.push(encodeFrame({ ok: true }));
    expect(frames).toHaveLength(1);
  });

  it('refuses a length over maxFrameBytes from the prefix alone, before allocating', () => {
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    const alloc = vi.spyOn(Buffer, 'alloc');
    const concat = vi.spyOn(Buffer, 'concat');
    const { frames, decoder } = collector();
    decoder.push(Buffer.from([0xff, 0xff]));
    const error = caught(() => decoder.push(Buffer.from([0xff, 0xff])));
    expect(error.code).toBe('PY_PROTOCOL');
    expect(error.message).toContain('4294967295');
    const sizes = [...allocUnsafe.mock.calls, ...alloc.mock.calls].map(([size]) => size);
    expect(sizes.every((size) => size < 1024)).toBe(true);
    expect(concat.mock.calls.every(([, total]) => (total ?? 0) <= 4)).toBe(true);
    expect(decoder.bufferedBytes).toBe(0);
    expect(frames).toHaveLength(0);
  });

  it('applies a configured maxFrameBytes', () => {
    const { decoder } = collector({ maxFrameBytes: 10 });
    expect(() => decoder.push(encodeFrame({ a: 1 }))).not.toThrow();
    expect(caught(() => decoder.push(encodeFrame({ text: 'x'.repeat(20) }))).code).toBe('PY_PROTOCOL');
  });

  it.each([
    ['an unknown kind byte', raw(Buffer.from('[1]')), 'unknown frame kind 0x5b'],
    ['an empty frame', Buffer.alloc(4), 'empty frame'],
    ['malformed JSON', raw(Buffer.from('{"a":')), 'malformed JSON'],
    ['JSON that is not an object', raw(binaryPayload('[1]', Buffer.alloc(0))), 'not an object'],
    ['null JSON', raw(binaryPayload('null', Buffer.alloc(0))), 'not an object'],
    ['a JSON length past the payload', raw(binaryPayload('{}', Buffer.from('ab'), 5)), 'past its payload'],
    ['a binary frame shorter than its header', raw(Buffer.from([1, 0, 0])), 'shorter than its header'],
  ])('refuses %s with PY_PROTOCOL and stays poisoned', (_label, bytes, text) => {
    const { frames, decoder } = collector();
    const error = caught(() => decoder.push(Buffer.concat([encodeFrame({ before: true }), bytes])));
    expect(error.code).toBe('PY_PROTOCOL');
    expect(error.message).toContain(text);
    expect(frames.map((frame) => frame.message)).toEqual([{ before: true }]);
    expect(decoder.error).toBe(error);
    let again: unknown;
    try {
      decoder.push(encodeFrame({ after: true }));
    } catch (thrown) {
      again = thrown;
    }
    expect(again).toBe(error);
    expect(frames).toHaveLength(1);
  });

  it('delivers the rest of the chunk when onFrame throws, then rethrows, without poisoning', () => {
    const seen: unknown[] = [];
    const boom = new Error('handler failed');
    const decoder = new FrameDecoder({
      onFrame: (message) => {
        seen.push(message.id);
        if (message.id === 1) throw boom;
      },
    });
    expect(() => decoder.push(Buffer.concat([encodeFrame({ id: 1 }), encodeFrame({ id: 2 })]))).toThrow(boom);
    expect(seen).toEqual([1, 2]);
    expect(decoder.error).toBeUndefined();
    decoder.push(encodeFrame({ id: 3 }));
    expect(seen).toEqual([1, 2, 3]);
  });

  it('refuses a push from inside onFrame', () => {
    let inner: unknown;
    const decoder: FrameDecoder = new FrameDecoder({
      onFrame: () => {
        try {
          decoder.push(encodeFrame({}));
        } catch (error) {
          inner = error;
        }
      },
    });
    decoder.push(encodeFrame({}));
    expect((inner as PythonAdapterError).code).toBe('PY_INVALID_ARGUMENT');
  });

  it('validates its options', () => {
    const onFrame = () => {};
    expect(caught(() => new FrameDecoder({ maxFrameBytes: 0, onFrame })).code).toBe('PY_INVALID_ARGUMENT');
    expect(caught(() => new FrameDecoder({ maxFrameBytes: 1.5, onFrame })).code).toBe('PY_INVALID_ARGUMENT');
    expect(caught(() => new FrameDecoder({ onFrame: undefined as unknown as typeof onFrame })).code).toBe(
      'PY_INVALID_ARGUMENT',
    );
    expect(new FrameDecoder({ maxFrameBytes: undefined, onFrame }).bufferedBytes).toBe(0);
  });

  it('carries encoded values end to end (encoder → frame → decoder)', () => {
    const encoder = new Encoder({ binaryThreshold: 8 });
    const decoder = new Decoder({ onRef: () => null });
    const blobs = blobList();
    const big = Buffer.alloc(100, 7);
    const result = encoder.value({ small: Buffer.from('hi'), big, n: 2n ** 80n, z: -0 }, blobs);
    const stream = encodeFrame({ id: 9, ok: true, result }, blobs);
    const values: unknown[] = [];
    const frames = new FrameDecoder({
      onFrame: (message, blob) => values.push(decoder.value(message.result, blob)),
    });
    frames.push(stream.subarray(0, 7));
    frames.push(stream.subarray(7, 60));
    frames.push(stream.subarray(60));
    expect(values).toHaveLength(1);
    const value = values[0] as { small: Buffer; big: Buffer; n: bigint; z: number };
    expect(value.small.toString()).toBe('hi');
    expect(value.big.equals(big)).toBe(true);
    expect(value.n).toBe(2n ** 80n);
    expect(Object.is(value.z, -0)).toBe(true);
  });
});
