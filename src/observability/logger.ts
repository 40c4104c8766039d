/**
 * Structured logs: one JSON object per line (pino). Loggers are created by the CLI and passed down;
 * nothing here is global. Secrets never reach a log: configs are logged through `redact`.
 */
import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({
    level: options.level ?? process.env.MESHGATE_LOG_LEVEL ?? 'info',
    base: options.name ? { component: options.name } : { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
