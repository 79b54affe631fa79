// Minimal classic-pcap reading and writing for the decoder's real-capture
// tests (the project's capture-file reader lives in src/capture/ and is tested
// on its own; this keeps the decoder tests independent of it).
import type { Frame } from '../../src/types.js';

export interface PcapContents {
  readonly linkType: number;
  readonly frames: Frame[];
}

/** Classic pcap, microsecond or nanosecond, either byte order. */
export function readPcap(buf: Uint8Array, name: string): PcapContents {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 24) throw new Error(`${name}: ${buf.length} bytes, shorter than a pcap header`);
  const magicLE = view.getUint32(0, true);
  const little = magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d;
  const magic = view.getUint32(0, little);
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) throw new Error(`${name}: byte 0: not a classic pcap magic (0x${magicLE.toString(16)})`);
  const fraction = magic === 0xa1b23c4d ? 1e6 : 1e3; // units per millisecond
  const linkType = view.getUint32(20, little) & 0x0fffffff;
  const frames: Frame[] = [];
  let at = 24;
  while (at < buf.length) {
    if (at + 16 > buf.length) throw new Error(`${name}: byte ${at}: truncated record header`);
    const sec = view.getUint32(at, little);
    const frac = view.getUint32(at + 4, little);
    const incl = view.getUint32(at + 8, little);
    const orig = view.getUint32(at + 12, little);
    if (at + 16 + incl > buf.length) throw new Error(`${name}: byte ${at}: record of ${incl} bytes runs past the end`);
    frames.push({ time: sec * 1000 + frac / fraction, linkType, data: buf.subarray(at + 16, at + 16 + incl), origLength: orig, offset: at });
    at += 16 + incl;
  }
  return { linkType, frames };
}

/** Microsecond pcap, little-endian, snaplen 262144. */
export function writePcap(frames: readonly Uint8Array[], linkType: number, startMs = 1_700_000_000_000): Buffer {
  const size = 24 + frames.reduce((n, f) => n + 16 + f.length, 0);
  const out = Buffer.alloc(size);
  out.writeUInt32LE(0xa1b2c3d4, 0);
  out.writeUInt16LE(2, 4);
  out.writeUInt16LE(4, 6);
  out.writeUInt32LE(262144, 16);
  out.writeUInt32LE(linkType, 20);
  let at = 24;
  frames.forEach((f, i) => {
    const ms = startMs + i;
    out.writeUInt32LE(Math.floor(ms / 1000), at);
    out.writeUInt32LE((ms % 1000) * 1000, at + 4);
    out.writeUInt32LE(f.length, at + 8);
    out.writeUInt32LE(f.length, at + 12);
    out.set(f, at + 16);
    at += 16 + f.length;
  });
  return out;
}
