// Frame -> KnockEvent. This module is the one home of the rule of what counts
// as a knock; the libpcap filter (capture/filter.ts) and the eBPF program
// (ebpf/knock.bpf.c) are derived from it and may only pass MORE than it
// accepts, never hide a packet it would count.
//
// THE RULE. A packet is a knock exactly when this host itself would deliver it
// to TCP as a segment with SYN set and ACK clear, or to UDP as a datagram, on
// any port, addressed to one of its own addresses. So:
//  - headers are parsed as deep as Linux parses them: any number of IPv6
//    extension headers (measured in the lab: 7, 12 and 40 destination-options
//    headers, and a TCP header past byte 256, all drew an RST), hop-by-hop
//    only first; a routing header must have no segments left (else the
//    packet is bound for another hop). Option contents are not checked:
//    Linux also drops an unknown option whose type says "discard" (checked
//    in the lab), which both backends count alike;
//  - what the host drops, we ignore (each checked in the lab: no answer):
//    an IPv4 header with a bad checksum, an IP length beyond the frame, a UDP
//    length below 8 or beyond the packet, a TCP data offset below 5 or beyond
//    the packet; IPv6 AH (Linux without an SA answers ICMPv6, never TCP) and
//    ESP; any VLAN-tagged frame (one tag or QinQ): a tagged frame belongs to
//    the VLAN's own interface, which is captured there (untagged) when it
//    exists, and is dropped when it does not (libpcap's SLL2 records do not
//    show the tag, so in such a file a tagged frame counts); TCP in a link-layer broadcast or
//    multicast frame; and a frame for another host's MAC (Linux marks it
//    PACKET_OTHERHOST and drops it before IP). Cooked captures (`any`) say so
//    in their packet type (3), read here. An Ethernet frame does not say
//    which MAC is ours, so that part is applied where the MAC is known: the
//    pcap filter admits unicast frames for the capture interface's own MAC
//    only (capture/filter.ts linkClause; cap always captures promiscuously),
//    eBPF at tc reads the kernel's skb->pkt_type, and at XDP compares the
//    interface's MAC the loader puts in its `macs` map;
//  - addresses: the destination must be an address of this host (any
//    interface's, `lo` included), never a loopback destination arriving from
//    the wire, and never our own address as source. That test needs the host's
//    address list, so it is applied after decoding (pcap: the capture's
//    address check; eBPF: its `local` map), not here;
//  - protocols: both, whatever the doors use, since any SYN or UDP datagram
//    from a source part-way through a sequence resets it
//    (captureNeeds() in detect/capture-needs.ts, for the pcap filter and eBPF);
//  - a first fragment (offset 0) counts; later fragments carry no port.
//    Transport checksums are not verified (neither backend does).
// A capture may be cut short (snaplen): a frame whose headers were not all
// captured is ignored ('headers-not-captured'), never guessed at; both
// backends capture at least through the transport header (eBPF sends up the
// frame up to the end of the TCP/UDP header it found, see knock.bpf.c).
//
// Everything else is counted as ignored (valid but no knock) or malformed (a
// length or field that contradicts the bytes), each with a short reason key.
//
// This runs once per captured packet, including every packet of a flood, so:
// - it never throws: every read is preceded by a bounds check instead of a
//   try/catch, and bad input only bumps a counter;
// - it allocates nothing for packets that are not knocks, and for knocks only
//   the event, the source address text (the destination's is reused while it
//   repeats, see destination4) and a payload view when there is a payload;
// - time comes from the frame, never from the clock.
import { sourceFold, type Frame, type KnockEvent } from '../types.js';
import { formatIPv4, formatIPv6 } from './address.js';
import { PACKET_OUTGOING } from './link-types.js';

export interface DecodeStats {
  /** Frames offered to the decoder. */
  frames: number;
  /** Frames that produced a KnockEvent. */
  knocks: number;
  /** Well-formed frames that are not knocks (ACKs, ICMP, ARP, later fragments, unknown link types...). */
  ignored: number;
  /** Frames whose bytes contradict their own headers (truncated, bad lengths, bad versions...). */
  malformed: number;
  /** Malformed count per reason key, e.g. 'ipv4-truncated', 'ipv6-ext-loop'. */
  malformedReasons: Record<string, number>;
  /** Ignored count per reason key, e.g. 'tcp-not-syn', 'fragment', 'link-type'. */
  ignoredReasons: Record<string, number>;
}

