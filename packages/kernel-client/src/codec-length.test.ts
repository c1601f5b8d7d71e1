import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { frameJson, lengthPrefixedJson } from './codec-length';
import { KernelFrameError } from './errors';
import { testKernelCodec } from './testing';
import type { KernelReplyFrame } from './types';
import { framesBefore } from './wire-json';

testKernelCodec('length-prefixed-json', () => lengthPrefixedJson());
testKernelCodec('length-prefixed-json, order matching', () => lengthPrefixedJson({ matching: 'order' }));

const LIMIT = { maxFrameBytes: 1_048_576 };
const bytes = (...values: number[]) => Uint8Array.from(values);
const json = (frame: Uint8Array) => new TextDecoder().decode(frame.subarray(4));

function frameError(fn: () => unknown): KernelFrameError {
  try {
    fn();
  } catch (error) {
    expect(KernelFrameError.isInstance(error)).toBe(true);
    return error as KernelFrameError;
  }
  throw new Error('expected a KernelFrameError');
}

/** A JSON value as it reads back from JSON (`-0` → `0`, `undefined` dropped). */
const jsonObject = fc
  .dictionary(
    fc.string().filter((key) => key !== '__proto__'),
    fc.jsonValue(),
  )
  .map((value) => JSON.parse(JSON.stringify(value)) as Record<string, unknown>);

describe('lengthPrefixedJson: encoding', () => {
  it('frames a request as a 4-byte big-endian length and UTF-8 JSON, id only when given', () => {
    const codec = lengthPrefixedJson();
    const frame = codec.encodeRequest({ method: 'PING', params: { é: 'ü' }, timestamp: 1.5 });
    const body = '{"method":"PING","params":{"é":"ü"},"timestamp":1.5}';
    const size = Buffer.byteLength(body);
    expect([...frame.subarray(0, 4)]).toEqual([0, 0, size >> 8, size & 0xff]);
    expect(json(frame)).toBe(body);
    const withId = codec.encodeRequest({ method: 'PING', params: {}, timestamp: 2, id: 7 });
    expect(JSON.parse(json(withId))).toEqual({ method: 'PING', params: {}, timestamp: 2, id: 7 });
  });

  it('never sends an id with order matching', () => {
    const codec = lengthPrefixedJson({ matching: 'order' });
    expect(codec.matching).toBe('order');
    const frame = codec.encodeRequest({ method: 'PING', params: {}, timestamp: 2, id: 7 });
    expect(JSON.parse(json(frame))).toEqual({ method: 'PING', params: {}, timestamp: 2 });
  });

  it('puts the id into the reply body, over any id of its own', () => {
    const codec = lengthPrefixedJson();
    expect(JSON.parse(json(codec.encodeReply({ id: 3, body: {} })))).toEqual({ id: 3 });
    expect(JSON.parse(json(codec.encodeReply({ id: 3, body: { ok: true } })))).toEqual({ ok: true, id: 3 });
    expect(JSON.parse(json(codec.encodeReply({ id: 3, body: { id: 'mine', ok: 1 } })))).toEqual({
      id: 3,
      ok: 1,
    });
    expect(json(codec.encodeReply({ body: [1, 2] }))).toBe('[1,2]');
  });

  it('refuses a reply with an id whose body is not an object, and a body JSON cannot carry', () => {
    const codec = lengthPrefixedJson();
    expect(frameError(() => codec.encodeReply({ id: 1, body: [1] })).reason).toBe('malformed');
    expect(frameError(() => codec.encodeReply({ body: undefined })).reason).toBe('malformed');
    expect(frameError(() => codec.encodeReply({ body: { big: 1n } })).reason).toBe('malformed');
  });
});

