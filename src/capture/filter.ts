// The libpcap (BPF) filter for live capture. It decides what reaches
// JavaScript, so it must be
//  - wide enough: every TCP SYN (ACK clear) and every UDP datagram addressed to
//    this host, on ANY port. Detection resets a source that knocks on a wrong
//    port; a filter that admitted only the sequence ports would let an
//    ascending port sweep open a door (knockd does exactly that).
//  - narrow enough: no segment with ACK set, so established TCP traffic never
//    costs a JavaScript callback; nothing addressed to other hosts (cap always
//    opens in promiscuous mode); nothing sent by this host.
//
// Direction is expressed with addresses (destination is ours, source is not),
// not with the `inbound` keyword: on Ethernet libpcap compiles `inbound` to a
// Linux ancillary load (SKF_AD_PKTTYPE) that its userland filter cannot
// evaluate, and libpcap runs the first ring frame after setting a filter
// through the userland filter. Measured here: with `inbound` on an Ethernet
// interface the first matching packet after every open was silently lost.
// The same applies to `ifindex`. Everything below is plain header offsets.
//
// IPv6: `tcp[tcpflags]` is IPv4-only in libpcap, so IPv6 flags are read at
// fixed offsets. Extension headers: one hop-by-hop, routing or destination
// options header, or one fragment header, is walked in BPF (flags checked
// behind it; non-first fragments, which carry no transport header, are
// dropped). Longer chains pass through unchecked - they are rare, and the
// decoder walks the chain and checks the flags in JavaScript anyway. IPsec
// (ESP/AH) is not admitted: knocks are plain SYNs and UDP datagrams.
import { isIP } from 'node:net';
import type { Door, Protocol } from '../types.js';

export interface CaptureFilterOptions {
  /**
   * This host's addresses: the watched interface's, or every interface's for
   * `any`. When given, a packet must be addressed to one of them and must not
   * come from one (that also excludes this host's own outgoing packets and
   * spoofed knocks "from" this host). Must not be empty.
   * Without it the filter has no address clauses: only for capture files or
   * tests, since live capture would then see this host's own outgoing SYNs.
   */
  readonly localAddresses?: readonly string[];
  /** Protocols to admit; default: every protocol used in a door's sequence. */
  readonly protocols?: readonly Protocol[];
}

const IPPROTO_HOPOPTS = 0;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ROUTING = 43;
const IPPROTO_FRAGMENT = 44;
const IPPROTO_DSTOPTS = 60;
/** SYN and ACK bits of the TCP flags byte. */
const SYN_ACK_MASK = '0x12';
const SYN_ONLY = '0x02';

/** The BPF filter text for live capture of knocks on the given doors. */
export function buildCaptureFilter(doors: readonly Door[], options: CaptureFilterOptions = {}): string {
  const protocols = captureProtocols(doors, options.protocols);
  const addresses = options.localAddresses === undefined ? undefined : normalizeAddresses(options.localAddresses);
  const families = addresses === undefined ? new Set([4, 6]) : new Set(addresses.map((a) => isIP(a)));

  const parts: string[] = [];
  if (families.has(4)) parts.push(`(ip and (${ipv4Clauses(protocols).join(' or ')}))`);
  if (families.has(6)) parts.push(`(ip6 and (${ipv6Clauses(protocols).join(' or ')}))`);
  // Cheap protocol tests first: they reject ACK segments before any address compare.
  const filter = [parts.length === 1 ? parts[0] : `(${parts.join(' or ')})`];
  if (addresses !== undefined) {
    const hosts = (dir: 'dst' | 'src'): string => addresses.map((a) => `${dir} host ${a}`).join(' or ');
    filter.push(`(${hosts('dst')})`, `not (${hosts('src')})`);
  }
  return filter.join(' and ');
}

