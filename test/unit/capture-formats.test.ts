// Synthetic files for every format feature the reader claims: byte orders,
// resolutions, several interfaces and sections, simple/obsolete packet blocks,
// block types to skip. Built byte by byte, so they do not depend on our writer.
import { describe, expect, it } from 'vitest';
import { readCaptureBytes } from '../../src/capture/file.js';
import type { Frame } from '../../src/types.js';
import {
  block,
  bytesOf,
  collectSync,
  concat,
  epb,
  idb,
  opb,
  options,
  pcapHeader,
  pcapRecord,
  shb,
  spb,
  tsoffsetOpt,
  tsresolOpt,
} from './capture-builders.js';

const T0 = 1_700_000_000; // seconds

function read(bytes: Uint8Array, chunkBytes?: number): Frame[] {
  const out = collectSync(readCaptureBytes(bytes, 'test.cap', chunkBytes ? { chunkBytes } : {}));
  if (out.error) throw out.error;
  return out.frames;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Reads in every chunk size from 1 to 40 and whole: all must give the same frames. */
function readAllSplits(bytes: Uint8Array): Frame[] {
  const whole = read(bytes);
  const norm = (fs: Frame[]) => fs.map((f) => ({ ...f, data: hex(f.data) }));
  for (let c = 1; c <= 40; c++) expect(norm(read(bytes, c)), `chunkBytes ${c}`).toEqual(norm(whole));
  return whole;
}

describe('classic pcap', () => {
  for (const le of [true, false]) {
    const order = le ? 'little-endian' : 'big-endian';
    it(`${order} microseconds: times, link type, lengths, bytes, offsets`, () => {
      const a = bytesOf(60, 1);
      const b = bytesOf(33, 2);
      const file = concat(
        pcapHeader({ le, linkType: 101, snaplen: 65535 }),
        pcapRecord({ le, sec: T0, frac: 999_999, data: a }),
        pcapRecord({ le, sec: T0 + 1, frac: 5, data: b, len: 1500 }),
      );
      const frames = readAllSplits(file);
      expect(frames.map((f) => [f.time, f.linkType, f.origLength, f.offset, hex(f.data)])).toEqual([
        [T0 * 1000 + 999.999, 101, 60, 24, hex(a)],
        [(T0 + 1) * 1000 + 0.005, 101, 1500, 24 + 16 + 60, hex(b)],
      ]);
    });

    it(`${order} nanoseconds (magic a1b23c4d)`, () => {
      const file = concat(
        pcapHeader({ le, nano: true }),
        pcapRecord({ le, sec: T0, frac: 123_456_789, data: bytesOf(20) }),
        pcapRecord({ le, sec: T0, frac: 999_999_999, data: bytesOf(20) }),
      );
      const frames = readAllSplits(file);
      expect(frames.map((f) => f.time)).toEqual([T0 * 1000 + 123.456789, T0 * 1000 + 999.999999]);
      // Not read as microseconds: that would put them ~2 minutes later.
      expect(frames[1].time - frames[0].time).toBeLessThan(1000);
    });
  }

  it('a header with no records completes with no frames', () => {
    expect(read(pcapHeader())).toEqual([]);
  });

  it('keeps only the LINKTYPE bits of the link-type field (upper bits carry FCS info)', () => {
    const file = concat(pcapHeader({ linkType: 0x1000_0001 }), pcapRecord({ sec: T0, frac: 0, data: bytesOf(14) }));
    expect(read(file)[0].linkType).toBe(1);
  });

  it('a zero-length record is a frame with no bytes', () => {
    const file = concat(pcapHeader(), pcapRecord({ sec: T0, frac: 0, data: new Uint8Array(0), len: 60 }), pcapRecord({ sec: T0, frac: 1, data: bytesOf(4) }));
    const frames = readAllSplits(file);
    expect(frames.map((f) => [f.data.length, f.origLength, f.offset])).toEqual([
      [0, 60, 24],
      [4, 4, 40],
    ]);
  });
});

describe('pcapng', () => {
  it('two interfaces with different link types, resolutions (10^-9, 2^-20) and a tsoffset', () => {
    const le = true;
    const a = bytesOf(60, 1);
    const b = bytesOf(41, 2);
    const c = bytesOf(7, 3);
    const file = concat(
      shb(le),
      idb(le, { linkType: 1, opts: [tsresolOpt(9)] }),
      idb(le, { linkType: 101, opts: [tsresolOpt(0x80 | 20), tsoffsetOpt(le, 100)] }),
      idb(le, { linkType: 276 }), // no if_tsresol: microseconds
      epb(le, { ifId: 0, ts: BigInt(T0) * 1_000_000_000n + 123_456_789n, data: a }),
      epb(le, { ifId: 1, ts: (BigInt(T0) << 20n) + (1n << 19n), data: b, origLen: 1514 }),
      epb(le, { ifId: 2, ts: BigInt(T0) * 1_000_000n + 250_001n, data: c }),
    );
    const frames = readAllSplits(file);
    expect(frames.map((f) => [f.linkType, f.time, f.origLength, hex(f.data)])).toEqual([
      [1, T0 * 1000 + 123.456789, 60, hex(a)],
      [101, (T0 + 100) * 1000 + 500, 1514, hex(b)],
      [276, T0 * 1000 + 250.001, 7, hex(c)],
    ]);
  });

  it('resolutions down to whole seconds and a negative tsoffset', () => {
    const le = true;
    const file = concat(
      shb(le),
      idb(le, { linkType: 1, opts: [tsresolOpt(0), tsoffsetOpt(le, -10)] }),
      idb(le, { linkType: 1, opts: [tsresolOpt(0x80)] }), // 2^-0: seconds too
      idb(le, { linkType: 1, opts: [tsresolOpt(3)] }),
      epb(le, { ifId: 0, ts: BigInt(T0), data: bytesOf(1) }),
      epb(le, { ifId: 1, ts: BigInt(T0), data: bytesOf(1) }),
      epb(le, { ifId: 2, ts: BigInt(T0) * 1000n + 7n, data: bytesOf(1) }),
    );
    expect(read(file).map((f) => f.time)).toEqual([(T0 - 10) * 1000, T0 * 1000, T0 * 1000 + 7]);
  });

  it('two sections in different byte orders: interface ids restart with each section', () => {
    const a = bytesOf(30, 1);
    const b = bytesOf(31, 2);
    const first = concat(shb(true), idb(true, { linkType: 1 }), epb(true, { ts: BigInt(T0) * 1_000_000n, data: a }));
    const second = concat(
      shb(false),
      idb(false, { linkType: 113, opts: [tsresolOpt(9)] }),
      epb(false, { ts: BigInt(T0 + 1) * 1_000_000_000n + 1n, data: b }),
    );
    const frames = readAllSplits(concat(first, second));
    expect(frames.map((f) => [f.linkType, f.time, hex(f.data), f.offset])).toEqual([
      [1, T0 * 1000, hex(a), 28 + 20],
      [113, (T0 + 1) * 1000 + 0.000001, hex(b), first.length + 28 + 32],
    ]);
  });

  it('big-endian only, with a section header carrying options', () => {
    const le = false;
    const text = (s: string) => new TextEncoder().encode(s);
    const file = concat(
      shb(le, { opts: [{ code: 2, value: text('x86_64') }, { code: 4, value: text('test writer') }] }),
      idb(le, { linkType: 228, snaplen: 65535, opts: [{ code: 2, value: text('eth0') }, tsresolOpt(6)] }),
      epb(le, { ts: BigInt(T0) * 1_000_000n + 1n, data: bytesOf(20), opts: [{ code: 2, value: Uint8Array.of(0, 0, 0, 1) }] }),
    );
    expect(readAllSplits(file).map((f) => [f.linkType, f.time, f.data.length])).toEqual([[228, T0 * 1000 + 0.001, 20]]);
  });

  it('simple packet blocks: length from the original length, snaplen and block; time of the packet before', () => {
    const le = true;
    const file = concat(
      shb(le),
      idb(le, { linkType: 1, snaplen: 8 }),
      spb(le, { data: bytesOf(5) }), // before any timestamp: time 0
      epb(le, { ts: BigInt(T0) * 1_000_000n, data: bytesOf(6) }),
      spb(le, { origLen: 10, data: bytesOf(8) }), // cut by snaplen 8
      spb(le, { origLen: 3, data: bytesOf(3) }), // padded to 4 in the block; 3 captured
    );
    const frames = readAllSplits(file);
    expect(frames.map((f) => [f.time, f.data.length, f.origLength])).toEqual([
      [0, 5, 5],
      [T0 * 1000, 6, 6],
      [T0 * 1000, 8, 10],
      [T0 * 1000, 3, 3],
    ]);
    expect(hex(frames[3].data)).toBe(hex(bytesOf(3)));
  });

  it('obsolete packet blocks (pcapng 0.x) are read like enhanced ones', () => {
    const le = false;
    const file = concat(shb(le), idb(le, { linkType: 1 }), idb(le, { linkType: 12 }), opb(le, { ifId: 1, ts: BigInt(T0) * 1_000_000n + 42n, data: bytesOf(9) }));
    expect(read(file).map((f) => [f.linkType, f.time, f.data.length])).toEqual([[12, T0 * 1000 + 0.042, 9]]);
  });

  it('skips name resolution, statistics, decryption secrets, custom, journal and unknown blocks', () => {
    const le = true;
    const skipped = [4, 5, 0x0a, 0xbad, 0x40000bad, 9, 0x12345678, 0].map((type, i) => block(le, type, bytesOf(i * 5)));
    const a = bytesOf(40, 7);
    const b = bytesOf(44, 8);
    const file = concat(
      shb(le),
      skipped[0],
      idb(le, { linkType: 1 }),
      ...skipped.slice(1, 4),
      epb(le, { ts: 1n, data: a }),
      ...skipped.slice(4),
      epb(le, { ts: 2n, data: b }),
      skipped[1],
    );
    expect(readAllSplits(file).map((f) => hex(f.data))).toEqual([hex(a), hex(b)]);
  });

  it('nanosecond timestamps keep their digits at today\'s epoch (no 2^53 rounding)', () => {
    const le = true;
    const ns = [1n, 999_999_999n, 500_000_001n, 123_456_789n];
    const file = concat(shb(le), idb(le, { linkType: 1, opts: [tsresolOpt(9)] }), ...ns.map((n) => epb(le, { ts: 1_795_321_104n * 1_000_000_000n + n, data: bytesOf(1) })));
    expect(read(file).map((f) => f.time)).toEqual(ns.map((n) => 1_795_321_104 * 1000 + Number(n) / 1e6));
  });

  it('section header then nothing: completes with no frames', () => {
    expect(read(shb(true))).toEqual([]);
    expect(read(concat(shb(false), idb(false, { linkType: 1 }), options(false, []))).length).toBe(0);
  });
});
