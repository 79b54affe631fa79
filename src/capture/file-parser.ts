// The contract between the chunk reader (file.ts) and the format parsers
// (pcap.ts, pcapng.ts). The reader owns buffers and I/O; a parser only walks
// bytes it is given, emits frames synchronously and says how many more bytes it
// needs. Keeping the parsers free of I/O makes them fast (no per-record promise
// or closure) and lets tests feed them any byte split.
import type { Frame } from '../types.js';

/** Where frames go: an RxJS Subscriber fits this shape. */
export interface FrameSink {
  next(frame: Frame): void;
  /** Checked between records, so an unsubscribe stops parsing mid-chunk. */
  readonly closed: boolean;
}

export interface RecordParser {
  /**
   * Parses every whole header/record/block in buf[pos, end) and returns the
   * position after the last one consumed. `base` is the file offset of buf[0].
   * Throws CaptureFileError on malformed input. The caller must never write to
   * the bytes handed in afterwards: emitted frames are views into them.
   */
  parse(buf: Uint8Array, pos: number, end: number, base: number, sink: FrameSink): number;
  /** Bytes required at the returned position before parse can make progress. */
  readonly need: number;
  /** What those bytes are ("record header", "block of 1200 bytes"...), for truncation errors. */
  readonly pending: string;
  /** Frames emitted so far. */
  readonly frames: number;
}

/** Reads a 32-bit unsigned integer; the caller has bounds-checked p + 4 <= length. */
export function u32(b: Uint8Array, p: number, le: boolean): number {
  return le
    ? (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0
    : ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}

/** Reads a 16-bit unsigned integer; the caller has bounds-checked p + 2 <= length. */
export function u16(b: Uint8Array, p: number, le: boolean): number {
  return le ? b[p] | (b[p + 1] << 8) : (b[p] << 8) | b[p + 1];
}

export function hex32(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
}