describe('lengthPrefixedJson: reply decoding', () => {
  it('takes a numeric id out of an object body, and leaves other bodies as they are', () => {
    const decoder = lengthPrefixedJson().replyDecoder(LIMIT);
    const frames = decoder.push(
      Buffer.concat([
        frameJson('{"ok":true,"id":42}'),
        frameJson('{"id":"text","ok":1}'),
        frameJson('[1,2]'),
        frameJson('"x"'),
        frameJson('42'),
      ]),
    );
    expect(frames).toEqual([
      { id: 42, body: { ok: true }, wireBytes: 4 + 19 },
      { body: { id: 'text', ok: 1 }, wireBytes: 4 + 20 },
      { body: [1, 2], wireBytes: 9 },
      { body: 'x', wireBytes: 7 },
      { body: 42, wireBytes: 6 },
    ]);
  });

  it('leaves the id in the body with order matching', () => {
    const [frame] = lengthPrefixedJson({ matching: 'order' }).replyDecoder(LIMIT).push(frameJson('{"id":1}'));
    expect(frame).toEqual({ body: { id: 1 }, wireBytes: 12 });
  });

  it('refuses a 0xFFFFFFFF length prefix as soon as its 4 bytes arrive, without allocating', () => {
    globalThis.gc?.();
    const before = process.memoryUsage().arrayBuffers;
    const decoder = lengthPrefixedJson().replyDecoder(LIMIT);
    expect(decoder.push(bytes(0xff))).toEqual([]);
    expect(decoder.push(bytes(0xff, 0xff))).toEqual([]);
    const error = frameError(() => decoder.push(bytes(0xff)));
    expect(error.reason).toBe('too_large');
    expect(error.message).toContain('4294967299');
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
    const whole = lengthPrefixedJson().replyDecoder(LIMIT);
    expect(frameError(() => whole.push(bytes(0xff, 0xff, 0xff, 0xff, 0x7b))).reason).toBe('too_large');
  });

  it('counts the prefix in the limit', () => {
    const frame = frameJson('{"a":1}');
    expect(lengthPrefixedJson().replyDecoder({ maxFrameBytes: frame.length }).push(frame)).toHaveLength(1);
    const small = lengthPrefixedJson().replyDecoder({ maxFrameBytes: frame.length - 1 });
    expect(frameError(() => small.push(frame.subarray(0, 4))).reason).toBe('too_large');
  });

  it('refuses a zero-length frame, bad UTF-8 and bad JSON as malformed', () => {
    const decode = (frame: Uint8Array) => () => lengthPrefixedJson().replyDecoder(LIMIT).push(frame);
    expect(frameError(decode(bytes(0, 0, 0, 0))).reason).toBe('malformed');
    expect(frameError(decode(bytes(0, 0, 0, 2, 0xc3, 0x28))).reason).toBe('malformed');
    expect(frameError(decode(bytes(0, 0, 0, 3, 0xed, 0xa0, 0x80))).reason).toBe('malformed');
    expect(frameError(decode(frameJson('{"a":'))).reason).toBe('malformed');
  });

  it('keeps the frames read before a bad one, for the caller to deliver them first', () => {
    const decoder = lengthPrefixedJson().replyDecoder(LIMIT);
    const error = frameError(() =>
      decoder.push(
        Buffer.concat([
          frameJson('{"id":1,"ok":true}'),
          frameJson('{"id":2}'),
          bytes(0xff, 0xff, 0xff, 0xff),
        ]),
      ),
    );
    expect(error.reason).toBe('too_large');
    expect(framesBefore<KernelReplyFrame>(error).map((frame) => frame.id)).toEqual([1, 2]);
    expect(framesBefore(new Error('other'))).toEqual([]);
  });

  it('reads a header split over chunks, and counts the held bytes of an incomplete frame', () => {
    const decoder = lengthPrefixedJson().replyDecoder(LIMIT);
    const frame = frameJson('{"state":"running","id":1}');
    expect(decoder.push(frame.subarray(0, 2))).toEqual([]);
    expect(decoder.pending).toBe(2);
    expect(decoder.push(frame.subarray(2, 4))).toEqual([]);
    expect(decoder.pending).toBe(4);
    expect(decoder.push(frame.subarray(4, 10))).toEqual([]);
    expect(decoder.pending).toBe(10);
    expect(decoder.push(frame.subarray(10))).toEqual([
      { id: 1, body: { state: 'running' }, wireBytes: frame.length },
    ]);
    expect(decoder.pending).toBe(0);
  });

  it('stays linear when a large frame arrives one byte at a time', () => {
    const frame = frameJson(JSON.stringify({ blob: 'z'.repeat(256 * 1024) }));
    const decoder = lengthPrefixedJson().replyDecoder({ maxFrameBytes: 1_048_576 });
    const started = performance.now();
    let frames: KernelReplyFrame[] = [];
    for (let i = 0; i < frame.length; i++) frames = decoder.push(frame.subarray(i, i + 1));
    // Quadratic copying would move ~34 GB here and take minutes.
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(frames).toHaveLength(1);
    expect((frames[0]!.body as { blob: string }).blob).toHaveLength(256 * 1024);
  });
});

