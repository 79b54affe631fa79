// pcapng: a sequence of blocks (type, total length, body, total length again).
// Handled: section headers (either byte order, any number of sections),
// interface descriptions (link type, snaplen, if_tsresol, if_tsoffset),
// enhanced, simple and obsolete packet blocks. Every other block type (name
// resolution, interface statistics, decryption secrets, custom, journal...) is
// length-checked and skipped. Bounds (file-limits.ts): blocks up to 16 MiB,
// 65,536 interfaces per section, packet times from 1970 to the end of 9999.
// https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcapng/
import { CaptureFileError } from './file-error.js';
import { END_PACKET_TIME_MS, FIRST_PACKET_TIME_MS, MAX_BLOCK_BYTES, MAX_INTERFACES, MAX_PACKET_BYTES } from './file-limits.js';
import { type FrameSink, type RecordParser, hex32, u16, u32 } from './file-parser.js';

export const PCAPNG_SHB = 0x0a0d0d0a;
export const PCAPNG_IDB = 0x00000001;
export const PCAPNG_OPB = 0x00000002; // obsolete packet block (pcapng 0.x writers)
export const PCAPNG_SPB = 0x00000003;
export const PCAPNG_EPB = 0x00000006;
export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;

const OPT_ENDOFOPT = 0;
const OPT_IF_TSRESOL = 9;
const OPT_IF_TSOFFSET = 14;

const MIN_BLOCK = 12; // type + length + trailing length
const MIN_SHB = 28;
const MIN_IDB = 20;
const MIN_EPB = 32;
const MIN_OPB = 32;
const MIN_SPB = 16;

/** Timestamp units per second up to which the 16-bit long division below stays exact in doubles. */
const MAX_EXACT_UNITS = 2 ** 37;

export interface Interface {
  readonly linkType: number;
  readonly snaplen: number;
  /** Timestamp units per second (10^n or 2^n from if_tsresol; default 10^6). */
  readonly unitsPerSec: number;
  /** 1 / unitsPerSec. */
  readonly secondsPerUnit: number;
  /** unitsPerSec / 1000: dividing a sub-second remainder by it gives milliseconds. */
  readonly unitsPerMs: number;
  /** if_tsoffset in milliseconds. */
  readonly offsetMs: number;
  /** if_tsresol and if_tsoffset as written ("10^-9", "-10"), for error messages. */
  readonly resolution: string;
  readonly offsetSeconds: string;
}

/** The accepted packet times as text, for error messages. */
const TIME_RANGE = `${new Date(FIRST_PACKET_TIME_MS).toISOString()} to ${new Date(END_PACKET_TIME_MS - 1).toISOString()}`;

function minimumLength(type: number): number {
  switch (type) {
    case PCAPNG_SHB:
      return MIN_SHB;
    case PCAPNG_IDB:
      return MIN_IDB;
    case PCAPNG_EPB:
      return MIN_EPB;
    case PCAPNG_SPB:
      return MIN_SPB;
    case PCAPNG_OPB:
      return MIN_OPB;
    default:
      return MIN_BLOCK;
  }
}

function blockName(type: number): string {
  switch (type) {
    case PCAPNG_SHB:
      return 'section header block';
    case PCAPNG_IDB:
      return 'interface description block';
    case PCAPNG_EPB:
      return 'enhanced packet block';
    case PCAPNG_SPB:
      return 'simple packet block';
    case PCAPNG_OPB:
      return 'packet block';
    default:
      return `block ${hex32(type)}`;
  }
}

/**
 * Milliseconds since the epoch of a 64-bit timestamp (hi, lo) counted in
 * `iface` units. Splits into whole seconds and a remainder exactly, so the
 * result equals what classic pcap gives for the same µs or ns timestamp (a
 * plain double of hi * 2^32 + lo would lose nanoseconds at today's epoch).
 */
