// The reader against independent oracles on files written by real tools
// (fixtures/formats, see its README): pcap-parser for classic microsecond
// pcap, and tshark's own dump for pcapng, where pcap-parser cannot go.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import pcapParser, { type GlobalHeader, type PacketHeader } from 'pcap-parser';
import { readCaptureFile } from '../../src/capture/file.js';
import type { Frame } from '../../src/types.js';
import { collect } from './capture-builders.js';

const DIR = new URL('../../fixtures/formats/', import.meta.url).pathname;

interface OracleFile {
  global: GlobalHeader;
  packets: { header: PacketHeader; data: Buffer }[];
}

function oracle(path: string): Promise<OracleFile> {
  return new Promise((resolve, reject) => {
    const parser = pcapParser.parse(path);
    let global: GlobalHeader | undefined;
    const packets: OracleFile['packets'] = [];
    parser.on('globalHeader', (h: GlobalHeader) => (global = h));
    parser.on('packet', (p: { header: PacketHeader; data: Buffer }) => packets.push(p));
    parser.on('error', reject);
    parser.on('end', () => (global ? resolve({ global, packets }) : reject(new Error(`${path}: no header`))));
  });
}

async function frames(name: string, chunkBytes?: number): Promise<Frame[]> {
  const out = await collect(readCaptureFile(DIR + name, chunkBytes ? { chunkBytes } : {}));
  if (out.error) throw out.error;
  expect(out.completed).toBe(true);
  return out.frames;
}

const usTime = (h: PacketHeader): number => h.timestampSeconds * 1000 + h.timestampMicroseconds / 1000;

interface TsharkFrame {
  interfaceId: number;
  linkType: number;
  time: number;
  len: number;
  capLen: number;
  bytes: Buffer;
}

