// The live-capture filter as libpcap itself runs it: crafted packets in a
// capture file, filtered by `tcpdump -r FILE FILTER` (the same libpcap
// compiler and BPF interpreter the capture uses), on Ethernet and on Linux
// cooked (what `any` gives). Needs tcpdump, not root.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildCaptureFilter } from '../../src/capture/filter.js';
import { captureNeeds } from '../../src/detect/index.js';
import { encodePcap } from '../../src/capture/write.js';
import { ethernet, sll, tcp, TcpFlag, udp, type Ipv6Extension } from '../../src/lab/packets.js';
import type { Door, Protocol } from '../../src/types.js';

const tcpdumpMissing = (await execa('tcpdump', ['--version'], { reject: false })).exitCode !== 0;
if (tcpdumpMissing) console.warn('[skipped] capture filter under libpcap: needs tcpdump (Debian package tcpdump)');

const LOCAL = ['10.199.0.1', 'fd00:6b77::1'];
const R4 = '10.199.0.2';
const R6 = 'fd00:6b77::2';
const { SYN, ACK, PSH, RST, FIN } = TcpFlag;

interface Case {
  readonly name: string;
  readonly packet: Uint8Array;
  /** Whether a filter for TCP and UDP doors admits it. */
  readonly pass: boolean;
}

const ext = (...e: Ipv6Extension[]): { extensions: Ipv6Extension[] } => ({ extensions: e });
const syn4 = (flags: number, dst = LOCAL[0], src = R4) => tcp({ src, dst, sport: 40000, dport: 1111, flags });
const syn6 = (flags: number, more: object = {}, dst = LOCAL[1], src = R6) => tcp({ src, dst, sport: 40000, dport: 1111, flags, ...more });
const udp4 = (more: object = {}) => udp({ src: R4, dst: LOCAL[0], sport: 40000, dport: 2222, payload: 'knock', ...more });
const udp6 = (more: object = {}) => udp({ src: R6, dst: LOCAL[1], sport: 40000, dport: 2222, payload: 'knock', ...more });

const CASES: Case[] = [
  { name: 'v4 SYN', packet: syn4(SYN), pass: true },
  { name: 'v4 SYN+ACK', packet: syn4(SYN | ACK), pass: false },
  { name: 'v4 PSH+ACK data', packet: tcp({ src: R4, dst: LOCAL[0], sport: 40000, dport: 22, flags: PSH | ACK, payload: 'data' }), pass: false },
  { name: 'v4 ACK', packet: syn4(ACK), pass: false },
  { name: 'v4 RST', packet: syn4(RST), pass: false },
  { name: 'v4 SYN+FIN (flags beyond SYN/ACK are the decoder\'s call)', packet: syn4(SYN | FIN), pass: true },
  { name: 'v4 UDP', packet: udp4(), pass: true },
  { name: 'v4 UDP first fragment', packet: udp4({ fragment: { offset: 0, more: true } }), pass: true },
  { name: 'v4 UDP later fragment', packet: udp4({ fragment: { offset: 185, more: false } }), pass: false },
  // Host addresses are not in the filter: the address rule (host-addresses.ts) decides in JS.
  { name: 'v4 SYN to another host (promiscuous)', packet: syn4(SYN, '10.199.0.9'), pass: true },
  { name: 'v4 SYN from a local address', packet: syn4(SYN, LOCAL[0], LOCAL[0]), pass: true },
  { name: 'v4 SYN to 127.0.0.1 (loopback destination)', packet: syn4(SYN, '127.0.0.1'), pass: false },
  { name: 'v4 UDP to 127.5.5.5 (loopback destination)', packet: udp({ src: R4, dst: '127.5.5.5', sport: 40000, dport: 2222 }), pass: false },
  { name: 'v6 SYN', packet: syn6(SYN), pass: true },
  { name: 'v6 SYN+ACK', packet: syn6(SYN | ACK), pass: false },
  { name: 'v6 ACK', packet: syn6(ACK), pass: false },
  { name: 'v6 UDP', packet: udp6(), pass: true },
  { name: 'v6 hop-by-hop + SYN', packet: syn6(SYN, ext({ type: 'hop-by-hop' })), pass: true },
  { name: 'v6 hop-by-hop + ACK', packet: syn6(ACK, ext({ type: 'hop-by-hop' })), pass: false },
  { name: 'v6 16-byte destination options + SYN', packet: syn6(SYN, ext({ type: 'destination', size: 16 })), pass: true },
  { name: 'v6 16-byte destination options + ACK', packet: syn6(ACK, ext({ type: 'destination', size: 16 })), pass: false },
  { name: 'v6 routing + ACK', packet: syn6(SYN | ACK, ext({ type: 'routing' })), pass: false },
  { name: 'v6 routing + UDP', packet: udp6(ext({ type: 'routing' })), pass: true },
  { name: 'v6 first fragment + SYN', packet: syn6(SYN, ext({ type: 'fragment', offset: 0, more: true })), pass: true },
  { name: 'v6 first fragment + ACK', packet: syn6(ACK, ext({ type: 'fragment', offset: 0, more: true })), pass: false },
  { name: 'v6 later fragment', packet: udp6(ext({ type: 'fragment', offset: 100, more: false })), pass: false },
  // Two extension headers: not walked in BPF, passed for the decoder to judge.
  { name: 'v6 hop-by-hop + destination + ACK', packet: syn6(ACK, ext({ type: 'hop-by-hop' }, { type: 'destination' })), pass: true },
  { name: 'v6 AH + SYN (IPsec not admitted)', packet: syn6(SYN, ext({ type: 'ah' })), pass: false },
  { name: 'v6 SYN to another host', packet: syn6(SYN, {}, 'fd00:6b77::9'), pass: true },
  { name: 'v6 SYN from a local address', packet: syn6(SYN, {}, LOCAL[1], LOCAL[1]), pass: true },
  { name: 'v6 SYN to ::1 (loopback destination)', packet: syn6(SYN, {}, '::1'), pass: false },
];

