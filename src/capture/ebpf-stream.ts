// Decoder for the record stream that the eBPF loader (ebpf/loader.c) writes on
// its stdout. Pure and synchronous: chunks go in as the pipe delivers them (a
// record may be split anywhere), records come out. Any byte that contradicts
// the format is an error naming its offset in the stream, because a corrupt
// stream means the loader and this decoder disagree and nothing after it can
// be trusted.
//
// Each record, little-endian: [u32 body length][u16 type][u16 flags = 0][body]
//   1 FRAME    u64 realtime ns, u32 wire length, u32 ifindex, u16 link type,
//              u16 0, then the captured bytes (the rest of the body)
//   2 COUNTERS u64 seen, candidates, events, drops
//   3 READY    u32 count, then per interface: u32 ifindex, u16 link type,
//              u16 name length, name (ASCII)
import type { Frame } from '../types.js';

export const EbpfRecordType = { FRAME: 1, COUNTERS: 2, READY: 3 } as const;

/** Record header bytes. */
export const EBPF_HEADER_BYTES = 8;
/** Fixed part of a FRAME body before the packet bytes. */
export const EBPF_FRAME_FIXED_BYTES = 20;
/** Largest body accepted: bounds what a corrupt length can make us buffer. */
export const EBPF_MAX_BODY_BYTES = 65_536;

/** Link types the eBPF program emits (pcap LINKTYPE_ETHERNET, LINKTYPE_RAW). */
const LINK_TYPES: readonly number[] = [1, 101];

/** Cumulative kernel-side counters, summed over CPUs. */
export interface EbpfCounters {
  /** Packets that reached the program. */
  readonly seen: number;
  /** Of those, knocks by the rule of decode/decode.ts (TCP SYN / UDP the host takes) to a local address. */
  readonly candidates: number;
  /** Events sent to user space. */
  readonly events: number;
  /** Events lost because the ring buffer was full. */
  readonly drops: number;
}

export interface EbpfInterface {
  readonly name: string;
  readonly ifindex: number;
  readonly linkType: number;
}

export type LoaderRecord =
  | { readonly type: 'frame'; readonly frame: Frame; readonly ifindex: number }
  | { readonly type: 'counters'; readonly counters: EbpfCounters }
  | { readonly type: 'ready'; readonly interfaces: readonly EbpfInterface[] };

export class EbpfStreamError extends Error {
  /** Byte offset in the stream of the record at fault. */
  readonly offset: number;

  constructor(offset: number, problem: string) {
    super(`eBPF loader output: byte ${offset}: ${problem}`);
    this.name = 'EbpfStreamError';
    this.offset = offset;
  }
}

export interface LoaderStreamDecoder {
  /** Decodes every record completed by this chunk. Throws EbpfStreamError. */
  push(chunk: Uint8Array): LoaderRecord[];
  /** Call at end of stream: throws if it ended inside a record. */
  finish(): void;
  /** Bytes consumed so far (offset of the next record). */
  readonly offset: number;
}

export function createLoaderStreamDecoder(): LoaderStreamDecoder {
  let pending: Uint8Array = new Uint8Array(0);
  let base = 0;

  return {
    get offset(): number {
      return base;
    },
    push(chunk: Uint8Array): LoaderRecord[] {
      const buf = pending.length === 0 ? chunk : concat(pending, chunk);
      const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      const out: LoaderRecord[] = [];
      let pos = 0;
      while (buf.length - pos >= EBPF_HEADER_BYTES) {
        const at = base + pos;
        const bodyLength = view.getUint32(pos, true);
        const type = view.getUint16(pos + 4, true);
        const flags = view.getUint16(pos + 6, true);
        if (flags !== 0) throw new EbpfStreamError(at, `record flags are ${flags}, expected 0`);
        if (bodyLength > EBPF_MAX_BODY_BYTES) {
          throw new EbpfStreamError(at, `record length ${bodyLength} exceeds ${EBPF_MAX_BODY_BYTES}`);
        }
        if (buf.length - pos - EBPF_HEADER_BYTES < bodyLength) break;
        out.push(decodeBody(buf, view, pos + EBPF_HEADER_BYTES, bodyLength, type, at));
        pos += EBPF_HEADER_BYTES + bodyLength;
      }
      // Keep only the unfinished tail, copied so the chunk itself is not retained.
      pending = buf.slice(pos);
      base += pos;
      return out;
    },
    finish(): void {
      if (pending.length > 0) {
        throw new EbpfStreamError(base, `stream ended inside a record (${pending.length} bytes of it received)`);
      }
    },
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a, 0);
  joined.set(b, a.length);
  return joined;
}