export function timestampMs(hi: number, lo: number, iface: Interface): number {
  if (hi >= 0x200000) return timestampMsWide(hi, lo, iface);
  // hi * 2^32 + lo < 2^53: exact as a double. A multiplication by the
  // reciprocal (cheaper than a division) lands within one of the true
  // quotient; the remainder check corrects it.
  const units = iface.unitsPerSec;
  const n = hi * 4294967296 + lo;
  let sec = Math.floor(n * iface.secondsPerUnit);
  let rem = n - sec * units;
  if (rem < 0) {
    sec -= 1;
    rem += units;
  } else if (rem >= units) {
    sec += 1;
    rem -= units;
  }
  return sec * 1000 + rem / iface.unitsPerMs + iface.offsetMs;
}

/** timestampMs for values of 2^53 units and beyond (nanoseconds since 1970 are). */
function timestampMsWide(hi: number, lo: number, iface: Interface): number {
  const units = iface.unitsPerSec;
  if (units > MAX_EXACT_UNITS || !Number.isInteger(units)) {
    // Sub-picosecond resolutions: a double is all we can offer anyway.
    return (hi * 4294967296 + lo) * (1000 / units) + iface.offsetMs;
  }
  // Long division in 16-bit digits: every partial value stays below 2^53.
  let r = hi >>> 16;
  const q3 = Math.floor(r / units);
  r -= q3 * units;
  r = r * 65536 + (hi & 0xffff);
  const q2 = Math.floor(r / units);
  r -= q2 * units;
  r = r * 65536 + (lo >>> 16);
  const q1 = Math.floor(r / units);
  r -= q1 * units;
  r = r * 65536 + (lo & 0xffff);
  const q0 = Math.floor(r / units);
  r -= q0 * units;
  const sec = ((q3 * 65536 + q2) * 65536 + q1) * 65536 + q0;
  return sec * 1000 + r / iface.unitsPerMs + iface.offsetMs;
}

