export { type Clock, systemClock } from './clock';
export {
  InvalidRefError,
  type InvalidRefReason,
  type RefGoneReason,
  RefNotFoundError,
  RefRegistryError,
  RefRegistryErrorCode,
  SessionMismatchError,
} from './errors';
export { type IdGenerator, randomId } from './ids';
export {
  type GcOwner,
  type OwnerEmitter,
  type OwnerKind,
  ownerHasEnded,
  ownerKind,
  type SessionOwner,
} from './owners';
export {
  createRef,
  decodeRef,
  encodeRef,
  isRef,
  isRefWire,
  REF_SCHEMA_VERSION,
  type Ref,
  type RefInit,
  RefSchema,
  type RefWire,
  RefWireSchema,
} from './ref';
export { ReleaseFailedError, type ReleaseOperation, type Releaser, ReleaseTimeoutError } from './releaser';
export { createSessionContext, type SessionContext, type WithSessionOptions } from './session-context';
export {
  SessionManagerDisposedError,
  SessionNotFoundError,
  SessionOwnerConflictError,
} from './session-errors';
export { createSessionManager } from './session-manager';
export type {
  OpenSessionOptions,
  RefInput,
  RefReleaseReport,
  SessionHandle,
  SessionInfo,
  SessionManager,
  SessionManagerEvent,
  SessionManagerEventMap,
  SessionManagerEventType,
  SessionManagerOptions,
  SessionManagerStats,
  SessionOptions,
  SessionReleaseCause,
  SessionReleaseReport,
} from './session-types';
export {
  DEFAULT_SESSION_LIMITS,
  type RefEviction,
  type RefStore,
  type RefStoreFactory,
  type RefStoreStats,
  type SessionLimits,
} from './store';
export {
  type MemoryRefStore,
  type MemoryRefStoreOptions,
  type MemoryRefStoreStats,
  memoryRefStore,
} from './stores/memory';
export { decodeValue, encodeValue, type JsonValue } from './value-codec';
