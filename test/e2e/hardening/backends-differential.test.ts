// Issue 8 item 13: the two capture backends must take the same decisions.
// One corpus of crafted frames is injected live (AF_PACKET from the client
// namespace, so sources, tags and headers can be anything) into the built
// daemon, once with `capture: pcap` and once with `capture: ebpf` (firewall
// none). The daemon's decision lines for the corpus's sources must be
// identical, and must follow the rule written in src/decode/decode.ts: a
// packet counts exactly when this host itself would take it as a TCP SYN or
// UDP datagram to one of its addresses.
//
// Each scenario is a knock sequence from its own source with one crafted
// packet in it, so the outcome (door opened or not) shows whether the crafted
// packet was seen as a wrong port. What the host answers was checked in the
// lab by sending each frame to a closed port: an RST (or ICMP) came back for
// the "host accepts" cases only (7 and 40 destination-options headers, TCP
// past byte 256, an address on `lo`), no RST for AH (ICMPv6 instead),
// VLAN/QinQ tags, a bad IPv4 checksum, IP total length beyond the frame, UDP
// length 0, 127.0.0.1 from the wire, the host's own source address, or a
// routing header with segments left.
// Frames for another host's MAC: Linux drops them (PACKET_OTHERHOST), eBPF at
// tc ingress hides them (skb->pkt_type), and the pcap backend - cap always
// opens promiscuous, and a veth delivers such frames to packet sockets anyway
// - now refuses them in its filter, which holds the interface's MAC
// (src/capture/filter.ts linkClause). Before that filter term, pcap counted
// them: the "another MAC" scenarios below differed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ebpfUnavailableReason } from '../../../src/capture/ebpf.js';
import { createLab, LAB_V4, LAB_V6, type Lab } from '../../../src/lab/netns.js';
import {
  ethernet,
  tcp,
  udp,
  withBadIpv4Checksum,
  withIpv4TotalLength,
  withUdpLength,
  type EthernetOptions,
  type Ipv6Extension,
} from '../../../src/lab/packets.js';
import type { CaptureKind } from '../../../src/types.js';
import { describeLab, labSkipReason } from '../../support/lab.js';
import { launchDaemon, writeDoorConfig, type DaemonLogLine } from '../support/daemon.js';
import { injectFrames } from '../support/inject.js';

const STEPS = [1234, 2345, 3456];
const DOOR_PORT = 2222;
/** An address on the server's `lo`: Linux accepts packets for it on any interface. */
const LO4 = '10.77.0.1';
const LO6 = 'fd77::1';
/** A unicast MAC that is not the server's (locally administered, so never a real card's). */
const OTHER_MAC = '02:4b:57:00:99:99';
const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
const DECISIONS = new Set(['knock', 'sequence progress', 'sequence reset', 'access opened', 'access refreshed']);

const ebpfReason = labSkipReason === undefined ? await ebpfUnavailableReason() : undefined;
if (ebpfReason !== undefined) console.warn(`[skipped] backends differential: ${ebpfReason}`);
const xdpReason = labSkipReason === undefined && ebpfReason === undefined ? await ebpfUnavailableReason(undefined, 'xdp') : undefined;
if (xdpReason !== undefined) console.warn(`[skipped] backends differential, eBPF at XDP: ${xdpReason}`);

/** The backends compared: pcap, eBPF at tc (the default), eBPF at XDP (no packet type there: it reads the interface's MAC). */
const RUNS: readonly { name: string; capture: CaptureKind; args: string[] }[] = [
  { name: 'pcap', capture: 'pcap', args: [] },
  { name: 'ebpf', capture: 'ebpf', args: [] },
  ...(xdpReason === undefined ? [{ name: 'ebpf-xdp', capture: 'ebpf' as const, args: ['--ebpf-hook', 'xdp'] }] : []),
];

interface Scenario {
  /** The class (or a control). */
  readonly name: string;
  readonly source: string;
  readonly frames: readonly Uint8Array[];
  /** By the rule: does the door open for this source? */
  readonly expect: 'open' | 'closed';
}

