/**
 * `@trestle/server`: the reference multi-tenant JSON-RPC 2.0 over WebSocket server, for tests and
 * embedding. The bin is `trestle-server` (main.ts).
 */
export {
  type Authenticator,
  type AuthRefusal,
  type AuthRefusalCode,
  type AuthResult,
  createAuthenticator,
  type SignTokenOptions,
  signDevToken,
  signToken,
} from './auth';
export { type CliIo, type CliResult, runCli } from './cli';
export { ConfigError, DEFAULT_SERVER_TIERS, type LoadConfigOptions, loadConfig } from './config';
export {
  type App,
  type AppDependencies,
  type Logger,
  type MethodSpec,
  type MethodTable,
  type Metrics,
  type Principal,
  type RpcConnection,
  type RpcContext,
  RpcMethodError,
  type ServerConfig,
} from './contracts';
export { createLogger } from './log';
export { type CreateMetricsOptions, createMetrics } from './metrics';
export { createRpcChannel, DEFAULT_MAX_IN_FLIGHT, type RpcChannel, type RpcChannelOptions } from './rpc';
export { JsonRpcCode, RpcErrorCode } from './rpc-envelope';
export { type RunningServer, type StartServerOptions, startServer } from './server';
export { installSignalHandlers, type ShutdownReport, shutdownServer } from './shutdown';
