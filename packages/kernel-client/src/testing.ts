/**
 * Conformance suites for codec and transport plugins (`@trestle/kernel-client/testing`). They run
 * under vitest (an optional peer dependency): call them at the top level of a test file.
 */
import { describe, expect, it } from 'vitest';
import { KernelFrameError, KernelTransportError, type TransportFailureKind } from './errors';
import type { KernelMethods } from './server-dispatch';
import { KernelMethodError } from './server-method-error';
import type {
  FrameDecoder,
  KernelCodec,
  KernelParams,
  KernelReplyFrame,
  KernelRequest,
  KernelRequestFrame,
  KernelTransport,
  SendOptions,
  TransportReply,
} from './types';

/** A small seeded PRNG (mulberry32): the suites are deterministic for a given seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const KEYS = ['a', 'b', 'name', 'mode', 'count', 'items', 'nested', 'é', 'key with space', '中文', 'x_y'];
const STRINGS = [
  '',
  'plain',
  'é ü ß',
  '中文字符',
  '😀 emoji',
  'quote " and \\ backslash',
  'tab\tand\nnewline',
  '\u0000',
];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

function randomString(random: () => number): string {
  if (random() < 0.5) return pick(random, STRINGS);
  const length = Math.floor(random() * 24);
  let text = '';
  for (let i = 0; i < length; i++) {
    const roll = random();
    if (roll < 0.7) text += String.fromCharCode(0x20 + Math.floor(random() * 95));
    else if (roll < 0.85) text += String.fromCharCode(0xa0 + Math.floor(random() * 0x700));
    else if (roll < 0.95) text += String.fromCodePoint(0x1f300 + Math.floor(random() * 0x300));
    else text += String.fromCharCode(Math.floor(random() * 0x20));
  }
  return text;
}

/** A random JSON value, as it reads back from JSON (no `-0`, no `undefined`). */
export function randomJsonValue(random: () => number, depth = 3): unknown {
  const roll = random();
  if (depth <= 0 || roll < 0.55) {
    const kind = Math.floor(random() * 5);
    if (kind === 0) return null;
    if (kind === 1) return random() < 0.5;
    if (kind === 2) return Math.floor((random() - 0.5) * 2 ** 40);
    if (kind === 3) return Number(((random() - 0.5) * 1e6).toPrecision(12)) || 0;
    return randomString(random);
  }
  if (roll < 0.75)
    return Array.from({ length: Math.floor(random() * 4) }, () => randomJsonValue(random, depth - 1));
  return randomObject(random, depth - 1);
}

/** A random JSON object whose keys avoid `exclude`. */
export function randomObject(random: () => number, depth = 2, exclude: readonly string[] = []): KernelParams {
  const object: Record<string, unknown> = {};
  const size = Math.floor(random() * 5);
  for (let i = 0; i < size; i++) {
    const key = random() < 0.8 ? pick(random, KEYS) : randomString(random);
    if (exclude.includes(key) || key === '__proto__') continue;
    object[key] = randomJsonValue(random, depth);
  }
  return object;
}

function randomMethod(random: () => number): string {
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  let method = pick(random, [...letters]);
  const length = Math.floor(random() * 12);
  for (let i = 0; i < length; i++) method += pick(random, [...`${letters}0123456789_`]);
  return method;
}

