import { describe, expect, it } from 'vitest';
import { CallControl } from './call-control';
import { KernelTransportError } from './errors';

describe('CallControl', () => {
  it('runs every abort listener once, with the reason set, and forgets unregistered ones', () => {
    const control = new CallControl(1024);
    const calls: string[] = [];
    control.onAbort(() => calls.push(`a:${control.aborted}`));
    const off = control.onAbort(() => calls.push('b'));
    control.onAbort(() => {
      throw new Error('a throwing listener does not stop the others');
    });
    control.onAbort(() => calls.push('c'));
    off();
    control.stop('timeout');
    control.stop('closed');
    expect(calls).toEqual(['a:true', 'c']);
    expect(control.cause).toBe('timeout');
    expect(control.reason).toBeInstanceOf(KernelTransportError);
    expect((control.reason as KernelTransportError).kind).toBe('aborted');
  });

  it('makes a real AbortSignal only when read, aborted with the same reason, before or after the stop', () => {
    const early = new CallControl(1024);
    const signal = early.signal;
    expect(signal).toBeInstanceOf(AbortSignal);
    expect(signal.aborted).toBe(false);
    early.stop('aborted');
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(early.reason);

    const late = new CallControl(1024);
    late.stop('closed');
    expect(late.signal.aborted).toBe(true);
    expect(late.signal.reason).toBe(late.reason);
    expect(late.abortWatch).toBe(late);
    expect(late.maxResponseBytes).toBe(1024);
  });
});
