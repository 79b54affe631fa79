// IP and transport decoding: IPv4 options and fragments, IPv6 extension
// headers, which TCP segments are knocks, UDP payload bounds, and what every
// length field that contradicts the bytes is counted as.
import { describe, expect, it } from 'vitest';
import { LinkType } from '../../src/decode/link-types.js';
import { decodeFrame, createDecodeStats } from '../../src/decode/decode.js';
import { ethernet, tcp, tcpSyn, TcpFlag, toFrame, udp, withBadIpv4Checksum, withIpv4TotalLength, type Ipv6Extension } from '../../src/lab/packets.js';
import { decodeOne, fixIpv4Checksum, text, withByte } from './decode-helpers.js';

const RAW = LinkType.RAW;
const v4 = { src: '192.0.2.7', dst: '10.199.0.1' } as const;
const v6 = { src: '2001:db8::7', dst: 'fd00:6b77::1' } as const;

describe('IPv4', () => {
  it('skips options by IHL, up to the 40-byte maximum', () => {
    const routerAlert = Uint8Array.from([0x94, 0x04, 0x00, 0x00]);
    for (const ipv4Options of [routerAlert, Uint8Array.from([1, 1, 1]), new Uint8Array(40).fill(1)]) {
      const p = udp({ ...v4, sport: 1, dport: 9012, payload: 'after options', ipv4Options });
      expect(p[0] & 0x0f).toBe(5 + Math.ceil(ipv4Options.length / 4));
      const { event, verdict } = decodeOne(p, RAW);
      expect(verdict).toBe('knock');
      expect(event?.port).toBe(9012);
      expect(text(event!.payload)).toBe('after options');
    }
  });

  it('counts IHL < 5 and a total length shorter than the header as malformed', () => {
    const p = tcpSyn({ ...v4, sport: 1, dport: 2 });
    for (const ihl of [0, 1, 4]) expect(decodeOne(withByte(p, 0, 0x40 | ihl), RAW).verdict).toBe('malformed:ipv4-ihl');
    expect(decodeOne(withByte(p, 3, 19), RAW).verdict).toBe('malformed:ipv4-total-length');
    // IHL 15 (60 bytes) in a 40-byte packet
    expect(decodeOne(withByte(p, 0, 0x4f), RAW).verdict).toBe('malformed:ipv4-total-length');
  });

  it('counts a total length beyond the captured bytes as truncated', () => {
    const p = tcpSyn({ ...v4, sport: 1, dport: 2 });
    expect(decodeOne(withByte(p, 3, p.length + 1), RAW).verdict).toBe('malformed:ipv4-truncated');
  });

  it('counts a total length beyond the frame on the wire as truncated, also in a frame cut by snaplen', () => {
    // eBPF sends up a prefix of a long frame: origLength is the wire length, and the IP length must fit in it.
    const long = tcpSyn({ ...v4, sport: 1, dport: 2, payload: new Uint8Array(300) });
    const lying = withIpv4TotalLength(long, 1000);
    expect(decodeOne(lying.subarray(0, 256), RAW, lying.length).verdict).toBe('malformed:ipv4-truncated');
    expect(decodeOne(long.subarray(0, 256), RAW, long.length).verdict).toBe('knock');
  });

  it('counts a bad header checksum as malformed (Linux drops it)', () => {
    expect(decodeOne(withBadIpv4Checksum(tcpSyn({ ...v4, sport: 1, dport: 2 })), RAW).verdict).toBe('malformed:ipv4-checksum');
    const withOptions = udp({ ...v4, sport: 1, dport: 2, ipv4Options: new Uint8Array(40).fill(1) });
    expect(decodeOne(withOptions, RAW).verdict).toBe('knock');
    expect(decodeOne(withBadIpv4Checksum(withOptions), RAW).verdict).toBe('malformed:ipv4-checksum');
  });

  it('bounds the packet by total length, ignoring trailing bytes', () => {
    const p = udp({ ...v4, sport: 1, dport: 2, payload: 'abc' });
    const { event, verdict } = decodeOne(Uint8Array.from([...p, 0xee, 0xee, 0xee, 0xee]), RAW);
    expect(verdict).toBe('knock');
    expect(text(event!.payload)).toBe('abc');
  });

  it('ignores protocols other than TCP and UDP', () => {
    const p = tcpSyn({ ...v4, sport: 1, dport: 2 });
    for (const proto of [1, 2, 41, 47, 50, 132]) expect(decodeOne(withByte(p, 9, proto), RAW).verdict).toBe('ignored:not-tcp-udp');
  });

  it('treats a first fragment as a knock when the transport header is in it, and later fragments as no knock', () => {
    const first = udp({ ...v4, sport: 5, dport: 7000, payload: 'x'.repeat(32), fragment: { offset: 0, more: true } });
    const { event, verdict } = decodeOne(first, RAW);
    expect(verdict).toBe('knock');
    expect(event?.port).toBe(7000);
    // The UDP length covers the whole datagram; in a first fragment it may exceed this packet.
    const longer = Uint8Array.from(first);
    longer[24] = 0x01; // UDP length 256+40 (not in the IP header: its checksum stays valid)
    expect(text(decodeOne(longer, RAW).event!.payload)).toBe('x'.repeat(32));
    expect(decodeOne(withByte(longer, 6, 0x00), RAW).verdict).toBe('malformed:udp-length'); // without MF it must fit
    for (const offset of [1, 3, 0x1fff]) {
      for (const more of [true, false]) {
        expect(decodeOne(tcpSyn({ ...v4, sport: 5, dport: 7000, fragment: { offset, more } }), RAW).verdict).toBe('ignored:fragment');
      }
    }
  });

  it('counts a first fragment that cuts the TCP header as malformed', () => {
    const p = tcpSyn({ ...v4, sport: 5, dport: 7000, fragment: { offset: 0, more: true } });
    const tiny = fixIpv4Checksum(withByte(p.subarray(0, 28), 3, 28)); // 8 bytes of TCP, total length 28
    expect(decodeOne(tiny, RAW).verdict).toBe('malformed:tcp-truncated');
  });
});