/** Splits `bytes` into chunks at random cut points (some empty-free, some one byte long). */
function randomSplit(random: () => number, bytes: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const mostly = random() < 0.3 ? 1 : 1 + Math.floor(random() * 64);
  while (offset < bytes.length) {
    const size = Math.min(bytes.length - offset, 1 + Math.floor(random() * mostly * 2));
    chunks.push(bytes.slice(offset, offset + size));
    offset += size;
  }
  return chunks;
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function feed<F>(decoder: FrameDecoder<F>, chunks: readonly Uint8Array[]): F[] {
  const frames: F[] = [];
  for (const chunk of chunks) frames.push(...decoder.push(chunk));
  return frames;
}

/** The `KernelFrameError` thrown by `fn` (fails the test if it returns or throws something else). */
function frameErrorOf(fn: () => unknown): KernelFrameError {
  try {
    fn();
  } catch (error) {
    expect(KernelFrameError.isInstance(error), `expected a KernelFrameError, got ${String(error)}`).toBe(
      true,
    );
    return error as KernelFrameError;
  }
  throw new Error('expected a KernelFrameError, nothing was thrown');
}

/** Replaces the first occurrence of `search` in `bytes` by `replacement` (same length). */
function replaceBytes(bytes: Uint8Array, search: string, replacement: Uint8Array): Uint8Array {
  const needle = new TextEncoder().encode(search);
  expect(replacement.length).toBe(needle.length);
  outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    const out = new Uint8Array(bytes); // a copy (Buffer#slice would be a view)
    out.set(replacement, i);
    return out;
  }
  throw new Error(`the encoded frame does not contain ${JSON.stringify(search)} as UTF-8`);
}

/** Options of {@link testKernelCodec}. */
export interface KernelCodecSuiteOptions {
  /**
   * Random cases per property.
   * @default 200
   */
  readonly runs?: number;
  /**
   * Seed of the random cases (the suite is deterministic for a seed).
   * @default 0x5eed
   */
  readonly seed?: number;
}

const BIG_LIMIT = 16 * 1024 * 1024;

/**
 * The conformance suite every `KernelCodec` must pass (the built-in `lengthPrefixedJson()` and
 * `lineCodec()` do). It checks, with seeded random cases:
 * - requests and replies round-trip (method, params, and `id` when the codec matches by id; reply
 *   bodies that are not error replies exactly; error replies keep `error`, `code` and their message);
 * - any split of a stream of frames into chunks decodes to the same frames, and `pending` counts an
 *   incomplete frame;
 * - a frame over `maxFrameBytes` is `too_large` before more than the limit (plus one chunk) is held,
 *   a frame exactly at the limit is accepted; bad UTF-8 and bad JSON are `malformed`.
 *
 * Method names in the cases are uppercase (`[A-Z][A-Z0-9_]*`), since line codecs change case.
 *
 * @example
 * ```ts
 * import { testKernelCodec } from '@trestle/kernel-client/testing';
 * testKernelCodec('my-codec', () => myCodec());
 * ```
 */