/** tshark's dump: epoch times keep every digit, so the expected time is exact. */
function tshark(name: string): TsharkFrame[] {
  return readFileSync(DIR + name, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((line) => {
      const [id, lt, epoch, len, capLen, hex] = line.split('\t');
      const [sec, frac] = epoch.split('.');
      const digits = frac.padEnd(9, '0');
      expect(digits).toHaveLength(9);
      return {
        interfaceId: Number(id),
        linkType: Number(lt),
        time: Number(sec) * 1000 + Number(digits) / 1e6,
        len: Number(len),
        capLen: Number(capLen),
        bytes: Buffer.from(hex, 'hex'),
      };
    });
}

describe('classic microsecond pcap from tcpdump, against pcap-parser', () => {
  for (const name of ['tcpdump-eth.pcap', 'tcpdump-any.pcap', 'dumpcap-eth.pcap']) {
    it(`${name}: same frames, times, lengths, bytes and offsets`, async () => {
      const [mine, theirs] = await Promise.all([frames(name), oracle(DIR + name)]);
      expect(theirs.packets.length).toBeGreaterThan(5);
      expect(mine).toHaveLength(theirs.packets.length);
      let offset = 24;
      mine.forEach((f, i) => {
        const { header, data } = theirs.packets[i];
        expect(f.time).toBe(usTime(header));
        expect(f.origLength).toBe(header.originalLength);
        expect(f.data.length).toBe(header.capturedLength);
        expect(Buffer.from(f.data).equals(data)).toBe(true);
        expect(f.linkType).toBe(theirs.global.linkLayerType);
        expect(f.offset).toBe(offset);
        offset += 16 + header.capturedLength;
      });
    });
  }

  it('tcpdump -i any gives Linux cooked v2 (276), -i kw0 Ethernet (1)', async () => {
    expect(new Set((await frames('tcpdump-any.pcap')).map((f) => f.linkType))).toEqual(new Set([276]));
    expect(new Set((await frames('tcpdump-eth.pcap')).map((f) => f.linkType))).toEqual(new Set([1]));
  });
});

describe('nanosecond pcap from tcpdump --nano', () => {
  it('matches the microsecond copy libpcap made of it, plus the sub-microsecond digits', async () => {
    const [nano, theirs] = await Promise.all([frames('tcpdump-nano.pcap'), oracle(DIR + 'tcpdump-nano.micro.pcap')]);
    expect(nano).toHaveLength(theirs.packets.length);
    let subMicro = 0;
    nano.forEach((f, i) => {
      const { header, data } = theirs.packets[i];
      // libpcap truncates ns to µs, so ours is at most 999 ns later.
      const diff = f.time - usTime(header);
      expect(diff).toBeGreaterThanOrEqual(-1e-6);
      expect(diff).toBeLessThan(0.001);
      if (diff > 1e-5) subMicro++;
      expect(Buffer.from(f.data).equals(data)).toBe(true);
      expect(f.origLength).toBe(header.originalLength);
    });
    // Real ns timestamps almost never end in 000: the digits were read.
    expect(subMicro).toBeGreaterThan(nano.length / 2);
  });
});

describe('pcapng from dumpcap, against tshark', () => {
  it('dumpcap-eth.pcapng: exact nanosecond times, lengths and bytes; the statistics block is skipped', async () => {
    const mine = await frames('dumpcap-eth.pcapng');
    const theirs = tshark('dumpcap-eth.tshark.tsv');
    expect(theirs.length).toBeGreaterThan(5);
    expect(mine).toHaveLength(theirs.length);
    mine.forEach((f, i) => {
      expect(f.time).toBe(theirs[i].time);
      expect(f.linkType).toBe(theirs[i].linkType);
      expect(f.origLength).toBe(theirs[i].len);
      expect(f.data.length).toBe(theirs[i].capLen);
      expect(Buffer.from(f.data).equals(theirs[i].bytes)).toBe(true);
    });
  });

  it('dumpcap-eth.pcapng agrees with the classic pcap tcpdump converted it to (pcap-parser)', async () => {
    const [mine, theirs] = await Promise.all([frames('dumpcap-eth.pcapng'), oracle(DIR + 'dumpcap-eth.pcap')]);
    expect(mine).toHaveLength(theirs.packets.length);
    mine.forEach((f, i) => {
      const diff = f.time - usTime(theirs.packets[i].header);
      expect(diff).toBeGreaterThanOrEqual(-1e-6);
      expect(diff).toBeLessThan(0.001);
      expect(Buffer.from(f.data).equals(theirs.packets[i].data)).toBe(true);
    });
  });

  it('dumpcap-two.pcapng: two interfaces, each frame with its own link type', async () => {
    const mine = await frames('dumpcap-two.pcapng');
    const theirs = tshark('dumpcap-two.tshark.tsv');
    expect(mine).toHaveLength(theirs.length);
    expect(new Set(theirs.map((t) => t.linkType))).toEqual(new Set([1, 113]));
    mine.forEach((f, i) => {
      expect({ time: f.time, linkType: f.linkType, len: f.origLength, capLen: f.data.length }).toEqual({
        time: theirs[i].time,
        linkType: theirs[i].linkType,
        len: theirs[i].len,
        capLen: theirs[i].capLen,
      });
      expect(Buffer.from(f.data).equals(theirs[i].bytes)).toBe(true);
    });
  });
});

describe('real files read in tiny chunks', () => {
  // 7-byte reads split every header, record and block at every kind of place.
  for (const name of ['tcpdump-eth.pcap', 'tcpdump-nano.pcap', 'dumpcap-two.pcapng']) {
    it(`${name}: same frames as one big read`, async () => {
      const whole = await frames(name);
      const split = await frames(name, 7);
      expect(split.map((f) => ({ ...f, data: Buffer.from(f.data).toString('hex') }))).toEqual(
        whole.map((f) => ({ ...f, data: Buffer.from(f.data).toString('hex') })),
      );
    });
  }
});
