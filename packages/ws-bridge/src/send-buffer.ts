import type { OverflowPolicy, SendBufferOptions, WireData } from './types';

/** The defaults of {@link SendBufferOptions}. */
export const defaultSendBufferOptions: SendBufferOptions = Object.freeze({
  maxMessages: 1_000,
  maxBytes: 1_048_576,
  overflow: 'reject-new' as OverflowPolicy,
});

const encoder = new TextEncoder();

/** The size a message counts for: UTF-8 bytes for text, byte length for binary. */
export function byteSize(data: WireData): number {
  if (typeof data !== 'string') return data.byteLength;
  // ASCII fast path: most text is; encode only when a code unit is above 0x7f.
  for (let index = 0; index < data.length; index++) {
    if (data.charCodeAt(index) > 0x7f) return encoder.encode(data).byteLength;
  }
  return data.length;
}

/** What `push` did. `dropped` lists the messages evicted (`drop-oldest`). */
export type PushResult =
  | { readonly ok: true; readonly dropped: readonly WireData[] }
  | { readonly ok: false; readonly reason: 'buffer_full' | 'too_large' };

/** A FIFO bounded by message count and bytes. */
export class SendBuffer {
  #items: { data: WireData; size: number }[] = [];
  #head = 0;
  #bytes = 0;
  constructor(readonly options: SendBufferOptions) {}

  get length(): number {
    return this.#items.length - this.#head;
  }
  get bytes(): number {
    return this.#bytes;
  }

  push(data: WireData): PushResult {
    const size = byteSize(data);
    const { maxMessages, maxBytes, overflow } = this.options;
    if (size > maxBytes || maxMessages < 1) return { ok: false, reason: 'too_large' };
    const fits = () => this.length < maxMessages && this.#bytes + size <= maxBytes;
    if (!fits() && overflow === 'reject-new') return { ok: false, reason: 'buffer_full' };
    const dropped: WireData[] = [];
    while (!fits()) {
      const evicted = this.shift();
      if (evicted === undefined) break;
      dropped.push(evicted);
    }
    this.#items.push({ data, size });
    this.#bytes += size;
    return { ok: true, dropped };
  }

  peek(): WireData | undefined {
    return this.#items[this.#head]?.data;
  }

  shift(): WireData | undefined {
    const item = this.#items[this.#head];
    if (item === undefined) return undefined;
    this.#items[this.#head] = undefined as never;
    this.#head++;
    this.#bytes -= item.size;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item.data;
  }

  clear(): WireData[] {
    const rest = this.#items.slice(this.#head).map((item) => item.data);
    this.#items = [];
    this.#head = 0;
    this.#bytes = 0;
    return rest;
  }
}
