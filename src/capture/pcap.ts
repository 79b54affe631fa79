// Classic libpcap file format: a 24-byte file header, then records of a
// 16-byte header (seconds, micro- or nanoseconds, captured length, original
// length) followed by the captured bytes. Both byte orders, both resolutions.
// https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcap/
import { CaptureFileError } from './file-error.js';
import { MAX_PACKET_BYTES } from './file-limits.js';
import { type FrameSink, type RecordParser, hex32, u16, u32 } from './file-parser.js';

export const PCAP_FILE_HEADER_BYTES = 24;
export const PCAP_RECORD_HEADER_BYTES = 16;

/** Magic numbers as a big-endian read of the first four bytes of the file. */
export const PCAP_MAGIC_MICRO = 0xa1b2c3d4;
export const PCAP_MAGIC_NANO = 0xa1b23c4d;
const PCAP_MAGIC_MICRO_SWAPPED = 0xd4c3b2a1;
const PCAP_MAGIC_NANO_SWAPPED = 0x4d3cb2a1;

/** libpcap's LT_LINKTYPE(): the upper bits of the field carry FCS information. */
const LINKTYPE_MASK = 0x03ffffff;

export function isPcapMagic(bigEndianRead: number): boolean {
  return (
    bigEndianRead === PCAP_MAGIC_MICRO ||
    bigEndianRead === PCAP_MAGIC_NANO ||
    bigEndianRead === PCAP_MAGIC_MICRO_SWAPPED ||
    bigEndianRead === PCAP_MAGIC_NANO_SWAPPED
  );
}

export function createPcapParser(file: string): RecordParser {
  let headerDone = false;
  let le = true;
  /** Divisor turning the fraction field into milliseconds: 1e3 (us) or 1e6 (ns). */
  let fracPerMs = 1000;
  let linkType = 0;
  let maxCaplen = MAX_PACKET_BYTES;
  let capLimitName = '';
  let need = PCAP_FILE_HEADER_BYTES;
  let pending = 'file header';
  let frames = 0;

  function parseHeader(buf: Uint8Array, pos: number, base: number): void {
    const magic = u32(buf, pos, false);
    if (magic === PCAP_MAGIC_MICRO || magic === PCAP_MAGIC_NANO) le = false;
    else if (magic === PCAP_MAGIC_MICRO_SWAPPED || magic === PCAP_MAGIC_NANO_SWAPPED) le = true;
    else throw new CaptureFileError(file, base + pos, `bad pcap magic ${hex32(magic)}`);
    fracPerMs = magic === PCAP_MAGIC_NANO || magic === PCAP_MAGIC_NANO_SWAPPED ? 1e6 : 1e3;
    const major = u16(buf, pos + 4, le);
    const minor = u16(buf, pos + 6, le);
    if (major !== 2) throw new CaptureFileError(file, base + pos + 4, `unsupported pcap version ${major}.${minor} (expected 2.x)`);
    const snaplen = u32(buf, pos + 16, le);
    // A snaplen of 0 or beyond libpcap's maximum is treated as "the maximum":
    // the bound exists so a corrupt caplen can never make us allocate blindly.
    if (snaplen > 0 && snaplen <= MAX_PACKET_BYTES) {
      maxCaplen = snaplen;
      capLimitName = `snaplen ${snaplen}`;
    } else {
      maxCaplen = MAX_PACKET_BYTES;
      capLimitName = `the maximum packet size ${MAX_PACKET_BYTES}`;
    }
    linkType = u32(buf, pos + 20, le) & LINKTYPE_MASK;
    headerDone = true;
  }

  function parse(buf: Uint8Array, pos: number, end: number, base: number, sink: FrameSink): number {
    if (!headerDone) {
      if (end - pos < PCAP_FILE_HEADER_BYTES) return pos;
      parseHeader(buf, pos, base);
      pos += PCAP_FILE_HEADER_BYTES;
    }
    // Hot loop: locals only, DataView reads (single loads once optimised), one object per frame.
    const ab = buf.buffer;
    const abOffset = buf.byteOffset;
    const dv = new DataView(ab, abOffset, buf.length);
    const little = le;
    const div = fracPerMs;
    const lt = linkType;
    const limit = maxCaplen;
    let n = frames;
    try {
      for (;;) {
        if (end - pos < PCAP_RECORD_HEADER_BYTES) {
          need = PCAP_RECORD_HEADER_BYTES;
          pending = 'record header';
          break;
        }
        const sec = dv.getUint32(pos, little);
        const frac = dv.getUint32(pos + 4, little);
        const caplen = dv.getUint32(pos + 8, little);
        const len = dv.getUint32(pos + 12, little);
        if (caplen > limit) {
          throw new CaptureFileError(file, base + pos, `record caplen ${caplen} exceeds ${capLimitName}`);
        }
        const total = PCAP_RECORD_HEADER_BYTES + caplen;
        if (end - pos < total) {
          need = total;
          pending = `record of ${total} bytes (caplen ${caplen})`;
          break;
        }
        if (sink.closed) break;
        n++;
        // Unsigned 32-bit seconds and fraction (even an out-of-range one) end at
        // 2106-02-07T07:39:49Z, inside the packet times readers accept
        // (file-limits.ts): unlike pcapng, no range check is needed here.
        sink.next({
          time: sec * 1000 + frac / div,
          linkType: lt,
          data: new Uint8Array(ab, abOffset + pos + PCAP_RECORD_HEADER_BYTES, caplen),
          origLength: len,
          offset: base + pos,
        });
        pos += total;
      }
    } finally {
      frames = n;
    }
    return pos;
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