function door(...protocols: Protocol[]): Door {
  return { kind: 'sequence', name: 'd', sequence: protocols.map((protocol, i) => ({ port: 1000 + 10 * i, protocol })), windowMs: 1000, open: [{ port: 22, protocol: 'tcp' }], durationMs: 1000 };
}

/** The filter the daemon builds for these doors (captureNeeds -> buildCaptureFilter). */
const filterFor = (...doors: Door[]): string => buildCaptureFilter(captureNeeds(doors).protocols);

const dir = mkdtempSync(join(tmpdir(), 'kw-filter-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LINKS = [
  { name: 'Ethernet', linkType: 1, wrap: (p: Uint8Array) => ethernet(p) },
  { name: 'Linux cooked (any)', linkType: 113, wrap: (p: Uint8Array) => sll(p) },
] as const;

/** Indexes of the CASES libpcap lets through `filter` (frame i is stamped i seconds). */
async function passing(linkType: number, wrap: (p: Uint8Array) => Uint8Array, filter: string): Promise<number[]> {
  const file = join(dir, `cases-${linkType}.pcap`);
  writeFileSync(file, encodePcap(CASES.map((c, i) => ({ time: i * 1000, data: wrap(c.packet) })), { linkType }));
  const r = await execa('tcpdump', ['-n', '-tt', '-r', file, filter], { reject: false });
  expect(r.exitCode, r.stderr).toBe(0);
  return r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => Number(l.split('.')[0]));
}

describe.skipIf(tcpdumpMissing)('capture filter under libpcap', () => {
  for (const link of LINKS) {
    it(`admits exactly the knock candidates on ${link.name}`, async () => {
      const got = await passing(link.linkType, link.wrap, filterFor(door('tcp', 'udp')));
      const wrong = CASES.map((c, i) => ({ name: c.name, want: c.pass, got: got.includes(i) })).filter((r) => r.want !== r.got);
      expect(wrong).toEqual([]);
      expect(got.length).toBe(CASES.filter((c) => c.pass).length);
    });

    it(`admits SYNs and UDP alike for TCP-only and UDP-only doors on ${link.name} (any SYN/UDP resets)`, async () => {
      const both = await passing(link.linkType, link.wrap, filterFor(door('tcp', 'udp')));
      expect(await passing(link.linkType, link.wrap, filterFor(door('tcp')))).toEqual(both);
      expect(await passing(link.linkType, link.wrap, filterFor(door('udp')))).toEqual(both);
    });
  }

  it('compiles to plain loads only: no Linux ancillary data that libpcap cannot evaluate in userland', async () => {
    const file = join(dir, 'empty.pcap');
    writeFileSync(file, encodePcap([], { linkType: 1 }));
    const r = await execa('tcpdump', ['-d', '-r', file, filterFor(door('tcp', 'udp'))]);
    expect(r.stdout).toMatch(/ret\s+#0/);
    // [type] is SKF_AD_PKTTYPE (inbound/outbound), [ifidx] SKF_AD_IFINDEX, [vlan_*] the VLAN extensions.
    expect(r.stdout).not.toMatch(/\[(type|ifidx|vlan_tci|vlan_avail|proto|mark|hatype|rxhash|cpu)\]/);
  });
});
