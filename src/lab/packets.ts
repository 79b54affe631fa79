// Packet builders for tests, the benchmark generator and fixtures: complete
// IPv4/IPv6 packets with correct checksums, and link-layer wrappers around
// them. The family is taken from the address text. Each IP packet is built in
// one allocation; each wrapper adds one more.
// Builders validate their arguments and throw on nonsense: they make test
// input, where a silently wrong packet would make a test meaningless.
import { isIPv6 } from 'node:net';
import type { Frame } from '../types.js';
import { LinkType } from '../decode/link-types.js';

export const TcpFlag = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20 } as const;

/** IPv6 extension headers the builders can insert, in the order given. */
export type Ipv6Extension =
  /** `size`: total bytes, a multiple of 8 (default 8). Filled with one option a receiver skips. */
  | { readonly type: 'hop-by-hop' | 'destination'; readonly size?: number }
  /** Experimental routing type 253 with segments left 0, so a receiver skips it. */
  | { readonly type: 'routing'; readonly size?: number }
  /** `size`: total bytes, a multiple of 8, at least 16 (default 24: 12-byte ICV). */
  | { readonly type: 'ah'; readonly size?: number }
  /** `offset` in 8-octet units. */
  | { readonly type: 'fragment'; readonly offset: number; readonly more: boolean; readonly id?: number };

export interface IpFields {
  readonly src: string;
  readonly dst: string;
  /** TTL or hop limit; default 64. */
  readonly ttl?: number;
  /** IPv4 only: raw option bytes, zero-padded to a multiple of 4 (at most 40). */
  readonly ipv4Options?: Uint8Array;
  /** Fragment fields (offset in 8-octet units): IPv4 header fields, or for IPv6 a 'fragment' extension after the others. */
  readonly fragment?: { readonly offset: number; readonly more: boolean };
  /** IPv6 only: extension headers between the fixed header and the transport header. */
  readonly extensions?: readonly Ipv6Extension[];
}

export interface TcpOptions extends IpFields {
  readonly sport: number;
  readonly dport: number;
  /** TCP flags byte; tcpSyn() defaults it to SYN. */
  readonly flags?: number;
  readonly seq?: number;
  readonly ack?: number;
  readonly window?: number;
  /** Raw TCP option bytes, zero-padded to a multiple of 4 (at most 40). */
  readonly tcpOptions?: Uint8Array;
  readonly payload?: Uint8Array | string;
}

export interface UdpOptions extends IpFields {
  readonly sport: number;
  readonly dport: number;
  readonly payload?: Uint8Array | string;
}

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const EXT_NUMBER = { 'hop-by-hop': 0, routing: 43, fragment: 44, ah: 51, destination: 60 } as const;
const encoder = new TextEncoder();

// ---------------------------------------------------------------- addresses

/** Bytes of an IPv4 or IPv6 address in text form. */
export function parseAddress(text: string): { family: 4 | 6; bytes: Uint8Array } {
  const v4 = parseIPv4(text);
  if (v4) return { family: 4, bytes: v4 };
  if (!text.includes('%') && isIPv6(text)) return { family: 6, bytes: parseIPv6(text) };
  throw new TypeError(`not an IPv4 or IPv6 address (no zone index): '${text}'`);
}

/** Strict dotted quad (no leading zeros, as node:net), or undefined. Hand-written: the benchmark generator parses a million. */
function parseIPv4(text: string): Uint8Array | undefined {
  const out = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || part === 3) return undefined;
      out[part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) return undefined;
      value = value * 10 + (c - 0x30);
      if (++digits > 3 || value > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (part !== 3 || digits === 0) return undefined;
  out[3] = value;
  return out;
}

