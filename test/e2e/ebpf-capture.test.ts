// The eBPF capture backend against a real kernel: the loader attaches the
// program to the server's kw0 inside a lab namespace (it enters the namespace
// itself with setns, since `ip netns exec` would hide bpffs), frames are
// injected from the client namespace (AF_PACKET, so sources can be spoofed and
// tags/extension headers chosen) or sent with real sockets, and what reaches
// JavaScript is decoded with the normal decoder.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Subscription } from 'rxjs';
import { describeLab, labSkipReason } from '../support/lab.js';
import { createLab, type Lab } from '../../src/lab/netns.js';
import {
  type EbpfCaptureOptions,
  type EbpfCounters,
  type EbpfExit,
  type EbpfInterface,
  defaultLoaderPath,
  ebpfUnavailableReason,
  openEbpfCapture,
} from '../../src/capture/ebpf.js';
import { createDecodeStats, decodeFrame } from '../../src/decode/decode.js';
import {
  TcpFlag,
  ethernet,
  tcp,
  tcpSyn,
  udp,
  withBadIpv4Checksum,
  withIpv4TotalLength,
  withUdpLength,
  type EthernetOptions,
  type Ipv6Extension,
} from '../../src/lab/packets.js';
import type { Frame, KnockEvent, PortSpec } from '../../src/types.js';
import { reportProgress } from '../support/progress.js';
import { injectFrames } from './support/inject.js';

reportProgress(import.meta.url);

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LOADER = defaultLoaderPath();
const STEPS: PortSpec[] = [
  { port: 1234, protocol: 'tcp' },
  { port: 5678, protocol: 'udp' },
];
/** Our tc filter's handle (ebpf/loader.c KW_TC_HANDLE). */
const OUR_HANDLE = '0x6b77';

/** Builds the loader (make is incremental) and checks the kernel can run it. */
async function ebpfSkipReason(): Promise<string | undefined> {
  if (labSkipReason !== undefined) return undefined; // describeLab prints that reason
  const py = await execa('python3', ['-c', 'import socket; socket.AF_PACKET'], { reject: false });
  if (py.exitCode !== 0) return 'needs python3 (the tests inject frames with an AF_PACKET socket)';
  const make = await execa('make', ['-C', join(ROOT, 'ebpf')], { reject: false, all: true });
  if (make.exitCode !== 0) return `cannot build the eBPF loader: ${String(make.all ?? make.message).trim().split('\n').slice(-3).join(' / ')}`;
  return ebpfUnavailableReason(LOADER);
}
const ebpfReason = await ebpfSkipReason();
if (ebpfReason !== undefined) console.warn(`[skipped] eBPF capture: ${ebpfReason}`);

// Real sockets: TCP connects (refused: nothing listens) and UDP datagrams, in order.
const SEND = `
const net = require('node:net');
const dgram = require('node:dgram');
(async () => {
  for (const k of JSON.parse(process.argv[1])) {
    if (k.protocol === 'tcp') {
      await new Promise((res) => {
        const s = net.connect({ host: k.host, port: k.port, localAddress: k.from });
        const done = () => { s.destroy(); res(); };
        s.on('connect', done); s.on('error', done); setTimeout(done, 2000);
      });
    } else {
      await new Promise((res, rej) => {
        const s = dgram.createSocket(k.host.includes(':') ? 'udp6' : 'udp4');
        s.bind({ address: k.from }, () => s.send('knock', k.port, k.host, (e) => { s.close(); e ? rej(e) : res(); }));
      });
    }
  }
})().catch((e) => { console.error(e); process.exit(1); });
`;

// Writes length-prefixed raw IP packets from stdin into a tun device, which the
// kernel then receives on it as if from the network.
const TUN_WRITE = `
import fcntl, os, struct, sys
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', sys.argv[1].encode(), 0x0001 | 0x1000))  # TUNSETIFF, IFF_TUN | IFF_NO_PI
data = sys.stdin.buffer.read()
i = 0
while i < len(data):
    (size,) = struct.unpack_from('<H', data, i)
    os.write(fd, data[i + 2:i + 2 + size])
    i += 2 + size
`;

interface Knock {
  protocol: 'tcp' | 'udp';
  host: string;
  port: number;
  from?: string;
}

interface Running {
  readonly frames: Frame[];
  /** Wall-clock ms at which each frame reached the subscriber. */
  readonly arrivals: number[];
  readonly events: KnockEvent[];
  readonly interfaces: readonly EbpfInterface[];
  readonly logs: string[];
  counters(): EbpfCounters | undefined;
  stop(): Promise<EbpfExit>;
}

