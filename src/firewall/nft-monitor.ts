// Kernel events as a hint that our nftables rules went away: `nft monitor
// rules` prints a line for every rule added or deleted in the namespace
// (`nft flush ruleset`, `delete table` and `flush chain` all delete our
// rules one by one), and nothing for set elements, so accesses opening and
// closing stay silent. A deletion in our table makes the state watch check at
// once instead of at its next tick (a reinstall then takes one verify and one
// transaction, instead of up to a second more). Polling stays the backstop:
// the monitor may be missing, die, or miss events when its socket overflows.
//
// setpriv --pdeathsig: the kernel kills the monitor when we die, even by
// SIGKILL (it never writes to us while nothing changes, so it would not
// notice its closed pipe and would linger).
import { spawn, type ChildProcess } from 'node:child_process';
import { COMMAND_ENV, commandArgv } from './run.js';
import type { FirewallLogger } from './types.js';

export interface NftMonitorOptions {
  readonly table: string;
  readonly onDelete: () => void;
  readonly logger: FirewallLogger;
  readonly nft?: string;
  readonly netns?: string;
  /** Wait before restarting a monitor that ended. */
  readonly restartMs?: number;
}

export const DEFAULT_MONITOR_RESTART_MS = 5000;

/** Whether a `nft monitor` line deletes something of our table. */
export function deletesFromTable(line: string, table: string): boolean {
  return line.startsWith('delete ') && (line.includes(` inet ${table} `) || line.endsWith(` inet ${table}`));
}

/** Starts the monitor; the returned function stops it for good. */
export function monitorNftRules(options: NftMonitorOptions): () => void {
  const { table, logger } = options;
  const restartMs = options.restartMs ?? DEFAULT_MONITOR_RESTART_MS;
  let child: ChildProcess | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const start = (): void => {
    if (stopped) return;
    const [file, args] = commandArgv('setpriv', ['--pdeathsig', 'KILL', options.nft ?? 'nft', 'monitor', 'rules'], options.netns);
    const proc = spawn(file, args, { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ...COMMAND_ENV } });
    child = proc;
    // Never what keeps the process alive: the state watch stops it, and an exit path that does not must still exit.
    proc.unref();
    (proc.stdout as (NodeJS.ReadableStream & { unref?: () => void }) | null)?.unref?.();
    let partial = '';
    proc.stdout?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      // Bounded: a line is a rule; one without a newline this long is not ours to keep.
      partial = (lines.pop() ?? '').slice(-4096);
      if (lines.some((l) => deletesFromTable(l, table))) options.onDelete();
    });
    proc.on('error', (err) => logger.debug({ err: err.message }, 'nft monitor could not start; the periodic check remains'));
    proc.on('close', (code, signal) => {
      if (child === proc) child = undefined;
      if (stopped) return;
      logger.debug({ code, signal, restartMs }, 'nft monitor ended; restarting it later, the periodic check remains');
      timer = setTimeout(start, restartMs);
      timer.unref();
    });
  };
  start();

  return () => {
    stopped = true;
    clearTimeout(timer);
    child?.kill('SIGKILL');
  };
}