/** Expects text that node:net accepted as IPv6. */
function parseIPv6(text: string): Uint8Array {
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else {
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const gap = text.indexOf('::');
  const head = groups(gap < 0 ? text : text.slice(0, gap));
  const tail = gap < 0 ? [] : groups(text.slice(gap + 2));
  const all = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

// ---------------------------------------------------------------- checks

function checkInt(what: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`${what} must be an integer 0-${max}, got ${value}`);
  return value;
}

function bytesOf(payload: Uint8Array | string | undefined): Uint8Array {
  if (payload === undefined) return new Uint8Array(0);
  return typeof payload === 'string' ? encoder.encode(payload) : payload;
}

function padded(what: string, bytes: Uint8Array | undefined): number {
  const n = bytes === undefined ? 0 : (bytes.length + 3) & ~3;
  if (n > 40) throw new RangeError(`${what} must be at most 40 bytes, got ${bytes?.length}`);
  return n;
}

// ---------------------------------------------------------------- checksums

/** Adds the big-endian 16-bit words of b[start, end) to acc (odd tail padded with zero). */
function sum16(b: Uint8Array, start: number, end: number, acc: number): number {
  let i = start;
  for (; i + 1 < end; i += 2) acc += (b[i] << 8) | b[i + 1];
  if (i < end) acc += b[i] << 8;
  return acc;
}

function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return ~acc & 0xffff;
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

function put32(b: Uint8Array, at: number, v: number): void {
  put16(b, at, Math.floor(v / 0x10000) & 0xffff);
  put16(b, at + 2, v & 0xffff);
}

// ---------------------------------------------------------------- IP

function extensionSize(e: Ipv6Extension): number {
  const size = e.type === 'fragment' ? 8 : (e.size ?? (e.type === 'ah' ? 24 : 8));
  if (size % 8 !== 0 || size < (e.type === 'ah' ? 16 : 8) || size > 2048) {
    throw new RangeError(`IPv6 ${e.type} header size must be a multiple of 8 within 8-2048 (AH: 16 and up), got ${size}`);
  }
  return size;
}

/** Writes one extension header at `at`; `next` is the header that follows it. */
function writeExtension(b: Uint8Array, at: number, e: Ipv6Extension, size: number, next: number): void {
  b[at] = next;
  switch (e.type) {
    case 'hop-by-hop':
    case 'destination':
      // One option fills the rest of the header. Linux drops more than 7 bytes
      // of padding in a row, so larger headers carry the experimental option
      // 0x1e (RFC 4727; its top bits say "skip if unknown") instead of PadN.
      b[at + 1] = size / 8 - 1;
      b[at + 2] = size === 8 ? 1 : 0x1e;
      b[at + 3] = size - 4;
      break;
    case 'routing':
      b[at + 1] = size / 8 - 1;
      b[at + 2] = 253; // routing type: experimental (RFC 4727)
      b[at + 3] = 0; // segments left: nothing to route, receivers skip the header
      break;
    case 'ah':
      b[at + 1] = size / 4 - 2;
      put32(b, at + 4, 0x100); // SPI
      put32(b, at + 8, 1); // sequence number; the ICV stays zero
      break;
    case 'fragment':
      put16(b, at + 2, (checkInt('IPv6 fragment offset', e.offset, 0x1fff) << 3) | (e.more ? 1 : 0));
      put32(b, at + 4, e.id ?? 0x6b77);
      break;
  }
}

/**
 * Lays out the IP header(s) for an L4 body of `l4Len` bytes and returns the
 * packet with the L4 area zeroed, where it starts, and the transport checksum
 * of the pseudo-header (to be added to the L4 bytes' own sum).
 */
function ipPacket(ip: IpFields, protocol: number, l4Len: number): { packet: Uint8Array; l4: number; pseudo: number } {
  const src = parseAddress(ip.src);
  const dst = parseAddress(ip.dst);
  if (src.family !== dst.family) throw new TypeError(`src ${ip.src} and dst ${ip.dst} are of different families`);
  const ttl = checkInt('ttl', ip.ttl ?? 64, 255);
  if (src.family === 4) {
    if (ip.extensions !== undefined) throw new TypeError('extensions are IPv6 only');
    const headerLen = 20 + padded('ipv4Options', ip.ipv4Options);
    const total = headerLen + l4Len;
    checkInt('IPv4 total length', total, 0xffff);
    const b = new Uint8Array(total);
    b[0] = 0x40 | (headerLen >> 2);
    put16(b, 2, total);
    put16(b, 4, 0x4b57); // identification
    const frag = ip.fragment;
    put16(b, 6, frag === undefined ? 0x4000 /* DF, as Linux sends SYNs */ : (frag.more ? 0x2000 : 0) | checkInt('fragment offset', frag.offset, 0x1fff));
    b[8] = ttl;
    b[9] = protocol;
    b.set(src.bytes, 12);
    b.set(dst.bytes, 16);
    if (ip.ipv4Options) b.set(ip.ipv4Options, 20);
    put16(b, 10, fold(sum16(b, 0, headerLen, 0)));
    const pseudo = sum16(b, 12, 20, protocol + l4Len);
    return { packet: b, l4: headerLen, pseudo };
  }
  if (ip.ipv4Options !== undefined) throw new TypeError('ipv4Options are IPv4 only');
  const exts = [...(ip.extensions ?? [])];
  if (ip.fragment) exts.push({ type: 'fragment', offset: ip.fragment.offset, more: ip.fragment.more });
  const sizes = exts.map(extensionSize);
  const extLen = sizes.reduce((a, n) => a + n, 0);
  const payloadLen = checkInt('IPv6 payload length', extLen + l4Len, 0xffff);
  const b = new Uint8Array(40 + payloadLen);
  b[0] = 0x60;
  put16(b, 4, payloadLen);
  b[6] = exts.length > 0 ? EXT_NUMBER[exts[0].type] : protocol;
  b[7] = ttl;
  b.set(src.bytes, 8);
  b.set(dst.bytes, 24);
  let at = 40;
  exts.forEach((e, i) => {
    writeExtension(b, at, e, sizes[i], i + 1 < exts.length ? EXT_NUMBER[exts[i + 1].type] : protocol);
    at += sizes[i];
  });
  const pseudo = sum16(b, 8, 40, protocol + l4Len);
  return { packet: b, l4: at, pseudo };
}

// ---------------------------------------------------------------- TCP / UDP

/** A TCP segment in an IP packet. `flags` defaults to SYN. */
export function tcp(o: TcpOptions): Uint8Array {
  const payload = bytesOf(o.payload);
  const headerLen = 20 + padded('tcpOptions', o.tcpOptions);
  const { packet: b, l4, pseudo } = ipPacket(o, IPPROTO_TCP, headerLen + payload.length);
  put16(b, l4, checkInt('sport', o.sport, 0xffff));
  put16(b, l4 + 2, checkInt('dport', o.dport, 0xffff));
  put32(b, l4 + 4, checkInt('seq', o.seq ?? 0x10000, 0xffffffff));
  put32(b, l4 + 8, checkInt('ack', o.ack ?? 0, 0xffffffff));
  b[l4 + 12] = (headerLen >> 2) << 4;
  b[l4 + 13] = checkInt('flags', o.flags ?? TcpFlag.SYN, 0xff);
  put16(b, l4 + 14, checkInt('window', o.window ?? 64240, 0xffff));
  if (o.tcpOptions) b.set(o.tcpOptions, l4 + 20);
  b.set(payload, l4 + headerLen);
  put16(b, l4 + 16, fold(sum16(b, l4, b.length, pseudo)));
  return b;
}

/** A TCP SYN (or, with `flags`, any TCP segment) in an IP packet. */
export function tcpSyn(o: TcpOptions): Uint8Array {
  return tcp(o);
}

/** A UDP datagram in an IP packet. */
export function udp(o: UdpOptions): Uint8Array {
  const payload = bytesOf(o.payload);
  const len = 8 + payload.length;
  const { packet: b, l4, pseudo } = ipPacket(o, IPPROTO_UDP, len);
  put16(b, l4, checkInt('sport', o.sport, 0xffff));
  put16(b, l4 + 2, checkInt('dport', o.dport, 0xffff));
  put16(b, l4 + 4, len);
  b.set(payload, l4 + 8);
  const sum = fold(sum16(b, l4, b.length, pseudo));
  put16(b, l4 + 6, sum === 0 ? 0xffff : sum); // 0 means "no checksum" in UDP
  return b;
}

// ---------------------------------------------------------------- link layers

function etherTypeOf(packet: Uint8Array): number {
  const v = packet.length > 0 ? packet[0] >> 4 : -1;
  if (v === 4) return 0x0800;
  if (v === 6) return 0x86dd;
  throw new TypeError(`cannot tell the EtherType of a packet with IP version ${v}; pass etherType`);
}

function parseMac(text: string): Uint8Array {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(text)) throw new TypeError(`not a MAC address: '${text}'`);
  return Uint8Array.from(text.split(':'), (p) => parseInt(p, 16));
}