/** Starts a capture in the lab's server namespace; resolves once attached. */
async function startCapture(lab: Lab, extra: Partial<EbpfCaptureOptions> = {}): Promise<Running> {
  const frames: Frame[] = [];
  const arrivals: number[] = [];
  const events: KnockEvent[] = [];
  const logs: string[] = [];
  const stats = createDecodeStats();
  const log = (_o: object, m?: string): void => void logs.push(m ?? '');
  let counters: EbpfCounters | undefined;
  let sub: Subscription | undefined;
  let resolveExit: (e: EbpfExit) => void = () => {};
  const exited = new Promise<EbpfExit>((r) => (resolveExit = r));
  const interfaces = await new Promise<readonly EbpfInterface[]>((resolve, reject) => {
    sub = openEbpfCapture({
      interfaces: 'kw0',
      steps: STEPS,
      netns: lab.server.ns,
      statsIntervalMs: 100,
      logger: { debug: log, info: log, warn: log, error: log },
      onReady: resolve,
      onCounters: (c) => (counters = c),
      onExit: resolveExit,
      ...extra,
    }).subscribe({
      next(frame) {
        arrivals.push(performance.timeOrigin + performance.now());
        frames.push(frame);
        const event = decodeFrame(frame, stats);
        if (event === undefined) throw new Error(`frame did not decode: ${JSON.stringify(stats)}`);
        events.push(event);
      },
      error: reject,
    });
  });
  return {
    frames,
    arrivals,
    events,
    interfaces,
    logs,
    counters: () => counters,
    async stop() {
      sub?.unsubscribe();
      return exited;
    },
  };
}

// Generous bound: a wait that passes early costs nothing, and a busy machine needs it.
async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function macOf(lab: Lab, host: Lab['server']): Promise<string> {
  const r = await lab.run(host, ['cat', `/sys/class/net/${host.ifname}/address`]);
  return r.stdout.trim();
}

async function send(lab: Lab, knocks: readonly Knock[]): Promise<void> {
  const r = await lab.run(lab.client, [process.execPath, '-e', SEND, JSON.stringify(knocks)]);
  if (r.exitCode !== 0) throw new Error(`sender failed (${r.exitCode}): ${r.stderr}`);
}

/** Our filters on the server's kw0 ingress: their program ids. */
async function ourFilters(lab: Lab): Promise<number[]> {
  const r = await lab.run(lab.server, ['tc', 'filter', 'show', 'dev', 'kw0', 'ingress']);
  return r.stdout
    .split('\n')
    .filter((l) => l.includes(`handle ${OUR_HANDLE} `))
    .map((l) => Number(/ id (\d+) /.exec(l)?.[1] ?? NaN));
}

/** Runs the loader by itself in the server namespace; resolves once it has attached. */
async function spawnLoader(lab: Lab): Promise<{ child: ResultPromise }> {
  const child = execa(LOADER, ['--netns', lab.server.ns, '--ifname', 'kw0', '--port', '1234/tcp'], {
    reject: false,
    stdin: 'pipe',
    buffer: false,
    timeout: 30_000,
  });
  child.stdout?.resume();
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`loader did not attach within 15 s: ${err}`)), 15_000);
    child.stderr?.on('data', (d: Buffer) => {
      err += String(d);
      if (err.includes('info: attached')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void child.then((r) => reject(new Error(`loader exited early (${String(r.exitCode)}): ${err}`)));
  });
  // Wrapped: the subprocess is a thenable, which an async function would await.
  return { child };
}

const brief = (e: KnockEvent): string => `${e.source}>${e.destination} ${e.port}/${e.protocol}`;

