// The single dispatch from a FirewallKind to a backend, plus what every
// backend shares: ordering of operations (per source, with init/shutdown
// exclusive) and the doors' start/stop commands.
import type { Door, FirewallKind } from '../types.js';
import { DEFAULT_DOOR_COMMAND_TIMEOUT_MS, runDoorCommand } from './commands.js';
import { createIptables, type IptablesBinaries } from './iptables.js';
import { createNftables, DEFAULT_NFT_TABLE, type NftRefreshMode } from './nftables.js';
import { monitorNftRules } from './nft-monitor.js';
import { createNftSession, type NftSessionTuning } from './nft-session.js';
import { createNone } from './none.js';
import { createRunner, type Runner } from './run.js';
import { createSerializer } from './serial.js';
import { FirewallError, silentLogger, type Firewall, type FirewallAdapter, type FirewallLogger } from './types.js';

export type { Access, AccessKey, CloseOptions, Firewall, FirewallAdapter, FirewallLogger, OpenOptions } from './types.js';
export { FirewallError } from './types.js';
export { FirewallCommandError, type Runner, type CommandRequest, type CommandResult } from './run.js';
export { DoorCommandError } from './commands.js';
export { accessFromDecision, accessKeyFromDecision } from './access.js';

export interface FirewallOptions {
  logger?: FirewallLogger;
  /** Replaces the execa runner (unit tests record commands with it). */
  runner?: Runner;
  /** Run every command inside this named network namespace (the lab, the demo). Ignored with `runner`, except by an nft session. */
  netns?: string;
  /** nftables table name (default knockwatch). */
  table?: string;
  /** iptables chain name (default KNOCKWATCH). */
  chain?: string;
  /** ipset name prefix (default kw). */
  setPrefix?: string;
  /** Program paths (default: found on PATH). */
  binaries?: IptablesBinaries & { readonly nft?: string };
  /** Maximum elements per door set. */
  setSize?: number;
  /** nftables: how a refresh is written; default 'auto' (probed at init). */
  nftRefresh?: NftRefreshMode | 'auto';
  /**
   * nftables: open/close through a long-lived `nft -i` (falling back to
   * `nft -f -`). Default on with the real runner; off with an injected
   * `runner` (the session runs the real nft), unless tuning is given.
   */
  nftSession?: boolean | NftSessionTuning;
  /** Time limit for a door's start/stop command, ms. */
  commandTimeoutMs?: number;
  /** Wall clock, ms since the epoch (tests). */
  now?: () => number;
}

export function createFirewall(kind: FirewallKind, options: FirewallOptions = {}): Firewall {
  const logger = options.logger ?? silentLogger;
  const runner = options.runner ?? createRunner({ logger, ...(options.netns !== undefined ? { netns: options.netns } : {}) });
  const common = { runner, logger, ...(options.now ? { now: options.now } : {}), ...(options.setSize !== undefined ? { setSize: options.setSize } : {}) };
  let backend: FirewallAdapter;
  switch (kind) {
    case 'nftables': {
      const sessionWanted = options.nftSession ?? options.runner === undefined;
      const session =
        sessionWanted === false
          ? undefined
          : createNftSession({
              ...(sessionWanted === true ? {} : sessionWanted),
              logger,
              ...(options.binaries?.nft !== undefined ? { nft: options.binaries.nft } : {}),
              ...(options.netns !== undefined ? { netns: options.netns } : {}),
            });
      backend = createNftables({
        ...common,
        ...(options.table !== undefined ? { table: options.table } : {}),
        ...(options.binaries?.nft !== undefined ? { nft: options.binaries.nft } : {}),
        ...(options.nftRefresh !== undefined ? { refresh: options.nftRefresh } : {}),
        ...(session ? { session } : {}),
      });
      break;
    }
    case 'iptables':
      backend = createIptables({
        ...common,
        ...(options.chain !== undefined ? { chain: options.chain } : {}),
        ...(options.setPrefix !== undefined ? { setPrefix: options.setPrefix } : {}),
        ...(options.binaries !== undefined ? { binaries: options.binaries } : {}),
      });
      break;
    case 'none':
      backend = createNone({ logger, ...(options.now ? { now: options.now } : {}) });
      break;
    default:
      throw new FirewallError(`unknown firewall kind ${JSON.stringify(kind)} (nftables, iptables or none)`);
  }
  const firewall = withOrderingAndCommands(backend, runner, logger, options.commandTimeoutMs ?? DEFAULT_DOOR_COMMAND_TIMEOUT_MS);
  // Kernel events only from the real kernel (not with an injected runner).
  if (kind !== 'nftables' || options.runner !== undefined) return firewall;
  const table = options.table ?? DEFAULT_NFT_TABLE;
  return {
    ...firewall,
    watchChanges: (onDelete) =>
      monitorNftRules({
        table,
        onDelete,
        logger,
        ...(options.binaries?.nft !== undefined ? { nft: options.binaries.nft } : {}),
        ...(options.netns !== undefined ? { netns: options.netns } : {}),
      }),
  };
}

/**
 * Wraps a backend: per-source ordering, exclusive init/shutdown/reinstall, and
 * the door's start command after a successful new open / stop command after a
 * successful close, so each runs exactly once per access (a refresh or a
 * re-application after reload or loss runs none). A failing door command
 * rejects with DoorCommandError (the firewall change had been applied;
 * list() shows the truth).
 */
export function withOrderingAndCommands(backend: FirewallAdapter, runner: Runner, logger: FirewallLogger, commandTimeoutMs: number): Firewall {
  const serial = createSerializer();
  let doors = new Map<string, Door>();
  // Ordering is per source address: two doors opening for one source still queue.
  const sourceKey = (source: string): string => `src:${source}`;

  return {
    kind: backend.kind,
    init: (list) =>
      serial.exclusive(async () => {
        await backend.init(list);
        doors = new Map(list.map((d) => [d.name, d]));
      }),
    open: (access, options = {}) =>
      serial.keyed(sourceKey(access.source), async () => {
        await backend.open(access);
        const command = options.start === false ? undefined : doors.get(access.door)?.startCommand;
        if (command) await runDoorCommand(runner, 'start', command, access, logger, commandTimeoutMs);
      }),
    close: (access, options = {}) =>
      serial.keyed(sourceKey(access.source), async () => {
        if (options.kernel !== false) await backend.close(access);
        const command = doors.get(access.door)?.stopCommand;
        if (command) await runDoorCommand(runner, 'stop', command, access, logger, commandTimeoutMs);
      }),
    shutdown: () =>
      serial.exclusive(async () => {
        doors = new Map();
        await backend.shutdown();
      }),
    // Not through the serializer: it must reach the queue while opens wait in it.
    dropPending: () => backend.dropPending?.(),
    release: () =>
      serial.exclusive(async () => {
        doors = new Map();
        await backend.release?.();
      }),
    // Keyed like list(): waits for init/reinstall, not for sources' opens.
    verify: () => serial.keyed('verify', async () => (backend.verify ? backend.verify() : true)),
    reinstall: (list, accesses) =>
      serial.exclusive(async () => {
        await backend.init(list);
        doors = new Map(list.map((d) => [d.name, d]));
        // All at once: a backend that batches opens gets them in one go.
        const results = await Promise.allSettled(accesses.map((a) => backend.open(a)));
        const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed.length > 0) {
          throw new FirewallError(`reinstalled the rules but ${failed.length} of ${accesses.length} accesses failed: ${(failed[0].reason as Error).message}`);
        }
      }),
    // Its own key: waits for init/shutdown, not for other sources' opens.
    list: () => serial.keyed('list', () => backend.list()),
  };
}
