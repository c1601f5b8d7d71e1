/**
 * Python iterators streamed to the client with credit-based flow control.
 *
 * `py.stream` opens a python-adapter `PyStream` and answers `{ streamId }`; items then arrive as
 * `stream.items { streamId, items }` notifications, never more in all than the credit granted (the
 * initial `credit`, plus every `stream.credit`). The end is `stream.end { streamId }`; a failure
 * (the generator raised, a deadline, a budget denial) is `stream.error { streamId, error: { code,
 * message, data } }` after the items produced before it. `stream.cancel`, the session's end and a
 * disconnect close the iterator in Python (`gen.close()`: its `finally` runs).
 *
 * Metering: each pump (the items pulled for one grant of credit, or for the first pull) is one metered
 * call: reserve 1, settle `1 + floor(python_wall_ms / 100)`.
 *
 * Python pulls items in chunks of `min(initial credit, 64)` (at least 1): the generator may run up to
 * one chunk ahead of what was sent; those items wait on the server until credit arrives.
 */

import { randomBytes } from 'node:crypto';
import type { Clock } from '@trestle/bridge';
import type { Kwargs, PyStream, StreamOptions } from '@trestle/python-adapter';
import type { Ref } from '@trestle/ref-registry';
import { type Logger, type RpcConnection, RpcMethodError } from './contracts';
import { toRpcError } from './domain-errors';
import { followSignal } from './follow-signal';
import type { Resources } from './resources';
import type { ServerSession, SessionService } from './sessions';
import { collectRefs, encodeOutbound } from './values';

/** What to iterate: a ref (an iterable object), or what `module.fn(*args, **kwargs)` returns. */
export type StreamSource =
  | { readonly ref: Ref }
  | {
      readonly module: string;
      readonly fn: string;
      readonly args: readonly unknown[];
      readonly kwargs: Kwargs | undefined;
    };

type StreamStateName = 'open' | 'closing' | 'done';

interface StreamState {
  readonly id: string;
  readonly record: ServerSession;
  readonly connection: RpcConnection;
  readonly py: PyStream;
  readonly abort: AbortController;
  /** Items that may still be sent (granted, minus sent, minus pulled and waiting). */
  credit: number;
  /** Items pulled and not yet sent. */
  pending: unknown[];
  exhausted: boolean;
  state: StreamStateName;
  pumping: Promise<void> | undefined;
  /** Stops following the session's signal (see followSignal). */
  readonly unfollow: () => void;
}

/** Options of {@link Streams}. */
export interface StreamsOptions {
  readonly sessions: SessionService;
  readonly resources: Resources;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Deadline of one pull. */
  readonly callTimeoutMs: number;
  /** Most credit a stream may hold. @default 100_000 */
  readonly maxCredit?: number;
  /** Streams per session. @default 64 */
  readonly maxStreamsPerSession?: number;
  /** Pause a stream while the socket holds more than this many unsent bytes. @default 8 MiB */
  readonly highWaterBytes?: number;
}

const MAX_CHUNK = 64;
const MAX_BATCH = 256;
const RECENT = 1_024;

/** Resolves `true` if `promise` settles before the next macrotask (its value is buffered), else `false`. */
function settlesSoon(promise: Promise<unknown>): Promise<boolean> {
  return new Promise((resolve) => {
    promise.then(
      () => resolve(true),
      () => resolve(true),
    );
    setImmediate(() => resolve(false));
  });
}

/** Every stream of this process. */
export class Streams {
  readonly #options: StreamsOptions;
  readonly #streams = new Map<string, StreamState>();
  readonly #bySession = new Map<string, Set<StreamState>>();
  /** Streams that finished recently (id → session id): credit and cancel on them are no-ops. */
  readonly #recent = new Map<string, string>();

  constructor(options: StreamsOptions) {
    this.#options = options;
    options.sessions.hook({
      ending: (record) => this.closeSession(record),
      detached: (record) => {
        void this.closeSession(record);
      },
    });
  }

  /** Open streams. */
  get size(): number {
    return this.#streams.size;
  }

