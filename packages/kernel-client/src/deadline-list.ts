import type { Clock } from './types';

/** An entry of a {@link DeadlineList}: stopped by the list when its deadline passes. */
export interface DeadlineEntry {
  /** When it is due (clock milliseconds). */
  at: number;
  prev: DeadlineEntry | undefined;
  next: DeadlineEntry | undefined;
  /** Called once, at the deadline, if the entry is still in the list. */
  expire(): void;
}

/**
 * Deadlines that are added in the order they fall due (every call of a client has the same
 * `timeoutMs`), served by ONE clock timer: adding and removing an entry is O(1) and sets no timer,
 * and the timer, armed for the oldest entry, re-arms itself for the next one when it fires. An entry
 * that does not fall due after the last one added must not be added (it gets a timer of its own).
 */
export class DeadlineList {
  readonly #clock: Clock;
  #head: DeadlineEntry | undefined;
  #tail: DeadlineEntry | undefined;
  #timer: unknown;
  /** When the armed timer fires; `Infinity` when none is armed. */
  #armedAt = Number.POSITIVE_INFINITY;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The due time of the newest entry: a new entry may be added only if it is due at or after this. */
  get lastAt(): number {
    return this.#tail?.at ?? Number.NEGATIVE_INFINITY;
  }

  add(entry: DeadlineEntry): void {
    entry.prev = this.#tail;
    entry.next = undefined;
    if (this.#tail) this.#tail.next = entry;
    else this.#head = entry;
    this.#tail = entry;
    if (this.#armedAt === Number.POSITIVE_INFINITY) this.#arm(entry.at);
  }

  remove(entry: DeadlineEntry): void {
    const { prev, next } = entry;
    if (prev) prev.next = next;
    else if (this.#head === entry) this.#head = next;
    else return; // not in the list
    if (next) next.prev = prev;
    else this.#tail = prev;
    entry.prev = undefined;
    entry.next = undefined;
    // The timer stays armed: when it fires it re-arms for whatever is then the oldest entry.
  }

  /** Stops the timer (the entries stay). */
  dispose(): void {
    if (this.#armedAt !== Number.POSITIVE_INFINITY) this.#clock.clearTimeout(this.#timer);
    this.#armedAt = Number.POSITIVE_INFINITY;
  }

  #arm(at: number): void {
    this.#armedAt = at;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), Math.max(0, at - this.#clock.now()));
    // The timer outlives the calls it was armed for: it must not keep the process alive by itself
    // (a pending call keeps it alive through its transport's socket).
    (this.#timer as { unref?: () => void } | undefined)?.unref?.();
  }

  #fire(): void {
    this.#armedAt = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    for (let entry = this.#head; entry !== undefined && entry.at <= now; entry = this.#head) {
      this.remove(entry);
      entry.expire();
    }
    if (this.#head !== undefined && this.#armedAt === Number.POSITIVE_INFINITY) this.#arm(this.#head.at);
  }
}
