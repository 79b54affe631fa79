// spa's part of the daemon's life, for the composition root (start.ts): keys
// read at start and before a reload changes anything, the runtime (clock,
// lease, logs: spa-runtime.ts) started when a config first has spa doors and
// stopped (clean-stop record) when the last one goes, and the accesses a
// reload must close because their user was removed.
import { hasSpaDoors, keyBaseDir, loadSpaUsers } from '../config/users.js';
import type { OpenAccess } from '../detect/index.js';
import type { Logger } from '../log.js';
import type { SpaStore } from '../spa/store.js';
import type { SpaUser } from '../spa/verify.js';
import type { KnockwatchConfig } from '../types.js';
import { listeningUdpPorts } from './udp-listeners.js';
import { DEFAULT_STATE_DIR } from './spa-state-store.js';
import { spaDoors, startSpaRuntime, type SpaRuntime } from './spa-runtime.js';

export interface SpaDaemonOptions {
  readonly logger: Logger;
  /** The config file (relative key file paths are taken from its directory). */
  readonly configPath?: string;
  readonly stateDir?: string;
  readonly captureClock: () => number;
  /** Network namespace the daemon's firewall runs in: the listener check looks there. */
  readonly netns?: string;
}

export interface PreparedSpa {
  /** Whether a reload ends this access because its user was removed (in addition to the door rules). */
  ends(access: OpenAccess): boolean;
  /** Switches to the new config's store (starting or stopping the runtime as needed). */
  apply(): Promise<void>;
}

export interface SpaDaemon {
  /** The store for a detector of the current config (undefined: no spa doors). */
  readonly store: SpaStore | undefined;
  /** Reads the next config's keys; throws (nothing changed) when they cannot be read. */
  prepare(next: KnockwatchConfig): Promise<PreparedSpa>;
  stop(): Promise<void>;
}

async function readUsers(config: KnockwatchConfig, options: SpaDaemonOptions): Promise<SpaUser[]> {
  const path = options.configPath ?? '(built-in config)';
  return loadSpaUsers(config.users ?? [], path, { baseDir: options.configPath !== undefined ? keyBaseDir(options.configPath) : process.cwd() });
}

/** Refuses a config whose spa port has a listening socket: whatever listens there would answer (an oracle), and nothing may. */
async function checkNoListener(config: KnockwatchConfig, options: SpaDaemonOptions): Promise<void> {
  const ports = new Set(spaDoors(config).map((d) => d.port));
  const listening = await listeningUdpPorts(options.netns);
  const busy = [...ports].filter((p) => listening.has(p));
  if (busy.length > 0) {
    throw new Error(`UDP port ${busy.join(', ')} has a listening socket on this host: an spa port must stay closed (nothing bound, our firewall drops it); stop what listens there or choose another spa port`);
  }
}

export async function startSpaDaemon(initial: KnockwatchConfig, options: SpaDaemonOptions): Promise<SpaDaemon> {
  const log = options.logger.child({ stage: 'spa' });
  let runtime: SpaRuntime | undefined;
  const start = async (config: KnockwatchConfig, users: readonly SpaUser[]): Promise<SpaRuntime> => {
    await checkNoListener(config, options);
    return startSpaRuntime(config, users, { logger: log, stateDir: options.stateDir ?? DEFAULT_STATE_DIR, captureClock: options.captureClock });
  };
  if (hasSpaDoors(initial.doors)) {
    runtime = await start(initial, await readUsers(initial, options));
    if (initial.firewall === 'none') log.warn({ ports: [...new Set(spaDoors(initial).map((d) => d.port))] }, "firewall none: nothing drops the spa port, so the kernel answers every datagram there with an ICMP port unreachable (with nftables or iptables knockwatch drops it)");
  }

  return {
    get store() {
      return runtime?.store;
    },
    async prepare(next) {
      const wants = hasSpaDoors(next.doors);
      const users = wants ? await readUsers(next, options) : [];
      if (wants) await checkNoListener(next, options);
      // Which addresses lose their user: computed now, applied by apply().
      let closing = new Set<string>();
      if (runtime !== undefined && wants) {
        const names = new Set(users.map((u) => u.name));
        const removed = [...runtime.store.server.users.keys()].filter((u) => !names.has(u));
        const t = Date.now();
        const live = (u: string): string[] => [...(runtime?.store.server.holders.get(u) ?? new Map<string, number>())].filter(([, until]) => until > t).map(([a]) => a);
        const kept = new Set([...names].flatMap(live));
        closing = new Set(removed.flatMap(live).filter((a) => !kept.has(a)));
      }
      const spaNames = new Set(runtime ? [...runtime.store.server.doors.keys()] : []);
      return {
        ends: (a) => spaNames.has(a.door) && closing.has(a.source),
        async apply() {
          if (!wants) {
            await runtime?.stop();
            runtime = undefined;
          } else if (runtime === undefined) {
            runtime = await start(next, users);
          } else {
            const r = runtime.reload(next, users);
            if (r.removedUsers.length > 0) log.info({ users: r.removedUsers, closed: [...r.closeAddresses] }, 'spa users removed: their hints are gone and their accesses closed');
          }
        },
      };
    },
    async stop() {
      await runtime?.stop();
    },
  };
}
