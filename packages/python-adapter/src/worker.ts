import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { BlobList } from './codec';
import { adapterError, PythonAdapterErrorCode, WorkerCrashedError } from './errors';
import { FrameDecoder } from './frame';
import { LineSplitter, type PythonOutput, TailBuffer } from './logger';
import type { WireError } from './wire-error';

/** The protocol version this host speaks (see PROTOCOL.md). */
export const PROTOCOL_VERSION = 1;

/** What the worker says about itself in its `hello`. */
export interface WorkerHello {
  readonly protocol: number;
  readonly pid: number;
  readonly python: string;
  readonly implementation: string;
  readonly executable: string;
  readonly platform: string;
  readonly features: readonly string[];
}

/** A request waiting for its reply. */
export interface PendingReply {
  onResult(result: unknown, blob: Uint8Array | undefined): void;
  onError(error: WireError): void;
  /** The worker died (or was killed) before replying. */
  onLost(error: Error): void;
}

/** How one worker process is started. */
export interface WorkerSpawnOptions {
  readonly id: number;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string | undefined;
  /** Sent as the `configure` request after the handshake. */
  readonly configure: Record<string, unknown>;
  readonly maxFrameBytes: number;
  readonly startupTimeoutMs: number;
  /** Encodes one message as a frame. */
  readonly frame: (message: object, blobs?: BlobList) => Buffer;
  readonly onOutput: (entry: PythonOutput) => void;
  /** Called once, after every pending request was failed. */
  readonly onExit: (worker: PythonWorker, error: WorkerCrashedError) => void;
}

/** Why the host killed a worker on purpose (reported instead of the bare signal). */
interface KillReason {
  readonly code: PythonAdapterErrorCode;
  readonly why: string;
}

const STDERR_GRACE_MS = 50;
const MIN_PYTHON: readonly [number, number] = [3, 9];

/** One Python worker process and its three protocol pipes. */
export class PythonWorker {
  readonly id: number;
  state: 'starting' | 'ready' | 'dead' = 'starting';
  hello: WorkerHello | undefined;
  /** Sessions announced to this worker (their limits were sent). */
  readonly announced = new Set<string>();
  private readonly child: ChildProcess;
  private readonly requests: Writable;
  private readonly replies: Readable;
  private readonly control: Writable;
  private readonly pending = new Map<number, PendingReply>();
  private readonly tail = new TailBuffer();
  private nextId = 1;
  private outQueue: (string | Buffer)[] = [];
  private flushScheduled = false;
  private referenced = true;
  private killReason: KillReason | undefined;
  private exitHandled = false;
  private startWaiter: { resolve: (hello: WorkerHello) => void; reject: (error: Error) => void } | undefined;

