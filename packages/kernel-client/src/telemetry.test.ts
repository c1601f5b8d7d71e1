import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { kernelTelemetryChannel, kernelTelemetryChannelName, publishTelemetry } from './telemetry';
import type { KernelTelemetryEvent } from './types';

const event: KernelTelemetryEvent = {
  op: 'kernel_client.call',
  method: 'PING',
  endpoint: 'null://',
  transport: 'null',
  latencyMs: 1,
  success: true,
  status: 'ok',
  retryCount: 0,
  payloadSize: 10,
  errorCode: null,
  reason: null,
};

describe('publishTelemetry', () => {
  it('publishes on trestle:kernel-client:call and calls the callback', () => {
    const seen: unknown[] = [];
    const onMessage = (message: unknown) => seen.push(message);
    subscribe(kernelTelemetryChannelName, onMessage);
    try {
      const called: KernelTelemetryEvent[] = [];
      publishTelemetry(event, (e) => called.push(e));
      expect(seen).toEqual([event]);
      expect(called).toEqual([event]);
    } finally {
      unsubscribe(kernelTelemetryChannelName, onMessage);
    }
    expect(kernelTelemetryChannel.name).toBe('trestle:kernel-client:call');
  });

  it('does not publish without subscribers', () => {
    expect(kernelTelemetryChannel.hasSubscribers).toBe(false);
    const publish = kernelTelemetryChannel.publish.bind(kernelTelemetryChannel);
    let published = 0;
    kernelTelemetryChannel.publish = (message: unknown) => {
      published++;
      publish(message);
    };
    try {
      publishTelemetry(event);
    } finally {
      kernelTelemetryChannel.publish = publish;
    }
    expect(published).toBe(0);
  });

  it('survives a callback that throws or rejects', async () => {
    expect(() =>
      publishTelemetry(event, () => {
        throw new Error('broken sink');
      }),
    ).not.toThrow();
    let called = 0;
    const rejecting = (async () => {
      called++;
      throw new Error('async sink');
    }) as unknown as (e: KernelTelemetryEvent) => void;
    expect(() => publishTelemetry(event, rejecting)).not.toThrow();
    // An unhandled rejection would fail the run.
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(called).toBe(1);
  });
});
