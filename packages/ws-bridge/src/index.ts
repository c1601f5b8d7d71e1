export { Backoff, type BackoffDecision, backoffDelay, defaultRetryPolicy } from './backoff';
export { createBridge, defaultHeartbeat } from './bridge';
export { defaultClassify, defaultPermanentCloseCodes, parseRetryAfter } from './classify';
export { BridgeError, BridgeErrorCode, isPermanent, PermanentError } from './errors';
export {
  isPermanentTokenError,
  type OAuthClientCredentialsOptions,
  oauthClientCredentials,
  PERMANENT_OAUTH_ERRORS,
  TokenErrorCode,
  type TokenFailureReason,
  TokenRequestError,
  type TokenRequestErrorDetails,
} from './oauth';
export { defaultSendBufferOptions } from './send-buffer';
export {
  minRefreshIntervalMs,
  refreshDelay,
  sharedTokenProvider,
  staticToken,
  type TokenRefresher,
  type TokenRefresherOptions,
  tokenRefresher,
} from './token';
export type {
  Bridge,
  BridgeEvents,
  BridgeOptions,
  BridgeState,
  BridgeStats,
  Classification,
  Classifier,
  Clock,
  Connection,
  DialEvents,
  Dialer,
  DialRequest,
  Failure,
  FailureClass,
  FailureSource,
  Handler,
  HeartbeatOptions,
  Logger,
  Metrics,
  OverflowPolicy,
  RetryPolicy,
  SendBufferOptions,
  SendFunction,
  SendRejectReason,
  SendResult,
  Token,
  TokenProvider,
  TokenTransport,
  WireData,
} from './types';
export { type WebSocketConstructor, type WebSocketLike, webSocketDialer } from './web-socket-dialer';
export { type WsDialerOptions, wsDialer } from './ws-dialer';
