/**
 * One client connection of `createKernelServer` on a Unix socket: decodes request frames, runs them
 * (requests with an `id` concurrently up to the per-connection bound, the others one at a time in
 * order), writes the replies, and stops reading while the bound is reached or the client does not
 * read its replies (backpressure). Internal.
 */
import type { Socket } from 'node:net';
import { KernelFrameError } from './errors';
import {
  type Call,
  type Dispatcher,
  KernelServerErrorCode,
  type ReplyBody,
  type ReplyTarget,
} from './server-dispatch';
import type { FrameDecoder, KernelCodec, KernelRequest, KernelRequestFrame } from './types';
import { framesBefore } from './wire-json';
import { WriteBatch } from './write-batch';

/** What a connection needs from its server. */
export interface StreamServerContext {
  readonly codec: KernelCodec;
  readonly dispatcher: Dispatcher;
  readonly maxRequestBytes: number;
  readonly maxInflight: number;
  /** A request frame was refused (malformed or too large). */
  onRejected(): void;
  /** The connection closed. */
  onClosed(connection: StreamConnection): void;
}

export class StreamConnection implements ReplyTarget {
  readonly #context: StreamServerContext;
  readonly #socket: Socket;
  readonly #decoder: FrameDecoder<KernelRequestFrame>;
  readonly #batch: WriteBatch;
  /** Requests with an id waiting for a free slot. */
  #backlog: KernelRequest[] = [];
  #backlogHead = 0;
  /** Requests without id, answered one at a time in arrival order. */
  #ordered: KernelRequest[] = [];
  #orderedHead = 0;
  #orderedBusy = false;
  /** Handlers of this connection running. */
  #running = 0;
  /** Inside `#pump` (synchronous replies must not start it again: no recursion). */
  #pumping = false;
  /** Calls whose handler took its signal: aborted if the connection goes away. */
  readonly #watched = new Set<Call>();
  #paused = false;
  #writeBlocked = false;
  /** No more requests will be read (the client ended, a bad frame, or the server is closing). */
  #inputDone = false;
  /** The error reply sent last, before closing, after a bad frame. */
  #failure: ReplyBody | undefined;
  #ending = false;
  #closed = false;
  /** The client ended its side. */
  #peerEnded = false;

  constructor(socket: Socket, context: StreamServerContext) {
    this.#context = context;
    this.#socket = socket;
    this.#decoder = context.codec.requestDecoder({ maxFrameBytes: context.maxRequestBytes });
    this.#batch = new WriteBatch(socket);
    this.#batch.onFull = () => {
      this.#writeBlocked = true;
      this.#updateFlow();
    };
    socket.on('data', (chunk: Buffer) => this.#data(chunk));
    socket.on('end', () => {
      // The client sends nothing more. It may still read (a half-close), so replies are still
      // written; but a client that aborted has closed for good, and on a Unix socket both look the
      // same: handlers watching their signal are told to stop.
      this.#inputDone = true;
      this.#peerEnded = true;
      this.#abortWatched('the client closed its connection');
      this.#updateFlow();
      this.#maybeEnd();
    });
    socket.on('drain', () => {
      this.#writeBlocked = false;
      this.#updateFlow();
    });
    // Resets and broken pipes end in `close`, handled there.
    socket.on('error', () => {});
    socket.on('close', () => this.#onClose());
  }

  get closed(): boolean {
    return this.#closed;
  }

  reply(call: Call, body: ReplyBody): void {
    this.#running--;
    if (call.id === undefined) this.#orderedBusy = false;
    if (!this.#closed) {
      let frame: Uint8Array;
      try {
        frame = this.#context.codec.encodeReply({ id: call.id, body });
      } catch (error) {
        frame = this.#context.codec.encodeReply({
          id: call.id,
          body: this.#context.dispatcher.replyFailed(call, error),
        });
      }
      this.#batch.push(frame);
    }
    // A synchronous handler replies from inside `#pump`, whose loop goes on by itself.
    if (this.#pumping) return;
    this.#pump();
    this.#maybeEnd();
  }

