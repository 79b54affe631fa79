// The byte stream from the capture process (live-child.ts) to knockwatch.
// Every record has a fixed 20-byte little-endian header, then a body:
//
//   offset  size  field
//   0       1     kind: 1 opened, 2 frame, 3 error, 4 counters
//   1       3     zero
//   4       4     opened: link type | frame: captured length | error, counters: body length
//   8       4     frame: length on the wire (0 otherwise)
//   12      8     frame: time, ms since the Unix epoch, float64 (0 otherwise)
//   20      ...   frame: captured bytes | error: UTF-8 JSON {kind, message}
//                 | counters: UTF-8 JSON CaptureCounters
//
// Both ends are here so they cannot drift apart.

export const RecordKind = { OPENED: 1, FRAME: 2, ERROR: 3, COUNTERS: 4 } as const;
export const RECORD_HEADER_BYTES = 20;
/** Largest body accepted: cap copies at most 65535 bytes; anything larger is corruption. */
export const MAX_RECORD_BODY_BYTES = 262_144;

/** Why a live capture failed; decides whether knockwatch retries. */
export type LiveCaptureErrorKind =
  | 'permission' // not root / no CAP_NET_RAW: fatal
  | 'filter' // libpcap rejected the filter: a bug, fatal
  | 'addon' // the cap native addon or libpcap could not be loaded: fatal
  | 'no-device' // the interface does not exist (yet): retried
  | 'not-up' // the interface is down: retried
  | 'died' // the capture process ended on its own (e.g. interface went down): retried
  | 'other'; // anything else libpcap said: retried

export interface CaptureErrorInfo {
  readonly kind: LiveCaptureErrorKind;
  readonly message: string;
}

/**
 * The capture process's own counters, cumulative since it opened. cap 0.2.1
 * has no pcap_stats(), so the kernel ring's drops (ps_drop) cannot be read;
 * these say what the process itself saw and dropped, and what the interface
 * dropped (libpcap's ps_ifdrop, from the same /proc/net/dev column).
 */
export interface CaptureCounters {
  /** Packets cap handed to the process (they passed the kernel filter and the ring). */
  readonly captured: number;
  /** Of them, dropped by the process because its backlog to knockwatch was full. */
  readonly shed: number;
  /** Bytes waiting to be read by knockwatch now, and the most there ever were. */
  readonly backlogBytes: number;
  readonly maxBacklogBytes: number;
  /** Packets the interface (every interface for `any`) dropped on receive since the capture opened. */
  readonly interfaceDrops: number;
}

const COUNTER_FIELDS = ['captured', 'shed', 'backlogBytes', 'maxBacklogBytes', 'interfaceDrops'] as const;

export type ChildRecord =
  | { readonly kind: 'opened'; readonly linkType: number }
  | { readonly kind: 'counters'; readonly counters: CaptureCounters }
  | { readonly kind: 'frame'; readonly time: number; readonly data: Uint8Array; readonly origLength: number }
  | { readonly kind: 'error'; readonly error: CaptureErrorInfo };

const ERROR_KINDS: readonly LiveCaptureErrorKind[] = ['permission', 'filter', 'addon', 'no-device', 'not-up', 'died', 'other'];

