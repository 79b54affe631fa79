// src/lab/packets.ts: the builders must produce packets a real stack accepts,
// so checksums are verified here with an independent implementation (and by
// tcpdump in test/e2e/decode-real.test.ts).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ethernet,
  nullLoopback,
  openbsdLoop,
  parseAddress,
  sll,
  sll2,
  tcpSyn,
  TcpFlag,
  udp,
  withBadIpv4Checksum,
  withIpv4TotalLength,
  withUdpLength,
} from '../../src/lab/packets.js';

/** RFC 1071 sum over Buffer words; a correct checksum field makes the total 0xffff. */
function onesSum(...parts: Buffer[]): number {
  let sum = 0;
  for (const part of parts) {
    const b = part.length % 2 ? Buffer.concat([part, Buffer.alloc(1)]) : part;
    for (let i = 0; i < b.length; i += 2) sum += b.readUInt16BE(i);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function verify(packet: Uint8Array): void {
  const b = Buffer.from(packet);
  if (b[0] >> 4 === 4) {
    const ihl = (b[0] & 15) * 4;
    expect(onesSum(b.subarray(0, ihl))).toBe(0xffff);
    const l4 = b.subarray(ihl, b.readUInt16BE(2));
    const pseudo = Buffer.concat([b.subarray(12, 20), Buffer.from([0, b[9]]), Buffer.from([l4.length >> 8, l4.length & 0xff])]);
    expect(onesSum(pseudo, l4)).toBe(0xffff);
  } else {
    // Walk extension headers to the transport header (builders use 0/43/60/44/51).
    let next = b[6];
    let p = 40;
    while (next !== 6 && next !== 17) {
      const len = next === 44 ? 8 : next === 51 ? (b[p + 1] + 2) * 4 : (b[p + 1] + 1) * 8;
      next = b[p];
      p += len;
    }
    const l4 = b.subarray(p, 40 + b.readUInt16BE(4));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(l4.length);
    expect(onesSum(b.subarray(8, 40), len, Buffer.from([0, 0, 0, next]), l4)).toBe(0xffff);
  }
}

describe('packet builders', () => {
  it('builds an IPv4 SYN field by field', () => {
    const p = Buffer.from(tcpSyn({ src: '10.199.0.2', dst: '10.199.0.1', sport: 40000, dport: 1234, ttl: 7 }));
    expect(p.length).toBe(40);
    expect(p[0]).toBe(0x45);
    expect(p.readUInt16BE(2)).toBe(40);
    expect(p[8]).toBe(7);
    expect(p[9]).toBe(6);
    expect([...p.subarray(12, 20)]).toEqual([10, 199, 0, 2, 10, 199, 0, 1]);
    expect(p.readUInt16BE(20)).toBe(40000);
    expect(p.readUInt16BE(22)).toBe(1234);
    expect(p[32]).toBe(0x50);
    expect(p[33]).toBe(TcpFlag.SYN);
    verify(p);
  });

  it('builds an IPv6 UDP datagram field by field', () => {
    const p = Buffer.from(udp({ src: 'fd00:6b77::2', dst: 'fd00:6b77::1', sport: 5, dport: 9012, payload: 'abc' }));
    expect(p.length).toBe(40 + 8 + 3);
    expect(p[0] >> 4).toBe(6);
    expect(p.readUInt16BE(4)).toBe(11);
    expect(p[6]).toBe(17);
    expect(p[7]).toBe(64);
    expect(p.readUInt16BE(44)).toBe(11);
    expect(p.subarray(48).toString()).toBe('abc');
    verify(p);
  });

  it('computes correct checksums for random packets of both families', () => {
    const v4 = fc.tuple(fc.ipV4(), fc.ipV4());
    const v6 = fc.tuple(fc.ipV6(), fc.ipV6());
    fc.assert(
      fc.property(
        fc.oneof(v4, v6),
        fc.integer({ min: 0, max: 65535 }),
        fc.integer({ min: 0, max: 65535 }),
        fc.uint8Array({ maxLength: 51 }),
        fc.boolean(),
        ([src, dst], sport, dport, payload, isTcp) => {
          const extensions = src.includes(':') ? ([{ type: 'destination' }, { type: 'ah' }] as const) : undefined;
          const packet = isTcp ? tcpSyn({ src, dst, sport, dport, payload, extensions }) : udp({ src, dst, sport, dport, payload, extensions });
          verify(packet);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('parses address text of both families', () => {
    expect([...parseAddress('192.0.2.1').bytes]).toEqual([192, 0, 2, 1]);
    expect(Buffer.from(parseAddress('2001:db8::1').bytes).toString('hex')).toBe('20010db8000000000000000000000001');
    expect(Buffer.from(parseAddress('::ffff:1.2.3.4').bytes).toString('hex')).toBe('00000000000000000000ffff01020304');
    expect(Buffer.from(parseAddress('::').bytes).toString('hex')).toBe('0'.repeat(32));
    expect(Buffer.from(parseAddress('1:2:3:4:5:6:7:8').bytes).toString('hex')).toBe('00010002000300040005000600070008');
    expect(() => parseAddress('10.0.0.256')).toThrow(/not an IPv4 or IPv6 address/);
    expect(() => parseAddress('fe80::1%eth0')).toThrow(/zone/);
  });

  it('rejects nonsense arguments with the field named', () => {
    const base = { src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2 };
    expect(() => tcpSyn({ ...base, dport: 65536 })).toThrow(/dport must be an integer 0-65535/);
    expect(() => udp({ ...base, sport: -1 })).toThrow(/sport/);
    expect(() => tcpSyn({ ...base, dst: 'fd00::1' })).toThrow(/different families/);
    expect(() => tcpSyn({ ...base, ipv4Options: new Uint8Array(41) })).toThrow(/ipv4Options must be at most 40/);
    expect(() => tcpSyn({ ...base, extensions: [{ type: 'routing' }] })).toThrow(/IPv6 only/);
    expect(() => ethernet(tcpSyn(base), { vlan: [4096] })).toThrow(/vlan id/);
  });

  it('wraps packets in link layers', () => {
    const p = tcpSyn({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2 });
    const q = tcpSyn({ src: 'fd00::1', dst: 'fd00::2', sport: 1, dport: 2 });
    const e = Buffer.from(ethernet(p, { vlan: [5, 6] }));
    expect([e.readUInt16BE(12), e.readUInt16BE(14), e.readUInt16BE(16), e.readUInt16BE(18), e.readUInt16BE(20)]).toEqual([0x88a8, 5, 0x8100, 6, 0x0800]);
    expect(Buffer.from(ethernet(q)).readUInt16BE(12)).toBe(0x86dd);
    expect(Buffer.from(sll(q, { packetType: 4 })).readUInt16BE(0)).toBe(4);
    expect(Buffer.from(sll(q)).readUInt16BE(14)).toBe(0x86dd);
    const s2 = Buffer.from(sll2(p, { ifindex: 9 }));
    expect([s2.readUInt16BE(0), s2.readUInt32BE(4), s2.readUInt16BE(8), s2[11]]).toEqual([0x0800, 9, 1, 6]);
    expect(Buffer.from(nullLoopback(q)).readUInt32LE(0)).toBe(30);
    expect(Buffer.from(nullLoopback(p, { byteOrder: 'big' })).readUInt32BE(0)).toBe(2);
    expect(Buffer.from(openbsdLoop(q)).readUInt32BE(0)).toBe(24);
    expect(ethernet(p, { pad: true }).length).toBe(60);
  });
});

describe('hostile variants', () => {
  const syn = tcpSyn({ src: '192.0.2.1', dst: '192.0.2.2', sport: 1, dport: 2, ipv4Options: Uint8Array.of(1, 1, 1, 1) });
  const header = (p: Uint8Array): Buffer => Buffer.from(p.subarray(0, (p[0] & 0x0f) * 4));

  it('withIpv4TotalLength changes only the length and keeps the header checksum valid', () => {
    const p = withIpv4TotalLength(syn, 200);
    expect(Buffer.from(p).readUInt16BE(2)).toBe(200);
    expect(onesSum(header(p))).toBe(0xffff);
    expect(p.length).toBe(syn.length);
    expect(Buffer.from(syn).readUInt16BE(2)).toBe(syn.length); // the original is untouched
  });

  it('withBadIpv4Checksum leaves a header that does not sum to 0xffff', () => {
    expect(onesSum(header(withBadIpv4Checksum(syn)))).not.toBe(0xffff);
  });

  it('withUdpLength sets the UDP length field of IPv4 and plain IPv6 datagrams, and refuses anything else', () => {
    const u4 = udp({ src: '192.0.2.1', dst: '192.0.2.2', sport: 1, dport: 2, payload: 'x' });
    const u6 = udp({ src: '2001:db8::1', dst: '2001:db8::2', sport: 1, dport: 2 });
    expect(Buffer.from(withUdpLength(u4, 0)).readUInt16BE(20 + 4)).toBe(0);
    expect(Buffer.from(withUdpLength(u6, 7)).readUInt16BE(40 + 4)).toBe(7);
    expect(() => withUdpLength(syn, 0)).toThrow(/not a UDP datagram/);
    expect(() => withIpv4TotalLength(u6, 0)).toThrow(/not an IPv4 packet/);
  });
});