describeLab('eBPF capture backend', () => {
  describe.skipIf(ebpfReason !== undefined)('in a lab', () => {
    let lab: Lab;
    let eth: EthernetOptions;

    beforeAll(async () => {
      lab = await createLab('ebpf');
      eth = { src: await macOf(lab, lab.client), dst: await macOf(lab, lab.server) };
    });
    afterAll(async () => {
      await lab?.destroy();
    });
    /** A TCP segment (a SYN unless flags say otherwise) from the client's MAC to the server's, for injectFrames(). */
    const seg = (src: string, dst: string, dport: number, flags: number = TcpFlag.SYN): Uint8Array =>
      ethernet(tcp({ src, dst, sport: 40_000, dport, flags }), eth);
    const dgram = (src: string, dst: string, dport: number): Uint8Array => ethernet(udp({ src, dst, sport: 40_001, dport }), eth);
    const SERVER4 = '10.199.0.1';
    const SERVER6 = 'fd00:6b77::1';

    it('delivers knocks on watched ports as frames that decode to the right events (IPv4/IPv6, TCP SYN, UDP)', async () => {
      const cap = await startCapture(lab);
      try {
        expect(cap.interfaces.map((i) => i.name)).toEqual(['kw0']);
        expect(await ourFilters(lab)).toHaveLength(1);
        const before = Date.now();
        await send(lab, [
          // The other protocol on a knock port is not watched, and this source is not active yet.
          { protocol: 'udp', host: '10.199.0.1', port: 1234, from: '10.199.0.3' },
          { protocol: 'tcp', host: '10.199.0.1', port: 1234, from: '10.199.0.2' },
          { protocol: 'udp', host: 'fd00:6b77::1', port: 5678, from: 'fd00:6b77::2' },
          { protocol: 'tcp', host: 'fd00:6b77::1', port: 1234, from: 'fd00:6b77::3' },
          { protocol: 'udp', host: '10.199.0.1', port: 5678, from: '10.199.0.3' },
        ]);
        await until('4 events', () => cap.events.length >= 4);
        await sleep(200);
        expect(cap.events.map(brief)).toEqual([
          '10.199.0.2>10.199.0.1 1234/tcp',
          'fd00:6b77::2>fd00:6b77::1 5678/udp',
          'fd00:6b77::3>fd00:6b77::1 1234/tcp',
          '10.199.0.3>10.199.0.1 5678/udp',
        ]);
        expect(cap.events[0].tcpFlags & (TcpFlag.SYN | TcpFlag.ACK)).toBe(TcpFlag.SYN);
        expect(Buffer.from(cap.events[1].payload).toString()).toBe('knock');
        expect(cap.events.map((e) => e.family)).toEqual([4, 6, 6, 4]);
        for (const f of cap.frames) {
          expect(f.linkType).toBe(1);
          expect(f.offset).toBe(-1);
          expect(f.origLength).toBe(f.data.length); // small packets: captured whole
          // Kernel monotonic time converted to wall-clock time by the loader.
          expect(f.time).toBeGreaterThanOrEqual(before - 50);
          expect(f.time).toBeLessThanOrEqual(Date.now() + 50);
        }
        const latency = cap.frames.map((f, i) => cap.arrivals[i] - f.time).sort((a, b) => a - b);
        console.log(`[figure] eBPF hook to subscriber: ${latency.map((l) => l.toFixed(2)).join(', ')} ms (sorted)`);
      } finally {
        await cap.stop();
      }
      expect(await ourFilters(lab)).toEqual([]);
    });

    it('keeps a spoofed-source flood to unwatched ports in the kernel, while counting it', async () => {
      const cap = await startCapture(lab);
      try {
        const flood: Uint8Array[] = [];
        const n = 30_000;
        for (let i = 0; i < n; i++) {
          const v4 = `172.${16 + ((i >> 16) & 15)}.${(i >> 8) & 255}.${i & 255}`;
          const v6 = `2001:db8::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`;
          const dport = 20_000 + (i % 40_000);
          const sport = 1024 + (i % 60_000);
          switch (i % 5) {
            case 0:
              flood.push(ethernet(udp({ src: v4, dst: '10.199.0.1', sport, dport, payload: 'x' }), eth));
              break;
            case 1:
              flood.push(ethernet(tcpSyn({ src: v4, dst: '10.199.0.1', sport, dport }), eth));
              break;
            case 2:
              flood.push(ethernet(tcpSyn({ src: v6, dst: 'fd00:6b77::1', sport, dport }), eth));
              break;
            case 3: // not knocks although on a knock port: SYN-ACK and ACK
              flood.push(ethernet(tcp({ src: v4, dst: '10.199.0.1', sport, dport: 1234, flags: i % 2 ? TcpFlag.SYN | TcpFlag.ACK : TcpFlag.ACK }), eth));
              break;
            default: // UDP to a TCP knock port: not watched
              flood.push(ethernet(udp({ src: v6, dst: 'fd00:6b77::1', sport, dport: 1234 }), eth));
          }
        }
        const base = cap.counters()?.seen ?? 0;
        const t0 = process.hrtime.bigint();
        await injectFrames(lab, flood);
        const injectMs = Number(process.hrtime.bigint() - t0) / 1e6;
        await until('the counters to show the flood', () => (cap.counters()?.seen ?? 0) - base >= n, 10_000);
        await sleep(200);
        const c = cap.counters();
        if (c === undefined) throw new Error('no counters');
        expect(cap.events).toEqual([]);
        expect(c.events).toBe(0);
        expect(c.drops).toBe(0);
        // 3 in 5 flood packets are SYN/UDP to other ports (candidates); SYN-ACK, ACK are not.
        expect(c.candidates).toBeGreaterThanOrEqual(n * 0.8);
        console.log(
          `[figure] eBPF flood: ${c.seen - base} packets seen, ${c.candidates} SYN/UDP candidates, ` +
            `${c.events} events to user space (${(c.events / (c.seen - base)).toFixed(6)} events/packet), ` +
            `${n} frames injected in ${injectMs.toFixed(0)} ms`,
        );

        // A real knock still gets through right after the flood.
        await send(lab, [{ protocol: 'tcp', host: '10.199.0.1', port: 1234 }]);
        await until('the knock', () => cap.events.length === 1);
        expect(brief(cap.events[0])).toBe('10.199.0.2>10.199.0.1 1234/tcp');
      } finally {
        await cap.stop();
      }
    });

    it('delivers the first SYN/UDP of a knocking source to another port once, then no more', async () => {
      const cap = await startCapture(lab);
      const v4 = (src: string, dport: number, flags?: number): Uint8Array => seg(src, SERVER4, dport, flags);
      const u4 = (src: string, dport: number): Uint8Array => dgram(src, SERVER4, dport);
      const v6 = (src: string, dport: number): Uint8Array => seg(src, SERVER6, dport);
      const u6 = (src: string, dport: number): Uint8Array => dgram(src, SERVER6, dport);
      const marker = (n: number): Uint8Array => u4(`10.9.9.${n}`, 5678);
      try {
        await injectFrames(lab, [v4('10.199.0.2', 1234)]);
        await until('the first step', () => cap.events.length === 1);
        await injectFrames(lab, [
          v4('10.199.0.2', 80, TcpFlag.ACK), // not a knock candidate: leaves the source active
          v4('10.199.0.2', 80), // delivered: detection resets the source
          v4('10.199.0.2', 81), // no longer active
          u4('10.199.0.2', 53),
          v4('10.199.0.3', 80), // never knocked
          marker(1),
        ]);
        await until('marker 1', () => cap.events.length === 3);
        await injectFrames(lab, [
          v4('10.199.0.2', 1234), // active again
          u4('10.199.0.2', 1234), // other protocol on the knock port: a wrong step, delivered
          v4('10.199.0.2', 82), // no longer active
          u6('fd00:6b77::2', 5678),
          v6('fd00:6b77::2', 443),
          v6('fd00:6b77::2', 444),
          marker(2),
        ]);
        await until('marker 2', () => cap.events.length === 8);
        await sleep(200);
        expect(cap.events.map(brief)).toEqual([
          '10.199.0.2>10.199.0.1 1234/tcp',
          '10.199.0.2>10.199.0.1 80/tcp',
          '10.9.9.1>10.199.0.1 5678/udp',
          '10.199.0.2>10.199.0.1 1234/tcp',
          '10.199.0.2>10.199.0.1 1234/udp', // the wrong step used up the source's one delivery: 82 stays in the kernel
          'fd00:6b77::2>fd00:6b77::1 5678/udp',
          'fd00:6b77::2>fd00:6b77::1 443/tcp',
          '10.9.9.2>10.199.0.1 5678/udp',
        ]);
      } finally {
        await cap.stop();
      }
    });

    it('only a first step makes a source active; an open port is delivered and keeps it active', async () => {
      // As the daemon passes them: 1234/tcp starts the sequence, 5678/udp is a later step, 2222/tcp is opened.
      const cap = await startCapture(lab, { firstSteps: [STEPS[0]], openPorts: [{ port: 2222, protocol: 'tcp' }] });
      const v4 = (src: string, dport: number): Uint8Array => seg(src, SERVER4, dport);
      const marker = (n: number): Uint8Array => dgram(`10.9.9.${n}`, SERVER4, 5678);
      try {
        await injectFrames(lab, [
          dgram('10.199.0.4', SERVER4, 5678), // a later step from a source with no sequence: delivered, not active
          v4('10.199.0.4', 80), // so this stays in the kernel
          v4('10.199.0.4', 2222), // an open port from a source that is not active: stays in the kernel
          v4('10.199.0.2', 1234), // a first step: active
          v4('10.199.0.2', 2222), // open port: delivered, still active
          v4('10.199.0.2', 2222), // again
          v4('10.199.0.2', 80), // a wrong port after it is still seen (detection resets here)
          v4('10.199.0.2', 81), // no longer active
          marker(1),
        ]);
        await until('marker 1', () => cap.events.length === 6);
        await sleep(200);
        expect(cap.events.map(brief)).toEqual([
          '10.199.0.4>10.199.0.1 5678/udp',
          '10.199.0.2>10.199.0.1 1234/tcp',
          '10.199.0.2>10.199.0.1 2222/tcp',
          '10.199.0.2>10.199.0.1 2222/tcp',
          '10.199.0.2>10.199.0.1 80/tcp',
          '10.9.9.1>10.199.0.1 5678/udp',
        ]);
      } finally {
        await cap.stop();
      }
    });

    it("counts only packets sent to this host's own addresses, following addresses added and removed", async () => {
      // Counters once a minute: only the loader's rtnetlink subscription can see the changes in time.
      const cap = await startCapture(lab, { statsIntervalMs: 60_000 });
      const marker = (n: number): Uint8Array => seg(`10.9.8.${n}`, SERVER4, 1234);
      const addr = async (op: 'add' | 'del', address: string): Promise<void> => {
        const r = await lab.run(lab.server, ['ip', 'addr', op, address, 'dev', 'kw0', ...(address.includes(':') ? ['nodad'] : [])]);
        if (r.exitCode !== 0) throw new Error(`ip addr ${op} ${address}: ${r.stderr}`);
      };
      try {
        await injectFrames(lab, [
          seg('10.199.0.6', '10.199.0.1', 80), // not active: stays in the kernel
          seg('10.199.0.6', '10.199.0.99', 1234), // a knock port, but not this host's address
          seg('10.199.0.6', '255.255.255.255', 1234), // nor a broadcast
          seg('10.199.0.6', '10.199.0.1', 1234), // to us: active
          seg('10.199.0.6', '10.199.0.99', 80), // another host's port is not a wrong port of ours: still active
          seg('10.199.0.6', '10.199.0.1', 81), // delivered: the source's wrong port
          dgram('fd00:6b77::6', 'fd00:6b77::99', 5678), // IPv6, not ours
          marker(1),
        ]);
        await until('marker 1', () => cap.events.some((e) => e.source === '10.9.8.1'));
        await addr('add', '10.199.0.99/32');
        await addr('add', 'fd00:6b77::99/128');
        await until('the loader to see the new addresses', () => cap.logs.filter((l) => l.startsWith('knocks are counted when sent to')).length >= 2);
        await injectFrames(lab, [seg('10.199.0.7', '10.199.0.99', 1234), dgram('fd00:6b77::7', 'fd00:6b77::99', 5678), marker(2)]);
        await until('marker 2', () => cap.events.some((e) => e.source === '10.9.8.2'));
        await addr('del', '10.199.0.99/32');
        await until('the loader to drop the address', () => cap.logs.filter((l) => l.startsWith('knocks are counted when sent to')).length >= 3);
        await injectFrames(lab, [seg('10.199.0.8', '10.199.0.99', 1234), marker(3)]);
        await until('marker 3', () => cap.events.some((e) => e.source === '10.9.8.3'));
        await sleep(200);
        expect(cap.events.map(brief)).toEqual([
          '10.199.0.6>10.199.0.1 1234/tcp',
          '10.199.0.6>10.199.0.1 81/tcp',
          '10.9.8.1>10.199.0.1 1234/tcp',
          '10.199.0.7>10.199.0.99 1234/tcp',
          'fd00:6b77::7>fd00:6b77::99 5678/udp',
          '10.9.8.2>10.199.0.1 1234/tcp',
          '10.9.8.3>10.199.0.1 1234/tcp',
        ]);
      } finally {
        await cap.stop();
        await lab.run(lab.server, ['ip', 'addr', 'del', 'fd00:6b77::99/128', 'dev', 'kw0']);
      }
    });

    it('follows the rule of decode.ts: IPv4 options, any number of IPv6 extension headers; hides tags, AH, later fragments, bad checksums', async () => {
      const cap = await startCapture(lab);
      const dest = (n: number, size = 8): Ipv6Extension[] => Array.from({ length: n }, () => ({ type: 'destination', size }) as const);
      try {
        await injectFrames(lab, [
          // Not knocks by the rule (the host drops them): hidden.
          ethernet(tcpSyn({ src: '10.1.0.1', dst: '10.199.0.1', sport: 1000, dport: 1234 }), { ...eth, vlan: [100] }),
          ethernet(udp({ src: '2001:db8::1', dst: 'fd00:6b77::1', sport: 1000, dport: 5678 }), { ...eth, vlan: [200, 300] }),
          ethernet(tcpSyn({ src: '2001:db8::3', dst: 'fd00:6b77::1', sport: 1000, dport: 1234, extensions: [{ type: 'ah' }] }), eth),
          ethernet(withBadIpv4Checksum(tcpSyn({ src: '10.1.0.4', dst: '10.199.0.1', sport: 1000, dport: 1234 })), eth),
          ethernet(withIpv4TotalLength(tcpSyn({ src: '10.1.0.5', dst: '10.199.0.1', sport: 1000, dport: 1234 }), 200), eth),
          ethernet(tcpSyn({ src: '10.1.0.6', dst: '10.199.0.1', sport: 1000, dport: 1234 }), { ...eth, dst: 'ff:ff:ff:ff:ff:ff' }),
          ethernet(udp({ src: '2001:db8::4', dst: 'fd00:6b77::1', sport: 1000, dport: 5678, extensions: [{ type: 'fragment', offset: 10, more: false }] }), eth),
          ethernet(udp({ src: '10.1.0.3', dst: '10.199.0.1', sport: 1000, dport: 5678, fragment: { offset: 5, more: false } }), eth),
          // Knocks.
          ethernet(
            tcpSyn({ src: '2001:db8::2', dst: 'fd00:6b77::1', sport: 1000, dport: 1234, extensions: [{ type: 'routing' }, { type: 'fragment', offset: 0, more: true }] }),
            eth,
          ),
          ethernet(tcpSyn({ src: '10.1.0.2', dst: '10.199.0.1', sport: 1000, dport: 1234, ipv4Options: Uint8Array.of(1, 1, 1, 0) }), eth),
          ethernet(tcpSyn({ src: '2001:db8::7', dst: 'fd00:6b77::1', sport: 1000, dport: 1234, extensions: dest(7) }), eth),
          ethernet(tcpSyn({ src: '2001:db8::8', dst: 'fd00:6b77::1', sport: 1000, dport: 1234, extensions: dest(70) }), eth),
          ethernet(tcpSyn({ src: '2001:db8::9', dst: 'fd00:6b77::1', sport: 1000, dport: 1234, extensions: dest(2, 512) }), eth),
          ethernet(udp({ src: '10.9.9.9', dst: '10.199.0.1', sport: 1000, dport: 5678 }), eth),
        ]);
        await until('the marker', () => cap.events.some((e) => e.source === '10.9.9.9'));
        await sleep(200);
        expect(cap.events.map(brief)).toEqual([
          '2001:db8::2>fd00:6b77::1 1234/tcp',
          '10.1.0.2>10.199.0.1 1234/tcp',
          '2001:db8::7>fd00:6b77::1 1234/tcp',
          '2001:db8::8>fd00:6b77::1 1234/tcp', // 70 headers: past the program's loop bound, passed up for the decoder
          '2001:db8::9>fd00:6b77::1 1234/tcp',
          '10.9.9.9>10.199.0.1 5678/udp',
        ]);
        // The TCP header behind 1 KiB of options is captured (not just 256 bytes).
        const deep = cap.frames[4];
        expect(deep.data.length).toBe(14 + 40 + 1024 + 20);
        expect(deep.origLength).toBe(14 + 40 + 1024 + 20);
      } finally {
        await cap.stop();
      }
    });

    it("a packet the host drops never uses up a knocking source's one wrong port (issue 8 item 13)", async () => {
      const cap = await startCapture(lab);
      const v4 = (dport: number): Uint8Array => tcpSyn({ src: '10.199.0.2', dst: SERVER4, sport: 40_000, dport });
      try {
        await injectFrames(lab, [
          ethernet(v4(1234), eth), // first step: active
          ethernet(withIpv4TotalLength(v4(80), 200), eth), // dropped by the host: hidden, still active
          ethernet(withUdpLength(udp({ src: '10.199.0.2', dst: SERVER4, sport: 40_000, dport: 53 }), 0), eth),
          ethernet(withBadIpv4Checksum(v4(82)), eth),
          ethernet(v4(81), eth), // the real wrong port: delivered
          dgram('10.9.9.8', SERVER4, 5678),
        ]);
        await until('the marker', () => cap.events.some((e) => e.source === '10.9.9.8'));
        await sleep(200);
        expect(cap.events.map(brief)).toEqual(['10.199.0.2>10.199.0.1 1234/tcp', '10.199.0.2>10.199.0.1 81/tcp', '10.9.9.8>10.199.0.1 5678/udp']);
      } finally {
        await cap.stop();
      }
    });

    it('delivers only the protocols it is given (--protocol, from captureNeeds())', async () => {
      const cap = await startCapture(lab, { protocols: ['tcp'] });
      try {
        await injectFrames(lab, [dgram('10.1.2.1', SERVER4, 5678), seg('10.1.2.2', SERVER4, 1234), seg('10.1.2.3', SERVER4, 1234)]);
        await until('the SYNs', () => cap.events.length >= 2);
        await sleep(200);
        expect(cap.events.map(brief)).toEqual(['10.1.2.2>10.199.0.1 1234/tcp', '10.1.2.3>10.199.0.1 1234/tcp']);
      } finally {
        await cap.stop();
      }
    });

    it('replaces the tc filter a SIGKILLed loader left behind, and removes its own on stop', async () => {
      const { child: stale } = await spawnLoader(lab);
      const [staleId] = await ourFilters(lab);
      stale.kill('SIGKILL');
      await stale;
      // The premise: a killed loader cannot clean up, its filter stays.
      expect(await ourFilters(lab)).toEqual([staleId]);

      const cap = await startCapture(lab);
      let exit: EbpfExit;
      try {
        const now = await ourFilters(lab);
        expect(now).toHaveLength(1);
        expect(now[0]).not.toBe(staleId);
        expect(cap.logs.some((l) => l.includes('replacing a knockwatch tc filter left on kw0'))).toBe(true);
        await send(lab, [{ protocol: 'tcp', host: '10.199.0.1', port: 1234, from: '10.199.0.2' }]);
        await until('the knock', () => cap.events.length === 1);
      } finally {
        exit = await cap.stop();
      }
      expect(exit.exitCode).toBe(0);
      expect(exit.counters?.events).toBe(1);
      expect(await ourFilters(lab)).toEqual([]);
    });

    it('detaches and exits when its stdin closes (the daemon died)', async () => {
      const { child } = await spawnLoader(lab);
      expect(await ourFilters(lab)).toHaveLength(1);
      child.stdin?.end();
      const r = await child;
      expect(r.exitCode).toBe(0);
      expect(await ourFilters(lab)).toEqual([]);
    });

    it('attaches to every non-loopback interface that is up for `any`', async () => {
      const cap = await startCapture(lab, { interfaces: 'any' });
      try {
        expect(cap.interfaces.map((i) => [i.name, i.linkType])).toEqual([['kw0', 1]]);
        await send(lab, [{ protocol: 'udp', host: '10.199.0.1', port: 5678, from: '10.199.0.2' }]);
        await until('the knock', () => cap.events.length === 1);
      } finally {
        await cap.stop();
      }
    });

    it('works as an XDP program too, with the same filtering, and removes a stale tc filter', async () => {
      const { child: stale } = await spawnLoader(lab);
      stale.kill('SIGKILL');
      await stale;
      expect(await ourFilters(lab)).toHaveLength(1);
      const cap = await startCapture(lab, { hook: 'xdp' });
      try {
        const link = await lab.run(lab.server, ['ip', 'link', 'show', 'kw0']);
        expect(link.stdout).toMatch(/xdp/);
        expect(await ourFilters(lab)).toEqual([]);
        expect(cap.logs.some((l) => l.includes('removing a knockwatch tc filter left on kw0'))).toBe(true);
        const syn = (dport: number, extensions?: Ipv6Extension[]): Uint8Array =>
          extensions === undefined
            ? tcpSyn({ src: '10.1.0.1', dst: '10.199.0.1', sport: 1000, dport })
            : tcpSyn({ src: '2001:db8::1', dst: 'fd00:6b77::1', sport: 1000, dport, extensions });
        await injectFrames(lab, [
          ethernet(syn(9999), eth),
          // XDP sees the tag in the bytes: a tagged frame is not a knock (the rule), even to a step.
          ethernet(syn(1234), { ...eth, vlan: [7] }),
          ethernet(syn(1234), eth),
          ethernet(syn(9997), { ...eth, vlan: [7] }), // hidden: the source stays active
          ethernet(syn(9996), { ...eth, dst: 'ff:ff:ff:ff:ff:ff' }), // TCP in a broadcast frame: hidden, still active
          ethernet(syn(9999), eth),
          ethernet(syn(9998), eth),
          ethernet(syn(1234, [{ type: 'destination', size: 512 }, { type: 'destination' }]), eth),
          ethernet(udp({ src: '10.9.9.9', dst: '10.199.0.1', sport: 1000, dport: 5678 }), eth),
        ]);
        await until('the marker', () => cap.events.some((e) => e.source === '10.9.9.9'));
        await sleep(200);
        expect(cap.events.map(brief)).toEqual([
          '10.1.0.1>10.199.0.1 1234/tcp',
          '10.1.0.1>10.199.0.1 9999/tcp',
          '2001:db8::1>fd00:6b77::1 1234/tcp',
          '10.9.9.9>10.199.0.1 5678/udp',
        ]);
        expect(cap.frames[2].data.length).toBe(14 + 40 + 512 + 8 + 20);
      } finally {
        await cap.stop();
      }
      // The XDP link went with the loader.
      expect((await lab.run(lab.server, ['ip', 'link', 'show', 'kw0'])).stdout).not.toMatch(/xdp/);
    });

    it('fails with a clear message for a missing interface and for missing privileges', async () => {
      await expect(startCapture(lab, { interfaces: 'nope0' })).rejects.toThrow(
        "eBPF capture failed to start: loader exited with code 1: interface 'nope0' does not exist in this network namespace",
      );
      const r = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', LOADER, '--check'], { reject: false });
      expect(r.exitCode).toBe(1);
      expect(String(r.stderr)).toMatch(/error: permission denied loading the eBPF program: run as root, or grant CAP_BPF/);
    });

    it('captures raw-IP devices (tun, WireGuard) as link type 101, and attaches again when one is recreated', async () => {
      const makeTun = async (): Promise<void> => {
        for (const argv of [
          ['ip', 'tuntap', 'add', 'dev', 'kwtun0', 'mode', 'tun'],
          ['ip', 'addr', 'add', '10.77.0.1/24', 'dev', 'kwtun0'],
          ['ip', 'addr', 'add', 'fd00:77::1/64', 'dev', 'kwtun0', 'nodad'],
          ['ip', 'link', 'set', 'kwtun0', 'up'],
        ]) {
          const r = await lab.run(lab.server, argv);
          if (r.exitCode !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
        }
      };
      const write = async (packets: Uint8Array[]): Promise<void> => {
        const input = Buffer.concat(packets.flatMap((p) => [Buffer.from([p.length & 0xff, p.length >> 8]), Buffer.from(p)]));
        const r = await lab.run(lab.server, ['python3', '-c', TUN_WRITE, 'kwtun0'], { input });
        if (r.exitCode !== 0) throw new Error(`tun writer failed: ${r.stderr}`);
      };
      await makeTun();
      const cap = await startCapture(lab, { interfaces: 'kwtun0' });
      try {
        expect(cap.interfaces).toEqual([expect.objectContaining({ name: 'kwtun0', linkType: 101 })]);
        const packets = [
          tcpSyn({ src: '10.77.0.2', dst: '10.77.0.1', sport: 1000, dport: 1234 }),
          tcpSyn({ src: '10.77.0.2', dst: '10.77.0.1', sport: 1000, dport: 9999 }),
          udp({ src: 'fd00:77::2', dst: 'fd00:77::1', sport: 1000, dport: 5678 }),
          udp({ src: 'fd00:77::3', dst: 'fd00:77::1', sport: 1000, dport: 9999 }),
        ];
        await write(packets);
        await until('3 events', () => cap.events.length >= 3);
        await sleep(200);
        expect(cap.frames.map((f) => f.linkType)).toEqual([101, 101, 101]);
        expect(cap.events.map(brief)).toEqual([
          '10.77.0.2>10.77.0.1 1234/tcp',
          '10.77.0.2>10.77.0.1 9999/tcp',
          'fd00:77::2>fd00:77::1 5678/udp',
        ]);

        // A VPN restart: the device goes away with our filter, and comes back.
        await lab.run(lab.server, ['ip', 'tuntap', 'del', 'dev', 'kwtun0', 'mode', 'tun']);
        await until('the loader to notice', () => cap.logs.some((l) => l.includes('interface kwtun0 disappeared')));
        await makeTun();
        await until('the loader to attach again', () => cap.logs.some((l) => l.startsWith('attached again to kwtun0')));
        await write([udp({ src: '10.77.0.5', dst: '10.77.0.1', sport: 1000, dport: 5678 })]);
        await until('the knock on the new device', () => cap.events.length === 4);
        expect(brief(cap.events[3])).toBe('10.77.0.5>10.77.0.1 5678/udp');
      } finally {
        await cap.stop();
      }
    });
  });
});