export function testKernelCodec(
  name: string,
  factory: () => KernelCodec,
  options: KernelCodecSuiteOptions = {},
): void {
  const { runs = 200, seed = 0x5eed } = options;

  describe(`KernelCodec conformance: ${name}`, () => {
    const request = (random: () => number, byId: boolean, id: number): KernelRequest => {
      const base = { method: randomMethod(random), params: randomObject(random), timestamp: 1_700_000_000.5 };
      return byId ? { ...base, id } : base;
    };
    const replyBody = (random: () => number) => randomObject(random, 2, ['id', 'error']);

    it('names itself and says how replies are matched', () => {
      const codec = factory();
      expect(typeof codec.name).toBe('string');
      expect(codec.name.length).toBeGreaterThan(0);
      expect(['id', 'order']).toContain(codec.matching);
    });

    it('round-trips requests: method, params, and id when matching by id', () => {
      const codec = factory();
      const byId = codec.matching === 'id';
      const random = seededRandom(seed);
      for (let run = 0; run < runs; run++) {
        const sent = request(random, byId, (run * 2_654_435_761) >>> 0);
        const bytes = codec.encodeRequest(sent);
        const decoder = codec.requestDecoder({ maxFrameBytes: BIG_LIMIT });
        const frames = decoder.push(bytes);
        expect(frames).toHaveLength(1);
        const got = frames[0]!;
        expect(got.request.method).toBe(sent.method);
        expect(got.request.params).toEqual(sent.params);
        if (byId) expect(got.request.id).toBe(sent.id);
        expect(got.wireBytes).toBe(bytes.length);
        expect(decoder.pending).toBe(0);
      }
    });

    it('round-trips reply bodies exactly, with their id when matching by id', () => {
      const codec = factory();
      const byId = codec.matching === 'id';
      const random = seededRandom(seed + 1);
      for (let run = 0; run < runs; run++) {
        const body = replyBody(random);
        const id = byId ? run + 1 : undefined;
        const bytes = codec.encodeReply({ id, body });
        const decoder = codec.replyDecoder({ maxFrameBytes: BIG_LIMIT });
        const frames = decoder.push(bytes);
        expect(frames).toHaveLength(1);
        expect(frames[0]!.body).toEqual(body);
        if (byId) expect(frames[0]!.id).toBe(id);
        expect(frames[0]!.wireBytes).toBe(bytes.length);
      }
    });

    it('keeps an error reply recognisable: a truthy error, its code and its message', () => {
      const codec = factory();
      const id = codec.matching === 'id' ? 7 : undefined;
      const bytes = codec.encodeReply({
        id,
        body: { error: true, code: 'POLICY_REJECTED', message: 'not today' },
      });
      const [frame] = codec.replyDecoder({ maxFrameBytes: BIG_LIMIT }).push(bytes);
      const body = frame?.body as Record<string, unknown>;
      expect(body.error).toBeTruthy();
      expect(body.code).toBe('POLICY_REJECTED');
      expect(String(body.message)).toContain('not today');
      if (id !== undefined) expect(frame?.id).toBe(id);
    });

    it('decodes any split of a stream of frames into the same frames', () => {
      const codec = factory();
      const byId = codec.matching === 'id';
      const random = seededRandom(seed + 2);
      for (let run = 0; run < runs; run++) {
        const count = 1 + Math.floor(random() * 6);
        const requests = Array.from({ length: count }, (_, i) => request(random, byId, i + 1));
        const replies = Array.from({ length: count }, (_, i) => ({
          id: byId ? i + 1 : undefined,
          body: replyBody(random),
        }));
        const requestStream = concatBytes(requests.map((r) => codec.encodeRequest(r)));
        const replyStream = concatBytes(replies.map((r) => codec.encodeReply(r)));
        const whole = codec.requestDecoder({ maxFrameBytes: BIG_LIMIT }).push(requestStream);
        const requestDecoder = codec.requestDecoder({ maxFrameBytes: BIG_LIMIT });
        const split = feed(requestDecoder, randomSplit(random, requestStream));
        expect(split).toEqual(stripTimestamps(whole, split));
        expect(split.map((f) => f.request.method)).toEqual(requests.map((r) => r.method));
        expect(requestDecoder.pending).toBe(0);
        const replyDecoder = codec.replyDecoder({ maxFrameBytes: BIG_LIMIT });
        const replyFrames = feed(replyDecoder, randomSplit(random, replyStream));
        expect(replyFrames).toEqual(codec.replyDecoder({ maxFrameBytes: BIG_LIMIT }).push(replyStream));
        expect(replyFrames.map((f) => f.body)).toEqual(replies.map((r) => r.body));
        expect(replyDecoder.pending).toBe(0);
      }
    });

    it('decodes a stream fed one byte at a time, and at every single cut point', () => {
      const codec = factory();
      const id = codec.matching === 'id' ? 3 : undefined;
      const frames = [
        codec.encodeReply({ id, body: { a: 1, s: 'é中😀' } }),
        codec.encodeReply({ id: id === undefined ? undefined : 4, body: { b: [true, null] } }),
      ];
      const stream = concatBytes(frames);
      const expected = codec.replyDecoder({ maxFrameBytes: BIG_LIMIT }).push(stream);
      expect(expected).toHaveLength(2);
      const bytewise = feed(
        codec.replyDecoder({ maxFrameBytes: BIG_LIMIT }),
        Array.from(stream, (byte) => Uint8Array.of(byte)),
      );
      expect(bytewise).toEqual(expected);
      for (let cut = 0; cut <= stream.length; cut++) {
        const decoder = codec.replyDecoder({ maxFrameBytes: BIG_LIMIT });
        expect(feed(decoder, [stream.subarray(0, cut), stream.subarray(cut)])).toEqual(expected);
      }
    });

    it('counts an incomplete frame as pending, and an empty chunk changes nothing', () => {
      const codec = factory();
      const bytes = codec.encodeReply({
        id: codec.matching === 'id' ? 1 : undefined,
        body: { state: 'running' },
      });
      const decoder = codec.replyDecoder({ maxFrameBytes: BIG_LIMIT });
      expect(decoder.push(new Uint8Array(0))).toEqual([]);
      expect(decoder.push(bytes.subarray(0, bytes.length - 1))).toEqual([]);
      expect(decoder.pending).toBeGreaterThan(0);
      expect(decoder.push(bytes.subarray(bytes.length - 1))).toHaveLength(1);
      expect(decoder.pending).toBe(0);
    });

    it('refuses a frame over the limit as too_large before holding more than the limit', () => {
      const codec = factory();
      const limit = 1_024;
      const chunkSize = 64;
      const id = codec.matching === 'id' ? 1 : undefined;
      const cases: [string, Uint8Array, FrameDecoder<KernelReplyFrame | KernelRequestFrame>][] = [
        [
          'reply',
          codec.encodeReply({ id, body: { blob: 'x'.repeat(10_000) } }),
          codec.replyDecoder({ maxFrameBytes: limit }),
        ],
        [
          'request',
          codec.encodeRequest({ method: 'PUT', params: { blob: 'y'.repeat(10_000) }, timestamp: 0, id }),
          codec.requestDecoder({ maxFrameBytes: limit }),
        ],
      ];
      for (const [what, bytes, decoder] of cases) {
        let fed = 0;
        const error = frameErrorOf(() => {
          for (let offset = 0; offset < bytes.length; offset += chunkSize) {
            const chunk = bytes.subarray(offset, offset + chunkSize);
            fed += chunk.length;
            decoder.push(chunk);
          }
        });
        expect(error.reason, what).toBe('too_large');
        expect(fed, `${what}: bytes fed when refused`).toBeLessThanOrEqual(limit + chunkSize);
        expect(decoder.pending, what).toBeLessThanOrEqual(limit);
      }
    });

    it('accepts a frame exactly at the limit and refuses it one byte below', () => {
      const codec = factory();
      const bytes = codec.encodeReply({
        id: codec.matching === 'id' ? 9 : undefined,
        body: { note: 'exactly' },
      });
      expect(codec.replyDecoder({ maxFrameBytes: bytes.length }).push(bytes)).toHaveLength(1);
      const error = frameErrorOf(() => codec.replyDecoder({ maxFrameBytes: bytes.length - 1 }).push(bytes));
      expect(error.reason).toBe('too_large');
    });

    it('refuses bad UTF-8 and bad JSON as malformed', () => {
      const codec = factory();
      const id = codec.matching === 'id' ? 5 : undefined;
      const badUtf8 = Uint8Array.of(0xff, 0xfe, 0xc3, 0x28);
      const notJson = new TextEncoder().encode('@@@@@@');
      const reply = codec.encodeReply({ id, body: { note: 'MARK' } });
      const request = codec.encodeRequest({ method: 'SET', params: { note: 'MARK' }, timestamp: 0, id });
      const replyDecode = (bytes: Uint8Array) => () =>
        codec.replyDecoder({ maxFrameBytes: BIG_LIMIT }).push(bytes);
      const requestDecode = (bytes: Uint8Array) => () =>
        codec.requestDecoder({ maxFrameBytes: BIG_LIMIT }).push(bytes);
      expect(frameErrorOf(replyDecode(replaceBytes(reply, 'MARK', badUtf8))).reason).toBe('malformed');
      expect(frameErrorOf(replyDecode(replaceBytes(reply, '"MARK"', notJson))).reason).toBe('malformed');
      expect(frameErrorOf(requestDecode(replaceBytes(request, 'MARK', badUtf8))).reason).toBe('malformed');
      expect(frameErrorOf(requestDecode(replaceBytes(request, '"MARK"', notJson))).reason).toBe('malformed');
    });
  });
}

