import { describe, expect, it } from 'vitest';
import { byteSize, SendBuffer } from './send-buffer';

describe('SendBuffer', () => {
  it('is a FIFO bounded by count (reject-new)', () => {
    const buffer = new SendBuffer({ maxMessages: 2, maxBytes: 100, overflow: 'reject-new' });
    expect(buffer.push('a')).toEqual({ ok: true, dropped: [] });
    expect(buffer.push('b')).toEqual({ ok: true, dropped: [] });
    expect(buffer.push('c')).toEqual({ ok: false, reason: 'buffer_full' });
    expect([buffer.shift(), buffer.shift(), buffer.shift()]).toEqual(['a', 'b', undefined]);
  });

  it('is bounded by bytes, UTF-8 for text', () => {
    const buffer = new SendBuffer({ maxMessages: 10, maxBytes: 5, overflow: 'reject-new' });
    expect(byteSize('é')).toBe(2);
    expect(byteSize(new Uint8Array(3))).toBe(3);
    expect(buffer.push('éé').ok).toBe(true);
    expect(buffer.push('ab')).toEqual({ ok: false, reason: 'buffer_full' });
    expect(buffer.push('a').ok).toBe(true);
    expect(buffer.bytes).toBe(5);
    expect(buffer.push('123456')).toEqual({ ok: false, reason: 'too_large' });
  });

  it('drop-oldest evicts from the front and says what it dropped', () => {
    const buffer = new SendBuffer({ maxMessages: 2, maxBytes: 4, overflow: 'drop-oldest' });
    buffer.push('ab');
    buffer.push('c');
    expect(buffer.push('d')).toEqual({ ok: true, dropped: ['ab'] });
    expect(buffer.push('xyz')).toEqual({ ok: true, dropped: ['c'] });
    expect(buffer.clear()).toEqual(['d', 'xyz']);
    expect([buffer.length, buffer.bytes]).toEqual([0, 0]);
  });

  it('keeps order across compaction', () => {
    const buffer = new SendBuffer({ maxMessages: 5_000, maxBytes: 1e9, overflow: 'reject-new' });
    for (let i = 0; i < 3_000; i++) buffer.push(String(i));
    const out: string[] = [];
    for (let i = 0; i < 2_000; i++) out.push(buffer.shift() as string);
    for (let i = 3_000; i < 4_000; i++) buffer.push(String(i));
    while (buffer.length > 0) out.push(buffer.shift() as string);
    expect(out).toEqual(Array.from({ length: 4_000 }, (_, i) => String(i)));
  });
});
