// Link layers: every supported LINKTYPE, VLAN/QinQ stacking, cooked captures'
// packet direction, loopback address families in both byte orders.
import { describe, expect, it } from 'vitest';
import { LinkType } from '../../src/decode/link-types.js';
import { ethernet, nullLoopback, openbsdLoop, sll, sll2, tcpSyn, udp } from '../../src/lab/packets.js';
import { decodeOne } from './decode-helpers.js';

const syn4 = tcpSyn({ src: '10.199.0.2', dst: '10.199.0.1', sport: 40001, dport: 1234 });
const syn6 = tcpSyn({ src: 'fd00:6b77::2', dst: 'fd00:6b77::1', sport: 40002, dport: 5678 });
const udp4 = udp({ src: '10.199.0.3', dst: '10.199.0.1', sport: 40003, dport: 9012, payload: 'hi' });

function expectKnock4(data: Uint8Array, linkType: number): void {
  const { event, verdict } = decodeOne(data, linkType);
  expect(verdict).toBe('knock');
  expect(event).toMatchObject({ family: 4, source: '10.199.0.2', destination: '10.199.0.1', protocol: 'tcp', sourcePort: 40001, port: 1234, tcpFlags: 0x02, time: 1000 });
  expect(event?.payload.length).toBe(0);
}

function expectKnock6(data: Uint8Array, linkType: number): void {
  const { event, verdict } = decodeOne(data, linkType);
  expect(verdict).toBe('knock');
  expect(event).toMatchObject({ family: 6, source: 'fd00:6b77::2', destination: 'fd00:6b77::1', protocol: 'tcp', sourcePort: 40002, port: 5678 });
}

describe('Ethernet (1)', () => {
  it('decodes IPv4 and IPv6', () => {
    expectKnock4(ethernet(syn4), LinkType.ETHERNET);
    expectKnock6(ethernet(syn6), LinkType.ETHERNET);
  });

  it('ignores VLAN-tagged frames, one tag or QinQ (the host takes them only on the VLAN interface, untagged)', () => {
    const f = ethernet(syn4, { vlan: [42] });
    expect([f[12], f[13]]).toEqual([0x81, 0x00]);
    expect(decodeOne(f, LinkType.ETHERNET).verdict).toBe('ignored:vlan');
    expect(decodeOne(ethernet(syn4, { vlan: [100, 42] }), LinkType.ETHERNET).verdict).toBe('ignored:vlan');
    expect(decodeOne(ethernet(syn6, { vlan: [100, 42], tpids: [0x9100, 0x8100] }), LinkType.ETHERNET).verdict).toBe('ignored:vlan');
    expect(decodeOne(ethernet(syn4, { vlan: [1, 2, 3, 4, 5] }), LinkType.ETHERNET).verdict).toBe('ignored:vlan');
  });

  it('ignores TCP in a broadcast or multicast frame (Linux TCP takes only frames to its own MAC); UDP counts', () => {
    for (const dst of ['ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01', '33:33:00:00:00:01']) {
      expect(decodeOne(ethernet(syn4, { dst }), LinkType.ETHERNET).verdict).toBe('ignored:tcp-link-broadcast');
      expect(decodeOne(ethernet(udp4, { dst }), LinkType.ETHERNET).verdict).toBe('knock');
    }
  });

  it('ignores ARP and other EtherTypes, including 802.3 length fields', () => {
    const arp = ethernet(new Uint8Array(28), { etherType: 0x0806 });
    expect(decodeOne(arp, LinkType.ETHERNET).verdict).toBe('ignored:not-ip');
    expect(decodeOne(ethernet(syn4, { etherType: 0x0040 }), LinkType.ETHERNET).verdict).toBe('ignored:not-ip');
    expect(decodeOne(ethernet(syn4, { vlan: [7], etherType: 0x88cc }), LinkType.ETHERNET).verdict).toBe('ignored:vlan');
  });

  it('rejects an EtherType that disagrees with the IP version', () => {
    expect(decodeOne(ethernet(syn6, { etherType: 0x0800 }), LinkType.ETHERNET).verdict).toBe('malformed:ip-version');
    expect(decodeOne(ethernet(syn4, { etherType: 0x86dd }), LinkType.ETHERNET).verdict).toBe('malformed:ip-version');
  });

  it('ignores the padding of a minimum-size frame', () => {
    const f = ethernet(udp4, { pad: true });
    expect(f.length).toBe(60);
    const { event, verdict } = decodeOne(f, LinkType.ETHERNET);
    expect(verdict).toBe('knock');
    expect(Array.from(event!.payload)).toEqual([0x68, 0x69]);
  });
});