describe('lengthPrefixedJson: request decoding', () => {
  it('decodes {method, params, timestamp, id}, a missing timestamp as 0', () => {
    const decoder = lengthPrefixedJson().requestDecoder(LIMIT);
    const frames = decoder.push(
      Buffer.concat([
        frameJson('{"method":"PING","params":{},"timestamp":1.5,"id":9}'),
        frameJson('{"method":"X","params":{"a":[1]}}'),
      ]),
    );
    expect(frames.map((frame) => frame.request)).toEqual([
      { method: 'PING', params: {}, timestamp: 1.5, id: 9 },
      { method: 'X', params: { a: [1] }, timestamp: 0 },
    ]);
  });

  it.each([
    ['an array', '[1]'],
    ['a string', '"PING"'],
    ['no method', '{"params":{}}'],
    ['a numeric method', '{"method":1,"params":{}}'],
    ['an empty method', '{"method":"","params":{}}'],
    ['no params', '{"method":"PING"}'],
    ['array params', '{"method":"PING","params":[]}'],
    ['null params', '{"method":"PING","params":null}'],
    ['a string timestamp', '{"method":"PING","params":{},"timestamp":"now"}'],
    ['a negative id', '{"method":"PING","params":{},"id":-1}'],
    ['a fractional id', '{"method":"PING","params":{},"id":1.5}'],
  ])('refuses a request that is %s as malformed', (_what, text) => {
    const decoder = lengthPrefixedJson().requestDecoder(LIMIT);
    expect(frameError(() => decoder.push(frameJson(text))).reason).toBe('malformed');
  });
});

describe('lengthPrefixedJson: properties', () => {
  it('round-trips any JSON object reply body with any id', () => {
    const codec = lengthPrefixedJson();
    fc.assert(
      fc.property(
        jsonObject,
        fc.option(fc.integer({ min: 0, max: 0xffff_ffff }), { nil: undefined }),
        (body, id) => {
          const [frame] = codec.replyDecoder(LIMIT).push(codec.encodeReply({ id, body }));
          const expected =
            id === undefined
              ? body
              : Object.fromEntries(Object.entries(body).filter(([key]) => key !== 'id'));
          if (id === undefined && typeof body.id === 'number') {
            // A body with its own numeric id reads back with that id taken out.
            expect(frame?.id).toBe(body.id);
            return;
          }
          expect(frame?.body).toEqual(expected);
          expect(frame?.id).toBe(id);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('decodes any split of a stream of request frames into the same frames', () => {
    const codec = lengthPrefixedJson();
    const requests = fc.array(
      fc.record({
        method: fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,20}$/),
        params: jsonObject,
        timestamp: fc.integer({ min: 0, max: 2 ** 40 }),
        id: fc.integer({ min: 0, max: 0xffff_ffff }),
      }),
      { minLength: 1, maxLength: 8 },
    );
    fc.assert(
      fc.property(requests, fc.array(fc.nat(), { maxLength: 16 }), (sent, cuts) => {
        const stream = Buffer.concat(sent.map((request) => codec.encodeRequest(request)));
        const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b);
        const decoder = codec.requestDecoder(LIMIT);
        const got = [];
        let start = 0;
        for (const point of [...points, stream.length]) {
          got.push(...decoder.push(stream.subarray(start, point)));
          start = point;
        }
        expect(got.map((frame) => frame.request)).toEqual(sent);
        expect(decoder.pending).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});
