// The "none" backend: validates and logs what would be done, changes nothing
// (dry runs, replay, hosts where another tool applies the decisions). It keeps
// its own record so list() answers like the real backends. Doors' start/stop
// commands still run (createFirewall adds them for every kind): they are the
// user's own way of applying a decision, e.g. through another firewall tool.
import type { Door } from '../types.js';
import { FirewallError, type Access, type FirewallAdapter, type FirewallLogger } from './types.js';
import { checkAccess, indexDoors, remainingMs, sortAccesses } from './validate.js';

export interface NoneOptions {
  readonly logger: FirewallLogger;
  readonly now?: () => number;
}

export function createNone(options: NoneOptions): FirewallAdapter {
  const { logger } = options;
  const now = options.now ?? Date.now;
  let doors: Map<string, Door> | undefined;
  const open = new Map<string, Access>();
  const key = (a: { door: string; source: string }): string => `${a.door}|${a.source}`;
  const ready = (): Map<string, Door> => {
    if (!doors) throw new FirewallError('firewall is not initialised (call init() first)');
    return doors;
  };

  return {
    kind: 'none',
    async init(list) {
      doors = indexDoors(list);
      open.clear();
      logger.info({ doors: [...doors.keys()] }, 'firewall "none": rules are logged, not applied');
    },
    async open(access) {
      checkAccess(access, ready());
      const ms = remainingMs(access, now());
      open.set(key(access), { ...access, ports: [...access.ports] });
      logger.info({ door: access.door, source: access.source, ports: access.ports, ms }, 'would open');
    },
    async close(access) {
      checkAccess(access, ready());
      const current = open.get(key(access));
      if (current) {
        const closing = new Set(access.ports.map((p) => `${p.protocol}/${p.port}`));
        const left = current.ports.filter((p) => !closing.has(`${p.protocol}/${p.port}`));
        if (left.length === 0) open.delete(key(access));
        else open.set(key(access), { ...current, ports: left });
      }
      logger.info({ door: access.door, source: access.source, ports: access.ports }, 'would close');
    },
    async shutdown() {
      doors = undefined;
      open.clear();
    },
    async list() {
      ready();
      const t = now();
      // Like the kernel: an access past its end is simply gone.
      for (const [k, a] of open) if (a.until <= t) open.delete(k);
      return sortAccesses([...open.values()].map((a) => ({ ...a, ports: [...a.ports] })));
    },
  };
}