describe('Linux cooked captures', () => {
  it('SLL (113) decodes IPv4 and IPv6, and ignores VLAN-tagged frames', () => {
    expectKnock4(sll(syn4), LinkType.LINUX_SLL);
    expectKnock6(sll(syn6), LinkType.LINUX_SLL);
    // libpcap puts a stripped VLAN tag back after the cooked header as 0x8100 + TCI + type;
    // `-i any` shows the same packet untagged on the VLAN's own interface, where it counts.
    const tagged = sll(Uint8Array.from([0x00, 0x2a, 0x08, 0x00, ...syn4]), { protocol: 0x8100 });
    expect(decodeOne(tagged, LinkType.LINUX_SLL).verdict).toBe('ignored:vlan');
  });

  it('SLL2 (276) decodes IPv4 and IPv6', () => {
    expectKnock4(sll2(syn4), LinkType.LINUX_SLL2);
    expectKnock6(sll2(syn6), LinkType.LINUX_SLL2);
  });

  it('ignores packets this host sent (packet type 4), which `-i any` also shows', () => {
    expect(decodeOne(sll(syn4, { packetType: 4 }), LinkType.LINUX_SLL).verdict).toBe('ignored:outgoing');
    expect(decodeOne(sll2(syn4, { packetType: 4 }), LinkType.LINUX_SLL2).verdict).toBe('ignored:outgoing');
    expectKnock4(sll2(syn4, { packetType: 0 }), LinkType.LINUX_SLL2);
  });

  it('ignores frames for another host (packet type 3), and TCP in broadcast/multicast frames (1, 2), as Linux does', () => {
    for (const make of [sll, sll2]) {
      const link = make === sll ? LinkType.LINUX_SLL : LinkType.LINUX_SLL2;
      expect(decodeOne(make(syn4, { packetType: 3 }), link).verdict).toBe('ignored:other-host');
      expect(decodeOne(make(udp4, { packetType: 3 }), link).verdict).toBe('ignored:other-host');
      for (const packetType of [1, 2]) {
        expect(decodeOne(make(syn4, { packetType }), link).verdict).toBe('ignored:tcp-link-broadcast');
        expect(decodeOne(make(udp4, { packetType }), link).verdict).toBe('knock');
      }
    }
  });

  it('ignores non-IP protocols', () => {
    expect(decodeOne(sll(syn4, { protocol: 0x0806 }), LinkType.LINUX_SLL).verdict).toBe('ignored:not-ip');
    expect(decodeOne(sll2(syn4, { protocol: 0x0003 }), LinkType.LINUX_SLL2).verdict).toBe('ignored:not-ip');
  });

  it('counts headers shorter than their fixed size as malformed', () => {
    expect(decodeOne(sll(syn4).subarray(0, 15), LinkType.LINUX_SLL).verdict).toBe('malformed:sll-truncated');
    expect(decodeOne(sll2(syn4).subarray(0, 19), LinkType.LINUX_SLL2).verdict).toBe('malformed:sll2-truncated');
  });
});

describe('raw IP', () => {
  it.each([LinkType.RAW, LinkType.RAW_12, LinkType.RAW_14])('link type %i takes the version from the first nibble', (lt) => {
    expectKnock4(syn4, lt);
    expectKnock6(syn6, lt);
    expect(decodeOne(Uint8Array.from([0x50, ...syn4.subarray(1)]), lt).verdict).toBe('malformed:ip-version');
    expect(decodeOne(new Uint8Array(0), lt).verdict).toBe('malformed:raw-truncated');
  });

  it('IPv4 (228) and IPv6 (229) accept only their own version', () => {
    expectKnock4(syn4, LinkType.IPV4);
    expectKnock6(syn6, LinkType.IPV6);
    expect(decodeOne(syn6, LinkType.IPV4).verdict).toBe('malformed:ip-version');
    expect(decodeOne(syn4, LinkType.IPV6).verdict).toBe('malformed:ip-version');
    expect(decodeOne(syn4.subarray(0, 39), LinkType.IPV6).verdict).toBe('malformed:ipv6-truncated');
  });
});

describe('loopback', () => {
  it('NULL (0) accepts the family in either byte order', () => {
    for (const byteOrder of ['little', 'big'] as const) {
      expectKnock4(nullLoopback(syn4, { byteOrder }), LinkType.NULL);
      for (const af of [24, 28, 30]) expectKnock6(nullLoopback(syn6, { byteOrder, af }), LinkType.NULL);
    }
  });

  it('NULL ignores other families and rejects a family that disagrees with the packet', () => {
    expect(decodeOne(nullLoopback(syn4, { af: 17 }), LinkType.NULL).verdict).toBe('ignored:not-ip');
    expect(decodeOne(nullLoopback(syn4, { af: 0x02000000, byteOrder: 'big' }), LinkType.NULL).verdict).toBe('knock'); // = 2 little-endian
    expect(decodeOne(nullLoopback(syn6, { af: 2 }), LinkType.NULL).verdict).toBe('malformed:ip-version');
    expect(decodeOne(nullLoopback(syn4, { af: 30 }), LinkType.NULL).verdict).toBe('malformed:ip-version');
    expect(decodeOne(new Uint8Array(3), LinkType.NULL).verdict).toBe('malformed:null-truncated');
  });

  it('LOOP (108) reads the family in network byte order only', () => {
    expectKnock4(openbsdLoop(syn4), LinkType.LOOP);
    expectKnock6(openbsdLoop(syn6), LinkType.LOOP);
    expect(decodeOne(nullLoopback(syn4, { byteOrder: 'little' }), LinkType.LOOP).verdict).toBe('ignored:not-ip');
    expect(decodeOne(new Uint8Array(2), LinkType.LOOP).verdict).toBe('malformed:loop-truncated');
  });
});

describe('unknown link types', () => {
  it.each([2, 105, 127, 147, 192, 65535, -1])('link type %i is ignored with a reason', (lt) => {
    expect(decodeOne(ethernet(syn4), lt).verdict).toBe('ignored:link-type');
  });
});