function destinationOptions(n: number, size = 8): Ipv6Extension[] {
  return Array.from({ length: n }, () => ({ type: 'destination', size }) as const);
}

/** The corpus; `eth` carries the real MACs of the lab's veth pair. */
function corpus(eth: EthernetOptions): Scenario[] {
  const out: Scenario[] = [];
  let n = 0;
  const add = (name: string, family: 4 | 6, build: (src: string, steps: (dst?: string) => Uint8Array[]) => Uint8Array[], expect: 'open' | 'closed', source?: string): void => {
    n++;
    const src = source ?? (family === 4 ? `10.98.0.${n}` : `fd98::${n.toString(16)}`);
    const server = family === 4 ? LAB_V4.server : LAB_V6.server;
    const steps = (dst: string = server): Uint8Array[] => STEPS.map((dport) => ethernet(tcp({ src, dst, sport: 41_000 + n, dport }), eth));
    out.push({ name, source: src, frames: build(src, steps), expect });
  };
  /** The crafted packet between the first and the second step. */
  const between = (s: Uint8Array[], ...x: Uint8Array[]): Uint8Array[] => [s[0], ...x, s[1], s[2]];
  const syn4 = (src: string, dport: number): Uint8Array => tcp({ src, dst: LAB_V4.server, sport: 42_000, dport });
  const syn6 = (src: string, dport: number, extensions?: Ipv6Extension[]): Uint8Array =>
    tcp({ src, dst: LAB_V6.server, sport: 42_000, dport, ...(extensions ? { extensions } : {}) });
  const e = (p: Uint8Array, o: EthernetOptions = {}): Uint8Array => ethernet(p, { ...eth, ...o });

  // Controls.
  add('control: a clean IPv4 sequence', 4, (_, s) => s(), 'open');
  add('control: a clean IPv6 sequence', 6, (_, s) => s(), 'open');
  add('control: a wrong port mid-sequence', 4, (src, s) => between(s(), e(syn4(src, 80))), 'closed');
  // IPv6 extension headers: Linux walks any number of them.
  add('IPv6 with 6 extension headers', 6, (src, s) => between(s(), e(syn6(src, 80, destinationOptions(6)))), 'closed');
  add('IPv6 with 7 extension headers', 6, (src, s) => between(s(), e(syn6(src, 80, destinationOptions(7)))), 'closed');
  add('IPv6 with 12 extension headers', 6, (src, s) => between(s(), e(syn6(src, 80, destinationOptions(12)))), 'closed');
  // A routing header with segments left: bound for another hop (Linux answers ICMPv6, not TCP).
  const segmentsLeft = (p: Uint8Array, left: number): Uint8Array => {
    const b = Uint8Array.from(p);
    b[40 + 3] = left;
    return b;
  };
  add('IPv6 routing header, no segments left', 6, (src, s) => between(s(), e(syn6(src, 80, [{ type: 'routing' }]))), 'closed');
  add('IPv6 routing header with segments left', 6, (src, s) => between(s(), e(segmentsLeft(syn6(src, 80, [{ type: 'routing', size: 24 }]), 1))), 'open');
  // Transport header past byte 256 (eBPF used to send up only 256 bytes).
  add('IPv6 wrong port whose TCP header ends past byte 256', 6, (src, s) => between(s(), e(syn6(src, 80, destinationOptions(1, 256)))), 'closed');
  add('IPv6 first step whose TCP header ends past byte 256', 6, (src, s) => {
    const all = s();
    return [e(syn6(src, STEPS[0], destinationOptions(1, 256))), all[1], all[2]];
  }, 'open');
  // A malformed packet must not use up the source's one wrong port in the kernel.
  add('IPv4 total length beyond the frame, then a real wrong port', 4, (src, s) => between(s(), e(withIpv4TotalLength(syn4(src, 80), 200)), e(syn4(src, 81))), 'closed');
  add('UDP length 0, then a real wrong port', 4, (src, s) => between(s(), e(withUdpLength(udp({ src, dst: LAB_V4.server, sport: 42_000, dport: 53 }), 0)), e(syn4(src, 81))), 'closed');
  add('a long frame with IPv4 total length beyond it, then a real wrong port', 4, (src, s) => {
    const long = tcp({ src, dst: LAB_V4.server, sport: 42_000, dport: 80, payload: new Uint8Array(300) });
    return between(s(), e(withIpv4TotalLength(long, 1000)), e(syn4(src, 81)));
  }, 'closed');
  add('a bad IPv4 header checksum', 4, (src, s) => between(s(), e(withBadIpv4Checksum(syn4(src, 80)))), 'open');
  // Addresses.
  add('a knock to an address on lo (IPv4)', 4, (_, s) => s(LO4), 'open');
  add('a knock to an address on lo (IPv6)', 6, (_, s) => s(LO6), 'open');
  add('a knock to 127.0.0.1 from the wire', 4, (_, s) => s('127.0.0.1'), 'closed');
  add("a knock from the host's own address", 4, (_, s) => s(), 'closed', LAB_V4.server);
  // Headers the host does not deliver to TCP.
  add('IPv6 AH', 6, (src, s) => between(s(), e(syn6(src, 80, [{ type: 'ah' }]))), 'open');
  add('QinQ (two VLAN tags)', 4, (src, s) => between(s(), e(syn4(src, 80), { vlan: [5, 6] })), 'open');
  add('one VLAN tag with no VLAN interface', 4, (src, s) => between(s(), e(syn4(src, 80), { vlan: [5] })), 'open');
  // Link layer: what the host drops, we ignore - a frame for another MAC.
  add('a wrong port in a frame for another MAC', 4, (src, s) => between(s(), e(syn4(src, 80), { dst: OTHER_MAC })), 'open');
  add('an IPv6 wrong port in a frame for another MAC', 6, (src, s) => between(s(), e(syn6(src, 80), { dst: OTHER_MAC })), 'open');
  add('a UDP wrong port in a frame for another MAC', 4, (src, s) => between(s(), e(udp({ src, dst: LAB_V4.server, sport: 42_000, dport: 53 }), { dst: OTHER_MAC })), 'open');
  add('a whole sequence in frames for another MAC', 4, (src) => STEPS.map((dport) => e(tcp({ src, dst: LAB_V4.server, sport: 41_500, dport }), { dst: OTHER_MAC })), 'closed');
  // Group addresses reach the host: UDP in them counts, TCP does not (Linux's TCP takes PACKET_HOST only).
  add('a UDP wrong port in a broadcast frame', 4, (src, s) => between(s(), e(udp({ src, dst: LAB_V4.server, sport: 42_000, dport: 53 }), { dst: BROADCAST_MAC })), 'closed');
  add('a TCP wrong port in a broadcast frame', 4, (src, s) => between(s(), e(syn4(src, 80), { dst: BROADCAST_MAC })), 'open');
  // Protocols: the door has only TCP steps, yet any UDP datagram resets.
  add('UDP to a TCP-only door mid-sequence', 4, (src, s) => between(s(), e(udp({ src, dst: LAB_V4.server, sport: 42_000, dport: 53 }))), 'closed');
  add('UDP (IPv6) to a TCP-only door mid-sequence', 6, (src, s) => between(s(), e(udp({ src, dst: LAB_V6.server, sport: 42_000, dport: 53 }))), 'closed');
  return out;
}

