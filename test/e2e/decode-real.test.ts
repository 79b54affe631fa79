// The decoder against real captures: tcpdump records, in the lab's server
// namespace, traffic from real sockets and frames built by src/lab/packets.ts
// injected on the client's veth with an AF_PACKET socket. The server kernel
// answering the injected SYNs with RST (and UDP with ICMP port unreachable)
// proves the builders' checksums; decoding the files proves the decoder on
// Ethernet (with a VLAN tag libpcap re-inserted), Linux SLL and SLL2.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ResultPromise } from 'execa';
import { createLab, type Lab, type LabHost } from '../../src/lab/netns.js';
import { createDecodeStats, decodeFrame, type DecodeStats } from '../../src/decode/decode.js';
import { LinkType } from '../../src/decode/link-types.js';
import { ethernet, tcp, tcpSyn, TcpFlag, udp } from '../../src/lab/packets.js';
import type { KnockEvent } from '../../src/types.js';
import { describeLab } from '../support/lab.js';
import { readPcap, writePcap } from '../unit/decode-pcap.js';

const S4 = '10.199.0.1';
const C4 = '10.199.0.2';
const X4 = '10.199.0.3';
const S6 = 'fd00:6b77::1';
const C6 = 'fd00:6b77::2';
const X6 = 'fd00:6b77::3';

/** Sends real knocks with the client's own stack (run with node inside the client namespace). */
const SOCKET_CLIENT = `
const net = require('node:net'), dgram = require('node:dgram');
const tcp = (host, port, localAddress) => new Promise((done) => {
  const s = net.connect({ host, port, localAddress });
  // Bounded: a dropped SYN would otherwise wait out the kernel's retries.
  const t = setTimeout(() => { s.destroy(); done(); }, 3000);
  s.on('error', () => { clearTimeout(t); done(); }); s.on('connect', () => { clearTimeout(t); s.destroy(); done(); });
});
const udp = (type, host, port, address, msg) => new Promise((done) => {
  const s = dgram.createSocket(type);
  s.bind({ address }, () => s.send(msg, port, host, () => { s.close(); done(); }));
});
(async () => {
  await tcp('${S4}', 1234, '${C4}');
  await tcp('${S4}', 5678, '${X4}');
  await udp('udp4', '${S4}', 9012, '${C4}', 'real-udp4');
  await tcp('${S6}', 1234, '${X6}');
  await udp('udp6', '${S6}', 9012, '${C6}', 'real-udp6');
})();
`;

/** Writes hex-encoded Ethernet frames from stdin to kw0, below the client's IP stack. */
const INJECTOR = `
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('kw0', 0))
for line in sys.stdin:
    if line.strip():
        s.send(bytes.fromhex(line.strip()))
`;

async function mac(lab: Lab, host: LabHost): Promise<string> {
  const r = await lab.run(host, ['ip', '-j', 'link', 'show', host.ifname]);
  return (JSON.parse(r.stdout) as { address: string }[])[0].address;
}

/**
 * Starts tcpdump in the server namespace and resolves once it is capturing.
 * The child is wrapped: a ResultPromise is thenable, and returning it bare
 * from an async function would wait for tcpdump to exit. `-B`: on `any` each
 * ring slot is sized for lo's 64 KiB MTU, so the default 2 MiB buffer holds
 * ~30 packets and a busy machine that delays tcpdump makes the kernel drop.
 */
