import type { KernelResult } from './types';

const marker = Symbol.for('trestle.kernel-client.error');

/** Stable codes of the errors this package throws. A published code never changes. */
export const KernelErrorCode = {
  /** A configuration value (option or environment variable) is missing, malformed or out of bounds. */
  ConfigInvalid: 'KERNEL_CONFIG_INVALID',
  /** The endpoint is not an absolute `unix://` path that fits `sun_path`, or not a loopback `http://` URL. */
  EndpointInvalid: 'KERNEL_ENDPOINT_INVALID',
  /** `required: true` and the daemon is unavailable. */
  Unavailable: 'KERNEL_UNAVAILABLE',
  /** A function argument is of the wrong type or out of range. */
  InvalidArgument: 'KERNEL_INVALID_ARGUMENT',
  /** A transport failed one attempt (see `KernelTransportError.kind`). */
  Transport: 'KERNEL_TRANSPORT',
  /** A frame could not be decoded (see `KernelFrameError.reason`). */
  Frame: 'KERNEL_FRAME',
} as const;
export type KernelErrorCode = (typeof KernelErrorCode)[keyof typeof KernelErrorCode];

/** The base class of every error of this package. */
export class KernelError extends Error {
  readonly [marker] = true;
  override readonly name: string = 'KernelError';
  readonly code: KernelErrorCode;
  constructor(code: KernelErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[kernel-client] ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
  /** Works across duplicate installs, where `instanceof` does not. */
  static isInstance(value: unknown): value is KernelError {
    return typeof value === 'object' && value !== null && marker in value;
  }
}

/** A configuration value is invalid; `variable` names the option or environment variable. */
export class KernelConfigError extends KernelError {
  override readonly name: string = 'KernelConfigError';
  /** The option (`timeoutMs`) or environment variable (`HEIDI_KERNEL_TIMEOUT_MS`) at fault. */
  readonly variable: string;
  constructor(variable: string, message: string, code: KernelErrorCode = KernelErrorCode.ConfigInvalid) {
    super(code, `${variable}: ${message}`);
    this.variable = variable;
  }
}

/**
 * What went wrong in one transport attempt:
 * - `connect`: the daemon was never reached (ENOENT, ECONNREFUSED, EACCES...). Retryable.
 * - `lost`: the connection closed or reset before the reply. Retryable only for idempotent methods.
 * - `bad_reply`: the reply could not be decoded (garbage, bad JSON, truncated). Not retried.
 * - `too_large`: the reply exceeds `maxResponseBytes`. Not retried.
 * - `http_status`: an HTTP daemon answered with a status other than 200. Not retried.
 * - `aborted`: the send's signal fired (deadline, caller's abort, close).
 * - `closed`: the transport was closed.
 */
export type TransportFailureKind =
  | 'connect'
  | 'lost'
  | 'bad_reply'
  | 'too_large'
  | 'http_status'
  | 'aborted'
  | 'closed';

/** A transport attempt failed. */
export class KernelTransportError extends KernelError {
  override readonly name: string = 'KernelTransportError';
  readonly kind: TransportFailureKind;
  /** Bytes received before the failure (for `payloadSize`). */
  readonly wireBytes: number;
  constructor(
    kind: TransportFailureKind,
    message: string,
    options?: { cause?: unknown; wireBytes?: number },
  ) {
    super(KernelErrorCode.Transport, message, options);
    this.kind = kind;
    this.wireBytes = options?.wireBytes ?? 0;
  }
}

/** A frame could not be decoded: `too_large` (over the limit, detected before allocating) or `malformed`. */
export class KernelFrameError extends KernelError {
  override readonly name: string = 'KernelFrameError';
  readonly reason: 'too_large' | 'malformed';
  constructor(reason: 'too_large' | 'malformed', message: string) {
    super(KernelErrorCode.Frame, message);
    this.reason = reason;
  }
}

/** `required: true` and the daemon is unavailable. `result` is what the call would have returned. */
export class KernelUnavailableError extends KernelError {
  override readonly name: string = 'KernelUnavailableError';
  readonly result: KernelResult | undefined;
  constructor(message: string, result?: KernelResult) {
    super(KernelErrorCode.Unavailable, message);
    this.result = result;
  }
}