/** One decision line as compared between backends: no times, no deadlines. */
function brief(l: DaemonLogLine): string {
  const fields = ['step', 'port', 'protocol', 'reason'].filter((k) => l[k] !== undefined).map((k) => `${k}=${String(l[k])}`);
  return [l.msg, ...fields].join(' ');
}

describeLab('backends differential (issue 8 item 13)', () => {
  describe.skipIf(ebpfReason !== undefined)('the same crafted frames through pcap and eBPF', () => {
    let lab: Lab;
    let dir: string;
    let scenarios: Scenario[];
    let eth: EthernetOptions;
    let marker = 0;
    const decisions = new Map<string, Map<string, string[]>>();

    beforeAll(async () => {
      lab = await createLab('bdiff');
      dir = await mkdtemp(join(tmpdir(), 'kw-bdiff-'));
      for (const argv of [
        ['ip', 'addr', 'add', `${LO4}/32`, 'dev', 'lo'],
        ['ip', '-6', 'addr', 'add', `${LO6}/128`, 'dev', 'lo'],
        ['ip', 'link', 'set', 'lo', 'up'],
      ]) {
        const r = await lab.run(lab.server, argv);
        if (r.exitCode !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
      }
      const mac = async (h: Lab['server']): Promise<string> => (await lab.run(h, ['cat', `/sys/class/net/${h.ifname}/address`])).stdout.trim();
      eth = { src: await mac(lab.client), dst: await mac(lab.server) };
      scenarios = corpus(eth);
    });
    afterAll(async () => {
      await lab?.destroy();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    for (const { name, capture, args } of RUNS) {
      it(`runs the corpus through capture: ${name}`, async () => {
        const config = join(dir, `${name}.yaml`);
        await writeDoorConfig(config, { sequence: STEPS, windowMs: 20_000, durationMs: 60_000, open: [DOOR_PORT] }, 'none', capture);
        const daemon = await launchDaemon(lab, config, { firewall: 'none', capture }, args);
        try {
          // A marker sequence after the corpus: once it opened, every frame
          // before it was captured and decided (one capture stream, in order).
          const markerSource = `10.97.0.${++marker}`;
          await injectFrames(lab, [
            ...scenarios.flatMap((s) => s.frames),
            ...STEPS.map((dport) => ethernet(tcp({ src: markerSource, dst: LAB_V4.server, sport: 43_000, dport }), eth)),
          ]);
          await daemon.waitFor((l) => l.msg === 'access opened' && l.source === markerSource, `the marker ${markerSource} to open`, 15_000);
          const bySource = new Map<string, string[]>(scenarios.map((s) => [s.source, []]));
          for (const l of daemon.lines) {
            if (DECISIONS.has(l.msg) && typeof l.source === 'string') bySource.get(l.source)?.push(brief(l));
          }
          decisions.set(name, bySource);
        } finally {
          await daemon.stop();
        }
      }, 40_000);
    }

    it('the backends take identical decisions on every scenario', () => {
      const pcap = decisions.get('pcap');
      if (pcap === undefined || decisions.size !== RUNS.length) throw new Error('a backend run failed; see above');
      const outcome = (d: string[] | undefined): string => (d?.includes('access opened') ? 'open' : 'closed');
      for (const s of scenarios) {
        const each = RUNS.map((r) => `${r.name} ${outcome(decisions.get(r.name)?.get(s.source))}`).join(', ');
        console.log(`[differential] ${s.name}: ${each}, rule ${s.expect}`);
      }
      const differ: { scenario: string; pcap: string[] | undefined; other: string; decisions: string[] | undefined }[] = [];
      for (const r of RUNS.slice(1)) {
        const other = decisions.get(r.name);
        for (const s of scenarios) {
          if (JSON.stringify(pcap.get(s.source)) !== JSON.stringify(other?.get(s.source))) {
            differ.push({ scenario: s.name, pcap: pcap.get(s.source), other: r.name, decisions: other?.get(s.source) });
          }
        }
      }
      expect(differ, 'scenarios where pcap and an eBPF run decided differently').toEqual([]);
    });

    it('the decisions follow the rule (a packet counts when the host itself accepts it)', () => {
      const wrong: { scenario: string; backend: string; expected: string; decisions: string[] }[] = [];
      for (const [backend, bySource] of decisions) {
        for (const s of scenarios) {
          const d = bySource.get(s.source) ?? [];
          const opened = d.includes('access opened');
          if (opened !== (s.expect === 'open')) wrong.push({ scenario: s.name, backend, expected: s.expect, decisions: d });
        }
      }
      expect(decisions.size).toBe(RUNS.length);
      expect(wrong).toEqual([]);
    });
  });
});
