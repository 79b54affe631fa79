// The writers, checked by our reader, by pcap-parser and (where installed)
// by tcpdump itself.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pcapParser, { type PacketHeader } from 'pcap-parser';
import { afterAll, describe, expect, it } from 'vitest';
import { readCaptureBytes, readCaptureFile } from '../../src/capture/file.js';
import { encodePcap, encodePcapng, writePcap, writePcapng, type WritableFrame } from '../../src/capture/write.js';
import type { Frame } from '../../src/types.js';
import { bytesOf, collect, collectSync } from './capture-builders.js';

const dir = mkdtempSync(join(tmpdir(), 'kw-capture-write-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const S0 = 1_700_000_000;
/** Times that are whole microseconds, written the way readers compute them. */
const usFrames: WritableFrame[] = Array.from({ length: 50 }, (_, i) => ({
  time: (S0 + i) * 1000 + (i * 7919) / 1000,
  data: bytesOf(20 + i, i),
  origLength: i % 5 === 0 ? 1500 : undefined,
}));

function read(bytes: Uint8Array): Frame[] {
  const out = collectSync(readCaptureBytes(bytes, 'w'));
  if (out.error) throw out.error;
  return out.frames;
}

function expectSame(frames: Frame[], source: WritableFrame[], linkType: number): void {
  expect(frames).toHaveLength(source.length);
  frames.forEach((f, i) => {
    expect(f.time).toBe(source[i].time);
    expect(f.linkType).toBe(linkType);
    expect(f.origLength).toBe(source[i].origLength ?? source[i].data.length);
    expect(Buffer.from(f.data).equals(Buffer.from(source[i].data))).toBe(true);
  });
}

const tcpdumpMissing = spawnSync('tcpdump', ['--version']).error ? "tcpdump not installed (Debian package 'tcpdump')" : undefined;
if (tcpdumpMissing) console.warn(`[skipped] tcpdump cross-checks: ${tcpdumpMissing}`);

/** Timestamps as tcpdump -tt prints them, one per packet. */
function tcpdumpTimes(path: string, extra: string[] = []): string[] {
  const out = execFileSync('tcpdump', ['-r', path, '-nn', '-tt', ...extra], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  // Packet lines start with the time; tcpdump adds indented hex for unknown payloads.
  return out
    .split('\n')
    .filter((l) => /^\d/.test(l))
    .map((l) => l.split(' ')[0]);
}

describe('encodePcap / writePcap', () => {
  for (const bigEndian of [false, true]) {
    it(`round-trips through the reader (${bigEndian ? 'big' : 'little'}-endian, µs)`, () => {
      expectSame(read(encodePcap(usFrames, { linkType: 101, bigEndian })), usFrames, 101);
    });
  }

  it('nanosecond files keep sub-microsecond digits', () => {
    const frames = [{ time: S0 * 1000 + 123.456789, data: bytesOf(8) }];
    const bytes = encodePcap(frames, { linkType: 1, nanosecond: true });
    expect(Buffer.from(bytes.subarray(0, 4)).toString('hex')).toBe('4d3cb2a1');
    expect(read(bytes)[0].time).toBe(S0 * 1000 + 123.456789);
  });

  it('cuts frames to the snaplen and keeps the wire length', () => {
    const [f] = read(encodePcap([{ time: S0 * 1000, data: bytesOf(100) }], { linkType: 1, snaplen: 64 }));
    expect(f.data.length).toBe(64);
    expect(f.origLength).toBe(100);
    expect(Buffer.from(f.data).equals(Buffer.from(bytesOf(100).subarray(0, 64)))).toBe(true);
  });

  it('carries a rounded-up microsecond into the seconds', () => {
    const [f] = read(encodePcap([{ time: S0 * 1000 + 999.9999, data: bytesOf(1) }], { linkType: 1 }));
    expect(f.time).toBe((S0 + 1) * 1000);
  });

  it('writes a file pcap-parser reads back identically', async () => {
    const path = join(dir, 'oracle.pcap');
    const result = await writePcap(path, usFrames, { linkType: 1 });
    expect(result).toEqual({ frames: usFrames.length, bytes: statSync(path).size });
    const packets: { header: PacketHeader; data: Buffer }[] = [];
    await new Promise<void>((resolve, reject) => {
      const p = pcapParser.parse(path);
      p.on('packet', (x: { header: PacketHeader; data: Buffer }) => packets.push(x));
      p.on('error', reject);
      p.on('end', () => resolve());
    });
    expect(packets).toHaveLength(usFrames.length);
    packets.forEach(({ header, data }, i) => {
      expect(header.timestampSeconds * 1000 + header.timestampMicroseconds / 1000).toBe(usFrames[i].time);
      expect(data.equals(Buffer.from(usFrames[i].data))).toBe(true);
      expect(header.originalLength).toBe(usFrames[i].origLength ?? usFrames[i].data.length);
    });
  });

  it('streams many frames in 1 MiB writes (file size = sum of records)', async () => {
    const n = 50_000;
    function* gen(): Generator<WritableFrame> {
      for (let i = 0; i < n; i++) yield { time: S0 * 1000 + i, data: bytesOf(60 + (i % 21), i) };
    }
    const path = join(dir, 'many.pcap');
    const { frames, bytes } = await writePcap(path, gen(), { linkType: 1 });
    let expected = 24;
    for (let i = 0; i < n; i++) expected += 16 + 60 + (i % 21);
    expect({ frames, bytes, size: statSync(path).size }).toEqual({ frames: n, bytes: expected, size: expected });
    const out = await collect(readCaptureFile(path));
    expect(out.frames).toHaveLength(n);
    expect(out.frames[n - 1].time).toBe(S0 * 1000 + n - 1);
  });

  it('a frame larger than the write buffer', () => {
    const big = bytesOf(3 << 20);
    const bytes = encodePcap([{ time: 0, data: bytesOf(5) }, { time: 1, data: big }], { linkType: 1, snaplen: 4 << 20 });
    expect(bytes.length).toBe(24 + 16 + 5 + 16 + big.length);
    expect(Buffer.from(bytes.subarray(24 + 16 + 5 + 16)).equals(Buffer.from(big))).toBe(true);
  });

  it('rejects what pcap cannot hold', () => {
    const one = (f: Partial<WritableFrame>) => [{ time: 0, data: bytesOf(1), ...f }];
    expect(() => encodePcap(one({}), { linkType: 70000 })).toThrow(/linkType 70000/);
    expect(() => encodePcap(one({}), { linkType: 1, snaplen: 0 })).toThrow(/snaplen 0/);
    expect(() => encodePcap(one({ time: -1 }), { linkType: 1 })).toThrow(/frame 0: time -1/);
    expect(() => encodePcap(one({ time: NaN }), { linkType: 1 })).toThrow(/frame 0: time NaN/);
    expect(() => encodePcap(one({ time: 2 ** 32 * 1000 }), { linkType: 1 })).toThrow(/32-bit seconds/);
    expect(() => encodePcap(one({ origLength: 1.5 }), { linkType: 1 })).toThrow(/origLength 1.5/);
  });
});

describe('encodePcapng / writePcapng', () => {
  it('several interfaces with their own link types, resolutions and offsets', () => {
    const interfaces = [{ linkType: 1, tsresol: 9 }, { linkType: 113, tsresol: 0x80 | 20, tsoffset: 3600 }, { linkType: 276 }];
    const frames: WritableFrame[] = [
      { time: S0 * 1000 + 0.000123, data: bytesOf(10), interfaceId: 0 },
      { time: S0 * 1000 + 500, data: bytesOf(11), interfaceId: 1 },
      { time: S0 * 1000 + 0.25, data: bytesOf(12), interfaceId: 2, origLength: 99 },
    ];
    const got = read(encodePcapng(frames, { interfaces, bigEndian: true }));
    expect(got.map((f) => [f.linkType, f.time, f.data.length, f.origLength])).toEqual([
      [1, S0 * 1000 + 0.000123, 10, 10],
      [113, S0 * 1000 + 500, 11, 11],
      [276, S0 * 1000 + 0.25, 12, 99],
    ]);
  });

  it('rejects frames for undeclared interfaces', () => {
    expect(() => encodePcapng([{ time: 0, data: bytesOf(1), interfaceId: 1 }], { interfaces: [{ linkType: 1 }] })).toThrow(/interface 1 is not one of the 1/);
  });

  it('rejects a time whose timestamp would wrap 64 bits (nanoseconds end in 2554) instead of writing an earlier one', () => {
    const late = Date.UTC(2600, 0, 1);
    expect(() => encodePcapng([{ time: late, data: bytesOf(1) }], { interfaces: [{ linkType: 1, tsresol: 9 }] })).toThrow(/frame 0: time .* does not fit a 64-bit timestamp/);
    expect(read(encodePcapng([{ time: late, data: bytesOf(1) }], { interfaces: [{ linkType: 1, tsresol: 6 }] }))[0].time).toBe(late);
  });
});

describe.skipIf(tcpdumpMissing !== undefined)('tcpdump reads what we write', () => {
  it('pcap (little- and big-endian) and pcapng: same packets and timestamps', async () => {
    const expectedUs = usFrames.map((f) => (f.time / 1000).toFixed(6));
    const cases: [string, () => Promise<unknown>][] = [
      ['le.pcap', () => writePcap(join(dir, 'le.pcap'), usFrames, { linkType: 1 })],
      ['be.pcap', () => writePcap(join(dir, 'be.pcap'), usFrames, { linkType: 1, bigEndian: true })],
      ['ng.pcapng', () => writePcapng(join(dir, 'ng.pcapng'), usFrames, { interfaces: [{ linkType: 1 }] })],
    ];
    for (const [name, write] of cases) {
      await write();
      expect(tcpdumpTimes(join(dir, name)), name).toEqual(expectedUs);
    }
  });

  it('nanosecond pcap and pcapng: tcpdump --nano prints the nanoseconds we stored', async () => {
    // A double of ms since 1970 holds ~0.24 µs, so compare with the stored
    // fields rather than with the input times.
    const pcap = join(dir, 'ns.pcap');
    await writePcap(pcap, usFrames, { linkType: 1, nanosecond: true });
    const raw = readFileSync(pcap);
    expect(raw.readUInt32LE(0)).toBe(0xa1b23c4d);
    const stored: string[] = [];
    for (let at = 24; at < raw.length; at += 16 + raw.readUInt32LE(at + 8)) {
      stored.push(`${raw.readUInt32LE(at)}.${String(raw.readUInt32LE(at + 4)).padStart(9, '0')}`);
    }
    expect(tcpdumpTimes(pcap, ['--nano'])).toEqual(stored);
    const ng = join(dir, 'ns.pcapng');
    await writePcapng(ng, usFrames, { interfaces: [{ linkType: 1, tsresol: 9 }] });
    expect(tcpdumpTimes(ng, ['--nano'])).toEqual(stored);
  });
});
