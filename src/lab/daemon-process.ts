// The built `knockwatch run` daemon as a child process inside a lab namespace,
// with its JSON log lines parsed as they arrive, so the demo, the end-to-end
// tests and the latency benchmark drive the real program (real capture, real
// firewall) and can wait for what it says it did.
import { fileURLToPath } from 'node:url';
import type { ResultPromise } from 'execa';
import type { CaptureKind, FirewallKind } from '../types.js';
import type { Lab, LabHost } from './netns.js';

/** One pino JSON log line of the daemon. */
export interface DaemonLogLine {
  readonly level: number;
  /** Wall clock of the line, ms since the epoch. */
  readonly time: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface DaemonProcessOptions {
  /** The built CLI entry (dist/cli.js). */
  readonly cliPath: string;
  readonly configPath: string;
  readonly interface?: string;
  readonly firewall: FirewallKind;
  readonly capture?: CaptureKind;
  readonly logLevel?: 'debug' | 'info';
  /** Namespace to run in; default the lab's server. */
  readonly host?: LabHost;
  /** Every parsed log line, as it arrives. */
  readonly onLine?: (line: DaemonLogLine) => void;
  /** More `run` options (e.g. --remove-rules-on-exit). */
  readonly extraArgs?: readonly string[];
}

export interface DaemonExit {
  readonly exitCode?: number;
  readonly signal?: string;
}

export interface DaemonProcess {
  readonly pid: number | undefined;
  /** Every log line so far, oldest first. */
  readonly lines: readonly DaemonLogLine[];
  /** stdout/stderr text that was not a JSON log line (crashes, warnings). */
  readonly otherOutput: () => string;
  /** The last log lines and other output, for error messages. */
  readonly recentOutput: () => string;
  /** Resolves once the process is gone. */
  readonly exited: Promise<DaemonExit>;
  /**
   * The first line from index `since` on (default 0) that matches, waiting up
   * to `timeoutMs`. Rejects with `what` and the recent log on timeout or exit.
   */
  waitFor(match: (line: DaemonLogLine) => boolean, what: string, timeoutMs: number, since?: number): Promise<DaemonLogLine>;
  /** Lines from index `since` on that match. */
  find(match: (line: DaemonLogLine) => boolean, since?: number): DaemonLogLine[];
  signal(sig: NodeJS.Signals): void;
  /** SIGINT (clean shutdown: the daemon's rules stay unless it runs with --remove-rules-on-exit), then wait; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<DaemonExit>;
}

/** dist/cli.js next to this module once built (dist/lab/ -> dist/cli.js). */
export function builtCliPath(): string {
  return fileURLToPath(new URL('../cli.js', import.meta.url));
}

/** The log line the daemon writes once packets from now on are seen. */
export function isCaptureReady(line: DaemonLogLine): boolean {
  return line.msg === 'live capture open' || line.msg === 'eBPF capture attached';
}

/** A daemon line that means it failed for good. */
export function isFatal(line: DaemonLogLine): boolean {
  return line.level >= 60;
}

function parseLine(text: string): DaemonLogLine | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    const v = JSON.parse(text) as Partial<DaemonLogLine>;
    if (typeof v.msg === 'string' && typeof v.level === 'number' && typeof v.time === 'number') return v as DaemonLogLine;
  } catch {
    // Not JSON after all: kept as other output.
  }
  return undefined;
}

/** Splits a byte stream into lines and hands each complete one over. */
function lineSplitter(onLine: (text: string) => void): (chunk: Buffer | string) => void {
  let partial = '';
  return (chunk) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) onLine(p);
  };
}

/** Start the daemon in the lab's server namespace (lab.spawn: killed by lab.destroy()). */
export function spawnDaemon(lab: Lab, options: DaemonProcessOptions): DaemonProcess {
  const args = [
    process.execPath,
    options.cliPath,
    'run',
    '--config',
    options.configPath,
    '--interface',
    options.interface ?? 'kw0',
    '--firewall',
    options.firewall,
    '--capture',
    options.capture ?? 'pcap',
    '--log-format',
    'json',
    '--log-level',
    options.logLevel ?? 'info',
    ...(options.extraArgs ?? []),
  ];
  const child: ResultPromise = lab.spawn(options.host ?? lab.server, args, { buffer: false, stdin: 'ignore' });
  const lines: DaemonLogLine[] = [];
  let other = '';
  const waiters = new Set<() => void>();
  const onText = (text: string): void => {
    const line = parseLine(text);
    if (!line) {
      if (text.trim() !== '') other = (other + text + '\n').slice(-16_384);
      return;
    }
    lines.push(line);
    options.onLine?.(line);
    for (const w of [...waiters]) w();
  };
  child.stdout?.on('data', lineSplitter(onText));
  child.stderr?.on('data', lineSplitter(onText));

  let gone = false;
  const exited: Promise<DaemonExit> = child.then(
    (r) => ({ ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}), ...(r.signal !== undefined ? { signal: r.signal } : {}) }),
    () => ({}),
  );
  void exited.then(() => {
    gone = true;
    for (const w of [...waiters]) w();
  });

  const recent = (): string =>
    [...lines.slice(-12).map((l) => JSON.stringify(l)), other.trim()].filter((s) => s !== '').join('\n');

  const find = (match: (line: DaemonLogLine) => boolean, since = 0): DaemonLogLine[] => lines.slice(since).filter(match);

  const waitFor = (match: (line: DaemonLogLine) => boolean, what: string, timeoutMs: number, since = 0): Promise<DaemonLogLine> =>
    new Promise<DaemonLogLine>((resolve, reject) => {
      let checked = since;
      const check = (): void => {
        for (; checked < lines.length; checked++) {
          if (match(lines[checked])) {
            finish();
            resolve(lines[checked]);
            return;
          }
        }
        if (gone) {
          finish();
          reject(new Error(`daemon exited while waiting for ${what}; its last output:\n${recent()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no ${what} from the daemon within ${timeoutMs} ms; its last output:\n${recent()}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  return {
    pid: child.pid,
    lines,
    otherOutput: () => other,
    recentOutput: recent,
    exited,
    waitFor,
    find,
    signal(sig) {
      if (!gone) child.kill(sig);
    },
    async stop(graceMs = 5000) {
      if (!gone) child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** spawnDaemon, then wait until its capture is open; kills it and rejects if it does not get there. */
export async function startDaemonProcess(lab: Lab, options: DaemonProcessOptions, readyTimeoutMs = 15_000): Promise<DaemonProcess> {
  const daemon = spawnDaemon(lab, options);
  try {
    await daemon.waitFor(isCaptureReady, 'capture-ready line', readyTimeoutMs);
  } catch (err) {
    daemon.signal('SIGKILL');
    await daemon.exited;
    throw err;
  }
  return daemon;
}
