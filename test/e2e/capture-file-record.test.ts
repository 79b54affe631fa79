// Fresh captures from the tools installed on this machine, read by our reader
// and by the oracles: tcpdump (µs, ns, -i any) against pcap-parser, and dumpcap
// pcapng against tcpdump's own conversion of it. The committed fixtures in
// fixtures/formats cover the same ground offline; this catches a tool version
// that writes something they do not show.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pcapParser, { type PacketHeader } from 'pcap-parser';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readCaptureFile } from '../../src/capture/file.js';
import { createLab, type Lab } from '../../src/lab/netns.js';
import type { Frame } from '../../src/types.js';
import { describeLab } from '../support/lab.js';

const run = promisify(execFile);
const missing = ['tcpdump', 'dumpcap'].filter((t) => spawnSync(t, ['--version']).error);
if (missing.length) console.warn(`[skipped] capture-file recording: missing ${missing.join(', ')} (Debian: tcpdump, wireshark-common)`);

// tcpdump gets --immediate-mode: with TPACKET_V3, packets otherwise wait in a
// kernel block for up to the read timeout and are lost when tcpdump is stopped.
const SENDER = (server4: string, server6: string) => `
const net = require('node:net');
const dgram = require('node:dgram');
// Bounded: a dropped SYN would otherwise wait out the kernel's retries.
const syn = (host, port) => new Promise((r) => { const s = net.connect({ host, port }); const t = setTimeout(() => { s.destroy(); r(); }, 3000); s.on('error', () => { clearTimeout(t); r(); }); s.on('connect', () => { clearTimeout(t); s.destroy(); r(); }); });
const udp = (fam, host, port) => new Promise((r) => { const s = dgram.createSocket(fam); s.send(Buffer.from('knock'), port, host, () => { s.close(); r(); }); });
(async () => {
  for (const p of [1234, 5678]) await syn('${server4}', p);
  await udp('udp4', '${server4}', 9012);
  await syn('${server6}', 1234);
  await udp('udp6', '${server6}', 9012);
})();
`;

async function frames(path: string): Promise<Frame[]> {
  const out: Frame[] = [];
  await new Promise<void>((resolve, reject) => readCaptureFile(path).subscribe({ next: (f) => out.push(f), error: reject, complete: resolve }));
  return out;
}

function oracle(path: string): Promise<{ linkType: number; packets: { header: PacketHeader; data: Buffer }[] }> {
  return new Promise((resolve, reject) => {
    const parser = pcapParser.parse(path);
    let linkType = -1;
    const packets: { header: PacketHeader; data: Buffer }[] = [];
    parser.on('globalHeader', (h: { linkLayerType: number }) => (linkType = h.linkLayerType));
    parser.on('packet', (p: { header: PacketHeader; data: Buffer }) => packets.push(p));
    parser.on('error', reject);
    parser.on('end', () => resolve({ linkType, packets }));
  });
}

const us = (h: PacketHeader): number => h.timestampSeconds * 1000 + h.timestampMicroseconds / 1000;

describeLab('capture files written by tcpdump and dumpcap in the lab', () => {
  let lab: Lab | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'kw-capture-rec-'));
  const at = (n: string) => join(dir, n);

  beforeAll(async () => {
    if (missing.length) return;
    lab = await createLab('capfile');
    const captures: [string, string[]][] = [
      ['eth.pcap', ['tcpdump', '-i', 'kw0', '-U', '--immediate-mode', '-n', '-w']],
      ['any.pcap', ['tcpdump', '-i', 'any', '-U', '--immediate-mode', '-n', '-w']],
      ['nano.pcap', ['tcpdump', '-i', 'kw0', '--nano', '-U', '--immediate-mode', '-n', '-w']],
      ['eth.pcapng', ['dumpcap', '-q', '-i', 'kw0', '-w']],
    ];
    const children = captures.map(([name, argv]) => lab!.spawn(lab!.server, [...argv, at(name)], { stdin: 'ignore' }));
    const started = performance.now();
    const size = (n: string) => {
      try {
        return statSync(at(n)).size;
      } catch {
        return 0;
      }
    };
    while (!captures.every(([n]) => size(n) > 0)) {
      if (performance.now() - started > 10_000) throw new Error('captures did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    const sent = await lab.run(lab.client, [process.execPath, '-e', SENDER(lab.server.v4, lab.server.v6)]);
    expect(sent.exitCode).toBe(0);
    await new Promise((r) => setTimeout(r, 400));
    for (const c of children) c.kill('SIGINT');
    await Promise.all(children);
    await run('tcpdump', ['-r', at('nano.pcap'), '-w', at('nano-us.pcap')]);
    await run('tcpdump', ['-r', at('eth.pcapng'), '-w', at('pcapng-us.pcap')]);
  });

  afterAll(async () => {
    await lab?.destroy();
    if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(missing.length > 0)('microsecond pcap (-i kw0 and -i any): identical to pcap-parser', async () => {
    for (const [name, linkType] of [
      ['eth.pcap', 1],
      ['any.pcap', 276],
    ] as const) {
      const [mine, theirs] = await Promise.all([frames(at(name)), oracle(at(name))]);
      // 2 SYNs + UDP over v4 and v6, with their replies: at least 10 packets.
      expect(theirs.packets.length, name).toBeGreaterThanOrEqual(10);
      expect(mine.length, name).toBe(theirs.packets.length);
      mine.forEach((f, i) => {
        expect(f.linkType).toBe(linkType);
        expect(f.time).toBe(us(theirs.packets[i].header));
        expect(f.origLength).toBe(theirs.packets[i].header.originalLength);
        expect(Buffer.from(f.data).equals(theirs.packets[i].data)).toBe(true);
      });
    }
  });

  it.skipIf(missing.length > 0)('nanosecond pcap and dumpcap pcapng: equal to their microsecond conversions by tcpdump, to the µs', async () => {
    for (const [name, converted] of [
      ['nano.pcap', 'nano-us.pcap'],
      ['eth.pcapng', 'pcapng-us.pcap'],
    ]) {
      const [mine, theirs] = await Promise.all([frames(at(name)), oracle(at(converted))]);
      expect(theirs.packets.length, name).toBeGreaterThanOrEqual(10);
      expect(mine.length, name).toBe(theirs.packets.length);
      mine.forEach((f, i) => {
        const diff = f.time - us(theirs.packets[i].header);
        expect(diff).toBeGreaterThanOrEqual(-1e-6);
        expect(diff).toBeLessThan(0.001);
        expect(Buffer.from(f.data).equals(theirs.packets[i].data)).toBe(true);
      });
    }
  });
});