export function createPcapngParser(file: string): RecordParser {
  let le = true;
  let inSection = false;
  let interfaces: Interface[] = [];
  /** Simple packet blocks carry no timestamp: they get the last one seen (0 before any). */
  let lastTime = 0;
  let need = MIN_BLOCK;
  let pending = 'section header block';
  let frames = 0;

  function fail(offset: number, problem: string): never {
    throw new CaptureFileError(file, offset, problem);
  }

  function startSection(buf: Uint8Array, pos: number, base: number): void {
    const magic = u32(buf, pos + 8, true);
    if (magic === PCAPNG_BYTE_ORDER_MAGIC) le = true;
    else if (magic === 0x4d3c2b1a) le = false;
    else fail(base + pos + 8, `bad section byte-order magic ${hex32(u32(buf, pos + 8, false))}`);
    inSection = true;
    interfaces = [];
  }

  function addInterface(buf: Uint8Array, pos: number, blockLen: number, base: number): void {
    if (interfaces.length >= MAX_INTERFACES) {
      fail(base + pos, `interface description block would be the ${interfaces.length + 1}th in its section; at most ${MAX_INTERFACES} are accepted`);
    }
    const linkType = u16(buf, pos + 8, le);
    const snaplen = u32(buf, pos + 12, le);
    let unitsPerSec = 1e6;
    let resolution = '10^-6';
    let offsetMs = 0;
    let offsetSeconds = '0';
    const end = pos + blockLen - 4;
    let p = pos + 16;
    // Options: code(2) length(2) value padded to 4. blockLen is a multiple of 4
    // and so is every step, so fewer than 4 bytes can never be left over.
    while (p + 4 <= end) {
      const code = u16(buf, p, le);
      const len = u16(buf, p + 2, le);
      if (code === OPT_ENDOFOPT) break;
      if (p + 4 + len > end) fail(base + p, `interface option ${code} of length ${len} runs past the end of its block`);
      if (code === OPT_IF_TSRESOL) {
        if (len !== 1) fail(base + p, `if_tsresol option has length ${len}, expected 1`);
        const v = buf[p + 4];
        unitsPerSec = v & 0x80 ? 2 ** (v & 0x7f) : 10 ** v;
        resolution = v & 0x80 ? `2^-${v & 0x7f}` : `10^-${v}`;
      } else if (code === OPT_IF_TSOFFSET) {
        if (len !== 8) fail(base + p, `if_tsoffset option has length ${len}, expected 8`);
        // Signed 64-bit seconds, in the section's byte order.
        const lo = u32(buf, le ? p + 4 : p + 8, le);
        const hi = u32(buf, le ? p + 8 : p + 4, le) | 0;
        offsetMs = (hi * 4294967296 + lo) * 1000;
        offsetSeconds = String((BigInt(hi) << 32n) + BigInt(lo));
      }
      p += 4 + ((len + 3) & ~3);
    }
    interfaces.push({
      linkType,
      snaplen,
      unitsPerSec,
      secondsPerUnit: 1 / unitsPerSec,
      unitsPerMs: unitsPerSec / 1000,
      offsetMs,
      resolution,
      offsetSeconds,
    });
  }

  function parse(buf: Uint8Array, pos: number, end: number, base: number, sink: FrameSink): number {
    const ab = buf.buffer;
    const abOffset = buf.byteOffset;
    // DataView reads compile to single loads in optimised code; `le` may change
    // at a section header, so it is read from the closure on every block.
    const dv = new DataView(ab, abOffset, buf.length);
    let n = frames;
    try {
      for (;;) {
        if (end - pos < MIN_BLOCK) {
          need = MIN_BLOCK;
          pending = inSection ? 'block header' : 'section header block';
          break;
        }
        const type = dv.getUint32(pos, le);
        const at = base + pos;
        if (type === PCAPNG_SHB) startSection(buf, pos, base);
        else if (!inSection) fail(at, `expected a section header block, found ${blockName(type)}`);
        const little = le;
        const blockLen = dv.getUint32(pos + 4, little);
        if (blockLen < MIN_BLOCK || blockLen % 4 !== 0 || blockLen > MAX_BLOCK_BYTES) badLength(type, blockLen, at);
        if (end - pos < blockLen) {
          need = blockLen;
          pending = `${blockName(type)} of ${blockLen} bytes`;
          break;
        }
        const trailer = dv.getUint32(pos + blockLen - 4, little);
        if (trailer !== blockLen) {
          fail(at, `${blockName(type)} total length ${blockLen} does not match its trailing copy ${trailer}`);
        }

        if (type === PCAPNG_EPB) {
          if (blockLen < MIN_EPB) badLength(type, blockLen, at);
          const id = dv.getUint32(pos + 8, little);
          if (id >= interfaces.length) noInterface(id, at, type);
          const i = interfaces[id];
          const caplen = dv.getUint32(pos + 20, little);
          if (caplen > blockLen - MIN_EPB || caplen > MAX_PACKET_BYTES) badCaplen(caplen, blockLen - MIN_EPB, at, type);
          if (sink.closed) break;
          const time = timestampMs(dv.getUint32(pos + 12, little), dv.getUint32(pos + 16, little), i);
          // One comparison pair per packet; also false for NaN.
          if (!(time >= FIRST_PACKET_TIME_MS && time < END_PACKET_TIME_MS)) badTime(type, id, pos, dv, little, at);
          lastTime = time;
          n++;
          sink.next({
            time,
            linkType: i.linkType,
            data: new Uint8Array(ab, abOffset + pos + 28, caplen),
            origLength: dv.getUint32(pos + 24, little),
            offset: at,
          });
        } else if (type === PCAPNG_SPB) {
          if (blockLen < MIN_SPB) badLength(type, blockLen, at);
          if (interfaces.length === 0) noInterface(0, at, type);
          const i = interfaces[0];
          const origLength = dv.getUint32(pos + 8, little);
          // The captured length is implied: the original length cut by the
          // snaplen and by the block's size (whose tail is padding).
          let caplen = Math.min(origLength, blockLen - MIN_SPB);
          if (i.snaplen > 0 && caplen > i.snaplen) caplen = i.snaplen;
          if (caplen > MAX_PACKET_BYTES) badCaplen(caplen, blockLen - MIN_SPB, at, type);
          if (sink.closed) break;
          n++;
          sink.next({ time: lastTime, linkType: i.linkType, data: new Uint8Array(ab, abOffset + pos + 12, caplen), origLength, offset: at });
        } else if (type === PCAPNG_IDB) {
          if (blockLen < MIN_IDB) badLength(type, blockLen, at);
          addInterface(buf, pos, blockLen, base);
        } else if (type === PCAPNG_SHB) {
          if (blockLen < MIN_SHB) badLength(type, blockLen, at);
          const major = dv.getUint16(pos + 12, little);
          if (major !== 1) fail(at + 12, `unsupported pcapng version ${major}.${dv.getUint16(pos + 14, little)} (expected 1.x)`);
        } else if (type === PCAPNG_OPB) {
          if (blockLen < MIN_OPB) badLength(type, blockLen, at);
          const id = dv.getUint16(pos + 8, little);
          if (id >= interfaces.length) noInterface(id, at, type);
          const i = interfaces[id];
          const caplen = dv.getUint32(pos + 20, little);
          if (caplen > blockLen - MIN_OPB || caplen > MAX_PACKET_BYTES) badCaplen(caplen, blockLen - MIN_OPB, at, type);
          if (sink.closed) break;
          const time = timestampMs(dv.getUint32(pos + 12, little), dv.getUint32(pos + 16, little), i);
          if (!(time >= FIRST_PACKET_TIME_MS && time < END_PACKET_TIME_MS)) badTime(type, id, pos, dv, little, at);
          lastTime = time;
          n++;
          sink.next({
            time,
            linkType: i.linkType,
            data: new Uint8Array(ab, abOffset + pos + 28, caplen),
            origLength: dv.getUint32(pos + 24, little),
            offset: at,
          });
        }
        // Any other block type is skipped whole: its length has been checked.
        pos += blockLen;
      }
    } finally {
      frames = n;
    }
    return pos;
  }

  // Error paths live out of line so the hot loop stays small enough to inline well.
  function badLength(type: number, blockLen: number, at: number): never {
    const min = minimumLength(type);
    if (blockLen < min) fail(at, `${blockName(type)} total length ${blockLen} is below the minimum ${min}`);
    if (blockLen % 4 !== 0) fail(at, `${blockName(type)} total length ${blockLen} is not a multiple of 4`);
    fail(at, `${blockName(type)} total length ${blockLen} exceeds the maximum ${MAX_BLOCK_BYTES}`);
  }

  function noInterface(id: number, at: number, type: number): never {
    fail(at, `${blockName(type)} refers to interface ${id}, but the section has ${interfaces.length} interface description(s)`);
  }

  function badTime(type: number, id: number, pos: number, dv: DataView, little: boolean, at: number): never {
    const i = interfaces[id];
    const raw = (BigInt(dv.getUint32(pos + 12, little)) << 32n) | BigInt(dv.getUint32(pos + 16, little));
    fail(
      at,
      `${blockName(type)} timestamp ${raw} (interface ${id}: ${i.resolution} s units, if_tsoffset ${i.offsetSeconds} s) lies outside ${TIME_RANGE}`,
    );
  }

  function badCaplen(caplen: number, room: number, at: number, type: number): never {
    if (caplen > MAX_PACKET_BYTES) fail(at, `${blockName(type)} captured length ${caplen} exceeds the maximum packet size ${MAX_PACKET_BYTES}`);
    fail(at, `${blockName(type)} captured length ${caplen} exceeds the ${room} data bytes the block holds`);
  }

  return {
    parse,
    get need() {
      return need;
    },
    get pending() {
      return pending;
    },
    get frames() {
      return frames;
    },
  };
}
