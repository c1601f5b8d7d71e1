import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BlobList } from './codec';
import { encodeFrame, FrameDecoder } from './frame';

interface Sent {
  readonly message: Record<string, unknown>;
  readonly blobs: readonly Uint8Array[];
}

/** Messages as JSON objects; some with a blob region (binary frames), some with none (JSON frames). */
const sent: fc.Arbitrary<Sent> = fc.record({
  message: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
  blobs: fc.oneof(
    fc.constant([]),
    fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 3 }),
  ),
});

function frameOf({ message, blobs }: Sent): Buffer {
  const list: BlobList = { parts: [...blobs], size: blobs.reduce((sum, part) => sum + part.length, 0) };
  return encodeFrame(message, list);
}

/** What the receiver should see: the message as JSON round-trips it, and the concatenated blobs. */
function expected({ message, blobs }: Sent) {
  return {
    message: JSON.parse(JSON.stringify(message)) as unknown,
    blob: blobs.length > 0 ? Buffer.concat(blobs).toString('hex') : undefined,
  };
}

function receive(chunks: Iterable<Buffer>) {
  const got: { message: unknown; blob: string | undefined }[] = [];
  const decoder = new FrameDecoder({
    onFrame: (message, blob) =>
      got.push({ message, blob: blob === undefined ? undefined : Buffer.from(blob).toString('hex') }),
  });
  for (const chunk of chunks) decoder.push(chunk);
  return { got, buffered: decoder.bufferedBytes };
}

/** Splits `stream` at the given cut points (any positions, in any order, duplicates allowed). */
function split(stream: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const point of [...points, stream.length]) {
    chunks.push(stream.subarray(from, point));
    from = point;
  }
  return chunks;
}

describe('frame stream (property)', () => {
  it('decodes the same frames however the byte stream is split into chunks', () => {
    fc.assert(
      fc.property(
        fc.array(sent, { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (messages, cuts) => {
          const stream = Buffer.concat(messages.map(frameOf));
          const { got, buffered } = receive(split(stream, cuts));
          expect(got).toEqual(messages.map(expected));
          expect(buffered).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('decodes many frames pushed as one chunk, and byte by byte', () => {
    fc.assert(
      fc.property(fc.array(sent, { minLength: 1, maxLength: 40 }), (messages) => {
        const stream = Buffer.concat(messages.map(frameOf));
        const want = messages.map(expected);
        expect(receive([stream]).got).toEqual(want);
        const bytes = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
        expect(receive(bytes).got).toEqual(want);
      }),
      { numRuns: 60 },
    );
  });

  it('holds back exactly the bytes of an incomplete last frame', () => {
    fc.assert(
      fc.property(fc.array(sent, { minLength: 1, maxLength: 6 }), sent, fc.nat(), (complete, last, cut) => {
        const head = Buffer.concat(complete.map(frameOf));
        const tail = frameOf(last);
        const partial = tail.subarray(0, cut % tail.length);
        const { got, buffered } = receive(split(Buffer.concat([head, partial]), [cut, cut * 7]));
        expect(got).toEqual(complete.map(expected));
        expect(buffered).toBe(partial.length);
      }),
    );
  });
});
