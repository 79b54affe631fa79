// Notices when our rules vanish from the kernel while the daemon runs and puts
// them back. `nft flush ruleset` (Debian's /etc/nftables.conf begins with it,
// so `systemctl restart nftables` runs it), `iptables -F`, or another tool
// replacing the ruleset would otherwise leave the door ports open to everyone
// while the daemon keeps logging "access opened".
//
// A check runs every `intervalMs` (1 s), at once after any firewall command
// failed (checkSoon) and at once when the kernel reports a deletion in our
// table (nftables: nft-monitor.ts); a lost state is reinstalled with the
// accesses that are still valid, so the worst case is one interval plus one
// reinstall (< 2 s), and with the monitor a few hundred ms.
// A check spawns one `nft list chain` (two `iptables -S` with iptables):
// measured 26 ms of CPU for the nft check, 31 ms for the iptables pair, so
// about 3 % of one core at one check a second.
// Polling stays even with the monitor: it covers iptables the same way, and
// a monitor can die or miss events unnoticed.
//
// Fail closed: a reinstall installs the drop rules first, then the accesses;
// if it fails, the next check tries again.
import { performance } from 'node:perf_hooks';
import type { Door } from '../types.js';
import type { Access, Firewall, FirewallLogger } from './types.js';

export const DEFAULT_STATE_CHECK_MS = 1000;

export interface StateWatchOptions {
  readonly firewall: Firewall;
  /** The doors now configured. */
  readonly doors: () => readonly Door[];
  /** Accesses that should be in the kernel now (the detector's ledger). */
  readonly accesses: () => readonly Access[];
  readonly logger: FirewallLogger;
  readonly intervalMs?: number;
}

export interface StateWatchStats {
  readonly checks: number;
  /** Times our state was found lost and reinstalled. */
  readonly reinstalls: number;
  readonly failedReinstalls: number;
}

export interface StateWatch {
  /** Check as soon as possible (a firewall command failed). */
  checkSoon(): void;
  /** Runs fn with no check in progress or starting (reload swaps doors and ledger). */
  paused<T>(fn: () => Promise<T>): Promise<T>;
  /** Ends the checks; resolves once none is in progress. */
  stop(): Promise<void>;
  readonly stats: StateWatchStats;
}

export function watchFirewallState(options: StateWatchOptions): StateWatch {
  const { firewall, logger } = options;
  const intervalMs = options.intervalMs ?? DEFAULT_STATE_CHECK_MS;
  const stats = { checks: 0, reinstalls: 0, failedReinstalls: 0 };
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let pauses = 0;
  let stopped = false;

  async function check(): Promise<void> {
    stats.checks++;
    if (await firewall.verify().catch(() => false)) return;
    const started = performance.now();
    const now = Date.now();
    const accesses = options.accesses().filter((a) => a.until > now);
    try {
      await firewall.reinstall(options.doors(), accesses);
      stats.reinstalls++;
      logger.warn(
        { accesses: accesses.length, reinstalls: stats.reinstalls, ms: Math.round(performance.now() - started) },
        'firewall state lost: reinstalled',
      );
    } catch (err) {
      stats.failedReinstalls++;
      logger.error({ err: (err as Error).message, failedReinstalls: stats.failedReinstalls }, 'firewall state lost: reinstall failed, retrying');
    }
  }

  let checking = false;
  /** checkSoon() during a check: run another one right after it. */
  let again = false;

  function schedule(delayMs: number): void {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (pauses > 0) return schedule(intervalMs);
      checking = true;
      const started = performance.now();
      running = check().finally(() => {
        checking = false;
        // Start to start, so a slow check does not stretch the period.
        schedule(again ? 0 : Math.max(0, intervalMs - (performance.now() - started)));
        again = false;
      });
    }, delayMs);
    // A check never keeps the process alive by itself.
    timer.unref();
  }
  schedule(intervalMs);
  function checkSoon(): void {
    if (checking) again = true;
    else schedule(0);
  }
  const unwatch = firewall.watchChanges?.(checkSoon);

  return {
    checkSoon,
    async paused(fn) {
      pauses++;
      try {
        await running;
        return await fn();
      } finally {
        pauses--;
      }
    },
    async stop() {
      stopped = true;
      unwatch?.();
      clearTimeout(timer);
      await running;
    },
    stats,
  };
}
