import type { Connection, DialEvents, Dialer, DialRequest, WireData } from '../types';

/** One dialed fake socket; the test plays the server. Events are delivered on a microtask, like real I/O. */
export class FakeSocket implements Connection {
  phase: 'connecting' | 'open' | 'closing' | 'ended' = 'connecting';
  /** How the bridge ended it, if it did. */
  endedBy: 'close' | 'terminate' | 'server' | undefined;
  readonly sent: WireData[] = [];
  bufferedAmount = 0;
  pings = 0;
  readonly #written: (() => void)[] = [];
  constructor(
    readonly request: DialRequest,
    readonly events: DialEvents,
    readonly dialer: FakeDialer,
  ) {}

  /** Whether the bridge still holds it (not closed/terminated by the bridge, not ended). */
  get live(): boolean {
    return this.phase === 'connecting' || this.phase === 'open';
  }

  send(data: WireData, written?: () => void): void {
    if (this.phase !== 'open') throw new Error(`send on a ${this.phase} fake socket`);
    this.sent.push(data);
    this.dialer.log.push(data);
    if (this.dialer.trackBuffered)
      this.bufferedAmount += typeof data === 'string' ? data.length : data.byteLength;
    if (written) this.#written.push(written);
  }
  close(code: number, reason: string): void {
    if (this.phase === 'ended' || this.phase === 'closing') return;
    this.phase = 'closing';
    this.endedBy ??= 'close';
    queueMicrotask(() => this.#end(code, reason));
  }
  terminate(): void {
    if (this.phase === 'ended') return;
    this.endedBy ??= 'terminate';
    this.phase = 'closing';
    queueMicrotask(() => this.#end(1006, ''));
  }
  ping(): void {
    this.pings++;
  }

  // server side
  accept(): void {
    if (this.phase !== 'connecting') return;
    this.phase = 'open';
    this.events.open();
  }
  reject(status: number, headers: Record<string, string> = {}): void {
    if (this.phase !== 'connecting') return;
    this.phase = 'ended';
    this.endedBy = 'server';
    this.events.rejected(status, headers);
  }
  serverClose(code: number, reason = ''): void {
    if (this.phase === 'ended') return;
    this.endedBy ??= 'server';
    this.#end(code, reason);
  }
  receive(data: WireData): void {
    if (this.phase === 'open' || this.phase === 'closing')
      this.events.message(data, typeof data !== 'string');
  }
  pong(): void {
    if (this.phase === 'open') this.events.pong();
  }
  /** The network took everything: written callbacks run. */
  drain(): void {
    this.bufferedAmount = 0;
    for (const callback of this.#written.splice(0)) callback();
  }
  #end(code: number, reason: string): void {
    if (this.phase === 'ended') return;
    this.phase = 'ended';
    this.events.close(code, reason);
  }
}

/** A dialer whose sockets the test drives by hand. */
export class FakeDialer implements Dialer {
  readonly name = 'fake';
  readonly supportsHeaders = true;
  readonly sockets: FakeSocket[] = [];
  /** Every message written, on any socket, in order. */
  readonly log: WireData[] = [];
  /** Count written bytes in `bufferedAmount` until `drain()` (to exercise the high-water mark). */
  trackBuffered = false;
  dial(request: DialRequest, events: DialEvents): FakeSocket {
    const socket = new FakeSocket(request, events, this);
    this.sockets.push(socket);
    return socket;
  }
  get live(): FakeSocket[] {
    return this.sockets.filter((socket) => socket.live);
  }
  get last(): FakeSocket | undefined {
    return this.sockets.at(-1);
  }
}
