// Which knocks are addressed to this host: the one address rule for live
// capture (issue 8, items 7 and 13).
//
//   A packet counts when its destination is one of this host's addresses - of
//   ANY interface of the network namespace, as the kernel accepts a packet
//   for a local address whichever interface it arrives on (the eBPF
//   program's `local` map holds the same set) - except a loopback
//   destination (127.0.0.0/8, ::1) arriving on the wire, and never when its
//   source is one of this host's addresses (our own outgoing packets, and
//   spoofed knocks "from" us, which the kernel drops as martians).
//
// Why in JavaScript and not in the libpcap filter: cap 0.2.1 cannot replace
// the filter of an open capture, so an address list compiled into the filter
// meant a new capture process on every address change. Router advertisements
// with a fresh prefix 4 times a second made 47 restarts in 15 s and lost 7 of
// 10 knocks. The filter now holds no host address; this set follows the
// addresses instead and is consulted per knock (a Set lookup: the flood's
// destinations are our own few addresses, so the hot path is one hit).
//
// Never lose a knock because an address came or went:
//  - a removed address still counts for REMOVED_GRACE_MS: frames captured
//    just before the removal are still in the pipe when `ip monitor` reports it;
//  - a destination not (yet) in the set makes the set re-read the addresses
//    at once (getifaddrs, at most every MISS_REFRESH_MS): a knock to an address
//    added a moment ago can reach us before `ip monitor` does.
import { SocketAddress, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { Observable, map, type MonoTypeOperatorFunction } from 'rxjs';
import type { KnockEvent } from '../types.js';
import { addressesOf, watchInterfaces, type LiveLogger } from './interfaces.js';

/** How long a removed address still counts, ms. */
export const REMOVED_GRACE_MS = 2000;
/** Shortest time between two re-reads caused by unknown destinations, ms. */
export const MISS_REFRESH_MS = 100;

/** Why a knock does or does not count, by the rule above. */
export type HostVerdict = 'host' | 'not-ours' | 'loopback' | 'own-source';

/** The address set the rule is applied against. */
export interface LocalAddresses {
  /** Whether `address` (canonical text) is one of this host's addresses. */
  has(address: string): boolean;
}

/**
 * The address text the decoder writes (dotted quad; RFC 5952 IPv6), or
 * undefined for something that is not an address. A zone index is dropped.
 */
export function canonicalAddress(text: string): string | undefined {
  const bare = text.replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return new SocketAddress({ address: bare, family: 'ipv4' }).address;
  if (family !== 6) return undefined;
  const out = new SocketAddress({ address: bare, family: 'ipv6' }).address;
  // libuv writes IPv4-compatible addresses (::a.b.c.d, deprecated) with a
  // dotted tail; RFC 5952 and the decoder write only ::ffff:a.b.c.d that way.
  const compat = /^::(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(out);
  if (!compat) return out;
  const [a, b, c, d] = compat.slice(1).map(Number);
  const high = ((a << 8) | b).toString(16);
  const low = ((c << 8) | d).toString(16);
  return high === '0' ? `::${low}` : `::${high}:${low}`;
}

/** 127.0.0.0/8 and ::1, in canonical text. */
export function isLoopbackAddress(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

/** The rule: does a knock from `source` to `destination` count for this host? */
export function hostVerdict(source: string, destination: string, local: LocalAddresses): HostVerdict {
  if (isLoopbackAddress(destination)) return 'loopback';
  if (!local.has(destination)) return 'not-ours';
  if (local.has(source)) return 'own-source';
  return 'host';
}

/** Every address of every interface of this network namespace, canonical. */
export function readHostAddresses(): string[] {
  const out: string[] = [];
  for (const a of addressesOf(networkInterfaces(), 'any')) {
    const c = canonicalAddress(a);
    if (c !== undefined) out.push(c);
  }
  return out;
}

export interface HostAddressOptions {
  /** Reads the current addresses (default readHostAddresses). */
  readonly read?: () => readonly string[];
  /** Address lists as they change (default: watchInterfaces('any'), i.e. `ip monitor` plus polling). */
  readonly changes?: Observable<readonly string[]>;
  /** Monotonic milliseconds (default performance.now); injectable for tests. */
  readonly now?: () => number;
  readonly graceMs?: number;
  readonly missRefreshMs?: number;
  readonly logger?: LiveLogger;
}

/** Knocks the rule set aside, by reason (for the exit summary). */
export interface HostFilterCounts {
  notOurs: number;
  loopback: number;
  ownSource: number;
}

export interface HostAddressSet extends LocalAddresses {
  /** The rule against the live set; an unknown destination triggers one re-read first. */
  verdict(source: string, destination: string): HostVerdict;
  /** Present addresses (not those in their grace period), sorted. */
  current(): string[];
  /** Replaces the present addresses (what a change notification delivers). */
  update(addresses: readonly string[]): void;
  /** Re-reads now. */
  refresh(): void;
}

/** A live set of this host's addresses; feed it with update() (followHostAddresses does). */
export function createHostAddressSet(options: HostAddressOptions = {}): HostAddressSet {
  const read = options.read ?? readHostAddresses;
  const now = options.now ?? (() => performance.now());
  const graceMs = options.graceMs ?? REMOVED_GRACE_MS;
  const missRefreshMs = options.missRefreshMs ?? MISS_REFRESH_MS;
  const present = new Set<string>();
  /** Removed addresses still counted, with the time they stop counting. */
  const leaving = new Map<string, number>();
  let lastRead = -Infinity;

  const update = (list: readonly string[]): void => {
    const t = now();
    const next = new Set<string>();
    for (const raw of list) {
      const a = canonicalAddress(raw);
      if (a !== undefined) next.add(a);
    }
    const added: string[] = [];
    const removed: string[] = [];
    for (const a of next) {
      if (!present.has(a)) added.push(a);
      leaving.delete(a);
    }
    for (const a of present) {
      if (!next.has(a)) {
        removed.push(a);
        leaving.set(a, t + graceMs);
      }
    }
    // Bounded: only addresses removed within the last graceMs stay here.
    for (const [a, until] of leaving) if (until <= t) leaving.delete(a);
    present.clear();
    for (const a of next) present.add(a);
    if (added.length > 0 || removed.length > 0) options.logger?.debug?.({ added, removed, addresses: present.size }, 'host addresses changed');
  };

  const refresh = (): void => {
    lastRead = now();
    update(read());
  };

  const has = (a: string): boolean => {
    if (present.has(a)) return true;
    const until = leaving.get(a);
    if (until === undefined) return false;
    if (until > now()) return true;
    leaving.delete(a);
    return false;
  };

  refresh();
  return {
    has,
    verdict(source, destination) {
      let v = hostVerdict(source, destination, { has });
      if (v === 'not-ours' && now() - lastRead >= missRefreshMs) {
        refresh();
        v = hostVerdict(source, destination, { has });
      }
      return v;
    },
    current: () => [...present].sort(),
    update,
    refresh,
  };
}

/**
 * Keeps only the knocks addressed to this host (the rule above), following
 * the host's addresses while subscribed. Address changes never interrupt
 * the knocks flowing through.
 */
export function keepKnocksForHost(options: HostAddressOptions & { readonly counts?: HostFilterCounts } = {}): MonoTypeOperatorFunction<KnockEvent> {
  return (source) =>
    new Observable<KnockEvent>((subscriber) => {
      const set = createHostAddressSet(options);
      const changes = options.changes ?? watchInterfaces('any', { logger: options.logger }).pipe(map((s) => s.addresses));
      const follow = changes.subscribe({
        next: (list) => set.update(list),
        error: (err: unknown) => options.logger?.error({ err: (err as Error).message }, 'cannot follow the host addresses; using the last known ones'),
      });
      const counts = options.counts ?? { notOurs: 0, loopback: 0, ownSource: 0 };
      const inner = source.subscribe({
        next(ev) {
          const v = set.verdict(ev.source, ev.destination);
          if (v === 'host') subscriber.next(ev);
          else if (v === 'not-ours') counts.notOurs++;
          else if (v === 'loopback') counts.loopback++;
          else counts.ownSource++;
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      return () => {
        inner.unsubscribe();
        follow.unsubscribe();
        options.logger?.info({ ...counts }, 'knocks not for this host (address rule)');
      };
    });
}
