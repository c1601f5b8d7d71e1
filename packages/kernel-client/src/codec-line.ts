/**
 * Newline-delimited framing for daemons that speak lines, such as heidi-kernel
 * (`ping` → `PONG`, `version` → `PROTOCOL 1 DAEMON x.y.z`, `status` → a JSON line,
 * unknown → `ERR UNKNOWN_COMMAND <cmd>`).
 */
import { KernelError, KernelFrameError } from './errors';
import type {
  DecoderLimits,
  FrameDecoder,
  KernelCodec,
  KernelParams,
  KernelReplyFrame,
  KernelRequest,
  KernelRequestFrame,
} from './types';
import { ChunkQueue, decodeUtf8, isJsonObject, keepFramesBefore } from './wire-json';

/** Options of {@link lineCodec}: each one replaces a default (`formatLineRequest`...). */
export interface LineCodecOptions {
  /**
   * A request as one line, without the line break.
   * @default formatLineRequest: `ping`, or `apply_policy {"mode":"strict"}`
   */
  readonly formatRequest?: (request: KernelRequest) => string;
  /**
   * A reply line (without its `\n` and any trailing `\r`; never empty) as a reply body. Throw a
   * `KernelFrameError('malformed', ...)` (or any error) for a line that cannot be a reply.
   * @default parseLineReply
   */
  readonly parseReply?: (line: string) => unknown;
  /**
   * A reply body as one line, without the line break (server side).
   * @default formatLineReply
   */
  readonly formatReply?: (body: unknown) => string;
  /**
   * A request line as a method and params (server side). Throw for a line that cannot be a request.
   * @default parseLineRequest
   */
  readonly parseRequest?: (line: string) => { readonly method: string; readonly params: KernelParams };
}

/**
 * The default request line: the method lowercased, then a space and the params as JSON only when
 * params has keys.
 * @example
 * ```ts
 * formatLineRequest({ method: 'PING', params: {}, timestamp: 0 }); // 'ping'
 * formatLineRequest({ method: 'APPLY_POLICY', params: { mode: 'strict' }, timestamp: 0 }); // 'apply_policy {"mode":"strict"}'
 * ```
 */
export function formatLineRequest(request: KernelRequest): string {
  const method = request.method.toLowerCase();
  return Object.keys(request.params).length === 0 ? method : `${method} ${JSON.stringify(request.params)}`;
}

/**
 * The default reply parsing: a line starting with `{` must be a JSON object (and is returned as is);
 * `ERR <CODE> <rest>` becomes `{ error: true, code: CODE, message: 'CODE rest' }` (the line without
 * `ERR `); any other line becomes `{ text: line }`.
 * @throws KernelFrameError `malformed` for a `{` line that is not a JSON object.
 * @example
 * ```ts
 * parseLineReply('PONG'); // { text: 'PONG' }
 * parseLineReply('ERR UNKNOWN_COMMAND frob'); // { error: true, code: 'UNKNOWN_COMMAND', message: 'UNKNOWN_COMMAND frob' }
 * parseLineReply('{"state":"running"}'); // { state: 'running' }
 * ```
 */
export function parseLineReply(line: string): unknown {
  if (line.charCodeAt(0) === 0x7b) return parseJsonObjectLine(line, 'reply line');
  if (line === 'ERR') return { error: true, message: line };
  if (line.startsWith('ERR ')) {
    const message = line.slice(4);
    const space = message.indexOf(' ');
    const code = space === -1 ? message : message.slice(0, space);
    return code === '' ? { error: true, message } : { error: true, code, message };
  }
  return { text: line };
}

/**
 * The default reply line (server side): an error body (truthy `error`) → `ERR <code> <message>`
 * (`ERROR` when it has no code); a body whose only key is a string `text` → that text; anything else →
 * its JSON. Line breaks in a code, message or text become spaces.
 * @example
 * ```ts
 * formatLineReply({ text: 'PONG' }); // 'PONG'
 * formatLineReply({ error: true, code: 'UNKNOWN_COMMAND', message: 'frob' }); // 'ERR UNKNOWN_COMMAND frob'
 * formatLineReply({ state: 'running' }); // '{"state":"running"}'
 * ```
 */
export function formatLineReply(body: unknown): string {
  if (isJsonObject(body)) {
    if (body.error) {
      const code = typeof body.code === 'string' && body.code !== '' ? oneLine(body.code) : 'ERROR';
      const message = body.message === undefined ? '' : oneLine(String(body.message));
      return message === '' ? `ERR ${code}` : `ERR ${code} ${message}`;
    }
    const keys = Object.keys(body);
    if (keys.length === 1 && keys[0] === 'text' && typeof body.text === 'string') {
      const text = oneLine(body.text);
      // A text that would read back as JSON, an error or nothing travels as JSON instead.
      if (text !== '' && text.charCodeAt(0) !== 0x7b && text !== 'ERR' && !text.startsWith('ERR '))
        return text;
    }
  }
  const json = JSON.stringify(body);
  if (json === undefined) throw new KernelFrameError('malformed', 'reply body is not JSON-serialisable');
  return json;
}

/**
 * The default request parsing (server side): `cmd [json]` → method `CMD` (uppercased), params the JSON
 * object, or `{}` when there is none.
 * @throws KernelFrameError `malformed` when the part after the command is not a JSON object.
 */
