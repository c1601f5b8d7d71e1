/**
 * One long-lived connection carrying many calls (persistent mode). With a codec matching by `id`,
 * every request gets a fresh id and replies are matched by it, in any order; with a codec matching
 * by `order`, replies are matched first in, first out. Internal to the Unix transport.
 */
import { KernelTransportError } from './errors';
import type {
  AbortWatch,
  FrameDecoder,
  KernelReplyFrame,
  KernelRequest,
  SendOptions,
  TransportReply,
} from './types';
import {
  abortedError,
  closedError,
  connectError,
  connectTimeoutError,
  endedError,
  frameFailure,
  OwnedSocket,
  type UnixContext,
} from './unix-socket';
import { framesBefore } from './wire-json';
import { writeFrames } from './write-batch';

const NO_FRAME = new Uint8Array(0);

/** A send waiting for its reply. It is its own abort listener (no closure per call). */
class PendingSend {
  readonly connection: PersistentConnection;
  readonly watch: AbortWatch;
  unwatch: (() => void) | undefined;
  readonly maxResponseBytes: number;
  id = 0;
  frame: Uint8Array = NO_FRAME;
  /** Handed to the socket (no longer only in the outgoing batch). */
  written = false;
  settled = false;
  resolve!: (reply: TransportReply) => void;
  reject!: (error: KernelTransportError) => void;

  constructor(connection: PersistentConnection, options: SendOptions, watch: AbortWatch) {
    this.connection = connection;
    this.watch = watch;
    this.maxResponseBytes = options.maxResponseBytes;
  }

  readonly onAbort = (): void => {
    this.connection.abort(this);
  };
}

/** A persistent connection; once dead (closed, reset, bad frame) it is replaced by a new one. */
export class PersistentConnection {
  readonly #context: UnixContext;
  readonly #socket: OwnedSocket<PersistentConnection>;
  readonly #byId: boolean;
  readonly #limits: { maxFrameBytes: number };
  readonly #decoder: FrameDecoder<KernelReplyFrame>;
  readonly #onDead: (connection: PersistentConnection) => void;
  /** `id` matching: sends by id. */
  readonly #byIdPending = new Map<number, PendingSend>();
  /** `order` matching: sends in request order, from `#fifoHead`. */
  #fifo: (PendingSend | undefined)[] = [];
  #fifoHead = 0;
  /** Sends whose frame goes out at the next flush. */
  #outgoing: PendingSend[] = [];
  /** A flush is due at the end of this tick (and a first frame of the tick was already written). */
  #flushScheduled = false;
  #nextId = 0;
  /** Sends not settled: the socket keeps the process alive only while there are some. */
  #active = 0;
  #connected = false;
  #dead = false;
  /** Bytes received, and bytes of the complete frames among them. */
  #received = 0;
  #consumed = 0;
  connectStartedAt = 0;

  /** @param onDead Called once when the connection dies, so that the next send opens a new one. */
  constructor(
    context: UnixContext,
    maxResponseBytes: number,
    onDead: (connection: PersistentConnection) => void,
  ) {
    this.#context = context;
    this.#byId = context.codec.matching === 'id';
    this.#onDead = onDead;
    // Raised when a send allows larger replies; each reply is also checked against its own send's limit.
    this.#limits = { maxFrameBytes: maxResponseBytes };
    this.#decoder = context.codec.replyDecoder(this.#limits);
    const socket = new OwnedSocket(this);
    this.#socket = socket;
    socket.on('connect', onConnect);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    context.watchdog?.watch(this);
    socket.connect({ path: context.path });
  }

  get dead(): boolean {
    return this.#dead;
  }