/** `whole` with each request's timestamp taken from `split` (codecs without timestamps stamp on decode). */
function stripTimestamps(whole: KernelRequestFrame[], split: KernelRequestFrame[]): KernelRequestFrame[] {
  return whole.map((frame, index) => ({
    ...frame,
    request: { ...frame.request, timestamp: split[index]?.request.timestamp ?? frame.request.timestamp },
  }));
}

/** What {@link testKernelTransport}'s `start` returns: a transport to a running daemon. */
export interface KernelTransportHarness {
  readonly transport: KernelTransport;
  /** Stops the daemon (the transport is closed by the suite). */
  stop(): Promise<void>;
}

/** The factory of {@link testKernelTransport}. */
export interface KernelTransportSuiteFactory {
  /**
   * Starts a daemon answering `methods` (typically `createKernelServer({ methods, codec }).listen(...)`)
   * and a transport to it.
   */
  start(methods: KernelMethods): Promise<KernelTransportHarness>;
}

/**
 * The conformance suite every `KernelTransport` must pass, against a daemon the factory starts
 * with the suite's methods (`ECHO` returns its params, `FAIL` throws `KernelMethodError('NOPE')`,
 * `HOLD` waits until the suite releases it or its signal aborts). It checks a round trip, that an
 * error reply is a body (not a rejection), concurrent sends, abort (`aborted`, also for a signal
 * aborted before the send), close (`closed`, for pending and later sends; idempotent), and that a
 * daemon that is gone gives `connect` and `isAvailable() === false`.
 *
 * @example
 * ```ts
 * import { createKernelServer } from '@trestle/kernel-client/server';
 * import { testKernelTransport } from '@trestle/kernel-client/testing';
 * testKernelTransport('unix', {
 *   async start(methods) {
 *     const server = createKernelServer({ methods });
 *     await server.listen({ path: '/tmp/t.sock' });
 *     return { transport: unixTransport({ path: '/tmp/t.sock' }), stop: () => server.close() };
 *   },
 * });
 * ```
 */