function decodeBody(buf: Uint8Array, view: DataView, start: number, length: number, type: number, at: number): LoaderRecord {
  switch (type) {
    case EbpfRecordType.FRAME:
      return decodeFrame(buf, view, start, length, at);
    case EbpfRecordType.COUNTERS:
      if (length !== 32) throw new EbpfStreamError(at, `counters record has ${length} bytes, expected 32`);
      return {
        type: 'counters',
        counters: {
          seen: Number(view.getBigUint64(start, true)),
          candidates: Number(view.getBigUint64(start + 8, true)),
          events: Number(view.getBigUint64(start + 16, true)),
          drops: Number(view.getBigUint64(start + 24, true)),
        },
      };
    case EbpfRecordType.READY:
      return decodeReady(buf, view, start, length, at);
    default:
      throw new EbpfStreamError(at, `unknown record type ${type}`);
  }
}

function decodeFrame(buf: Uint8Array, view: DataView, start: number, length: number, at: number): LoaderRecord {
  if (length <= EBPF_FRAME_FIXED_BYTES) {
    throw new EbpfStreamError(at, `frame record has ${length} bytes, expected more than ${EBPF_FRAME_FIXED_BYTES}`);
  }
  const timeNs = view.getBigUint64(start, true);
  const wireLength = view.getUint32(start + 8, true);
  const ifindex = view.getUint32(start + 12, true);
  const linkType = view.getUint16(start + 16, true);
  const reserved = view.getUint16(start + 18, true);
  const captured = length - EBPF_FRAME_FIXED_BYTES;
  if (!LINK_TYPES.includes(linkType)) throw new EbpfStreamError(at, `frame link type ${linkType} is not 1 or 101`);
  if (reserved !== 0) throw new EbpfStreamError(at, `frame reserved field is ${reserved}, expected 0`);
  if (wireLength < captured) {
    throw new EbpfStreamError(at, `frame wire length ${wireLength} is less than its ${captured} captured bytes`);
  }
  const dataStart = start + EBPF_FRAME_FIXED_BYTES;
  return {
    type: 'frame',
    ifindex,
    frame: {
      // ns since the epoch exceeds 2^53; as a double it keeps ~0.25 us, which
      // is the resolution Frame.time promises anyway.
      time: Number(timeNs) / 1e6,
      linkType,
      data: buf.slice(dataStart, dataStart + captured),
      origLength: wireLength,
      offset: -1,
    },
  };
}

function decodeReady(buf: Uint8Array, view: DataView, start: number, length: number, at: number): LoaderRecord {
  const end = start + length;
  if (length < 4) throw new EbpfStreamError(at, `ready record has ${length} bytes, expected at least 4`);
  const count = view.getUint32(start, true);
  const interfaces: EbpfInterface[] = [];
  let p = start + 4;
  for (let i = 0; i < count; i++) {
    if (p + 8 > end) throw new EbpfStreamError(at, `ready record ends inside interface ${i} of ${count}`);
    const ifindex = view.getUint32(p, true);
    const linkType = view.getUint16(p + 4, true);
    const nameLength = view.getUint16(p + 6, true);
    p += 8;
    if (p + nameLength > end) throw new EbpfStreamError(at, `ready record ends inside the name of interface ${i}`);
    const name = new TextDecoder('ascii').decode(buf.subarray(p, p + nameLength));
    p += nameLength;
    interfaces.push({ name, ifindex, linkType });
  }
  if (p !== end) throw new EbpfStreamError(at, `ready record has ${end - p} bytes after its ${count} interfaces`);
  return { type: 'ready', interfaces };
}
