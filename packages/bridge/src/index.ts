export { type Clock, systemClock } from './clock';
export { BridgeError, BridgeErrorCode, BudgetExceededError } from './errors';
export { createBridgeManager } from './manager';
export { END_REASONS, REF_REASON_BY_END_REASON } from './reasons';
export type {
  BridgeEvent,
  BridgeEventType,
  BridgeManager,
  BridgeManagerOptions,
  BridgeManagerStats,
  BusyToken,
  EndReason,
  EndReport,
  GetOrCreateOptions,
  Meter,
  MeteredOptions,
  RefsEndReport,
  Session,
  SessionBudget,
  SessionCallStats,
  SessionMeta,
  SessionState,
  UndischargedHandle,
  UndischargedReason,
} from './types';