async function startTcpdump(lab: Lab, file: string, args: string[]): Promise<{ child: ResultPromise; stderr: () => string }> {
  const child = lab.spawn(lab.server, ['tcpdump', '-Z', 'root', '--immediate-mode', '-B', '32768', '-U', '-n', '-w', file, ...args], { buffer: false });
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump ${args.join(' ')} did not start: ${err}`)), 10_000);
    child.stderr?.on('data', () => {
      if (err.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void child.then((r) => reject(new Error(`tcpdump exited early (${r.exitCode}): ${err}`)));
  });
  return { child, stderr: () => err };
}

/** Where each link type keeps its EtherType, to see that libpcap handed over a VLAN tag. */
const TYPE_AT: Record<number, number> = { [LinkType.ETHERNET]: 12, [LinkType.LINUX_SLL]: 14, [LinkType.LINUX_SLL2]: 0 };

function decodeFile(file: string): { linkType: number; events: KnockEvent[]; stats: DecodeStats; times: number[]; vlanKnocks: number[] } {
  const { linkType, frames } = readPcap(readFileSync(file), file);
  const stats = createDecodeStats();
  const events: KnockEvent[] = [];
  const vlanKnocks: number[] = [];
  for (const f of frames) {
    const e = decodeFrame(f, stats);
    if (!e) continue;
    events.push(e);
    const at = TYPE_AT[linkType];
    if (((f.data[at] << 8) | f.data[at + 1]) === 0x8100) vlanKnocks.push(e.port);
  }
  return { linkType, events, stats, times: frames.map((f) => f.time), vlanKnocks };
}

const summary = (e: KnockEvent): string => `${e.protocol} ${e.source} -> ${e.destination}:${e.port} ${Buffer.from(e.payload).toString()}`;

/** The knocks sent in beforeAll, as summary() prints them. */
const expected = [
  `tcp ${C4} -> ${S4}:1234 `,
  `tcp ${X4} -> ${S4}:5678 `,
  `udp ${C4} -> ${S4}:9012 real-udp4`,
  `tcp ${X6} -> ${S6}:1234 `,
  `udp ${C6} -> ${S6}:9012 real-udp6`,
  `tcp ${C4} -> ${S4}:2001 `,
  `tcp ${C6} -> ${S6}:2002 `,
  `udp ${X4} -> ${S4}:2003 opts`,
];
/**
 * The VLAN-tagged SYN (the server has no VLAN interface, so its IP stack drops
 * it): not a knock by the rule where the capture shows the tag; libpcap's SLL2
 * records carry only the inner type, so there it cannot be told apart.
 */
const VLAN_SYN = `tcp ${C4} -> ${S4}:2004 `;

/** Polls `check` every 100 ms until it holds (true) or `ms` pass (false). */
async function until(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describeLab('decoding real captures (tcpdump in the lab)', () => {
  let lab: Lab | undefined;
  let dir = '';
  const files = { ether: '', sll2: '', sll: '' };
  const dropped = { ether: '', sll2: '', sll: '' };
  let started = 0;
  let ended = 0;
  let serverRepliesTo: (filter: string) => Promise<number>;

  beforeAll(async () => {
    for (const tool of ['tcpdump', 'python3']) {
      const r = await execa(tool, ['--version'], { reject: false });
      if (r.exitCode !== 0) throw new Error(`these tests need '${tool}' (Debian packages tcpdump, python3)`);
    }
    dir = mkdtempSync(join(tmpdir(), 'kw-decode-'));
    files.ether = join(dir, 'kw0.pcap');
    files.sll2 = join(dir, 'any-sll2.pcap');
    files.sll = join(dir, 'any-sll.pcap');
    lab = await createLab('decode');
    const l = lab;
    const captures = [
      await startTcpdump(l, files.ether, ['-i', 'kw0']),
      await startTcpdump(l, files.sll2, ['-i', 'any']),
      await startTcpdump(l, files.sll, ['-i', 'any', '-y', 'LINUX_SLL']),
    ];
    started = Date.now();

    const sent = await l.run(l.client, [process.execPath, '-e', SOCKET_CLIENT]);
    expect(sent.exitCode, sent.stderr).toBe(0);

    const [serverMac, clientMac] = [await mac(l, l.server), await mac(l, l.client)];
    const eth = (p: Uint8Array, vlan?: number[]) => ethernet(p, { dst: serverMac, src: clientMac, vlan });
    const injected = [
      eth(tcpSyn({ src: C4, dst: S4, sport: 41000, dport: 2001, tcpOptions: Uint8Array.from([2, 4, 5, 0xb4]) })),
      eth(tcpSyn({ src: C6, dst: S6, sport: 41001, dport: 2002, extensions: [{ type: 'destination', size: 16 }] })),
      eth(udp({ src: X4, dst: S4, sport: 41002, dport: 2003, payload: 'opts', ipv4Options: Uint8Array.from([0x94, 4, 0, 0]) })),
      eth(tcpSyn({ src: C4, dst: S4, sport: 41003, dport: 2004 }), [42]),
      eth(tcp({ src: C4, dst: S4, sport: 41004, dport: 2005, flags: TcpFlag.ACK })),
    ];
    const inj = await l.run(l.client, ['python3', '-c', INJECTOR], { input: injected.map((f) => Buffer.from(f).toString('hex')).join('\n') + '\n' });
    expect(inj.exitCode, inj.stderr).toBe(0);

    serverRepliesTo = async (filter: string): Promise<number> => {
      const r = await execa('tcpdump', ['-n', '-r', files.ether, filter], { reject: false });
      return r.stdout.split('\n').filter(Boolean).length;
    };
    // tcpdump writes each packet as it gets it (-U, --immediate-mode), but on a
    // busy machine that can lag: wait until the files hold what was sent (the
    // tests below say what is missing if this gives up), then stop the captures.
    // Knocks plus the tagged SYN, counted as a knock (SLL2) or ignored as tagged.
    const knocksIn = (file: string): number => {
      try {
        const { stats } = decodeFile(file);
        return stats.knocks + (stats.ignoredReasons.vlan ?? 0);
      } catch {
        return 0; // a record still being written
      }
    };
    await until(() => Object.values(files).every((f) => knocksIn(f) >= expected.length + 1), 15_000);
    await until(async () => (await serverRepliesTo(`src host ${S4} and icmp`)) >= 2 && (await serverRepliesTo('(tcp[tcpflags] & tcp-rst != 0) or (ip6[6] = 6 and ip6[53] & 4 != 0)')) >= 5, 5_000);
    ended = Date.now();
    for (const c of captures) c.child.kill('SIGTERM');
    await Promise.allSettled(captures.map((c) => c.child));
    // Its exit summary says whether the kernel dropped packets: then a missing knock is no decoder fault.
    captures.forEach((c, i) => (dropped[Object.keys(files)[i] as keyof typeof files] = /(\d+) packets? dropped by kernel/.exec(c.stderr())?.[1] ?? '?'));
  }, 60_000);

  afterAll(async () => {
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the kernel accepted the built packets: RST for the SYNs, port unreachable for the UDP', async () => {
    expect(await serverRepliesTo(`src host ${S4} and tcp dst port 41000 and tcp[tcpflags] & tcp-rst != 0`)).toBe(1);
    expect(await serverRepliesTo(`src host ${S6} and ip6[40+2:2] = 41001 and ip6[6] = 6`)).toBe(1);
    expect(await serverRepliesTo(`src host ${S4} and icmp[icmptype] = icmp-unreach`)).toBeGreaterThanOrEqual(2); // real + built UDP
  });

  it.each([
    ['Ethernet (tcpdump -i kw0)', 'ether', LinkType.ETHERNET],
    ['SLL2 (tcpdump -i any)', 'sll2', LinkType.LINUX_SLL2],
    ['SLL (tcpdump -i any -y LINUX_SLL)', 'sll', LinkType.LINUX_SLL],
  ] as const)('%s: every knock exactly once, replies not knocks, nothing malformed', (_name, key, linkType) => {
    expect(dropped[key], 'packets tcpdump says the kernel dropped').toBe('0');
    const r = decodeFile(files[key]);
    expect(r.linkType).toBe(linkType);
    // libpcap 1.10 re-inserts the tag for Ethernet and SLL; its SLL2 records carry the inner type only.
    const knocks = linkType === LinkType.LINUX_SLL2 ? [...expected, VLAN_SYN] : expected;
    expect(r.events.map(summary).sort()).toEqual([...knocks].sort());
    expect(r.vlanKnocks).toEqual([]);
    if (linkType !== LinkType.LINUX_SLL2) expect(r.stats.ignoredReasons.vlan).toBe(1);
    expect(r.stats.malformed).toBe(0);
    expect(r.stats.knocks).toBe(knocks.length);
    for (const t of r.times) {
      expect(t).toBeGreaterThan(started - 2000);
      expect(t).toBeLessThan(ended + 2000);
    }
    expect(r.events.find((e) => e.port === 2001)).toMatchObject({ family: 4, sourcePort: 41000, tcpFlags: TcpFlag.SYN });
    if (linkType === LinkType.ETHERNET) {
      expect(r.stats.ignoredReasons['tcp-not-syn']).toBeGreaterThanOrEqual(5); // the injected ACK and the server's RSTs
    } else {
      // `any` also shows what the server sent (RSTs, ICMP errors): direction 4, ignored.
      expect(r.stats.ignoredReasons.outgoing).toBeGreaterThanOrEqual(5);
    }
  });
});

describe('built frames as tcpdump reads them', () => {
  it('tcpdump verifies the checksums of packets.ts frames', async () => {
    const probe = await execa('tcpdump', ['--version'], { reject: false });
    if (probe.exitCode !== 0) throw new Error("this test needs 'tcpdump' (Debian package tcpdump)");
    const dir = mkdtempSync(join(tmpdir(), 'kw-decode-'));
    try {
      const file = join(dir, 'built.pcap');
      const frames = [
        ethernet(tcpSyn({ src: '192.0.2.1', dst: '192.0.2.2', sport: 1, dport: 1234, tcpOptions: Uint8Array.from([2, 4, 5, 0xb4]) })),
        ethernet(udp({ src: '192.0.2.1', dst: '192.0.2.2', sport: 2, dport: 9012, payload: 'odd' })),
        ethernet(tcpSyn({ src: '2001:db8::1', dst: '2001:db8::2', sport: 3, dport: 1234, payload: 'x' })),
        ethernet(udp({ src: '2001:db8::1', dst: '2001:db8::2', sport: 4, dport: 9012, payload: 'even' })),
        ethernet(udp({ src: '2001:db8::1', dst: '2001:db8::2', sport: 5, dport: 9012, payload: 'z', extensions: [{ type: 'hop-by-hop' }, { type: 'destination' }] })),
      ];
      writeFileSync(file, writePcap(frames, LinkType.ETHERNET));
      const r = await execa('tcpdump', ['-n', '-vv', '-r', file]);
      const text = r.stdout;
      expect(text).not.toMatch(/incorrect|bad cksum|bad udp cksum/i);
      // IPv4: header + transport checksum lines; IPv6: transport only.
      expect(text.match(/cksum 0x[0-9a-f]+ \(correct\)|udp sum ok/g)?.length).toBe(frames.length);
      const stats = createDecodeStats();
      const events = readPcap(readFileSync(file), file).frames.map((f) => decodeFrame(f, stats));
      expect(events.map((e) => e?.port)).toEqual([1234, 9012, 1234, 9012, 9012]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