/** The protocols the filter admits: explicit, or those of the doors' sequences. */
export function captureProtocols(doors: readonly Door[], explicit?: readonly Protocol[]): Protocol[] {
  const wanted = new Set<Protocol>(explicit ?? doors.flatMap((d) => d.sequence.map((s) => s.protocol)));
  for (const p of wanted) {
    if (p !== 'tcp' && p !== 'udp') throw new TypeError(`capture filter: unknown protocol '${String(p)}' (expected tcp or udp)`);
  }
  if (wanted.size === 0) {
    throw new TypeError(
      explicit ? 'capture filter: the protocols option is empty' : 'capture filter: no door has a knock sequence, so there is nothing to capture',
    );
  }
  return (['tcp', 'udp'] as const).filter((p) => wanted.has(p));
}

function normalizeAddresses(list: readonly string[]): string[] {
  if (list.length === 0) throw new TypeError('capture filter: localAddresses is empty, so no packet could match');
  const out = new Set<string>();
  list.forEach((raw, i) => {
    // A zone index (fe80::1%eth0) means nothing to a BPF address compare.
    const address = typeof raw === 'string' ? raw.replace(/%.*$/, '') : '';
    if (isIP(address) === 0) throw new TypeError(`capture filter: localAddresses[${i}] is not an IPv4 or IPv6 address: '${String(raw)}'`);
    out.add(address.toLowerCase());
  });
  return [...out];
}

function ipv4Clauses(protocols: readonly Protocol[]): string[] {
  const clauses: string[] = [];
  // tcp[...] already excludes non-first fragments (libpcap adds that test).
  if (protocols.includes('tcp')) clauses.push('(tcp and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn)');
  // A non-first fragment has no UDP header: no port to knock on.
  if (protocols.includes('udp')) clauses.push('(udp and ip[6:2] & 0x1fff == 0)');
  return clauses;
}

/**
 * Clauses on the transport header that starts at `at` (a BPF arithmetic
 * expression relative to the IPv6 header), whose protocol number is in the
 * byte at `next`.
 */
function transportClauses(protocols: readonly Protocol[], next: string, at: number | string): string[] {
  const clauses: string[] = [];
  // The flags are byte 13 of the TCP header.
  const flags = typeof at === 'number' ? `ip6[${at + 13}]` : `ip6[${at} + 13]`;
  if (protocols.includes('tcp')) clauses.push(`(${next} == ${IPPROTO_TCP} and ${flags} & ${SYN_ACK_MASK} == ${SYN_ONLY})`);
  if (protocols.includes('udp')) clauses.push(`${next} == ${IPPROTO_UDP}`);
  return clauses;
}

/** A further extension header: passed through for the decoder to walk. */
function chainClause(next: string): string {
  return [IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_FRAGMENT, IPPROTO_DSTOPTS].map((n) => `${next} == ${n}`).join(' or ');
}

function ipv6Clauses(protocols: readonly Protocol[]): string[] {
  // No extension header: the transport header is at 40.
  const clauses = transportClauses(protocols, 'ip6[6]', 40);
  // One hop-by-hop, routing or destination options header: its length byte
  // (ip6[41]) counts 8-octet units beyond the first 8.
  const options = `(ip6[6] == ${IPPROTO_HOPOPTS} or ip6[6] == ${IPPROTO_ROUTING} or ip6[6] == ${IPPROTO_DSTOPTS})`;
  const afterOptions = [...transportClauses(protocols, 'ip6[40]', '40 + (ip6[41] + 1) * 8'), chainClause('ip6[40]')];
  clauses.push(`(${options} and (${afterOptions.join(' or ')}))`);
  // One fragment header (8 bytes); only the first fragment (offset 0) carries the transport header.
  const afterFragment = [...transportClauses(protocols, 'ip6[40]', 48), chainClause('ip6[40]')];
  clauses.push(`(ip6[6] == ${IPPROTO_FRAGMENT} and ip6[42:2] & 0xfff8 == 0 and (${afterFragment.join(' or ')}))`);
  return clauses;
}