describe('IPv6 extension headers', () => {
  const ext = (...extensions: Ipv6Extension[]) => tcpSyn({ ...v6, sport: 4444, dport: 1234, extensions, payload: 'syn data' });

  it.each<[string, Ipv6Extension[]]>([
    ['hop-by-hop', [{ type: 'hop-by-hop' }]],
    ['hop-by-hop (24 bytes)', [{ type: 'hop-by-hop', size: 24 }]],
    ['routing', [{ type: 'routing' }]],
    ['routing (16 bytes)', [{ type: 'routing', size: 16 }]],
    ['destination options', [{ type: 'destination', size: 40 }]],
    ['atomic fragment', [{ type: 'fragment', offset: 0, more: false }]],
    ['first fragment', [{ type: 'fragment', offset: 0, more: true }]],
    ['all kinds in order', [{ type: 'hop-by-hop' }, { type: 'destination' }, { type: 'routing' }, { type: 'fragment', offset: 0, more: false }, { type: 'destination', size: 16 }]],
  ])('walks %s to the transport header', (_name, extensions) => {
    const { event, verdict } = decodeOne(ext(...extensions), RAW);
    expect(verdict).toBe('knock');
    expect(event).toMatchObject({ family: 6, source: '2001:db8::7', destination: 'fd00:6b77::1', port: 1234, sourcePort: 4444 });
    expect(text(event!.payload)).toBe('syn data');
  });

  it('ignores AH wherever it is (Linux hands it to IPsec, never to TCP/UDP without an SA)', () => {
    expect(decodeOne(ext({ type: 'ah' }), RAW).verdict).toBe('ignored:ah');
    expect(decodeOne(ext({ type: 'hop-by-hop' }, { type: 'ah', size: 16 }), RAW).verdict).toBe('ignored:ah');
  });

  it('ignores a routing header with segments left: the packet is bound for another hop (Linux answered ICMPv6 in the lab)', () => {
    const p = ext({ type: 'routing', size: 24 });
    expect(decodeOne(p, RAW).verdict).toBe('knock');
    for (const left of [1, 255]) expect(decodeOne(withByte(p, 43, left), RAW).verdict).toBe('ignored:routing-segments-left');
  });

  it('ignores non-first fragments', () => {
    expect(decodeOne(ext({ type: 'fragment', offset: 1, more: true }), RAW).verdict).toBe('ignored:fragment');
    expect(decodeOne(ext({ type: 'hop-by-hop' }, { type: 'fragment', offset: 185, more: false }), RAW).verdict).toBe('ignored:fragment');
  });

  it('stops at ESP and at no-next-header', () => {
    const plain = ext();
    expect(decodeOne(withByte(plain, 6, 50), RAW).verdict).toBe('ignored:esp');
    expect(decodeOne(withByte(plain, 6, 59), RAW).verdict).toBe('ignored:no-next-header');
    const behind = ext({ type: 'hop-by-hop' }, { type: 'destination' });
    expect(decodeOne(withByte(behind, 48, 50), RAW).verdict).toBe('ignored:esp'); // the destination header's next
    expect(decodeOne(withByte(behind, 48, 59), RAW).verdict).toBe('ignored:no-next-header');
    expect(decodeOne(withByte(plain, 6, 58), RAW).verdict).toBe('ignored:not-tcp-udp'); // ICMPv6
  });

  it('walks any number of extension headers, as Linux does (7, 12 and 40 drew an RST in the lab)', () => {
    const dest = { type: 'destination' } as const;
    for (const n of [6, 7, 8, 9, 12, 40, 180]) {
      expect(decodeOne(ext(...Array<Ipv6Extension>(n).fill(dest)), RAW).verdict, `${n} headers`).toBe('knock');
    }
  });

  it('accepts hop-by-hop only right after the fixed header', () => {
    expect(decodeOne(ext({ type: 'destination' }, { type: 'hop-by-hop' }), RAW).verdict).toBe('malformed:ipv6-hop-by-hop-position');
  });

  it('counts an extension header running past the packet as malformed', () => {
    const p = ext({ type: 'destination' });
    expect(decodeOne(withByte(p, 41, 200), RAW).verdict).toBe('malformed:ipv6-ext-truncated');
    // Length in range of the packet, but then the transport header does not fit.
    const q = withByte(p, 41, 3); // 32 bytes: ends exactly 4 bytes before the packet end
    expect(decodeOne(q, RAW).verdict).toBe('malformed:tcp-truncated');
  });

  it('bounds the packet by payload length, ignoring trailing bytes, and rejects a longer one', () => {
    const p = udp({ ...v6, sport: 1, dport: 2, payload: 'abc' });
    const padded = decodeOne(Uint8Array.from([...p, 0xee, 0xee]), RAW);
    expect(padded.verdict).toBe('knock');
    expect(text(padded.event!.payload)).toBe('abc');
    expect(decodeOne(withByte(p, 5, p[5] + 1), RAW).verdict).toBe('malformed:ipv6-truncated');
    expect(decodeOne(withByte(p, 5, 7), RAW).verdict).toBe('malformed:udp-truncated');
  });
});

