import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One logger factory for every process. JSON lines to stderr (stdout belongs to
 * command output); WEFT_LOG_LEVEL sets the level, `silent` for tests.
 */
export function createLogger(name: string, level = process.env.WEFT_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination(2));
}