export function parseLineRequest(line: string): { readonly method: string; readonly params: KernelParams } {
  const trimmed = line.trim();
  const space = trimmed.search(/\s/);
  const command = space === -1 ? trimmed : trimmed.slice(0, space);
  const rest = space === -1 ? '' : trimmed.slice(space + 1).trim();
  if (command === '') throw new KernelFrameError('malformed', 'request line has no command');
  return {
    method: command.toUpperCase(),
    params: rest === '' ? {} : parseJsonObjectLine(rest, 'request params'),
  };
}

/**
 * The line codec (name `lines`, matching `order`): one request or reply per line, `\n`-terminated
 * (a trailing `\r` is stripped, empty lines are skipped). Replies come back in request order.
 *
 * A line (line break included) longer than `maxFrameBytes` is `too_large`, detected before more than
 * `maxFrameBytes` bytes are held; bad UTF-8 and lines the parser refuses are `malformed`.
 *
 * @example
 * ```ts
 * const transport = unixTransport({ path: '/tmp/heidi-kernel.sock', codec: lineCodec(), mode: 'persistent' });
 * ```
 */
export function lineCodec(options: LineCodecOptions = {}): KernelCodec {
  const formatRequest = options.formatRequest ?? formatLineRequest;
  const parseReply = options.parseReply ?? parseLineReply;
  const formatReply = options.formatReply ?? formatLineReply;
  const parseRequest = options.parseRequest ?? parseLineRequest;
  return {
    name: 'lines',
    matching: 'order',
    encodeRequest: (request) => encodeLine(formatRequest(request), 'request'),
    encodeReply: (reply) => encodeLine(formatReply(reply.body), 'reply'),
    requestDecoder(limits: DecoderLimits): FrameDecoder<KernelRequestFrame> {
      return new LineDecoder(limits, (line, wireBytes) => {
        const { method, params } = guard(() => parseRequest(line), 'request line');
        if (typeof method !== 'string' || method === '' || !isJsonObject(params))
          throw new KernelFrameError('malformed', 'request line parser returned no method or params');
        return { request: { method, params, timestamp: Date.now() / 1000 }, wireBytes };
      });
    },
    replyDecoder(limits: DecoderLimits): FrameDecoder<KernelReplyFrame> {
      return new LineDecoder(limits, (line, wireBytes) => ({
        body: guard(() => parseReply(line), 'reply line'),
        wireBytes,
      }));
    },
  };
}

function parseJsonObjectLine(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new KernelFrameError('malformed', `${what} is not valid JSON`);
  }
  if (!isJsonObject(value)) throw new KernelFrameError('malformed', `${what} is not a JSON object`);
  return value;
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

/** Runs a user parser; anything it throws that is not a KernelError becomes `malformed`. */
function guard<T>(parse: () => T, what: string): T {
  try {
    return parse();
  } catch (error) {
    if (KernelError.isInstance(error)) throw error;
    throw new KernelFrameError(
      'malformed',
      `${what}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

function encodeLine(line: string, what: string): Uint8Array {
  if (typeof line !== 'string') throw new KernelFrameError('malformed', `${what} line is not a string`);
  if (line.includes('\n') || line.includes('\r'))
    throw new KernelFrameError('malformed', `${what} line contains a line break`);
  const size = Buffer.byteLength(line, 'utf8');
  const bytes = Buffer.allocUnsafe(size + 1);
  bytes.write(line, 0, 'utf8');
  bytes[size] = 0x0a;
  return bytes;
}

/** Splits a stream into lines; `toFrame` gets each non-empty line (no `\n`, no trailing `\r`). */
class LineDecoder<F> implements FrameDecoder<F> {
  readonly #limits: DecoderLimits;
  readonly #toFrame: (line: string, wireBytes: number) => F;
  /** The start of a line whose `\n` has not arrived; never holds a `\n`. */
  readonly #queue = new ChunkQueue();

  constructor(limits: DecoderLimits, toFrame: (line: string, wireBytes: number) => F) {
    this.#limits = limits;
    this.#toFrame = toFrame;
  }

  get pending(): number {
    return this.#queue.length;
  }

  push(chunk: Uint8Array): F[] {
    const frames: F[] = [];
    try {
      this.#read(chunk, frames);
    } catch (error) {
      throw keepFramesBefore(error, frames);
    }
    return frames;
  }

  #read(chunk: Uint8Array, frames: F[]): void {
    const max = this.#limits.maxFrameBytes;
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) break;
      const wireBytes = this.#queue.length + newline - start + 1;
      if (wireBytes > max) throw tooLarge(wireBytes, max);
      let line: Uint8Array;
      if (this.#queue.length === 0) line = chunk.subarray(start, newline);
      else {
        this.#queue.push(chunk.subarray(start, newline));
        line = this.#queue.takeAll();
      }
      start = newline + 1;
      let end = line.length;
      if (end > 0 && line[end - 1] === 0x0d) end--;
      if (end === 0) continue;
      frames.push(
        this.#toFrame(decodeUtf8(end === line.length ? line : line.subarray(0, end), 'line'), wireBytes),
      );
    }
    const rest = chunk.length - start;
    if (rest > 0) {
      // Even with its line break still to come, the line would not fit.
      if (this.#queue.length + rest + 1 > max) throw tooLarge(this.#queue.length + rest + 1, max);
      this.#queue.push(start === 0 ? chunk : chunk.subarray(start));
    }
  }
}

function tooLarge(bytes: number, max: number): KernelFrameError {
  return new KernelFrameError(
    'too_large',
    `line of at least ${bytes} bytes exceeds the limit of ${max} bytes`,
  );
}