const DEFAULT_DST_MAC = parseMac('02:00:00:00:00:01');
const DEFAULT_SRC_MAC = parseMac('02:00:00:00:00:02');

export interface EthernetOptions {
  /** VLAN IDs, outermost first. */
  readonly vlan?: readonly number[];
  /** TPID per tag, outermost first; default 0x88a8 for outer tags and 0x8100 for the innermost. */
  readonly tpids?: readonly number[];
  /** EtherType after the tags; default from the packet's IP version. */
  readonly etherType?: number;
  readonly src?: string;
  readonly dst?: string;
  /** Pad to the 60-byte Ethernet minimum, as received frames are. */
  readonly pad?: boolean;
}

export function ethernet(packet: Uint8Array, o: EthernetOptions = {}): Uint8Array {
  const vlan = o.vlan ?? [];
  const headerLen = 14 + 4 * vlan.length;
  const b = new Uint8Array(Math.max(headerLen + packet.length, o.pad ? 60 : 0));
  b.set(o.dst === undefined ? DEFAULT_DST_MAC : parseMac(o.dst), 0);
  b.set(o.src === undefined ? DEFAULT_SRC_MAC : parseMac(o.src), 6);
  vlan.forEach((id, i) => {
    const tpid = o.tpids?.[i] ?? (i === vlan.length - 1 ? 0x8100 : 0x88a8);
    put16(b, 12 + 4 * i, checkInt('tpid', tpid, 0xffff));
    put16(b, 14 + 4 * i, checkInt('vlan id', id, 0xfff));
  });
  put16(b, headerLen - 2, checkInt('etherType', o.etherType ?? etherTypeOf(packet), 0xffff));
  b.set(packet, headerLen);
  return b;
}

