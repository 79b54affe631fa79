// Buffer management shared by every capture-file source (file, stdin, bytes in
// memory): bytes land in large fresh buffers, the format parser walks them and
// emits frames that are views into them. A buffer is only ever appended to
// beyond the bytes already handed out, and a partial record at the end of a
// full buffer is copied to the start of a new one, so a frame's bytes stay
// valid for as long as anyone holds the frame.
import { CaptureFileError } from './file-error.js';
import { type FrameSink, type RecordParser, hex32 } from './file-parser.js';
import { createPcapParser, isPcapMagic } from './pcap.js';
import { PCAPNG_SHB, createPcapngParser } from './pcapng.js';

export type CaptureFormat = 'pcap' | 'pcapng';

/** Default read size: large enough that per-read overhead vanishes, small enough to stay cache-friendly. */
export const DEFAULT_CHUNK_BYTES = 1 << 20;

export interface ChunkReader {
  /** Where the next input bytes go: buf[at, buf.length) is fresh, never handed out. */
  space(): { buf: Uint8Array; at: number };
  /** n bytes were written at the position space() gave: parse them, emitting frames. */
  commit(n: number): void;
  /** Copies bytes in (for sources that own their buffers, like streams) and parses them. */
  write(bytes: Uint8Array): void;
  /** End of input: throws CaptureFileError if it cut a header or record short. */
  finish(): void;
  /** Bytes received so far. */
  readonly bytes: number;
  readonly frames: number;
  readonly format: CaptureFormat | undefined;
}

function detectFormat(file: string, b: Uint8Array, pos: number): { format: CaptureFormat; parser: RecordParser } {
  const magic = ((b[pos] << 24) | (b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3]) >>> 0;
  if (isPcapMagic(magic)) return { format: 'pcap', parser: createPcapParser(file) };
  if (magic === PCAPNG_SHB) return { format: 'pcapng', parser: createPcapngParser(file) };
  if (magic === 0xa1b2cd34 || magic === 0x34cdb2a1) {
    throw new CaptureFileError(file, 0, `modified (Kuznetsov) pcap, magic ${hex32(magic)}, is not supported; convert it with editcap -F pcap`);
  }
  if (b[pos] === 0x1f && b[pos + 1] === 0x8b) {
    throw new CaptureFileError(file, 0, 'gzip-compressed file; decompress it first (e.g. zcat FILE | knockwatch replay -)');
  }
  throw new CaptureFileError(file, 0, `not a pcap or pcapng file: unknown magic ${hex32(magic)}`);
}

export function createChunkReader(file: string, sink: FrameSink, chunkBytes: number = DEFAULT_CHUNK_BYTES): ChunkReader {
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw new RangeError(`chunkBytes must be a positive integer, got ${chunkBytes}`);
  let buf = new Uint8Array(0);
  let pos = 0; // first byte not yet consumed by the parser
  let end = 0; // end of the bytes received into buf
  let base = 0; // file offset of buf[0]
  let parser: RecordParser | undefined;
  let format: CaptureFormat | undefined;

  function run(): void {
    if (!parser) {
      if (end - pos < 4) return;
      ({ format, parser } = detectFormat(file, buf, pos));
    }
    pos = parser.parse(buf, pos, end, base, sink);
  }

  function space(): { buf: Uint8Array; at: number } {
    const need = parser ? parser.need : 4;
    // A new buffer when this one is full or cannot hold the pending record;
    // zero-filled (not allocUnsafe) so a frame's .buffer never exposes stale heap memory.
    if (end === buf.length || buf.length - pos < need) {
      const left = end - pos;
      const next = new Uint8Array(Math.max(chunkBytes, need, left + 1));
      next.set(buf.subarray(pos, end), 0);
      base += pos;
      buf = next;
      pos = 0;
      end = left;
    }
    return { buf, at: end };
  }

  return {
    space,
    commit(n: number): void {
      end += n;
      run();
    },
    write(bytes: Uint8Array): void {
      let i = 0;
      while (i < bytes.length && !sink.closed) {
        const { buf: b, at } = space();
        const n = Math.min(b.length - at, bytes.length - i);
        b.set(bytes.subarray(i, i + n), at);
        i += n;
        end += n;
        run();
      }
    },
    finish(): void {
      if (sink.closed) return;
      const total = base + end;
      if (!parser) {
        throw new CaptureFileError(
          file,
          0,
          total === 0 ? 'empty file: no capture file header' : `truncated file header: the file has only ${total} byte(s)`,
        );
      }
      if (pos < end) {
        throw new CaptureFileError(
          file,
          base + pos,
          `truncated ${parser.pending}: needs ${parser.need} bytes, the file ends after ${end - pos}`,
        );
      }
    },
    get bytes() {
      return base + end;
    },
    get frames() {
      return parser ? parser.frames : 0;
    },
    get format() {
      return format;
    },
  };
}