  constructor(private readonly options: WorkerSpawnOptions) {
    this.id = options.id;
    this.child = spawn(options.command, options.args, {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
      env: options.env,
      cwd: options.cwd,
      detached: true,
      windowsHide: true,
    });
    const stdio = this.child.stdio as unknown as readonly (Readable | Writable | null)[];
    this.requests = stdio[3] as Writable;
    this.replies = stdio[4] as Readable;
    this.control = stdio[5] as Writable;
    const ignore = () => {};
    for (const stream of stdio) stream?.on('error', ignore);
    this.child.on('error', (error) => this.fail(error));
    this.child.on('exit', (code, signal) => this.onChildExit(code, signal));
    this.attachOutput(this.child.stdout, 'stdout');
    this.attachOutput(this.child.stderr, 'stderr');
    const decoder = new FrameDecoder({
      maxFrameBytes: options.maxFrameBytes,
      onFrame: (message, blob) => this.onFrame(message, blob),
    });
    this.replies.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (error) {
        this.kill({
          code: PythonAdapterErrorCode.Protocol,
          why: `broke the protocol: ${(error as Error).message}`,
        });
      }
    });
    this.child.unref();
    for (const stream of [this.child.stdout, this.child.stderr, this.requests, this.control])
      unrefStream(stream);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Requests sent and not answered yet. */
  get inflight(): number {
    return this.pending.size;
  }

  get stderrTail(): string {
    return this.tail.value;
  }

  /** Waits for the `hello`, checks it, sends `configure`. @throws PythonAdapterError `PY_SPAWN_FAILED`, `PY_PROTOCOL_MISMATCH` */
  start(): Promise<WorkerHello> {
    return new Promise<WorkerHello>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.kill({
          code: PythonAdapterErrorCode.SpawnFailed,
          why: `did not say hello within ${this.options.startupTimeoutMs} ms`,
        });
      }, this.options.startupTimeoutMs);
      this.startWaiter = {
        resolve: (hello) => {
          clearTimeout(timer);
          resolve(hello);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
  }

  /** Sends a request (the `id` is set here) and returns its id. */
  send(message: Record<string, unknown>, pending: PendingReply, blobs?: BlobList): number {
    const id = this.nextId++;
    message.id = id;
    if (blobs !== undefined && blobs.size > 0) this.write(this.options.frame(message, blobs));
    else this.write(this.jsonFrame(message));
    if (this.pending.size === 0) this.setReferenced(true);
    this.pending.set(id, pending);
    return id;
  }

  /** A message as JSON text, checked against `maxFrameBytes` (a request too large fails alone). */
  private jsonFrame(message: object): string {
    const json = JSON.stringify(message);
    if (json.length * 3 > this.options.maxFrameBytes) {
      const size = Buffer.byteLength(json);
      if (size > this.options.maxFrameBytes) {
        throw adapterError(
          PythonAdapterErrorCode.InvalidArgument,
          `the request is ${size} bytes, over maxFrameBytes (${this.options.maxFrameBytes})`,
        );
      }
    }
    return json;
  }

  /** Asks the worker to cancel request `id` (on the control pipe, read by its own thread). */
  cancel(id: number): void {
    if (this.state === 'dead') return;
    this.control.write(this.options.frame({ op: 'cancel', target: id }));
  }

  /** Forgets a request whose caller gave up; a late reply is dropped. */
  isPending(id: number): boolean {
    return this.pending.has(id);
  }

  /** Kills the worker's whole process group. Pending requests fail with `reason`. */
  kill(reason: KillReason): void {
    this.killReason ??= reason;
    killGroup(this.child);
  }

  /** Asks the worker to exit; kills it after `graceMs`. Resolves once it has exited. */
  async shutdown(graceMs: number): Promise<void> {
    if (this.state === 'dead') return;
    this.killReason ??= { code: PythonAdapterErrorCode.Closed, why: 'was shut down' };
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.setReferenced(true);
    this.requests.end(this.options.frame({ id: 0x7fffffff, op: 'shutdown' }));
    const timer = setTimeout(() => killGroup(this.child), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** Queues a frame (a JSON message as text, or a ready binary frame); all are written at the end of the tick. */
  private write(frame: string | Buffer): void {
    this.outQueue.push(frame);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush());
  }

  /**
   * Writes the queued frames in one `write`: JSON messages are encoded straight into one buffer
   * (no buffer per frame, no writev of many small chunks).
   */
  private flush(): void {
    this.flushScheduled = false;
    const queue = this.outQueue;
    if (queue.length === 0) return;
    this.outQueue = [];
    if (this.state === 'dead') return;
    let bound = 0;
    for (const frame of queue) {
      if (typeof frame !== 'string') bound += frame.length;
      else bound += 4 + (frame.length > 65_536 ? Buffer.byteLength(frame) : frame.length * 3);
    }
    const out = Buffer.allocUnsafe(bound);
    let offset = 0;
    for (const frame of queue) {
      if (typeof frame === 'string') {
        const written = out.write(frame, offset + 4, 'utf8');
        out.writeUInt32BE(written, offset);
        offset += 4 + written;
      } else {
        frame.copy(out, offset);
        offset += frame.length;
      }
    }
    this.requests.write(out.subarray(0, offset));
  }

  private onFrame(message: Record<string, unknown>, blob: Uint8Array | undefined): void {
    const id = message.id;
    if (typeof id !== 'number') {
      if (message.event === 'hello') this.onHello(message as unknown as WorkerHello);
      return;
    }
    if (id === 0) {
      this.onConfigured(message);
      return;
    }
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.setReferenced(false);
    if (message.ok === true) pending.onResult(message.result, blob);
    else pending.onError(message.error as WireError);
  }

  private onHello(hello: WorkerHello): void {
    this.hello = hello;
    if (hello.protocol !== PROTOCOL_VERSION) {
      this.kill({
        code: PythonAdapterErrorCode.ProtocolMismatch,
        why: `speaks protocol ${String(hello.protocol)}, this host speaks ${PROTOCOL_VERSION}`,
      });
      return;
    }
    const [major = 0, minor = 0] = String(hello.python).split('.').map(Number);
    if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1])) {
      this.kill({
        code: PythonAdapterErrorCode.SpawnFailed,
        why: `runs Python ${hello.python}; Python >= ${MIN_PYTHON.join('.')} is needed`,
      });
      return;
    }
    this.write(
      this.options.frame({ id: 0, op: 'configure', protocol: PROTOCOL_VERSION, ...this.options.configure }),
    );
  }

  private onConfigured(message: Record<string, unknown>): void {
    const waiter = this.startWaiter;
    if (waiter === undefined || this.hello === undefined) return;
    if (message.ok !== true) {
      const error = message.error as WireError | undefined;
      this.kill({
        code:
          error?.kind === 'protocol'
            ? PythonAdapterErrorCode.ProtocolMismatch
            : PythonAdapterErrorCode.SpawnFailed,
        why: `refused its configuration: ${error?.message ?? 'unknown error'}`,
      });
      return;
    }
    this.startWaiter = undefined;
    this.state = 'ready';
    this.setReferenced(this.pending.size > 0);
    waiter.resolve(this.hello);
  }

  private attachOutput(stream: Readable | null, name: 'stdout' | 'stderr'): void {
    if (stream === null) return;
    const splitter = new LineSplitter((line) => {
      if (name === 'stderr') this.tail.push(line);
      this.options.onOutput({ workerId: this.id, pid: this.child.pid, stream: name, line });
    });
    stream.on('data', (chunk: Buffer) => splitter.push(chunk));
    stream.on('end', () => splitter.end());
  }

  private fail(error: Error): void {
    // A spawn failure (ENOENT, EACCES): no 'exit' follows when the process never started.
    if (this.child.pid !== undefined) return;
    this.finish(
      new WorkerCrashedError({
        workerId: this.id,
        exitCode: null,
        signal: null,
        stderrTail: '',
        code: PythonAdapterErrorCode.SpawnFailed,
        why: `could not be started (${this.options.command}): ${error.message}`,
      }),
    );
  }

  private onChildExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.state = 'dead';
    // Reject at once, but give stderr a moment so the tail holds the last words.
    const stderr = this.child.stderr;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const reason = this.killReason;
      const startFailed = this.startWaiter !== undefined;
      this.finish(
        new WorkerCrashedError({
          workerId: this.id,
          exitCode: code,
          signal,
          stderrTail: this.tail.value,
          code: reason?.code ?? (startFailed ? PythonAdapterErrorCode.SpawnFailed : undefined),
          why:
            reason?.why ?? (startFailed ? `exited during start-up (${signal ?? `code ${code}`})` : undefined),
        }),
      );
    };
    const timer = setTimeout(finish, STDERR_GRACE_MS);
    if (stderr === null || stderr.readableEnded) finish();
    else stderr.once('end', finish);
  }

  private finish(error: WorkerCrashedError): void {
    if (this.exitHandled) return;
    this.exitHandled = true;
    this.state = 'dead';
    this.outQueue = [];
    const waiter = this.startWaiter;
    this.startWaiter = undefined;
    waiter?.reject(
      error.code === PythonAdapterErrorCode.WorkerCrashed
        ? adapterError(PythonAdapterErrorCode.SpawnFailed, error.message.replace(/^\[python-adapter\] /, ''))
        : error,
    );
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.setReferenced(false);
    for (const request of pending) request.onLost(error);
    this.options.onExit(this, error);
  }

  private setReferenced(on: boolean): void {
    if (on === this.referenced) return;
    this.referenced = on;
    const replies = this.replies as Readable & { ref?: () => void; unref?: () => void };
    if (on) replies.ref?.();
    else replies.unref?.();
  }
}

function unrefStream(stream: unknown): void {
  (stream as { unref?: () => void } | null)?.unref?.();
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}