export interface CookedOptions {
  /** Linux packet type: 0 host, 1 broadcast, 2 multicast, 3 other host, 4 outgoing. */
  readonly packetType?: number;
  /** ARPHRD_* of the interface; default 1 (Ethernet). */
  readonly arphrd?: number;
  /** Protocol field; default from the packet's IP version. */
  readonly protocol?: number;
  /** SLL2 only: interface index. */
  readonly ifindex?: number;
}

/** Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 113). */
export function sll(packet: Uint8Array, o: CookedOptions = {}): Uint8Array {
  const b = new Uint8Array(16 + packet.length);
  put16(b, 0, checkInt('packetType', o.packetType ?? 0, 0xffff));
  put16(b, 2, checkInt('arphrd', o.arphrd ?? 1, 0xffff));
  put16(b, 4, 6);
  b.set(DEFAULT_SRC_MAC, 6);
  put16(b, 14, checkInt('protocol', o.protocol ?? etherTypeOf(packet), 0xffff));
  b.set(packet, 16);
  return b;
}

/** Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 276). */
export function sll2(packet: Uint8Array, o: CookedOptions = {}): Uint8Array {
  const b = new Uint8Array(20 + packet.length);
  put16(b, 0, checkInt('protocol', o.protocol ?? etherTypeOf(packet), 0xffff));
  put32(b, 4, checkInt('ifindex', o.ifindex ?? 2, 0xffffffff));
  put16(b, 8, checkInt('arphrd', o.arphrd ?? 1, 0xffff));
  b[10] = checkInt('packetType', o.packetType ?? 0, 0xff);
  b[11] = 6;
  b.set(DEFAULT_SRC_MAC, 12);
  b.set(packet, 20);
  return b;
}