export function testKernelTransport(name: string, factory: KernelTransportSuiteFactory): void {
  describe(`KernelTransport conformance: ${name}`, () => {
    /** A daemon with the suite's methods; `held` are the HOLD calls waiting for release. */
    async function setup() {
      const held: { params: KernelParams; release: () => void }[] = [];
      let onHold: (() => void) | undefined;
      const methods: KernelMethods = {
        ECHO: (params) => params,
        FAIL: () => {
          throw new KernelMethodError('NOPE', 'not today');
        },
        HOLD: (params, context) =>
          new Promise((resolve) => {
            const release = () => resolve({ released: true });
            held.push({ params, release });
            context.signal.addEventListener('abort', release, { once: true });
            onHold?.();
          }),
      };
      const harness = await factory.start(methods);
      const heldCount = (count: number) =>
        new Promise<void>((resolve) => {
          if (held.length >= count) return resolve();
          onHold = () => {
            if (held.length >= count) resolve();
          };
        });
      const teardown = async () => {
        for (const hold of held) hold.release();
        await harness.transport.close();
        await harness.stop();
      };
      return { ...harness, held, heldCount, teardown };
    }

    const request = (method: string, params: KernelParams = {}): KernelRequest => ({
      method,
      params,
      timestamp: Date.now() / 1000,
    });
    const options = (signal: AbortSignal = new AbortController().signal): SendOptions => ({
      signal,
      maxResponseBytes: 1_048_576,
    });
    async function failure(promise: Promise<TransportReply>): Promise<TransportFailureKind> {
      try {
        await promise;
      } catch (error) {
        expect(
          KernelTransportError.isInstance(error),
          `expected a KernelTransportError, got ${String(error)}`,
        ).toBe(true);
        return (error as KernelTransportError).kind;
      }
      throw new Error('expected the send to reject');
    }

    it('has a name and an endpoint', async () => {
      const h = await setup();
      try {
        expect(h.transport.name.length).toBeGreaterThan(0);
        expect(typeof h.transport.endpoint).toBe('string');
        expect(h.transport.endpoint.length).toBeGreaterThan(0);
      } finally {
        await h.teardown();
      }
    });

    it('carries a call and brings its reply back, with its size on the wire', async () => {
      const h = await setup();
      try {
        const params = { a: 1, s: 'é 中 😀', list: [1, 'two', null], nested: { ok: true } };
        const reply = await h.transport.send(request('ECHO', params), options());
        expect(reply.body).toEqual(params);
        expect(reply.wireBytes).toBeGreaterThan(0);
        expect(await h.transport.isAvailable({ signal: new AbortController().signal })).toBe(true);
      } finally {
        await h.teardown();
      }
    });

    it('passes an error reply through as a body with a truthy error', async () => {
      const h = await setup();
      try {
        const reply = await h.transport.send(request('FAIL'), options());
        const body = reply.body as Record<string, unknown>;
        expect(body.error).toBeTruthy();
        expect(body.code).toBe('NOPE');
        expect(String(body.message)).toContain('not today');
      } finally {
        await h.teardown();
      }
    });

    it('carries concurrent sends, each to its own reply', async () => {
      const h = await setup();
      try {
        const replies = await Promise.all(
          Array.from({ length: 16 }, (_, n) => h.transport.send(request('ECHO', { n }), options())),
        );
        expect(replies.map((reply) => reply.body)).toEqual(Array.from({ length: 16 }, (_, n) => ({ n })));
      } finally {
        await h.teardown();
      }
    });

    it('rejects with kind aborted when the signal fires, and carries the next call', async () => {
      const h = await setup();
      try {
        const controller = new AbortController();
        const pending = h.transport.send(request('HOLD'), options(controller.signal));
        await h.heldCount(1);
        controller.abort(new Error('deadline'));
        expect(await failure(pending)).toBe('aborted');
        const reply = await h.transport.send(request('ECHO', { after: 'abort' }), options());
        expect(reply.body).toEqual({ after: 'abort' });
      } finally {
        await h.teardown();
      }
    });

    it('rejects at once with kind aborted when the signal is already aborted', async () => {
      const h = await setup();
      try {
        expect(await failure(h.transport.send(request('ECHO'), options(AbortSignal.abort())))).toBe(
          'aborted',
        );
      } finally {
        await h.teardown();
      }
    });

    it('rejects pending and later sends with kind closed after close(), which is idempotent', async () => {
      const h = await setup();
      try {
        const pending = h.transport.send(request('HOLD'), options());
        await h.heldCount(1);
        await h.transport.close();
        expect(await failure(pending)).toBe('closed');
        expect(await failure(h.transport.send(request('ECHO'), options()))).toBe('closed');
        await h.transport.close();
        expect(await h.transport.isAvailable({ signal: new AbortController().signal })).toBe(false);
      } finally {
        await h.teardown();
      }
    });

    it('gives kind connect, and isAvailable false, when the daemon is gone', async () => {
      const h = await setup();
      try {
        await h.stop();
        expect(await h.transport.isAvailable({ signal: new AbortController().signal })).toBe(false);
        expect(await failure(h.transport.send(request('ECHO'), options()))).toBe('connect');
      } finally {
        await h.transport.close();
      }
    });
  });
}