describe('TCP', () => {
  const seg = (flags: number) => tcp({ ...v4, sport: 33000, dport: 1234, flags });

  it('is a knock only with SYN set and ACK clear', () => {
    const { SYN, ACK, RST, FIN, PSH, URG } = TcpFlag;
    for (const flags of [SYN, SYN | 0x40 | 0x80, SYN | PSH, SYN | FIN, SYN | RST, SYN | URG]) {
      const { event, verdict } = decodeOne(seg(flags), RAW);
      expect(verdict).toBe('knock');
      expect(event?.tcpFlags).toBe(flags);
    }
    for (const flags of [SYN | ACK, ACK, RST, RST | ACK, FIN | ACK, PSH | ACK, 0, FIN | PSH | URG]) {
      expect(decodeOne(seg(flags), RAW).verdict).toBe('ignored:tcp-not-syn');
    }
  });

  it('skips TCP options and keeps SYN data', () => {
    const mssSackTsWs = Uint8Array.from([2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]);
    const { event } = decodeOne(tcpSyn({ ...v6, sport: 1, dport: 2, tcpOptions: mssSackTsWs, payload: 'tfo' }), RAW);
    expect(text(event!.payload)).toBe('tfo');
    const { event: bare } = decodeOne(tcpSyn({ ...v6, sport: 1, dport: 2, tcpOptions: mssSackTsWs }), RAW);
    expect(bare?.payload.length).toBe(0);
  });

  it('counts a data offset below 5 or past the packet as malformed', () => {
    const p = tcpSyn({ ...v4, sport: 1, dport: 2 });
    for (const doff of [0, 4]) expect(decodeOne(withByte(p, 32, doff << 4), RAW).verdict).toBe('malformed:tcp-data-offset');
    expect(decodeOne(withByte(p, 32, 6 << 4), RAW).verdict).toBe('malformed:tcp-data-offset');
  });

  it('reads ports across the whole range', () => {
    for (const [sport, dport] of [[0, 0], [65535, 65535], [1, 65534], [0x8000, 0x7fff]]) {
      expect(decodeOne(tcpSyn({ ...v4, sport, dport }), RAW).event).toMatchObject({ sourcePort: sport, port: dport });
    }
  });
});

