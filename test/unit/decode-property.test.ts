// Property tests: whatever the bytes, decodeFrame returns (never throws),
// counts exactly one outcome per frame, and any event it returns is sane and
// points inside the frame. Valid frames built from random parameters decode
// back to exactly those parameters.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isIP } from 'node:net';
import { decodeFrame, createDecodeStats } from '../../src/decode/decode.js';
import { formatIPv4, formatIPv6 } from '../../src/decode/address.js';
import { LinkType } from '../../src/decode/link-types.js';
import * as P from '../../src/lab/packets.js';
import type { Frame, KnockEvent } from '../../src/types.js';

const LINK_TYPES = Object.values(LinkType);

/** The frame's bytes as a view at an offset into a larger buffer, as file readers hand them out. */
function embedded(bytes: Uint8Array, lead: number): Uint8Array {
  const buf = new Uint8Array(lead + bytes.length + 7).fill(0xa5);
  buf.set(bytes, lead);
  return buf.subarray(lead, lead + bytes.length);
}

function checkEvent(frame: Frame, e: KnockEvent): void {
  for (const port of [e.port, e.sourcePort]) expect(Number.isInteger(port) && port >= 0 && port <= 65535).toBe(true);
  expect(isIP(e.source)).toBe(e.family);
  expect(isIP(e.destination)).toBe(e.family);
  expect(['tcp', 'udp']).toContain(e.protocol);
  expect(e.time).toBe(frame.time);
  if (e.protocol === 'udp') expect(e.tcpFlags).toBe(0);
  else expect(e.tcpFlags & 0x12).toBe(0x02);
  const d = frame.data;
  if (e.payload.length > 0) {
    expect(e.payload.buffer).toBe(d.buffer);
    expect(e.payload.byteOffset).toBeGreaterThanOrEqual(d.byteOffset);
    expect(e.payload.byteOffset + e.payload.length).toBeLessThanOrEqual(d.byteOffset + d.length);
  }
}

function decodeChecked(frame: Frame): KnockEvent | undefined {
  const stats = createDecodeStats();
  const e = decodeFrame(frame, stats);
  expect(stats.frames).toBe(1);
  expect(stats.knocks + stats.ignored + stats.malformed).toBe(1);
  expect(stats.knocks === 1).toBe(e !== undefined);
  if (e) checkEvent(frame, e);
  return e;
}

// ------------------------------------------------------------ arbitraries

const v4addr = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => formatIPv4(b, 0));
const v6addr = fc
  .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
  .map((g) => formatIPv6(Uint8Array.from(g.flatMap((x) => [x >> 8, x & 0xff])), 0));
const port = fc.integer({ min: 0, max: 65535 });
const payload = fc.uint8Array({ maxLength: 64 });

const extension: fc.Arbitrary<P.Ipv6Extension> = fc.oneof(
  fc.record({ type: fc.constantFrom('destination' as const, 'routing' as const), size: fc.constantFrom(8, 16, 24) }),
  fc.constant<P.Ipv6Extension>({ type: 'fragment', offset: 0, more: false }),
);

interface Spec {
  family: 4 | 6;
  src: string;
  dst: string;
  protocol: 'tcp' | 'udp';
  sport: number;
  dport: number;
  flags: number;
  payload: Uint8Array;
  ipv4Options?: Uint8Array;
  extensions?: P.Ipv6Extension[];
  link: { linkType: number; vlan: number[]; packetType: number; byteOrder: 'little' | 'big' };
}

const spec: fc.Arbitrary<Spec> = fc
  .record({
    family: fc.constantFrom(4 as const, 6 as const),
    v4src: v4addr,
    v4dst: v4addr,
    v6src: v6addr,
    v6dst: v6addr,
    protocol: fc.constantFrom('tcp' as const, 'udp' as const),
    sport: port,
    dport: port,
    // SYN with any flags except ACK
    flags: fc.integer({ min: 0, max: 255 }).map((f) => (f | 0x02) & ~0x10),
    payload,
    options: fc.uint8Array({ maxLength: 40 }),
    hbh: fc.boolean(),
    extensions: fc.array(extension, { maxLength: 6 }),
    linkType: fc.constantFrom(...LINK_TYPES),
    // Valid knocks only: VLAN tags, AH and other hosts' frames are ignored by the rule (decode-link/decode-ip tests).
    vlan: fc.constant<number[]>([]),
    packetType: fc.constant(0),
    byteOrder: fc.constantFrom('little' as const, 'big' as const),
  })
  .map((r) => ({
    family: r.family,
    src: r.family === 4 ? r.v4src : r.v6src,
    dst: r.family === 4 ? r.v4dst : r.v6dst,
    protocol: r.protocol,
    sport: r.sport,
    dport: r.dport,
    flags: r.flags,
    payload: r.payload,
    ipv4Options: r.family === 4 ? r.options : undefined,
    extensions: r.family === 6 ? [...(r.hbh ? [{ type: 'hop-by-hop' } as const] : []), ...r.extensions] : undefined,
    // Raw IPv4/IPv6 link types must match the family.
    link: {
      linkType: r.linkType === 228 || r.linkType === 229 ? (r.family === 4 ? 228 : 229) : r.linkType,
      vlan: r.vlan,
      packetType: r.packetType,
      byteOrder: r.byteOrder,
    },
  }));

