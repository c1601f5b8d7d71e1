import {
  InvalidRefError,
  type InvalidRefReason,
  type RefGoneReason,
  RefNotFoundError,
  RefRegistryError,
  RefRegistryErrorCode,
  SessionMismatchError,
} from '@trestle/ref-registry';
import { adapterError, PythonAdapterErrorCode, PythonError } from './errors';

/** An error as the worker reports it (PROTOCOL.md, ErrorInfo). */
export interface WireError {
  readonly kind:
    | 'python'
    | 'ref_not_found'
    | 'session_mismatch'
    | 'invalid_ref'
    | 'cancelled'
    | 'forbidden'
    | 'bad_request'
    | 'protocol'
    | 'unencodable'
    | 'registry_full';
  readonly type?: string;
  readonly module?: string;
  readonly message?: string;
  readonly traceback?: string;
  readonly fn?: string;
  readonly ref_id?: string;
  readonly session_id?: string;
  readonly expected_session?: string;
  readonly actual_session?: string;
  readonly reason?: string;
}

const goneReasons = new Set<RefGoneReason>([
  'released',
  'ttl',
  'lru',
  'session_released',
  'worker_restarted',
]);
const invalidReasons = new Set<InvalidRefReason>([
  'not_an_object',
  'missing_type',
  'not_a_ref',
  'unknown_schema',
  'missing_id',
  'missing_session',
  'missing_type_name',
  'invalid_field',
]);

/** Turns a worker's error report into the host's typed error. */
export function hostError(wire: WireError, fallbackFn: string): Error {
  const message = wire.message ?? '';
  switch (wire.kind) {
    case 'python':
      return new PythonError({
        type: wire.type ?? 'Exception',
        module: wire.module ?? 'builtins',
        pythonMessage: message,
        traceback: wire.traceback ?? '',
        fn: wire.fn ?? fallbackFn,
      });
    case 'ref_not_found': {
      const reason = goneReasons.has(wire.reason as RefGoneReason)
        ? (wire.reason as RefGoneReason)
        : undefined;
      return new RefNotFoundError(wire.ref_id ?? '?', wire.session_id ?? '?', reason);
    }
    case 'session_mismatch':
      return new SessionMismatchError(
        wire.ref_id ?? '?',
        wire.expected_session ?? '?',
        wire.actual_session ?? '?',
      );
    case 'invalid_ref': {
      const reason = invalidReasons.has(wire.reason as InvalidRefReason)
        ? (wire.reason as InvalidRefReason)
        : 'invalid_field';
      return new InvalidRefError(reason, message, wire.ref_id, wire.session_id);
    }
    case 'cancelled':
      return adapterError(PythonAdapterErrorCode.Aborted, `${fallbackFn} was cancelled in Python`);
    case 'forbidden':
      return adapterError(PythonAdapterErrorCode.Forbidden, message || `${fallbackFn} is not allowed`);
    case 'unencodable':
      return adapterError(PythonAdapterErrorCode.Unencodable, message);
    case 'registry_full':
      return new RefRegistryError(
        RefRegistryErrorCode.StoreFull,
        `python worker registry is full: ${message}`,
      );
    default:
      return adapterError(PythonAdapterErrorCode.Protocol, `${wire.kind}: ${message}`);
  }
}
