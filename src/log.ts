// One place that builds the pino logger: JSON lines by default (journald,
// log shippers), human-readable when the destination is a terminal.
import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function isLogLevel(value: string): value is LevelWithSilent {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Force pretty (true) or JSON (false); default: pretty when stdout is a TTY. */
  pretty?: boolean;
  /** Destination file descriptor; default 1 (stdout). */
  fd?: 1 | 2;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const fd = options.fd ?? 1;
  const tty = fd === 1 ? process.stdout.isTTY : process.stderr.isTTY;
  const base = { level: options.level ?? 'info', base: { name: 'knockwatch' } };
  if (options.pretty ?? tty) {
    // Synchronous pretty stream in-process: no worker thread to lose lines on exit.
    return pino(base, pretty({ colorize: tty, sync: true, destination: fd, ignore: 'pid,hostname,name' }));
  }
  return pino(base, pino.destination({ fd, sync: true }));
}
