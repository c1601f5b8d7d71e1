/**
 * Structured JSON logs with pino: one JSON object per line on stdout (no pretty printer; pipe through
 * `pino-pretty` yourself if you want one). Secrets are redacted wherever a field is named for them.
 */
import pino, { type DestinationStream } from 'pino';
import type { Logger, ServerConfig } from './contracts';

/** Field paths whose values are replaced by `[redacted]`. */
export const REDACTED_PATHS: readonly string[] = [
  'token',
  'secret',
  'authorization',
  '*.token',
  '*.secret',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'resumeToken',
  '*.resumeToken',
];

/**
 * A pino logger at `level`: JSON lines with `time` (ISO 8601), `level` as a label, `pid`, `hostname`
 * and `msg`; errors under `err` with type, message and stack.
 * @param destination where the lines go. @default stdout
 */
export function createLogger(level: ServerConfig['logLevel'], destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
  };
  return destination ? pino(options, destination) : pino(options);
}
