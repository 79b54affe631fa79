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
  /** Force pretty (true) or JSON (false); default: pretty when the destination is a TTY. */
  pretty?: boolean;
  /** Destination file descriptor; default 1 (stdout). */
  fd?: 1 | 2;
}

function isTTY(fd: 1 | 2): boolean {
  return (fd === 1 ? process.stdout.isTTY : process.stderr.isTTY) === true;
}

/** Whether createLogger(options) writes pretty lines (false: JSON lines). */
export function isPretty(options: LoggerOptions = {}): boolean {
  return options.pretty ?? isTTY(options.fd ?? 1);
}

/**
 * Colours only on a terminal, and never when NO_COLOR is set to anything but
 * the empty string (https://no-color.org). pino-pretty itself would colour
 * whenever it is told to, NO_COLOR or not.
 */
export function useColour(tty: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  return tty && (env.NO_COLOR === undefined || env.NO_COLOR === '');
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const fd = options.fd ?? 1;
  const base = { level: options.level ?? 'info', base: { name: 'knockwatch' } };
  if (isPretty(options)) {
    // Synchronous pretty stream in-process: no worker thread to lose lines on exit.
    // singleLine: one event, one line (the fields follow the message), as in the JSON form.
    return pino(base, pretty({ colorize: useColour(isTTY(fd)), singleLine: true, sync: true, destination: fd, ignore: 'pid,hostname,name' }));
  }
  return pino(base, pino.destination({ fd, sync: true }));
}