export interface LoopbackOptions {
  /** Address family value; default 2 for IPv4, 30 (macOS AF_INET6) for IPv6. */
  readonly af?: number;
  /** Byte order of the family field; default little-endian (the capturing host's, on x86/arm). */
  readonly byteOrder?: 'little' | 'big';
}

/** BSD loopback (LINKTYPE_NULL, 0): 4-byte address family in host byte order. */
export function nullLoopback(packet: Uint8Array, o: LoopbackOptions = {}): Uint8Array {
  const af = checkInt('af', o.af ?? (etherTypeOf(packet) === 0x0800 ? 2 : 30), 0xffffffff);
  const b = new Uint8Array(4 + packet.length);
  new DataView(b.buffer).setUint32(0, af, o.byteOrder !== 'big');
  b.set(packet, 4);
  return b;
}

/** OpenBSD loopback (LINKTYPE_LOOP, 108): address family in network byte order; IPv6 default 24. */
export function openbsdLoop(packet: Uint8Array, o: { readonly af?: number } = {}): Uint8Array {
  return nullLoopback(packet, { af: o.af ?? (etherTypeOf(packet) === 0x0800 ? 2 : 24), byteOrder: 'big' });
}

/** A Frame as a capture source would deliver it. */
export function toFrame(data: Uint8Array, linkType: number = LinkType.ETHERNET, time = 0, origLength = data.length): Frame {
  return { time, linkType, data, origLength, offset: -1 };
}

// ---------------------------------------------------------------- hostile variants
// Packets the host drops although their headers parse: the differential test
// and the decoder's unit tests use them to check that a backend ignores what
// the host ignores. Each returns a modified copy.

function ipv4HeaderLength(packet: Uint8Array): number {
  if (packet.length < 20 || packet[0] >> 4 !== 4) throw new TypeError('not an IPv4 packet');
  return (packet[0] & 0x0f) << 2;
}

function reChecksumIpv4(b: Uint8Array): Uint8Array {
  const headerLen = ipv4HeaderLength(b);
  put16(b, 10, 0);
  put16(b, 10, fold(sum16(b, 0, headerLen, 0)));
  return b;
}

/** An IPv4 packet whose total length field says `total` (header checksum kept valid). */
export function withIpv4TotalLength(packet: Uint8Array, total: number): Uint8Array {
  const b = Uint8Array.from(packet);
  ipv4HeaderLength(b);
  put16(b, 2, checkInt('IPv4 total length', total, 0xffff));
  return reChecksumIpv4(b);
}

/** An IPv4 packet with a wrong header checksum. */
export function withBadIpv4Checksum(packet: Uint8Array): Uint8Array {
  const b = reChecksumIpv4(Uint8Array.from(packet));
  b[11] ^= 0x5a;
  return b;
}

/** A UDP datagram (IPv4, or IPv6 without extension headers) whose length field says `length`. */
export function withUdpLength(packet: Uint8Array, length: number): Uint8Array {
  const b = Uint8Array.from(packet);
  const v4 = b.length > 0 && b[0] >> 4 === 4;
  const l4 = v4 ? ipv4HeaderLength(b) : 40;
  if ((v4 ? b[9] : b[6]) !== IPPROTO_UDP || b.length < l4 + 8) throw new TypeError('not a UDP datagram in IPv4 or plain IPv6');
  put16(b, l4 + 4, checkInt('UDP length', length, 0xffff));
  return b;
}
