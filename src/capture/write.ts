// Capture-file writers for the benchmark, the demo and tests: classic pcap (the
// format every tool reads) and a small pcapng writer (several interfaces with
// their own link types and timestamp resolutions). Records are packed into
// 1 MiB buffers and written a buffer at a time.
import { open } from 'node:fs/promises';
import { MAX_PACKET_BYTES } from './file-limits.js';

/** What a writer needs of a frame; capture Frames fit. */
export interface WritableFrame {
  /** Milliseconds since the Unix epoch. */
  readonly time: number;
  readonly data: Uint8Array;
  /** Length on the wire; defaults to data.length. */
  readonly origLength?: number;
  /** pcapng only: index into the interfaces option (default 0). */
  readonly interfaceId?: number;
}

export interface PcapWriteOptions {
  /** LINKTYPE_* of every record (1 Ethernet, 101 raw IP, 113 SLL, 276 SLL2...). */
  readonly linkType: number;
  /** Nanosecond timestamps (magic a1b23c4d) instead of microseconds. */
  readonly nanosecond?: boolean;
  /** Longer frames are cut to this many bytes (default 262144). */
  readonly snaplen?: number;
  /** Write big-endian (as a SPARC or PowerPC host would); default little-endian. */
  readonly bigEndian?: boolean;
}

export interface PcapngInterface {
  readonly linkType: number;
  readonly snaplen?: number;
  /** if_tsresol byte: n means 10^-n s, 0x80|n means 2^-n s. Default 6 (µs). */
  readonly tsresol?: number;
  /** if_tsoffset in seconds, added to every timestamp by readers. Default 0 (option omitted). */
  readonly tsoffset?: number;
}

export interface PcapngWriteOptions {
  readonly interfaces: readonly PcapngInterface[];
  readonly bigEndian?: boolean;
}

export interface WriteResult {
  readonly frames: number;
  readonly bytes: number;
}

const CHUNK = 1 << 20;

/**
 * Packs output into fixed-size buffers. Each full buffer is handed out by
 * take() and never touched again, so a write still in flight stays intact.
 */
interface Packer {
  /** Whether n more bytes fit in the current buffer. */
  fits(n: number): boolean;
  /** Reserves n contiguous bytes (growing an empty buffer if n is huge); returns their position in `buf`. */
  reserve(n: number): number;
  /** The packed bytes of the current buffer; a fresh buffer takes its place. */
  take(): Uint8Array;
  buf: Uint8Array;
  view: DataView;
  /** Bytes packed so far. */
  readonly total: number;
}

function createPacker(): Packer {
  let used = 0;
  let taken = 0;
  const fresh = (size: number): void => {
    p.buf = new Uint8Array(size);
    p.view = new DataView(p.buf.buffer);
    used = 0;
  };
  const p: Packer = {
    buf: new Uint8Array(0),
    view: new DataView(new ArrayBuffer(0)),
    fits: (n) => used + n <= p.buf.length,
    reserve(n: number): number {
      if (used + n > p.buf.length) {
        if (used > 0) throw new Error('Packer.reserve: take() the full buffer first');
        fresh(Math.max(n, CHUNK));
      }
      const at = used;
      used += n;
      return at;
    },
    take(): Uint8Array {
      const out = p.buf.subarray(0, used);
      taken += used;
      fresh(CHUNK);
      return out;
    },
    get total() {
      return taken + used;
    },
  };
  fresh(CHUNK);
  return p;
}

/** Seconds and sub-second units of a millisecond time, carried so units < perSecond. */
function splitTime(time: number, unitsPerSec: number, index: number): [number, number] {
  if (!Number.isFinite(time) || time < 0) throw new RangeError(`frame ${index}: time ${time} is not a non-negative number of ms`);
  let sec = Math.floor(time / 1000);
  let units = Math.round((time - sec * 1000) * (unitsPerSec / 1000));
  if (units >= unitsPerSec) {
    sec += 1;
    units -= unitsPerSec;
  }
  return [sec, units];
}

function checkLength(value: number, what: string, index: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`frame ${index}: ${what} ${value} is not a 32-bit length`);
}