describe('UDP', () => {
  it('is always a knock, with the payload as a view into the frame', () => {
    const f = ethernet(udp({ ...v4, sport: 53000, dport: 9012, payload: 'open sesame' }));
    const { event, verdict } = decodeOne(f, LinkType.ETHERNET);
    expect(verdict).toBe('knock');
    expect(event).toMatchObject({ protocol: 'udp', tcpFlags: 0, sourcePort: 53000, port: 9012 });
    expect(text(event!.payload)).toBe('open sesame');
    expect(event!.payload.buffer).toBe(f.buffer);
    expect(event!.payload.byteOffset).toBe(14 + 20 + 8);
  });

  it('shares one empty payload between events without data', () => {
    const a = decodeOne(udp({ ...v4, sport: 1, dport: 2 }), RAW).event!;
    const b = decodeOne(tcpSyn({ ...v6, sport: 1, dport: 2 }), RAW).event!;
    expect(a.payload.length).toBe(0);
    expect(a.payload).toBe(b.payload);
  });

  it('bounds the payload by the UDP length when it is shorter than the IP payload', () => {
    const p = udp({ ...v4, sport: 1, dport: 2, payload: 'abcdef' });
    const { event, verdict } = decodeOne(withByte(p, 25, 8 + 2), RAW);
    expect(verdict).toBe('knock');
    expect(text(event!.payload)).toBe('ab');
  });

  it('counts a UDP length below 8 or beyond the IP packet as malformed', () => {
    const p = udp({ ...v4, sport: 1, dport: 2, payload: 'abcdef' });
    for (const len of [0, 7, 15, 255]) expect(decodeOne(withByte(p, 25, len), RAW).verdict).toBe('malformed:udp-length');
    expect(decodeOne(withByte(p, 25, 14), RAW).verdict).toBe('knock');
  });
});

describe('truncation', () => {
  const framesUnderTest: [string, Uint8Array, number][] = [
    ['ethernet ipv4 syn', ethernet(tcpSyn({ ...v4, sport: 1, dport: 2 })), LinkType.ETHERNET],
    ['ethernet ipv4 udp', ethernet(udp({ ...v4, sport: 1, dport: 2, payload: 'payload' })), LinkType.ETHERNET],
    ['ipv4 options tcp options', tcpSyn({ ...v4, sport: 1, dport: 2, ipv4Options: new Uint8Array(8).fill(1), tcpOptions: Uint8Array.from([2, 4, 5, 0xb4]) }), RAW],
    ['ethernet ipv6 ext udp', ethernet(udp({ ...v6, sport: 1, dport: 2, payload: 'p', extensions: [{ type: 'hop-by-hop' }, { type: 'fragment', offset: 0, more: false }, { type: 'destination', size: 24 }] })), LinkType.ETHERNET],
    ['ipv6 syn', tcpSyn({ ...v6, sport: 1, dport: 2 }), LinkType.IPV6],
  ];

  it.each(framesUnderTest)('%s: every shorter prefix is malformed, never thrown', (_name, frame, linkType) => {
    expect(decodeOne(frame, linkType).verdict).toBe('knock');
    for (let n = 0; n < frame.length; n++) {
      expect(decodeOne(frame.subarray(0, n), linkType).verdict, `prefix of ${n} bytes`).toMatch(/^malformed:/);
    }
  });

  it('a frame cut by snaplen is a knock once its transport header was captured, and never guessed at before', () => {
    const f = ethernet(udp({ ...v4, sport: 1, dport: 2, payload: 'abcdefgh' }));
    const udpHeaderEnd = 14 + 20 + 8;
    for (let n = 0; n < f.length; n++) {
      const { verdict, event } = decodeOne(f.subarray(0, n), LinkType.ETHERNET, f.length);
      if (n < udpHeaderEnd) {
        // Too short for the IP header's fixed part: malformed; past it, the snaplen hid the rest.
        expect(verdict, `snapped at ${n}`).toMatch(n < 14 + 20 ? /^malformed:/ : /^ignored:headers-not-captured$/);
      } else {
        expect(verdict, `snapped at ${n}`).toBe('knock');
        expect(text(event!.payload)).toBe('abcdefgh'.slice(0, n - udpHeaderEnd));
      }
    }
    // TCP: the options may be cut, the fixed 20 bytes may not.
    const s = ethernet(tcpSyn({ ...v6, sport: 1, dport: 2, tcpOptions: new Uint8Array(20).fill(1) }));
    expect(decodeOne(s.subarray(0, 14 + 40 + 19), LinkType.ETHERNET, s.length).verdict).toBe('ignored:headers-not-captured');
    expect(decodeOne(s.subarray(0, 14 + 40 + 20), LinkType.ETHERNET, s.length).verdict).toBe('knock');
  });
});

describe('stats', () => {
  it('accumulates counts and reasons across frames', () => {
    const stats = createDecodeStats();
    const frames = [
      tcpSyn({ ...v4, sport: 1, dport: 2 }),
      tcp({ ...v4, sport: 1, dport: 2, flags: TcpFlag.ACK }),
      tcp({ ...v4, sport: 1, dport: 2, flags: TcpFlag.ACK }),
      new Uint8Array(10),
      udp({ ...v6, sport: 1, dport: 2 }),
    ];
    const events = frames.map((f) => decodeFrame(toFrame(f, RAW), stats));
    expect(events.filter(Boolean)).toHaveLength(2);
    expect(stats).toEqual({
      frames: 5,
      knocks: 2,
      ignored: 2,
      malformed: 1,
      ignoredReasons: { 'tcp-not-syn': 2 },
      malformedReasons: { 'ip-version': 1 },
    });
  });
});
