/**
 * What the Unix transport's calls and connections share: the socket class that knows its owner (so
 * event handlers are shared functions, not closures per call), and the mapping of failures to
 * `KernelTransportError` kinds. Internal.
 */
import { Socket } from 'node:net';
import type { ConnectWatchdog } from './connect-watchdog';
import { KernelFrameError, KernelTransportError } from './errors';
import type { KernelCodec } from './types';

/** What calls and connections need from their transport. */
export interface UnixContext {
  readonly path: string;
  /** Safe to put in messages. */
  readonly endpoint: string;
  readonly codec: KernelCodec;
  /** 0: no connect timeout (the send's signal still ends a connect). */
  readonly connectTimeoutMs: number;
  /** Present when `connectTimeoutMs > 0`. */
  readonly watchdog: ConnectWatchdog | undefined;
}

/** A socket with a back-reference to the call or connection that handles its events. */
export class OwnedSocket<T> extends Socket {
  readonly owner: T;
  constructor(owner: T) {
    super();
    this.owner = owner;
  }
}

/** The `code` of a system error (`ECONNREFUSED`), else its message. */
export function errorCode(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const message = (error as { message?: unknown }).message;
    if (typeof message === 'string') return message;
  }
  return String(error);
}

export function connectError(context: UnixContext, cause: unknown): KernelTransportError {
  return new KernelTransportError('connect', `cannot connect to ${context.endpoint}: ${errorCode(cause)}`, {
    cause,
  });
}

export function connectTimeoutError(context: UnixContext): KernelTransportError {
  return new KernelTransportError(
    'connect',
    `cannot connect to ${context.endpoint}: no connection within ${context.connectTimeoutMs} ms`,
  );
}

/**
 * The connection ended or failed after connecting. `partialBytes` > 0 (part of a reply frame was
 * held): the reply was truncated (`bad_reply`); else nothing of it came (`lost`).
 */
export function endedError(
  context: UnixContext,
  partialBytes: number,
  wireBytes: number,
  cause?: unknown,
): KernelTransportError {
  const how = cause === undefined ? 'closed' : `failed (${errorCode(cause)})`;
  if (partialBytes > 0)
    return new KernelTransportError(
      'bad_reply',
      `connection to ${context.endpoint} ${how} in the middle of a reply frame (${partialBytes} bytes held): truncated`,
      { cause, wireBytes },
    );
  return new KernelTransportError('lost', `connection to ${context.endpoint} ${how} before the reply`, {
    cause,
    wireBytes,
  });
}

/** A decoder's error as a transport failure: `too_large`, else `bad_reply`. */
export function frameFailure(context: UnixContext, error: unknown, wireBytes: number): KernelTransportError {
  const tooLarge = KernelFrameError.isInstance(error) && (error as KernelFrameError).reason === 'too_large';
  const message = error instanceof Error ? error.message : String(error);
  return new KernelTransportError(
    tooLarge ? 'too_large' : 'bad_reply',
    `bad reply from ${context.endpoint}: ${message}`,
    { cause: error, wireBytes },
  );
}

export function abortedError(
  context: UnixContext,
  signal: { readonly reason: unknown },
): KernelTransportError {
  return new KernelTransportError('aborted', `call to ${context.endpoint} aborted`, { cause: signal.reason });
}

export function closedError(context: UnixContext): KernelTransportError {
  return new KernelTransportError('closed', `transport to ${context.endpoint} is closed`);
}
