import { channel } from 'node:diagnostics_channel';
import type { KernelTelemetryEvent } from './types';

/** The name of the diagnostics channel that carries one {@link KernelTelemetryEvent} per call. */
export const kernelTelemetryChannelName = 'trestle:kernel-client:call';

/**
 * The `node:diagnostics_channel` channel of the client: one {@link KernelTelemetryEvent} per call
 * (never params, payloads or credentials).
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * subscribe('trestle:kernel-client:call', (event) => metrics.observe(event as KernelTelemetryEvent));
 * ```
 */
export const kernelTelemetryChannel = channel(kernelTelemetryChannelName);

/** A telemetry callback; what it throws (or a promise it rejects) is ignored. */
export type KernelTelemetryCallback = (event: KernelTelemetryEvent) => void;

/**
 * Publishes `event` on {@link kernelTelemetryChannel} (only when it has subscribers) and gives it to
 * `callback`. Never throws: a failing callback must not break a call.
 */
export function publishTelemetry(event: KernelTelemetryEvent, callback?: KernelTelemetryCallback): void {
  if (kernelTelemetryChannel.hasSubscribers) {
    try {
      kernelTelemetryChannel.publish(event);
    } catch {
      // Node reports a subscriber's throw asynchronously; nothing to do here.
    }
  }
  if (callback === undefined) return;
  try {
    const returned: unknown = callback(event);
    if (returned instanceof Promise) returned.catch(() => {});
  } catch {
    // Ignored on purpose.
  }
}