  watch(call: Call): void {
    if (this.#closed || this.#peerEnded) call.abort(new Error('the client closed its connection'));
    else this.#watched.add(call);
  }

  unwatch(call: Call): void {
    this.#watched.delete(call);
  }

  /** The server is closing: read nothing more, drop requests not started, end once the running ones replied. */
  shutdown(): void {
    this.#inputDone = true;
    this.#backlog = [];
    this.#backlogHead = 0;
    this.#ordered = [];
    this.#orderedHead = 0;
    this.#updateFlow();
    this.#maybeEnd();
  }

  /** Destroys the socket now (server close past its grace period). */
  destroy(): void {
    this.#socket.destroy();
  }

  #data(chunk: Buffer): void {
    if (this.#inputDone) return;
    let frames: readonly KernelRequestFrame[];
    let failure: unknown;
    try {
      frames = this.#decoder.push(chunk);
    } catch (error) {
      // The requests before the bad frame are answered, before the error.
      frames = framesBefore<KernelRequestFrame>(error);
      failure = error;
    }
    for (const frame of frames) {
      const request = frame.request;
      if (request.id !== undefined) this.#backlog.push(request);
      else this.#ordered.push(request);
    }
    if (failure !== undefined) this.#badFrame(failure);
    this.#pump();
    this.#maybeEnd();
  }

  /** Starts what the bounds allow, then pauses or resumes reading. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      this.#startWhatFits();
    } finally {
      this.#pumping = false;
    }
    this.#updateFlow();
  }

  #startWhatFits(): void {
    const max = this.#context.maxInflight;
    while (this.#running < max) {
      let request: KernelRequest | undefined;
      if (this.#backlogHead < this.#backlog.length) {
        request = this.#backlog[this.#backlogHead]!;
        this.#backlog[this.#backlogHead++] = undefined as never;
        if (this.#backlogHead === this.#backlog.length) {
          this.#backlog.length = 0;
          this.#backlogHead = 0;
        }
      } else if (!this.#orderedBusy && this.#orderedHead < this.#ordered.length) {
        request = this.#ordered[this.#orderedHead]!;
        this.#ordered[this.#orderedHead++] = undefined as never;
        if (this.#orderedHead === this.#ordered.length) {
          this.#ordered.length = 0;
          this.#orderedHead = 0;
        }
        this.#orderedBusy = true;
      } else break;
      this.#running++;
      this.#context.dispatcher.run(request, this);
    }
  }

  #updateFlow(): void {
    if (this.#closed) return;
    const waiting = this.#backlog.length - this.#backlogHead + this.#ordered.length - this.#orderedHead;
    const pause =
      this.#inputDone || this.#writeBlocked || this.#running + waiting >= this.#context.maxInflight;
    if (pause && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    } else if (!pause && this.#paused) {
      this.#paused = false;
      this.#socket.resume();
    }
  }

  #badFrame(error: unknown): void {
    this.#context.onRejected();
    const tooLarge = KernelFrameError.isInstance(error) && (error as KernelFrameError).reason === 'too_large';
    const message = error instanceof Error ? error.message.replace(/^\[kernel-client\] /, '') : String(error);
    this.#failure = {
      error: true,
      code: tooLarge ? KernelServerErrorCode.RequestTooLarge : KernelServerErrorCode.BadRequest,
      message,
    };
    // Framing is lost: answer what was read before, then the error, then close.
    this.#inputDone = true;
    this.#updateFlow();
    this.#maybeEnd();
  }

  /** Ends the socket once no more requests come and every one read has been answered. */
  #maybeEnd(): void {
    if (!this.#inputDone || this.#ending || this.#closed) return;
    const waiting = this.#backlog.length - this.#backlogHead + this.#ordered.length - this.#orderedHead;
    if (this.#running > 0 || waiting > 0) return;
    this.#ending = true;
    this.#batch.flush();
    const socket = this.#socket;
    if (this.#failure !== undefined) {
      try {
        socket.write(this.#context.codec.encodeReply({ body: this.#failure }));
      } catch {
        // A codec that cannot encode an error reply: close without it.
      }
    }
    // Once the replies are handed to the kernel, close (the client may never close its side).
    socket.end(() => socket.destroy());
  }

  #abortWatched(why: string): void {
    if (this.#watched.size === 0) return;
    const reason = new Error(why);
    const calls = [...this.#watched];
    this.#watched.clear();
    for (const call of calls) call.abort(reason);
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#batch.clear();
    this.#backlog = [];
    this.#backlogHead = 0;
    this.#ordered = [];
    this.#orderedHead = 0;
    this.#abortWatched('the client closed its connection');
    this.#context.onClosed(this);
  }
}