  send(request: KernelRequest, options: SendOptions, watch: AbortWatch): Promise<TransportReply> {
    const pending = new PendingSend(this, options, watch);
    if (this.#byId) {
      const id = this.#allocateId();
      const { method, params, timestamp } = request;
      pending.frame = this.#context.codec.encodeRequest({ method, params, timestamp, id });
      pending.id = id;
      this.#byIdPending.set(id, pending);
    } else {
      pending.frame = this.#context.codec.encodeRequest(request);
      this.#fifo.push(pending);
    }
    const promise = new Promise<TransportReply>((resolve, reject) => {
      pending.resolve = resolve;
      pending.reject = reject;
    });
    if (options.maxResponseBytes > this.#limits.maxFrameBytes)
      this.#limits.maxFrameBytes = options.maxResponseBytes;
    pending.unwatch = watch.onAbort(pending.onAbort);
    if (this.#active++ === 0) this.#socket.ref();
    if (this.#flushScheduled) this.#outgoing.push(pending);
    else {
      // The first send of a tick goes out at once, so that the daemon works on it while the
      // sends that follow in the same tick are gathered into one write at the end of the tick.
      pending.written = true;
      this.#socket.write(pending.frame);
      pending.frame = NO_FRAME;
      this.#flushScheduled = true;
      process.nextTick(flushConnection, this);
    }
    return promise;
  }

  /** Writes the frames gathered since the first send of the tick, in one write. */
  flush(): void {
    this.#flushScheduled = false;
    const outgoing = this.#outgoing;
    if (outgoing.length === 0 || this.#dead) return;
    const frames: Uint8Array[] = [];
    let bytes = 0;
    for (const pending of outgoing) {
      if (pending.settled) continue;
      pending.written = true;
      frames.push(pending.frame);
      bytes += pending.frame.length;
      pending.frame = NO_FRAME;
    }
    outgoing.length = 0;
    if (frames.length > 0) writeFrames(this.#socket, frames, bytes);
  }

  /** A send's signal fired. */
  abort(pending: PendingSend): void {
    if (pending.settled) return;
    const error = abortedError(this.#context, pending.watch);
    if (this.#byId) {
      // A late reply carries an id nobody waits for any more: it is dropped.
      this.#byIdPending.delete(pending.id);
      this.#settle(pending);
      pending.reject(error);
      // Nobody else waits on this connection, and a reply is still owed on it: the daemon may be
      // wedged on it, or a reply trickling in would hold up every later one. Start afresh.
      if (pending.written && this.#byIdPending.size === 0) this.#die(() => closedError(this.#context));
      return;
    }
    if (!pending.written) {
      // Never sent: take it out of the order, which stays intact.
      const index = this.#fifo.lastIndexOf(pending);
      if (index >= this.#fifoHead) this.#fifo.splice(index, 1);
      this.#settle(pending);
      pending.reject(error);
      return;
    }
    // Its reply would still come and be taken for the next request's: the order is lost.
    this.#settle(pending);
    pending.reject(error);
    this.#die(
      () =>
        new KernelTransportError(
          'lost',
          `connection to ${this.#context.endpoint} dropped: a call was aborted while its reply was outstanding, so the reply order was lost`,
        ),
    );
  }

  connected(): void {
    this.#connected = true;
    this.#context.watchdog?.forget(this);
  }

  connectTimedOut(): void {
    const error = connectTimeoutError(this.#context);
    this.#die(() => error);
  }

  data(chunk: Buffer): void {
    if (this.#dead) return;
    this.#received += chunk.length;
    let frames: readonly KernelReplyFrame[];
    let failure: unknown;
    try {
      frames = this.#decoder.push(chunk);
    } catch (error) {
      // The replies before the bad frame are delivered; then the stream is unusable.
      frames = framesBefore<KernelReplyFrame>(error);
      failure = error;
    }
    this.#deliver(frames);
    if (failure !== undefined) {
      const error = frameFailure(this.#context, failure, this.#received - this.#consumed);
      this.#die(() => error);
    }
  }

  #deliver(frames: readonly KernelReplyFrame[]): void {
    for (const frame of frames) {
      this.#consumed += frame.wireBytes;
      let pending: PendingSend | undefined;
      if (this.#byId) {
        if (frame.id === undefined) {
          const failure = new KernelTransportError(
            'bad_reply',
            `bad reply from ${this.#context.endpoint}: a reply without an id on a connection matching by id`,
            { wireBytes: frame.wireBytes },
          );
          this.#die(() => failure);
          return;
        }
        pending = this.#byIdPending.get(frame.id);
        if (pending === undefined) continue;
        this.#byIdPending.delete(frame.id);
      } else {
        pending = this.#shiftFifo();
        if (pending === undefined) continue;
      }
      this.#settle(pending);
      if (frame.wireBytes > pending.maxResponseBytes)
        pending.reject(
          new KernelTransportError(
            'too_large',
            `reply of ${frame.wireBytes} bytes from ${this.#context.endpoint} exceeds the limit of ${pending.maxResponseBytes} bytes`,
            { wireBytes: frame.wireBytes },
          ),
        );
      else pending.resolve({ body: frame.body, wireBytes: frame.wireBytes });
    }
  }

  /** The socket ended, failed or closed. */
  ended(cause?: unknown): void {
    if (this.#dead) return;
    if (!this.#connected) {
      const error = connectError(this.#context, cause ?? 'closed');
      this.#die(() => error);
      return;
    }
    const partial = this.#decoder.pending;
    const wireBytes = this.#received - this.#consumed;
    const lost = endedError(this.#context, 0, 0, cause);
    // A partial frame is blamed on a send only when it can be told whose it is.
    const blamed = partial > 0 && (!this.#byId || this.#byIdPending.size === 1);
    const truncated = blamed ? endedError(this.#context, partial, wireBytes, cause) : lost;
    this.#die((index) => (index === 0 ? truncated : lost));
  }

  /** Fails every send with `closed` and destroys the socket; resolves once it is closed. */
  close(): Promise<void> {
    const error = closedError(this.#context);
    this.#die(() => error);
    const socket = this.#socket;
    return socket.closed
      ? Promise.resolve()
      : new Promise((resolve) => socket.once('close', () => resolve()));
  }

  #allocateId(): number {
    let id = this.#nextId;
    do id = id === 0xffff_ffff ? 1 : id + 1;
    while (this.#byIdPending.has(id));
    this.#nextId = id;
    return id;
  }

  #shiftFifo(): PendingSend | undefined {
    if (this.#fifoHead >= this.#fifo.length) return undefined;
    const pending = this.#fifo[this.#fifoHead];
    this.#fifo[this.#fifoHead] = undefined;
    this.#fifoHead++;
    if (this.#fifoHead === this.#fifo.length) {
      this.#fifo.length = 0;
      this.#fifoHead = 0;
    } else if (this.#fifoHead > 1024 && this.#fifoHead * 2 > this.#fifo.length) {
      this.#fifo = this.#fifo.slice(this.#fifoHead);
      this.#fifoHead = 0;
    }
    return pending;
  }

  #settle(pending: PendingSend): void {
    pending.settled = true;
    pending.unwatch?.();
    pending.unwatch = undefined;
    if (--this.#active === 0 && !this.#dead) this.#socket.unref();
  }

  /** Marks the connection dead, fails every send (`errorFor(index)`, in request order), destroys the socket. */
  #die(errorFor: (index: number) => KernelTransportError): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#context.watchdog?.forget(this);
    this.#onDead(this);
    const pending: PendingSend[] = [];
    if (this.#byId) {
      for (const entry of this.#byIdPending.values()) pending.push(entry);
      this.#byIdPending.clear();
    } else {
      for (let index = this.#fifoHead; index < this.#fifo.length; index++) pending.push(this.#fifo[index]!);
      this.#fifo = [];
      this.#fifoHead = 0;
    }
    this.#outgoing.length = 0;
    pending.forEach((entry, index) => {
      if (entry.settled) return;
      this.#settle(entry);
      entry.reject(errorFor(index));
    });
    this.#socket.destroy();
  }
}

function flushConnection(connection: PersistentConnection): void {
  connection.flush();
}
function onConnect(this: OwnedSocket<PersistentConnection>): void {
  this.owner.connected();
}
function onData(this: OwnedSocket<PersistentConnection>, chunk: Buffer): void {
  this.owner.data(chunk);
}
function onEnd(this: OwnedSocket<PersistentConnection>): void {
  this.owner.ended();
}
function onError(this: OwnedSocket<PersistentConnection>, error: Error): void {
  this.owner.ended(error);
}
function onClose(this: OwnedSocket<PersistentConnection>): void {
  this.owner.ended();
}
