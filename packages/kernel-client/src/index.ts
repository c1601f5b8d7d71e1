/**
 * `@trestle/kernel-client`: a client for local daemons that cannot hang. Unix socket (preferred) or
 * loopback HTTP, length-prefixed or line codecs, whole-call deadlines, bounded in-flight, safe retries,
 * one telemetry event per call. The daemon side is on `@trestle/kernel-client/server`, the
 * conformance suites on `@trestle/kernel-client/testing`.
 */
export { type RetryDelayOptions, retryDelay } from './backoff';
export {
  type AvailabilityCheckOptions,
  type CallOptions,
  KernelClient,
  type KernelClientEnvOptions,
  type KernelClientStats,
} from './client';
export { LENGTH_PREFIX_BYTES, type LengthPrefixedJsonOptions, lengthPrefixedJson } from './codec-length';
export {
  formatLineReply,
  formatLineRequest,
  type LineCodecOptions,
  lineCodec,
  parseLineReply,
  parseLineRequest,
} from './codec-line';
export {
  type KernelClientOptions,
  type KernelCodecName,
  type KernelConfig,
  type KernelEnvOptions,
  type KernelMode,
  kernelClientOptionsSchema,
  kernelConfigBounds,
  kernelConfigDefaults,
  kernelConfigFromEnv,
  resolveKernelConfig,
} from './config';
export {
  type KernelEndpoint,
  loopbackHosts,
  maxSocketPathBytes,
  parseEndpoint,
  redactEndpoint,
} from './endpoint';
export {
  KernelConfigError,
  KernelError,
  KernelErrorCode,
  KernelFrameError,
  KernelTransportError,
  KernelUnavailableError,
  type TransportFailureKind,
} from './errors';
export { type HttpTransportOptions, httpTransport } from './http-transport';
export { type NullTransportReply, nullTransport } from './null-transport';
export { methodNamePattern } from './request';
export { type Release, Semaphore } from './semaphore';
export {
  type KernelTelemetryCallback,
  kernelTelemetryChannel,
  kernelTelemetryChannelName,
  publishTelemetry,
} from './telemetry';
export type {
  AvailabilityOptions,
  Clock,
  DecoderLimits,
  FrameDecoder,
  KernelCodec,
  KernelParams,
  KernelReplyFrame,
  KernelRequest,
  KernelRequestFrame,
  KernelResult,
  KernelStatus,
  KernelTelemetryEvent,
  KernelTransport,
  SendOptions,
  TransportReply,
} from './types';
export { KernelResultCode } from './types';
export {
  defaultUnixTransportOptions,
  type UnixTransportMode,
  type UnixTransportOptions,
  unixTransport,
} from './unix-transport';