function* packPcap(frames: Iterable<WritableFrame>, options: PcapWriteOptions): Generator<Uint8Array, WriteResult> {
  const { linkType } = options;
  const snaplen = options.snaplen ?? MAX_PACKET_BYTES;
  if (!Number.isInteger(linkType) || linkType < 0 || linkType > 0xffff) throw new RangeError(`linkType ${linkType} is not a 16-bit LINKTYPE value`);
  if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > 0xffffffff) throw new RangeError(`snaplen ${snaplen} is not a positive 32-bit value`);
  const le = !options.bigEndian;
  const perSec = options.nanosecond ? 1e9 : 1e6;
  const p = createPacker();
  let at = p.reserve(24);
  let v = p.view;
  v.setUint32(at, options.nanosecond ? 0xa1b23c4d : 0xa1b2c3d4, le);
  v.setUint16(at + 4, 2, le);
  v.setUint16(at + 6, 4, le);
  v.setUint32(at + 8, 0, le); // thiszone
  v.setUint32(at + 12, 0, le); // sigfigs
  v.setUint32(at + 16, snaplen, le);
  v.setUint32(at + 20, linkType, le);
  const unitsPerMs = perSec / 1000;
  let n = 0;
  for (const f of frames) {
    const data = f.data;
    const caplen = data.length < snaplen ? data.length : snaplen;
    const origLength = f.origLength ?? data.length;
    if (origLength !== (origLength >>> 0)) checkLength(origLength, 'origLength', n);
    // Inlined splitTime(): this loop runs a million times for the benchmark.
    const time = f.time;
    let sec = Math.floor(time / 1000);
    let units = Math.round((time - sec * 1000) * unitsPerMs);
    if (units >= perSec) {
      sec += 1;
      units -= perSec;
    }
    if (!(sec >= 0 && sec <= 0xffffffff)) {
      throw new RangeError(`frame ${n}: time ${time} is outside what pcap's unsigned 32-bit seconds hold`);
    }
    if (!p.fits(16 + caplen)) yield p.take();
    at = p.reserve(16 + caplen);
    v = p.view;
    v.setUint32(at, sec, le);
    v.setUint32(at + 4, units, le);
    v.setUint32(at + 8, caplen, le);
    v.setUint32(at + 12, origLength, le);
    p.buf.set(caplen === data.length ? data : data.subarray(0, caplen), at + 16);
    n++;
  }
  const total = p.total;
  yield p.take();
  return { frames: n, bytes: total };
}

