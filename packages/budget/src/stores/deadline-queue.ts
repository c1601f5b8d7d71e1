import type { Clock } from '../clock';

interface Pending {
  readonly at: number;
  readonly expire: () => void;
  done: boolean;
}

/**
 * Deadlines for calls that all share one timeout: they expire in the order they started, so a FIFO
 * queue and ONE timer replace a timer per call (a measurable cost at tens of thousands of calls a
 * second). Finished entries are skipped lazily.
 */
export class DeadlineQueue {
  private readonly queue: Pending[] = [];
  private head = 0;
  private timer: unknown;
  private armedAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly clock: Clock,
    private readonly timeoutMs: number,
  ) {}

  /** Calls `expire` after `timeoutMs` unless the returned `done()` is called first. */
  add(expire: () => void): () => void {
    const entry: Pending = { at: this.clock.now() + this.timeoutMs, expire, done: false };
    this.queue.push(entry);
    if (this.timer === undefined) this.arm(entry.at);
    return () => {
      entry.done = true;
    };
  }

  private arm(at: number): void {
    this.armedAt = at;
    this.timer = this.clock.setTimeout(() => this.fire(), Math.max(0, at - this.clock.now()));
  }

  private fire(): void {
    this.timer = undefined;
    const now = this.clock.now();
    const queue = this.queue;
    while (this.head < queue.length) {
      const entry = queue[this.head]!;
      if (!entry.done && entry.at > now) break;
      this.head++;
      if (!entry.done) {
        entry.done = true;
        entry.expire();
      }
    }
    if (this.head > 1024 && this.head * 2 > queue.length) {
      queue.splice(0, this.head);
      this.head = 0;
    }
    if (this.head < queue.length) this.arm(Math.max(queue[this.head]!.at, this.armedAt));
    else {
      queue.length = 0;
      this.head = 0;
    }
  }
}
