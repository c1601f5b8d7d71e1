/**
 * Graceful shutdown: SIGTERM / SIGINT drain the server (no new connections or calls, in-flight calls
 * finish within `drainMs`, every session ends with its report logged by the app), then close it and
 * exit 0. A second signal exits at once.
 */
import type { Logger } from './contracts';
import type { RunningServer } from './server';

/** What {@link shutdownServer} did. */
export interface ShutdownReport {
  /** True when every in-flight request answered before the deadline. */
  readonly drained: boolean;
  /** True when `app.shutdown` settled (resolved or rejected) before its own deadline plus a margin. */
  readonly appShutdownSettled: boolean;
  readonly durationMs: number;
}

/** Extra time `app.shutdown(deadlineMs)` gets beyond its deadline before it is given up on. */
export const APP_SHUTDOWN_MARGIN_MS = 5_000;

/** Options of {@link shutdownServer}. */
export interface ShutdownOptions {
  /** How long in-flight calls may take. @default server.config.drainMs */
  readonly deadlineMs?: number;
  /** @default server.logger */
  readonly logger?: Logger;
}

function within<T>(promise: Promise<T>, ms: number): Promise<{ settled: boolean }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ settled: boolean }>((resolve) => {
    timer = setTimeout(() => resolve({ settled: false }), ms);
    timer.unref();
  });
  return Promise.race([promise.then(() => ({ settled: true })), timeout]).finally(() => clearTimeout(timer));
}

/**
 * Drains and closes `server`: marks it draining (upgrades and `/readyz` 503, new requests
 * `SERVER_DRAINING`), runs `app.shutdown(deadlineMs)` while waiting up to `deadlineMs` for in-flight
 * requests to answer, aborts what is still running, then closes every socket and the HTTP server.
 * Never rejects.
 */
export async function shutdownServer(
  server: RunningServer,
  options: ShutdownOptions = {},
): Promise<ShutdownReport> {
  const deadlineMs = options.deadlineMs ?? server.config.drainMs;
  const logger = options.logger ?? server.logger;
  const started = Date.now();
  server.startDraining();
  logger.info(
    { deadlineMs, inFlight: server.inFlight, connections: server.connectionCount },
    'shutdown: draining',
  );

  const appShutdown = Promise.resolve()
    .then(() => server.app.shutdown(deadlineMs))
    .catch((error: unknown) => {
      logger.error({ err: error }, 'shutdown: app.shutdown failed');
    });
  const drained = await server.waitForIdle(deadlineMs);
  if (!drained) {
    logger.warn(
      { inFlight: server.inFlight },
      'shutdown: deadline passed, cancelling the calls still running',
    );
    server.abortInFlight();
  }
  const { settled } = await within(
    appShutdown,
    Math.max(0, deadlineMs - (Date.now() - started)) + APP_SHUTDOWN_MARGIN_MS,
  );
  if (!settled) logger.error('shutdown: app.shutdown did not finish in time; closing anyway');
  try {
    await server.close();
  } catch (error) {
    logger.error({ err: error }, 'shutdown: closing the server failed');
  }
  const report: ShutdownReport = { drained, appShutdownSettled: settled, durationMs: Date.now() - started };
  logger.info(report, 'shutdown: done');
  return report;
}

/** What {@link installSignalHandlers} needs from the process (injectable for tests). */
export interface SignalProcess {
  on(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  exit(code?: number): never | undefined;
}

/** Options of {@link installSignalHandlers}. */
export interface SignalHandlerOptions extends ShutdownOptions {
  /** @default ['SIGTERM', 'SIGINT'] */
  readonly signals?: readonly NodeJS.Signals[];
  /** @default process */
  readonly process?: SignalProcess;
  /** Called after the graceful shutdown, before exit. */
  readonly onShutdown?: (report: ShutdownReport) => void;
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

/**
 * On the first of `signals`: {@link shutdownServer}, then `exit(0)` (1 if shutting down threw). On a
 * second signal: `exit(128 + signal number)` at once. Returns a function that removes the handlers.
 */
export function installSignalHandlers(server: RunningServer, options: SignalHandlerOptions = {}): () => void {
  const target: SignalProcess = options.process ?? (process as unknown as SignalProcess);
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const logger = options.logger ?? server.logger;
  let shuttingDown = false;
  const listener = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      logger.warn({ signal }, 'second signal: exiting now');
      target.exit(128 + (SIGNAL_NUMBERS[signal] ?? 0));
      return;
    }
    shuttingDown = true;
    logger.info({ signal }, 'signal received: shutting down');
    shutdownServer(server, options).then(
      (report) => {
        options.onShutdown?.(report);
        target.exit(0);
      },
      (error: unknown) => {
        logger.fatal({ err: error }, 'shutdown failed');
        target.exit(1);
      },
    );
  };
  for (const signal of signals) target.on(signal, listener);
  return () => {
    for (const signal of signals) target.off(signal, listener);
  };
}