function* packPcapng(frames: Iterable<WritableFrame>, options: PcapngWriteOptions): Generator<Uint8Array, WriteResult> {
  const le = !options.bigEndian;
  const p = createPacker();
  // Section header: no options, section length unknown (-1).
  let at = p.reserve(28);
  let v = p.view;
  v.setUint32(at, 0x0a0d0d0a, le);
  v.setUint32(at + 4, 28, le);
  v.setUint32(at + 8, 0x1a2b3c4d, le);
  v.setUint16(at + 12, 1, le);
  v.setUint16(at + 14, 0, le);
  v.setInt32(at + 16, -1, le);
  v.setInt32(at + 20, -1, le);
  v.setUint32(at + 24, 28, le);
  const perSec: number[] = [];
  for (const [i, iface] of options.interfaces.entries()) {
    const { linkType } = iface;
    if (!Number.isInteger(linkType) || linkType < 0 || linkType > 0xffff) throw new RangeError(`interface ${i}: linkType ${linkType} is not a 16-bit value`);
    const tsresol = iface.tsresol ?? 6;
    if (!Number.isInteger(tsresol) || tsresol < 0 || tsresol > 0xff) throw new RangeError(`interface ${i}: tsresol ${tsresol} is not a byte`);
    perSec.push(tsresol & 0x80 ? 2 ** (tsresol & 0x7f) : 10 ** tsresol);
    if (iface.tsoffset !== undefined && !Number.isSafeInteger(iface.tsoffset)) throw new RangeError(`interface ${i}: tsoffset ${iface.tsoffset} is not a whole number of seconds`);
    const hasOffset = iface.tsoffset !== undefined && iface.tsoffset !== 0;
    const len = 20 + 8 + (hasOffset ? 12 : 0) + 4; // header, tsresol, [tsoffset], endofopt, trailer
    if (!p.fits(len)) yield p.take();
    at = p.reserve(len);
    v = p.view;
    v.setUint32(at, 1, le);
    v.setUint32(at + 4, len, le);
    v.setUint16(at + 8, linkType, le);
    v.setUint16(at + 10, 0, le);
    v.setUint32(at + 12, iface.snaplen ?? 0, le);
    let o = at + 16;
    v.setUint16(o, 9, le);
    v.setUint16(o + 2, 1, le);
    v.setUint32(o + 4, 0, le);
    p.buf[o + 4] = tsresol;
    o += 8;
    if (hasOffset) {
      v.setUint16(o, 14, le);
      v.setUint16(o + 2, 8, le);
      v.setBigInt64(o + 4, BigInt(iface.tsoffset as number), le);
      o += 12;
    }
    v.setUint32(o, 0, le); // opt_endofopt
    v.setUint32(o + 4, len, le);
  }
  let n = 0;
  for (const f of frames) {
    const id = f.interfaceId ?? 0;
    if (!Number.isInteger(id) || id < 0 || id >= perSec.length) throw new RangeError(`frame ${n}: interface ${id} is not one of the ${perSec.length} declared`);
    const iface = options.interfaces[id];
    const snaplen = iface.snaplen || MAX_PACKET_BYTES;
    const caplen = Math.min(f.data.length, snaplen);
    const origLength = f.origLength ?? f.data.length;
    checkLength(origLength, 'origLength', n);
    const offsetMs = (iface.tsoffset ?? 0) * 1000;
    const [sec, units] = splitTime(f.time - offsetMs, perSec[id], n);
    const ts = BigInt(sec) * BigInt(perSec[id]) + BigInt(units);
    // 2^64 ns end in 2554: a later time would silently wrap to an earlier one.
    if (ts > 0xffffffffffffffffn) throw new RangeError(`frame ${n}: time ${f.time} does not fit a 64-bit timestamp at ${perSec[id]} units per second`);
    const len = 32 + ((caplen + 3) & ~3);
    if (!p.fits(len)) yield p.take();
    at = p.reserve(len);
    v = p.view;
    v.setUint32(at, 6, le);
    v.setUint32(at + 4, len, le);
    v.setUint32(at + 8, id, le);
    v.setUint32(at + 12, Number(ts >> 32n), le);
    v.setUint32(at + 16, Number(ts & 0xffffffffn), le);
    v.setUint32(at + 20, caplen, le);
    v.setUint32(at + 24, origLength, le);
    p.buf.set(caplen === f.data.length ? f.data : f.data.subarray(0, caplen), at + 28);
    p.buf.fill(0, at + 28 + caplen, at + len - 4);
    v.setUint32(at + len - 4, len, le);
    n++;
  }
  const total = p.total;
  yield p.take();
  return { frames: n, bytes: total };
}

/** A whole classic pcap file in memory. */
export function encodePcap(frames: Iterable<WritableFrame>, options: PcapWriteOptions): Uint8Array {
  return concat(packPcap(frames, options));
}

/** A whole pcapng file (one section) in memory. */
export function encodePcapng(frames: Iterable<WritableFrame>, options: PcapngWriteOptions): Uint8Array {
  return concat(packPcapng(frames, options));
}

function concat(chunks: Generator<Uint8Array, WriteResult>): Uint8Array {
  const parts: Uint8Array[] = [];
  let r = chunks.next();
  for (; !r.done; r = chunks.next()) parts.push(r.value);
  const out = new Uint8Array(r.value.bytes);
  let at = 0;
  for (const b of parts) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** Writes a classic pcap file (created or truncated), 1 MiB at a time. */
export async function writePcap(path: string, frames: Iterable<WritableFrame>, options: PcapWriteOptions): Promise<WriteResult> {
  return writeChunks(path, packPcap(frames, options));
}

/** Writes a pcapng file with one section holding the given interfaces. */
export async function writePcapng(path: string, frames: Iterable<WritableFrame>, options: PcapngWriteOptions): Promise<WriteResult> {
  return writeChunks(path, packPcapng(frames, options));
}

async function writeChunks(path: string, chunks: Generator<Uint8Array, WriteResult>): Promise<WriteResult> {
  const handle = await open(path, 'w');
  try {
    let r = chunks.next();
    for (; !r.done; r = chunks.next()) {
      const b = r.value;
      let done = 0;
      while (done < b.length) {
        const { bytesWritten } = await handle.write(b, done, b.length - done);
        done += bytesWritten;
      }
    }
    return r.value;
  } finally {
    await handle.close();
  }
}