  /**
   * Opens a stream. With credit, the iterator is opened (and its first item pulled) before this
   * resolves, so a failure to open is the error of `py.stream` itself.
   */
  async open(
    record: ServerSession,
    connection: RpcConnection,
    source: StreamSource,
    credit: number,
    signal: AbortSignal,
  ): Promise<{ streamId: string }> {
    const { sessions, callTimeoutMs } = this.#options;
    const owned = this.#bySession.get(record.id);
    const max = this.#options.maxStreamsPerSession ?? 64;
    if (owned !== undefined && owned.size >= max) {
      throw new RpcMethodError(
        'INVALID_PARAMS',
        `a session may have at most ${max} open streams`,
        undefined,
        -32602,
      );
    }
    const abort = new AbortController();
    const options: StreamOptions = {
      session: record.refs,
      signal: abort.signal,
      timeoutMs: callTimeoutMs,
      chunkSize: Math.max(1, Math.min(MAX_CHUNK, credit)),
    };
    const py =
      'ref' in source
        ? record.python.stream(source.ref, options)
        : record.python.stream(source.module, source.fn, source.args, source.kwargs, options);
    const stream: StreamState = {
      id: `st_${randomBytes(8).toString('hex')}`,
      record,
      connection,
      py,
      abort,
      credit: Math.min(credit, this.#options.maxCredit ?? 100_000),
      pending: [],
      exhausted: false,
      state: 'open',
      pumping: undefined,
      unfollow: followSignal(abort, record.bridge.signal),
    };
    this.#register(stream);
    if (stream.credit > 0) {
      const onAbort = () => abort.abort(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        await sessions.metered(record, signal, async () => {
          const first = await py.next();
          if (first.done) stream.exhausted = true;
          else {
            stream.credit--;
            stream.pending.push(first.value);
          }
        });
      } catch (error) {
        this.#unregister(stream);
        stream.state = 'done';
        await py.close().catch(() => undefined);
        throw error;
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    }
    // After the reply to py.stream has gone out.
    setImmediate(() => this.#pump(stream));
    return { streamId: stream.id };
  }

  /** Grants `credit` more items. */
  credit(record: ServerSession, streamId: string, credit: number): void {
    const stream = this.#find(record, streamId);
    if (stream === undefined) return;
    stream.credit = Math.min(stream.credit + credit, this.#options.maxCredit ?? 100_000);
    this.#pump(stream);
  }

  /** Cancels a stream: the iterator is closed in Python (`gen.close()`) before this resolves. */
  async cancel(record: ServerSession, streamId: string): Promise<void> {
    const stream = this.#find(record, streamId);
    if (stream !== undefined) await this.#close(stream, 'cancelled');
  }

  /** Closes every stream of a session (its end, or its connection went away). */
  async closeSession(record: ServerSession): Promise<void> {
    const owned = this.#bySession.get(record.id);
    if (owned === undefined) return;
    await Promise.all([...owned].map((stream) => this.#close(stream, 'session')));
  }

  /** Closes every stream (shutdown). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.#streams.values()].map((stream) => this.#close(stream, 'shutdown')));
  }

  /** The stream, `undefined` for one that finished recently. @throws RpcMethodError `STREAM_NOT_FOUND` */
  #find(record: ServerSession, streamId: string): StreamState | undefined {
    const stream = this.#streams.get(streamId);
    if (stream !== undefined && stream.record === record) return stream;
    if (this.#recent.get(streamId) === record.id) return undefined;
    throw new RpcMethodError('STREAM_NOT_FOUND', `stream ${streamId} does not exist in this session`);
  }

  #register(stream: StreamState): void {
    this.#streams.set(stream.id, stream);
    let owned = this.#bySession.get(stream.record.id);
    if (owned === undefined) {
      owned = new Set();
      this.#bySession.set(stream.record.id, owned);
    }
    owned.add(stream);
  }

  #unregister(stream: StreamState): void {
    if (!this.#streams.delete(stream.id)) return;
    stream.unfollow();
    const owned = this.#bySession.get(stream.record.id);
    owned?.delete(stream);
    if (owned?.size === 0) this.#bySession.delete(stream.record.id);
    this.#recent.set(stream.id, stream.record.id);
    if (this.#recent.size > RECENT) {
      const oldest = this.#recent.keys().next();
      if (!oldest.done) this.#recent.delete(oldest.value);
    }
  }

  async #close(stream: StreamState, why: string): Promise<void> {
    if (stream.state !== 'open') {
      await stream.pumping?.catch(() => undefined);
      return;
    }
    stream.state = 'closing';
    this.#unregister(stream);
    // A pull in flight is interrupted (Python gets a cancel); the adapter then closes the iterator.
    if (stream.pumping !== undefined) stream.abort.abort(new Error(`stream ${why}`));
    try {
      await stream.py.close();
    } catch (error) {
      this.#options.logger.debug(
        { streamId: stream.id, err: error instanceof Error ? error.message : String(error) },
        'stream close failed',
      );
    }
    await stream.pumping?.catch(() => undefined);
    stream.state = 'done';
  }

  #pump(stream: StreamState): void {
    if (stream.pumping !== undefined || stream.state !== 'open') return;
    if (stream.pending.length === 0 && stream.credit <= 0 && !stream.exhausted) return;
    stream.pumping = this.#run(stream).finally(() => {
      stream.pumping = undefined;
      if (stream.state === 'open' && stream.credit > 0) this.#pump(stream);
    });
  }