export function createDecodeStats(): DecodeStats {
  return { frames: 0, knocks: 0, ignored: 0, malformed: 0, malformedReasons: {}, ignoredReasons: {} };
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const TCP = 6;
const UDP = 17;
const TCP_SYN = 0x02;
const TCP_ACK = 0x10;
/** Linux packet types in cooked captures (SLL/SLL2). */
const PACKET_BROADCAST = 1;
const PACKET_MULTICAST = 2;
const PACKET_OTHERHOST = 3;
/** Set in `linkCast` when the frame was link-layer broadcast/multicast: TCP ignores it. */
let linkCast = false;

/** Shared by every knock without payload (the usual SYN), so they allocate no view. */
const EMPTY = new Uint8Array(0);

function malformed(stats: DecodeStats, reason: string): undefined {
  stats.malformed++;
  stats.malformedReasons[reason] = (stats.malformedReasons[reason] ?? 0) + 1;
  return undefined;
}

function ignored(stats: DecodeStats, reason: string): undefined {
  stats.ignored++;
  stats.ignoredReasons[reason] = (stats.ignoredReasons[reason] ?? 0) + 1;
  return undefined;
}

/** Decode one frame. Returns the knock it carries, or undefined (and counts why). */
export function decodeFrame(frame: Frame, stats: DecodeStats): KnockEvent | undefined {
  stats.frames++;
  const d = frame.data;
  const len = d.length;
  switch (frame.linkType) {
    // Literal cases (see link-types.ts for the names) keep this a jump table.
    case 1: // ETHERNET: dst(6) src(6) type(2); the group bit of dst marks broadcast/multicast
      if (len < 14) return malformed(stats, 'ethernet-truncated');
      linkCast = (d[0] & 1) !== 0;
      return etherType(frame, (d[12] << 8) | d[13], 14, stats);
    case 113: // LINUX_SLL: packet type(2) arphrd(2) addr len(2) addr(8) protocol(2)
      if (len < 16) return malformed(stats, 'sll-truncated');
      if (!packetType(stats, (d[0] << 8) | d[1])) return undefined;
      return etherType(frame, (d[14] << 8) | d[15], 16, stats);
    case 276: // LINUX_SLL2: protocol(2) reserved(2) ifindex(4) arphrd(2) packet type(1) addr len(1) addr(8)
      if (len < 20) return malformed(stats, 'sll2-truncated');
      if (!packetType(stats, d[10])) return undefined;
      return etherType(frame, (d[0] << 8) | d[1], 20, stats);
    case 101: // RAW
    case 12: // DLT_RAW on BSDs
    case 14: // DLT_RAW on OpenBSD
      linkCast = false;
      if (len < 1) return malformed(stats, 'raw-truncated');
      return ipByVersion(frame, 0, stats);
    case 228: // IPV4
      linkCast = false;
      return ipv4(frame, 0, stats);
    case 229: // IPV6
      linkCast = false;
      return ipv6(frame, 0, stats);
    case 0: // NULL (BSD loopback): address family in the capturing host's byte order; try both.
      if (len < 4) return malformed(stats, 'null-truncated');
      return afPayload(frame, familyOf(d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)) || familyOf((d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3]), stats);
    case 108: // LOOP (OpenBSD loopback): address family in network byte order.
      if (len < 4) return malformed(stats, 'loop-truncated');
      return afPayload(frame, familyOf((d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3]), stats);
    default:
      return ignored(stats, 'link-type');
  }
}

/** IP version named by a NULL/LOOP address family value, or 0 for anything else. */
function familyOf(af: number): 0 | 4 | 6 {
  if (af === 2) return 4; // AF_INET everywhere
  if (af === 24 || af === 28 || af === 30) return 6; // AF_INET6: NetBSD/OpenBSD, FreeBSD, macOS
  return 0;
}

function afPayload(frame: Frame, family: 0 | 4 | 6, stats: DecodeStats): KnockEvent | undefined {
  linkCast = false;
  if (family === 4) return ipv4(frame, 4, stats);
  if (family === 6) return ipv6(frame, 4, stats);
  return ignored(stats, 'not-ip');
}

function ipByVersion(frame: Frame, off: number, stats: DecodeStats): KnockEvent | undefined {
  const v = frame.data[off] >> 4;
  if (v === 4) return ipv4(frame, off, stats);
  if (v === 6) return ipv6(frame, off, stats);
  return malformed(stats, 'ip-version');
}

/**
 * A cooked capture's packet type: false (and counted) when the host would not
 * take the frame at all; sets linkCast for broadcast/multicast frames.
 */
function packetType(stats: DecodeStats, type: number): boolean {
  if (type === PACKET_OUTGOING) return ignored(stats, 'outgoing') ?? false;
  if (type === PACKET_OTHERHOST) return ignored(stats, 'other-host') ?? false;
  linkCast = type === PACKET_BROADCAST || type === PACKET_MULTICAST;
  return true;
}

/**
 * An Ethernet type, with `off` where the bytes after the type field start. A
 * VLAN tag means the frame belongs to the VLAN's interface, not this one (see
 * the rule above).
 */
