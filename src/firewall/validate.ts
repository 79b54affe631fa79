// Checks on every value that ends up inside a firewall command or ruleset
// text. The backends call these right where they interpolate, so a hostile
// door name or address can never reach nft, iptables or ipset.
import { isIPv4, isIPv6 } from 'node:net';
import type { Door, PortSpec } from '../types.js';
import { FirewallError, type Access, type AccessKey } from './types.js';

import { DOOR_NAME_RE } from '../limits.js';

export { DOOR_NAME_RE };
/** ipset's limit (2147483 s), which is also far inside nft's. */
export const MAX_ACCESS_MS = 2_147_483_000;

export function checkDoorName(name: unknown): string {
  if (typeof name !== 'string' || !DOOR_NAME_RE.test(name)) {
    throw new FirewallError(`invalid door name ${JSON.stringify(name)}: use 1-32 letters, digits, '_' or '-'`);
  }
  return name;
}

export function checkPortSpec(p: PortSpec, where: string): PortSpec {
  if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
    throw new FirewallError(`${where}: invalid port ${JSON.stringify(p.port)} (an integer 1-65535)`);
  }
  if (p.protocol !== 'tcp' && p.protocol !== 'udp') {
    throw new FirewallError(`${where}: invalid protocol ${JSON.stringify(p.protocol)} (tcp or udp)`);
  }
  return p;
}

/** Validate the doors handed to init() and index them by name. */
export function indexDoors(doors: readonly Door[]): Map<string, Door> {
  const byName = new Map<string, Door>();
  for (const door of doors) {
    checkDoorName(door.name);
    if (byName.has(door.name)) throw new FirewallError(`door '${door.name}' is defined twice`);
    if (door.open.length === 0) throw new FirewallError(`door '${door.name}': no ports to open`);
    door.open.forEach((p, i) => checkPortSpec(p, `door '${door.name}' open[${i}]`));
    byName.set(door.name, door);
  }
  return byName;
}

export function checkSource(source: unknown, family: unknown): string {
  if (family !== 4 && family !== 6) throw new FirewallError(`invalid address family ${JSON.stringify(family)} (4 or 6)`);
  if (typeof source !== 'string') throw new FirewallError(`invalid source address ${JSON.stringify(source)}`);
  // The character test excludes IPv6 zone ids (fe80::1%eth0) and anything else
  // isIPv6 tolerates that has no business in a rule.
  const ok = family === 4 ? isIPv4(source) : isIPv6(source) && /^[0-9A-Fa-f:.]+$/.test(source);
  if (!ok) throw new FirewallError(`invalid source address ${JSON.stringify(source)}: not an IPv${family} address`);
  return source;
}

/** Check an access against the doors the adapter was initialised with; returns its door. */
export function checkAccess(access: AccessKey, doors: ReadonlyMap<string, Door>): Door {
  const name = checkDoorName(access.door);
  const door = doors.get(name);
  if (!door) throw new FirewallError(`unknown door '${name}' (not among the doors given to init())`);
  checkSource(access.source, access.family);
  if (!Array.isArray(access.ports) || access.ports.length === 0) {
    throw new FirewallError(`access to door '${name}' for ${access.source}: no ports`);
  }
  const seen = new Set<string>();
  access.ports.forEach((p, i) => {
    checkPortSpec(p, `access to door '${name}' ports[${i}]`);
    const key = `${p.port}/${p.protocol}`;
    if (seen.has(key)) throw new FirewallError(`access to door '${name}': port ${key} listed twice`);
    seen.add(key);
    if (!door.open.some((o) => o.port === p.port && o.protocol === p.protocol)) {
      throw new FirewallError(`access to door '${name}': port ${key} is not one of the door's open ports`);
    }
  });
  return door;
}

/** Whole milliseconds left until `until`; an access that already ended cannot be opened. */
export function remainingMs(access: Access, now: number): number {
  if (!Number.isFinite(access.until)) throw new FirewallError(`access for ${access.source}: invalid end time ${access.until}`);
  const ms = Math.ceil(access.until - now);
  if (ms <= 0) {
    throw new FirewallError(
      `access to door '${access.door}' for ${access.source} already ended ${-ms} ms ago (until ${new Date(access.until).toISOString()})`,
    );
  }
  if (ms > MAX_ACCESS_MS) throw new FirewallError(`access for ${access.source}: ${ms} ms is longer than the maximum ${MAX_ACCESS_MS} ms`);
  return ms;
}

/** A stable, comparable order for list() results. */
export function sortAccesses(list: Access[]): Access[] {
  for (const a of list) (a.ports as PortSpec[]).sort(comparePorts);
  return list.sort((a, b) => a.door.localeCompare(b.door) || a.family - b.family || a.source.localeCompare(b.source));
}

export function comparePorts(a: PortSpec, b: PortSpec): number {
  return a.protocol.localeCompare(b.protocol) || a.port - b.port;
}
