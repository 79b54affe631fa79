// The libpcap (BPF) filter for live capture. It decides what reaches
// JavaScript, so it must be
//  - wide enough: every TCP SYN (ACK clear) and every UDP datagram addressed to
//    this host, on ANY port. Detection resets a source that knocks on a wrong
//    port; a filter that admitted only the sequence ports would let an
//    ascending port sweep open a door (knockd does exactly that).
//  - narrow enough: no segment with ACK set, so established TCP traffic never
//    costs a JavaScript callback; no loopback destination; no unicast
//    Ethernet frame for another host's MAC (linkClause below), which this
//    host drops and a promiscuous capture sees.
//
// No host address is in the filter. Which packets are addressed to this host
// (and not sent by it) is decided per knock in JavaScript by the one address
// rule in host-addresses.ts, against a set that follows the addresses: cap
// 0.2.1 cannot replace the filter of an open capture, so addresses compiled
// in here cost a capture restart (and lost knocks) on every address change.
// Direction is not in the filter either: on Ethernet libpcap compiles
// `inbound` to a Linux ancillary load (SKF_AD_PKTTYPE) that its userland
// filter cannot evaluate, and libpcap runs the first ring frame after setting
// a filter through the userland filter. Measured here: with `inbound` on an
// Ethernet interface the first matching packet after every open was silently
// lost. The same applies to `ifindex`. Everything below is plain header offsets.
//
// IPv6: `tcp[tcpflags]` is IPv4-only in libpcap, so IPv6 flags are read at
// fixed offsets. Extension headers: one hop-by-hop, routing or destination
// options header, or one fragment header, is walked in BPF (flags checked
// behind it; non-first fragments, which carry no transport header, are
// dropped). Longer chains pass through unchecked - they are rare, and the
// decoder walks the chain and checks the flags in JavaScript anyway. IPsec
// (ESP/AH) is not admitted: knocks are plain SYNs and UDP datagrams.
import type { Protocol } from '../types.js';

const IPPROTO_HOPOPTS = 0;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ROUTING = 43;
const IPPROTO_FRAGMENT = 44;
const IPPROTO_DSTOPTS = 60;
/** SYN and ACK bits of the TCP flags byte. */
const SYN_ACK_MASK = '0x12';
const SYN_ONLY = '0x02';

/**
 * The BPF filter text for live capture of knocks of these protocols
 * (CaptureNeeds.protocols). `linkAddress`: the capture interface's MAC
 * (InterfaceState.linkAddress), for an interface whose frames are Ethernet;
 * omit it for `any` (cooked frames: the decoder reads their packet type) and
 * for links without a MAC.
 */
export function buildCaptureFilter(wanted: readonly Protocol[], linkAddress?: string): string {
  const protocols = captureProtocols(wanted);
  // Cheap protocol tests first: they reject ACK segments before the address compare.
  const ip =
    `((ip and (${ipv4Clauses(protocols).join(' or ')}) and ${NOT_LOOPBACK_V4})` +
    ` or (ip6 and (${ipv6Clauses(protocols).join(' or ')}) and ${NOT_LOOPBACK_V6}))`;
  return linkAddress === undefined ? ip : `${linkClause(linkAddress)} and ${ip}`;
}

/**
 * The knock rule's link part for Ethernet (src/decode/decode.ts: what the
 * host drops, we ignore): a unicast frame counts only when it is addressed to
 * this interface's own MAC. Linux marks any other unicast frame
 * PACKET_OTHERHOST and drops it before IP, but a capture sees it: cap always
 * opens in promiscuous mode (pcap_set_promisc(1) is hard-coded in cap 0.2.1),
 * and even without promiscuous mode a packet socket on a software link (veth,
 * bridge, tap) or on a NIC that someone else made promiscuous receives such
 * frames. The frame bytes cannot say which MAC is ours, so the decoder cannot
 * tell; this filter term is where the pcap backend applies it (tc eBPF: the
 * kernel's skb->pkt_type; cooked `any` captures: the decoder reads the packet
 * type). `ether multicast` tests the group bit, so broadcast and multicast
 * frames pass, and the decoder then ignores TCP in them (Linux's TCP does).
 * A plain header-offset test, run the same in the kernel and in libpcap's
 * userland filter (see the top of this file on `inbound`).
 */
export function linkClause(linkAddress: string): string {
  const mac = linkAddress.toLowerCase();
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) throw new TypeError(`capture: invalid MAC address ${JSON.stringify(linkAddress)} (expected aa:bb:cc:dd:ee:ff)`);
  return `(ether dst ${mac} or ether multicast)`;
}

/**
 * The address rule's one static part (host-addresses.ts): a loopback
 * destination never counts, and on `lo` or `any` it would be every local
 * connection's SYN.
 */
const NOT_LOOPBACK_V4 = 'not dst net 127.0.0.0/8';
const NOT_LOOPBACK_V6 = 'not dst host ::1';

/**
 * The protocols a capture delivers, checked and in canonical order (tcp
 * first), for this filter and the eBPF loader's --protocol alike. Which ones
 * a config needs is decided once, from the doors, by detect's captureNeeds():
 * both as soon as a door has a sequence, since any SYN or UDP datagram to a
 * wrong port resets a source part-way through (the rule in decode/decode.ts).
 */
export function captureProtocols(protocols: readonly Protocol[]): Protocol[] {
  const wanted = new Set<Protocol>(protocols);
  for (const p of wanted) {
    if (p !== 'tcp' && p !== 'udp') throw new TypeError(`capture: unknown protocol '${String(p)}' (expected tcp or udp)`);
  }
  if (wanted.size === 0) throw new TypeError('capture: no protocol to capture (no door has a knock sequence)');
  return (['tcp', 'udp'] as const).filter((p) => wanted.has(p));
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