function etherType(frame: Frame, type: number, off: number, stats: DecodeStats): KnockEvent | undefined {
  if (type === ETHERTYPE_IPV4) return ipv4(frame, off, stats);
  if (type === ETHERTYPE_IPV6) return ipv6(frame, off, stats);
  if (type === 0x8100 || type === 0x88a8 || type === 0x9100) return ignored(stats, 'vlan');
  return ignored(stats, 'not-ip');
}

/**
 * The end of the IP packet as captured, given where its own length says it
 * ends. An IP length beyond the frame on the wire (origLength) contradicts the
 * frame: -1 (the host drops such a packet). Within the wire frame but beyond
 * the captured bytes only means the snaplen cut it: the captured end.
 */
function capturedEnd(frame: Frame, wireEnd: number): number {
  const len = frame.data.length;
  if (wireEnd <= len) return wireEnd;
  return wireEnd <= frame.origLength ? len : -1;
}

/** Internet checksum of d[off, off + len) is valid (sums to 0xffff). */
function checksumValid(d: Uint8Array, off: number, len: number): boolean {
  let sum = 0;
  for (let i = off; i < off + len; i += 2) sum += (d[i] << 8) | d[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum === 0xffff;
}

function ipv4(frame: Frame, off: number, stats: DecodeStats): KnockEvent | undefined {
  const d = frame.data;
  if (off + 20 > d.length) return malformed(stats, 'ipv4-truncated');
  const vihl = d[off];
  if (vihl >> 4 !== 4) return malformed(stats, 'ip-version');
  const headerLen = (vihl & 0x0f) << 2;
  if (headerLen < 20) return malformed(stats, 'ipv4-ihl');
  const totalLen = (d[off + 2] << 8) | d[off + 3];
  if (totalLen < headerLen) return malformed(stats, 'ipv4-total-length');
  const wireEnd = off + totalLen;
  const capEnd = capturedEnd(frame, wireEnd);
  if (capEnd < 0) return malformed(stats, 'ipv4-truncated');
  // totalLen >= headerLen, so only a snaplen cut can end the capture inside the header.
  if (off + headerLen > capEnd) return ignored(stats, 'headers-not-captured');
  if (!checksumValid(d, off, headerLen)) return malformed(stats, 'ipv4-checksum');
  // Only the first fragment carries the transport header; later ones cannot be knocks.
  const fragment = (d[off + 6] << 8) | d[off + 7];
  if ((fragment & 0x1fff) !== 0) return ignored(stats, 'fragment');
  const proto = d[off + 9];
  if (proto !== TCP && proto !== UDP) return ignored(stats, 'not-tcp-udp');
  return transport(frame, proto, off + headerLen, wireEnd, capEnd, (fragment & 0x2000) !== 0, 4, off + 12, stats);
}

function ipv6(frame: Frame, off: number, stats: DecodeStats): KnockEvent | undefined {
  const d = frame.data;
  if (off + 40 > d.length) return malformed(stats, 'ipv6-truncated');
  if (d[off] >> 4 !== 6) return malformed(stats, 'ip-version');
  const wireEnd = off + 40 + ((d[off + 4] << 8) | d[off + 5]);
  const capEnd = capturedEnd(frame, wireEnd);
  if (capEnd < 0) return malformed(stats, 'ipv6-truncated');
  let next = d[off + 6];
  let p = off + 40;
  let moreFragments = false;
  // No count limit, as in Linux: each header takes at least 8 bytes, so the
  // walk ends within the packet's length.
  for (let first = true; ; first = false) {
    if (next === TCP || next === UDP) return transport(frame, next, p, wireEnd, capEnd, moreFragments, 6, off + 8, stats);
    // Hop-by-hop is only valid right after the fixed header (RFC 8200 4.1); Linux drops it elsewhere.
    if (next === 0 && !first) return malformed(stats, 'ipv6-hop-by-hop-position');
    switch (next) {
      case 0: // hop-by-hop options
      case 43: // routing
      case 60: // destination options: length in 8-octet units, not counting the first 8
        if (p + 2 > capEnd) return p + 2 > wireEnd ? malformed(stats, 'ipv6-ext-truncated') : ignored(stats, 'headers-not-captured');
        if (next === 43) {
          // With segments left the packet is on its way to another hop (Linux forwards or drops it).
          if (p + 4 > capEnd) return p + 4 > wireEnd ? malformed(stats, 'ipv6-ext-truncated') : ignored(stats, 'headers-not-captured');
          if (d[p + 3] !== 0) return ignored(stats, 'routing-segments-left');
        }
        next = d[p];
        p += (d[p + 1] + 1) << 3;
        break;
      case 44: // fragment: next(1) reserved(1) offset(13 bits) res(2) M(1) id(4)
        if (p + 8 > capEnd) return p + 8 > wireEnd ? malformed(stats, 'ipv6-ext-truncated') : ignored(stats, 'headers-not-captured');
        if (((d[p + 2] << 8) | d[p + 3]) >> 3 !== 0) return ignored(stats, 'fragment');
        moreFragments = (d[p + 3] & 1) !== 0;
        next = d[p];
        p += 8;
        break;
      case 51:
        return ignored(stats, 'ah'); // IPsec: Linux hands it to xfrm, never to TCP/UDP without an SA
      case 50:
        return ignored(stats, 'esp'); // encrypted: the transport header is unreadable
      case 59:
        return ignored(stats, 'no-next-header');
      default:
        return ignored(stats, 'not-tcp-udp');
    }
    if (p > wireEnd) return malformed(stats, 'ipv6-ext-truncated');
  }
}

// The destination of a knock is one of this host's own few addresses, so the
// text of the last one seen is kept and reused while the bytes match. One slot
// per family, fixed size: unlike a cache keyed by address it cannot grow under
// a flood, and it halves the string work per knock.
let lastDst4 = -1;
let lastDst4Text = '';
const lastDst6 = new Uint8Array(16);
let lastDst6Text = '';

function destination4(d: Uint8Array, off: number): string {
  const v = ((d[off] << 24) | (d[off + 1] << 16) | (d[off + 2] << 8) | d[off + 3]) >>> 0;
  if (v !== lastDst4) {
    lastDst4Text = formatIPv4(d, off);
    lastDst4 = v;
  }
  return lastDst4Text;
}

function destination6(d: Uint8Array, off: number): string {
  let same = lastDst6Text !== '';
  for (let i = 0; same && i < 16; i++) same = d[off + i] === lastDst6[i];
  if (!same) {
    lastDst6Text = formatIPv6(d, off);
    for (let i = 0; i < 16; i++) lastDst6[i] = d[off + i];
  }
  return lastDst6Text;
}

/**
 * TCP or UDP header at `p`. `wireEnd` is the end of the IP packet by its own
 * length fields, `capEnd` the end of the bytes we have (<= wireEnd; smaller
 * only when snaplen cut the frame). Headers must be captured; lengths must
 * agree with `wireEnd`; the payload is what was captured of it. In a first
 * fragment (`moreFragments`) the UDP length covers the whole datagram, so it
 * may run past this packet and the payload is the part carried here.
 */
function transport(
  frame: Frame,
  proto: number,
  p: number,
  wireEnd: number,
  capEnd: number,
  moreFragments: boolean,
  family: 4 | 6,
  addrOff: number,
  stats: DecodeStats,
): KnockEvent | undefined {
  const d = frame.data;
  let flags = 0;
  let payloadStart: number;
  let payloadEnd: number;
  if (proto === TCP) {
    if (p + 20 > capEnd) return p + 20 > wireEnd ? malformed(stats, 'tcp-truncated') : ignored(stats, 'headers-not-captured');
    const headerLen = (d[p + 12] >> 4) << 2;
    if (headerLen < 20 || p + headerLen > wireEnd) return malformed(stats, 'tcp-data-offset');
    flags = d[p + 13];
    if ((flags & (TCP_SYN | TCP_ACK)) !== TCP_SYN) return ignored(stats, 'tcp-not-syn');
    // Linux's TCP takes only frames sent to this host's own link address.
    if (linkCast) return ignored(stats, 'tcp-link-broadcast');
    payloadStart = p + headerLen < capEnd ? p + headerLen : capEnd;
    payloadEnd = capEnd;
  } else {
    if (p + 8 > capEnd) return p + 8 > wireEnd ? malformed(stats, 'udp-truncated') : ignored(stats, 'headers-not-captured');
    const udpLen = (d[p + 4] << 8) | d[p + 5];
    if (udpLen < 8 || (p + udpLen > wireEnd && !moreFragments)) return malformed(stats, 'udp-length');
    payloadStart = p + 8;
    payloadEnd = p + udpLen < capEnd ? p + udpLen : capEnd;
  }
  stats.knocks++;
  const addrLen = family === 4 ? 4 : 16;
  return {
    time: frame.time,
    family,
    source: family === 4 ? formatIPv4(d, addrOff) : formatIPv6(d, addrOff),
    sourceFold: sourceFold(d, addrOff, addrLen),
    destination: family === 4 ? destination4(d, addrOff + addrLen) : destination6(d, addrOff + addrLen),
    protocol: proto === TCP ? 'tcp' : 'udp',
    sourcePort: (d[p] << 8) | d[p + 1],
    port: (d[p + 2] << 8) | d[p + 3],
    tcpFlags: flags,
    payload: payloadEnd > payloadStart ? d.subarray(payloadStart, payloadEnd) : EMPTY,
    // spa refuses a datagram that came in fragments (its payload here is only the first part).
    fragmented: moreFragments,
  };
}
