import type { BlobList } from './codec';
import { adapterError, PythonAdapterErrorCode } from './errors';
import type { PythonBridge } from './python';
import type { PyStream, StreamOptions } from './types';
import { hostError, type WireError } from './wire-error';

/** How a stream is opened: the request that returns the stream ref. */
export interface StreamSource {
  readonly session: string;
  readonly label: string;
  readonly open: Record<string, unknown>;
  readonly blobs: BlobList | undefined;
}

interface Held {
  readonly bridge: PythonBridge;
  readonly session: string;
  readonly ref: unknown;
}

/** Streams dropped without being finished or closed are closed in Python when collected. */
const abandoned = new FinalizationRegistry<Held>((held) => {
  held.bridge.pool
    .submit(held.session, { op: 'stream_close', session: held.session, ref: held.ref }, undefined, {
      label: 'stream_close',
    })
    .catch(() => undefined);
});

interface ChunkWire {
  readonly items: unknown;
  readonly done: boolean;
  readonly error?: WireError;
}

class PythonStream<T> implements PyStream<T> {
  private ref: unknown;
  private buffer: unknown[] = [];
  private index = 0;
  private exhausted = false;
  private closed = false;
  private failure: Error | undefined;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly bridge: PythonBridge,
    private readonly source: StreamSource,
    private readonly options: StreamOptions | undefined,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    const step = this.chain.then(() => this.step());
    this.chain = step.catch(() => undefined);
    return step;
  }

  async return(): Promise<IteratorResult<T>> {
    await this.close();
    return { value: undefined, done: true };
  }

  async throw(error?: unknown): Promise<IteratorResult<T>> {
    await this.close();
    throw error;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.buffer = [];
    this.index = 0;
    await this.chain;
    const ref = this.ref;
    this.ref = undefined;
    if (ref === undefined || this.exhausted) return;
    abandoned.unregister(this);
    this.exhausted = true;
    await this.bridge.pool
      .submit(this.source.session, { op: 'stream_close', session: this.source.session, ref }, undefined, {
        label: `${this.source.label} close`,
      })
      .catch((error: unknown) => {
        throw this.bridge.translate(error, `${this.source.label} close`);
      });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async step(): Promise<IteratorResult<T>> {
    for (;;) {
      if (this.index < this.buffer.length) {
        const value = this.buffer[this.index] as T;
        this.buffer[this.index++] = undefined;
        return { value, done: false };
      }
      if (this.failure !== undefined) {
        const failure = this.failure;
        this.failure = undefined;
        this.closed = true;
        throw failure;
      }
      if (this.closed || this.exhausted) return { value: undefined, done: true };
      await this.fetch();
    }
  }

  private async fetch(): Promise<void> {
    const { session, label } = this.source;
    const callOptions = {
      label,
      timeoutMs: this.options?.timeoutMs,
      signal: this.options?.signal,
    };
    try {
      if (this.ref === undefined) {
        const opened = await this.bridge.pool.submit(
          session,
          this.source.open,
          this.source.blobs,
          callOptions,
        );
        this.ref = opened.result;
        if (typeof this.ref !== 'object' || this.ref === null) {
          throw adapterError(PythonAdapterErrorCode.Protocol, `${label} did not return a stream`);
        }
        abandoned.register(this, { bridge: this.bridge, session, ref: this.ref }, this);
      }
      const n = this.options?.chunkSize ?? this.bridge.chunkSize;
      const reply = await this.bridge.pool.submit(
        session,
        { op: 'stream_next', session, ref: this.ref, n },
        undefined,
        callOptions,
      );
      const chunk = reply.result as ChunkWire;
      const items = this.bridge.decode(session, chunk.items, reply.blob);
      this.buffer = Array.isArray(items) ? items : [];
      this.index = 0;
      if (chunk.done) {
        this.exhausted = true;
        this.ref = undefined;
        abandoned.unregister(this);
      }
      if (chunk.error !== undefined) this.failure = hostError(chunk.error, label);
    } catch (error) {
      const translated = this.bridge.translate(error, label);
      // The iterator may still be open in Python (an abort, a deadline): close it, and stop here.
      const ref = this.ref;
      this.ref = undefined;
      this.closed = true;
      if (ref !== undefined && !this.exhausted) {
        abandoned.unregister(this);
        this.exhausted = true;
        this.bridge.pool
          .submit(session, { op: 'stream_close', session, ref }, undefined, { label: `${label} close` })
          .catch(() => undefined);
      }
      throw translated;
    }
  }
}

/** @internal */
export function openStream<T>(
  bridge: PythonBridge,
  source: StreamSource,
  options: StreamOptions | undefined,
): PyStream<T> {
  return new PythonStream<T>(bridge, source, options);
}