  async #run(stream: StreamState): Promise<void> {
    try {
      if (stream.pending.length > 0) await this.#send(stream, stream.pending.splice(0));
      while (stream.state === 'open' && stream.credit > 0 && !stream.exhausted) {
        await this.#options.sessions.metered(stream.record, stream.abort.signal, () => this.#pull(stream));
      }
      if (stream.state === 'open' && stream.exhausted) {
        stream.state = 'done';
        this.#unregister(stream);
        stream.connection.notify('stream.end', { streamId: stream.id });
      }
    } catch (error) {
      if (stream.state !== 'open') return;
      stream.state = 'done';
      this.#unregister(stream);
      const { error: rpc, internal } = toRpcError(error);
      if (internal) this.#options.logger.error({ err: error, streamId: stream.id }, 'stream failed');
      stream.connection.notify('stream.error', {
        streamId: stream.id,
        error: { code: rpc.code, message: rpc.message, ...(rpc.data ? { data: rpc.data } : {}) },
      });
      await stream.py.close().catch(() => undefined);
    }
  }

  /** Pulls up to the stream's credit, sending items as soon as the next one is not already buffered. */
  async #pull(stream: StreamState): Promise<void> {
    const batch: unknown[] = [];
    while (stream.state === 'open' && stream.credit > 0) {
      const next = stream.py.next();
      if (batch.length > 0 && !(await settlesSoon(next))) await this.#send(stream, batch.splice(0));
      let result: IteratorResult<unknown>;
      try {
        result = await next;
      } catch (error) {
        if (batch.length > 0 && stream.state === 'open') await this.#send(stream, batch.splice(0));
        throw error;
      }
      if (result.done) {
        stream.exhausted = true;
        break;
      }
      stream.credit--;
      batch.push(result.value);
      if (batch.length >= MAX_BATCH) await this.#send(stream, batch.splice(0));
    }
    if (batch.length > 0 && stream.state === 'open') await this.#send(stream, batch);
  }

  async #send(stream: StreamState, items: unknown[]): Promise<void> {
    const { record } = stream;
    const refs = collectRefs(items);
    if (refs.length > 0) {
      this.#options.sessions.noteRefs(record, refs);
      await this.#options.resources.adopt(record, refs);
    }
    const sent = stream.connection.notify('stream.items', {
      streamId: stream.id,
      items: items.map((item) => encodeOutbound(item)),
    });
    if (!sent) {
      // The connection is gone: nobody can receive the rest.
      void this.#close(stream, 'disconnected');
      return;
    }
    await this.#drain(stream);
  }

  /** Waits while the socket has more than the high-water mark of unsent bytes. */
  async #drain(stream: StreamState): Promise<void> {
    const high = this.#options.highWaterBytes ?? 8 * 1024 * 1024;
    while (stream.state === 'open' && stream.connection.bufferedAmount > high) {
      await new Promise<void>((resolve) => this.#options.clock.setTimeout(resolve, 20));
    }
  }
}