/** Sorts a libpcap/cap open() error message into a kind. */
export function classifyOpenError(message: string): LiveCaptureErrorKind {
  if (/permission|not permitted|EPERM|EACCES/i.test(message)) return 'permission';
  if (/filter expression|parse filter|syntax error|illegal token|unknown (host|proto|ip)|bpf/i.test(message)) return 'filter';
  if (/no such device|doesn't exist|SIOCGIFINDEX/i.test(message)) return 'no-device';
  if (/not up|went down|ENETDOWN/i.test(message)) return 'not-up';
  return 'other';
}

// ------------------------------------------------------------------ writer

export interface RecordWriter {
  opened(linkType: number): void;
  /** Copies `length` bytes of `source` (cap's reused buffer) into the batch. */
  frame(time: number, source: Uint8Array, length: number, origLength: number): void;
  error(info: CaptureErrorInfo): void;
  counters(c: CaptureCounters): void;
  /** Bytes waiting in the batch. */
  readonly pending: number;
  /** Hands the batch to `write` (which must consume it synchronously). */
  flush(): void;
}

/**
 * Batches records into one buffer so a burst of packets costs one write.
 * `write` must finish with the bytes before returning: the batch is reused.
 */
export function createRecordWriter(write: (bytes: Uint8Array) => void, capacity = 256 * 1024): RecordWriter {
  if (capacity < RECORD_HEADER_BYTES + MAX_RECORD_BODY_BYTES) capacity = RECORD_HEADER_BYTES + MAX_RECORD_BODY_BYTES;
  const batch = Buffer.alloc(capacity);
  let used = 0;

  const flush = (): void => {
    if (used === 0) return;
    write(batch.subarray(0, used));
    used = 0;
  };
  const header = (kind: number, a: number, b: number, time: number, bodyLength: number): number => {
    if (bodyLength > MAX_RECORD_BODY_BYTES) throw new RangeError(`record body of ${bodyLength} bytes exceeds ${MAX_RECORD_BODY_BYTES}`);
    if (used + RECORD_HEADER_BYTES + bodyLength > capacity) flush();
    const at = used;
    batch.writeUInt32LE(kind, at); // kind byte plus three zero bytes
    batch.writeUInt32LE(a, at + 4);
    batch.writeUInt32LE(b, at + 8);
    batch.writeDoubleLE(time, at + 12);
    used += RECORD_HEADER_BYTES + bodyLength;
    return at + RECORD_HEADER_BYTES;
  };

  return {
    opened(linkType) {
      header(RecordKind.OPENED, linkType, 0, 0, 0);
    },
    frame(time, source, length, origLength) {
      const n = Math.min(length, source.length);
      const body = header(RecordKind.FRAME, n, origLength, time, n);
      batch.set(source.subarray(0, n), body);
    },
    error(info) {
      const json = Buffer.from(JSON.stringify({ kind: info.kind, message: info.message }), 'utf8');
      const body = header(RecordKind.ERROR, json.length, 0, 0, json.length);
      json.copy(batch, body);
    },
    counters(c) {
      const json = Buffer.from(JSON.stringify(Object.fromEntries(COUNTER_FIELDS.map((f) => [f, c[f]]))), 'utf8');
      const body = header(RecordKind.COUNTERS, json.length, 0, 0, json.length);
      json.copy(batch, body);
    },
    get pending() {
      return used;
    },
    flush,
  };
}

// ------------------------------------------------------------------ reader

export class CaptureStreamError extends Error {
  constructor(
    message: string,
    /** Byte offset in the stream of the record at fault. */
    readonly offset: number,
  ) {
    super(message);
    this.name = 'CaptureStreamError';
  }
}

export interface RecordReader {
  /** Feeds bytes as they arrive; calls `emit` for each complete record. Throws CaptureStreamError on corruption. */
  push(chunk: Uint8Array, emit: (record: ChildRecord) => void): void;
  /** Bytes of an incomplete record held back. */
  readonly buffered: number;
}

/** Parses the capture process's stream, whatever way it is split into chunks. */
export function createRecordReader(): RecordReader {
  /** The start of a record split across chunks (never more than one record). */
  let carry: Uint8Array = new Uint8Array(0);
  let consumed = 0; // stream offset of the next byte not yet parsed (carry[0] while carrying)

  // Per frame, one typed-array allocation cost ~4 us under a flood (profiled:
  // the largest capture-side cost, ahead of parsing). Frames of one chunk now
  // share one copy of it: a frame owns its bytes (nothing ever writes there
  // again) and pins at most one chunk of frames, which are gone once decoded.
  const parse = (buf: Uint8Array, emit: (record: ChildRecord) => void): number => {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let slab: Uint8Array | undefined;
    let p = 0;
    while (buf.length - p >= RECORD_HEADER_BYTES) {
      const offset = consumed + p;
      const kind = buf[p];
      if (kind !== RecordKind.OPENED && kind !== RecordKind.FRAME && kind !== RecordKind.ERROR && kind !== RecordKind.COUNTERS) {
        throw new CaptureStreamError(`capture stream: unknown record kind ${kind} at byte offset ${offset}`, offset);
      }
      if (buf[p + 1] !== 0 || buf[p + 2] !== 0 || buf[p + 3] !== 0) {
        throw new CaptureStreamError(`capture stream: reserved header bytes not zero at byte offset ${offset}`, offset);
      }
      const a = view.getUint32(p + 4, true);
      const b = view.getUint32(p + 8, true);
      const time = view.getFloat64(p + 12, true);
      const bodyLength = kind === RecordKind.OPENED ? 0 : a;
      if (bodyLength > MAX_RECORD_BODY_BYTES) {
        throw new CaptureStreamError(`capture stream: record body length ${bodyLength} exceeds ${MAX_RECORD_BODY_BYTES} at byte offset ${offset}`, offset);
      }
      if (buf.length - p < RECORD_HEADER_BYTES + bodyLength) break;
      const body = p + RECORD_HEADER_BYTES;
      if (kind === RecordKind.OPENED) {
        emit({ kind: 'opened', linkType: a });
      } else if (kind === RecordKind.FRAME) {
        if (!Number.isFinite(time)) throw new CaptureStreamError(`capture stream: frame time is not finite at byte offset ${offset}`, offset);
        if (b < a) throw new CaptureStreamError(`capture stream: wire length ${b} below captured length ${a} at byte offset ${offset}`, offset);
        slab ??= copyOf(buf, p, buf.length);
        const at = body - (buf.length - slab.length);
        emit({ kind: 'frame', time, data: slab.subarray(at, at + a), origLength: b });
      } else if (kind === RecordKind.ERROR) {
        emit({ kind: 'error', error: parseErrorBody(buf.subarray(body, body + a), offset) });
      } else {
        emit({ kind: 'counters', counters: parseCountersBody(buf.subarray(body, body + a), offset) });
      }
      p = body + bodyLength;
    }
    consumed += p;
    return p;
  };

  const join = (a: Uint8Array, b: Uint8Array): Uint8Array => {
    const out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    return out;
  };

  return {
    push(chunk, emit) {
      let p = 0;
      if (carry.length > 0) {
        // Complete the one split record from the head of the chunk, rather
        // than copying the whole chunk behind it.
        if (carry.length < RECORD_HEADER_BYTES) {
          p = Math.min(RECORD_HEADER_BYTES - carry.length, chunk.length);
          carry = join(carry, chunk.subarray(0, p));
          if (carry.length < RECORD_HEADER_BYTES) return;
        }
        const bodyLength = carry[0] === RecordKind.OPENED ? 0 : new DataView(carry.buffer, carry.byteOffset, carry.byteLength).getUint32(4, true);
        // An oversized or unknown record: parse() says so, with the offset.
        const total = RECORD_HEADER_BYTES + Math.min(bodyLength, MAX_RECORD_BODY_BYTES + 1);
        if (carry.length < total) {
          const take = Math.min(total - carry.length, chunk.length - p);
          carry = join(carry, chunk.subarray(p, p + take));
          p += take;
        }
        const used = parse(carry, emit);
        if (used < carry.length) {
          // Still incomplete: the chunk ended inside it.
          return;
        }
        carry = new Uint8Array(0);
      }
      const rest = p === 0 ? chunk : chunk.subarray(p);
      const used = parse(rest, emit);
      carry = copyOf(rest, used, rest.length);
    },
    get buffered() {
      return carry.length;
    },
  };
}

/** A plain Uint8Array copy (not a view of the pipe's Buffer). */
function copyOf(buf: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(buf.subarray(start, end));
  return out;
}

/** A record body that must be JSON; `what` names the record in the error. */
function parseJsonBody(bytes: Uint8Array, offset: number, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new CaptureStreamError(`capture stream: ${what} record is not JSON at byte offset ${offset}`, offset);
  }
}

function parseErrorBody(bytes: Uint8Array, offset: number): CaptureErrorInfo {
  const value = parseJsonBody(bytes, offset, 'error');
  const v = value as { kind?: unknown; message?: unknown } | null;
  if (!v || typeof v.message !== 'string' || !ERROR_KINDS.includes(v.kind as LiveCaptureErrorKind)) {
    throw new CaptureStreamError(`capture stream: malformed error record at byte offset ${offset}`, offset);
  }
  return { kind: v.kind as LiveCaptureErrorKind, message: v.message };
}

function parseCountersBody(bytes: Uint8Array, offset: number): CaptureCounters {
  const value = parseJsonBody(bytes, offset, 'counters');
  const v = (value ?? {}) as Record<string, unknown>;
  for (const f of COUNTER_FIELDS) {
    const n = v[f];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
      throw new CaptureStreamError(`capture stream: counters record field '${f}' is not a count at byte offset ${offset}`, offset);
    }
  }
  return {
    captured: v.captured as number,
    shed: v.shed as number,
    backlogBytes: v.backlogBytes as number,
    maxBacklogBytes: v.maxBacklogBytes as number,
    interfaceDrops: v.interfaceDrops as number,
  };
}
