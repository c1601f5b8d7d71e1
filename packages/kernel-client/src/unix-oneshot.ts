/**
 * One request per connection (the seed's mode): connect, write one frame, read one reply frame, close.
 * Internal to the Unix transport.
 */
import type { KernelTransportError } from './errors';
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

/** One call on its own connection. Settles exactly once, and then destroys its socket. */
export class OneshotCall {
  readonly promise: Promise<TransportReply>;
  connectStartedAt = 0;
  readonly #context: UnixContext;
  readonly #watch: AbortWatch;
  #unwatch: (() => void) | undefined;
  readonly #calls: Set<OneshotCall>;
  readonly #socket: OwnedSocket<OneshotCall>;
  readonly #decoder: FrameDecoder<KernelReplyFrame>;
  #resolve!: (reply: TransportReply) => void;
  #reject!: (error: KernelTransportError) => void;
  #connected = false;
  #settled = false;
  #received = 0;

  /** @param calls The transport's open calls: this call is in it until it settles. */
  constructor(
    context: UnixContext,
    request: KernelRequest,
    options: SendOptions,
    watch: AbortWatch,
    calls: Set<OneshotCall>,
  ) {
    this.#context = context;
    this.#watch = watch;
    this.#calls = calls;
    // Throws (rejecting `send`) before any socket exists when the codec cannot encode the request.
    const frame = context.codec.encodeRequest(request);
    this.#decoder = context.codec.replyDecoder({ maxFrameBytes: options.maxResponseBytes });
    this.promise = new Promise<TransportReply>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const socket = new OwnedSocket(this);
    this.#socket = socket;
    socket.on('connect', onConnect);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    calls.add(this);
    this.#unwatch = watch.onAbort(() => this.#fail(abortedError(this.#context, this.#watch)));
    context.watchdog?.watch(this);
    socket.connect({ path: context.path });
    // Queued by the socket until it connects.
    socket.write(frame);
  }

  /** The transport is closing. */
  close(): Promise<void> {
    const socket = this.#socket;
    this.#fail(closedError(this.#context));
    return socket.closed
      ? Promise.resolve()
      : new Promise((resolve) => socket.once('close', () => resolve()));
  }

  connectTimedOut(): void {
    this.#fail(connectTimeoutError(this.#context));
  }

  connected(): void {
    this.#connected = true;
    this.#context.watchdog?.forget(this);
  }

  data(chunk: Buffer): void {
    if (this.#settled) return;
    this.#received += chunk.length;
    let frames: readonly KernelReplyFrame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (error) {
      // A whole reply before the bad bytes is the answer; the rest does not matter.
      frames = framesBefore<KernelReplyFrame>(error);
      if (frames.length === 0) {
        this.#fail(frameFailure(this.#context, error, this.#received));
        return;
      }
    }
    const frame = frames[0];
    if (frame === undefined) return;
    this.#finish();
    // No id was sent: an `id` the decoder took out of the body is the daemon's own field.
    const body = frame.id === undefined ? frame.body : { ...(frame.body as object), id: frame.id };
    this.#resolve({ body, wireBytes: frame.wireBytes });
  }

  ended(cause?: unknown): void {
    if (this.#settled) return;
    if (!this.#connected) this.#fail(connectError(this.#context, cause ?? 'closed'));
    else this.#fail(endedError(this.#context, this.#decoder.pending, this.#received, cause));
  }

  #fail(error: KernelTransportError): void {
    if (this.#settled) return;
    this.#finish();
    this.#reject(error);
  }

  #finish(): void {
    this.#settled = true;
    this.#unwatch?.();
    this.#unwatch = undefined;
    this.#context.watchdog?.forget(this);
    this.#calls.delete(this);
    this.#socket.destroy();
  }
}

function onConnect(this: OwnedSocket<OneshotCall>): void {
  this.owner.connected();
}
function onData(this: OwnedSocket<OneshotCall>, chunk: Buffer): void {
  this.owner.data(chunk);
}
function onEnd(this: OwnedSocket<OneshotCall>): void {
  this.owner.ended();
}
function onError(this: OwnedSocket<OneshotCall>, error: Error): void {
  this.owner.ended(error);
}
function onClose(this: OwnedSocket<OneshotCall>): void {
  this.owner.ended();
}