function build(s: Spec): Uint8Array {
  const ip = { src: s.src, dst: s.dst, sport: s.sport, dport: s.dport, payload: s.payload, ipv4Options: s.ipv4Options, extensions: s.extensions };
  const packet = s.protocol === 'tcp' ? P.tcp({ ...ip, flags: s.flags }) : P.udp(ip);
  switch (s.link.linkType) {
    case LinkType.ETHERNET:
      return P.ethernet(packet, { vlan: s.link.vlan });
    case LinkType.LINUX_SLL:
      return P.sll(packet, { packetType: s.link.packetType });
    case LinkType.LINUX_SLL2:
      return P.sll2(packet, { packetType: s.link.packetType });
    case LinkType.NULL:
      return P.nullLoopback(packet, { byteOrder: s.link.byteOrder });
    case LinkType.LOOP:
      return P.openbsdLoop(packet);
    default:
      return packet;
  }
}

const frameOf = (data: Uint8Array, linkType: number, origLength = data.length): Frame => ({ time: 1.7e12 + 0.25, linkType, data, origLength, offset: 0 });

// ------------------------------------------------------------ properties

describe('decodeFrame properties', () => {
  it('decodes a valid frame of any link type back to what was built', () => {
    fc.assert(
      fc.property(spec, fc.nat(16), (s, lead) => {
        const data = embedded(build(s), lead);
        const e = decodeChecked(frameOf(data, s.link.linkType));
        expect(e).toBeDefined();
        expect(e).toMatchObject({ family: s.family, source: s.src, destination: s.dst, protocol: s.protocol, sourcePort: s.sport, port: s.dport, tcpFlags: s.protocol === 'tcp' ? s.flags : 0 });
        expect(Array.from(e!.payload)).toEqual(Array.from(s.payload));
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws on random bytes under any link type', { timeout: 30_000 }, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.oneof(fc.constantFrom(...LINK_TYPES), fc.integer()), fc.nat(300), (bytes, linkType, orig) => {
        decodeChecked(frameOf(bytes, linkType, orig));
      }),
      { numRuns: 10_000 },
    );
  });

  it('never throws on random bytes behind a valid link header', { timeout: 30_000 }, () => {
    const headers: [number, Uint8Array][] = [
      [LinkType.ETHERNET, Uint8Array.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x08, 0x00])],
      [LinkType.ETHERNET, Uint8Array.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x86, 0xdd])],
      [LinkType.ETHERNET, Uint8Array.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x81, 0x00])],
      [LinkType.NULL, Uint8Array.from([2, 0, 0, 0])],
      [LinkType.NULL, Uint8Array.from([30, 0, 0, 0])],
      [LinkType.RAW, Uint8Array.from([0x45])],
      [LinkType.RAW, Uint8Array.from([0x60])],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...headers), fc.uint8Array({ maxLength: 120 }), ([lt, h], rest) => {
        decodeChecked(frameOf(Uint8Array.from([...h, ...rest]), lt));
      }),
      { numRuns: 10_000 },
    );
  });

  it('never throws on random mutations of valid frames, and events stay inside the frame', { timeout: 60_000 }, () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ maxLength: 16 }) }),
    );
    fc.assert(
      fc.property(spec, fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.boolean(), fc.nat(16), (s, mutations, snapped, lead) => {
        let bytes = build(s);
        const fullLength = bytes.length;
        for (const m of mutations) {
          if (m.kind === 'set' && bytes.length > 0) bytes[m.at % bytes.length] = m.value;
          else if (m.kind === 'truncate') bytes = bytes.slice(0, m.at % (bytes.length + 1));
          else if (m.kind === 'append') bytes = Uint8Array.from([...bytes, ...m.bytes]);
        }
        decodeChecked(frameOf(embedded(bytes, lead), s.link.linkType, snapped ? Math.max(fullLength, bytes.length) : bytes.length));
      }),
      { numRuns: 10_000 },
    );
  });

  it('mutating header bytes of an IPv6 chain still terminates within the walk bound', () => {
    // Every extension pointing to another extension: the walk must stop by itself.
    fc.assert(
      fc.property(fc.array(fc.constantFrom(0, 43, 60, 51, 44), { minLength: 1, maxLength: 30 }), fc.integer({ min: 0, max: 3 }), (chain, len) => {
        const body = new Uint8Array(40 + chain.length * 8 + 20);
        body[0] = 0x60;
        body[4] = (body.length - 40) >> 8;
        body[5] = (body.length - 40) & 0xff;
        body[6] = chain[0];
        chain.forEach((_, i) => {
          body[40 + 8 * i] = i + 1 < chain.length ? chain[i + 1] : 6;
          body[41 + 8 * i] = len;
        });
        decodeChecked(frameOf(body, LinkType.IPV6));
      }),
      { numRuns: 1000 },
    );
  });
});
