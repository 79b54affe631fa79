// Byte builders for capture-file tests: hand-made pcap and pcapng pieces,
// including ones no real writer would produce (wrong lengths, odd options),
// plus a helper that runs a capture Observable to its end.
import type { Observable } from 'rxjs';
import type { Frame } from '../../src/types.js';

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Little helper over DataView that appends fields in one byte order. */
class Bytes {
  private readonly chunks: number[] = [];
  constructor(private readonly le: boolean) {}
  u8(v: number): this {
    this.chunks.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.le ? this.u8(v).u8(v >>> 8) : this.u8(v >>> 8).u8(v);
  }
  u32(v: number): this {
    const b = [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
    for (const x of this.le ? b : b.reverse()) this.u8(x);
    return this;
  }
  bytes(b: Uint8Array): this {
    for (const x of b) this.u8(x);
    return this;
  }
  pad4(): this {
    while (this.chunks.length % 4) this.u8(0);
    return this;
  }
  get length(): number {
    return this.chunks.length;
  }
  done(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

export interface PcapHeaderSpec {
  le?: boolean;
  nano?: boolean;
  snaplen?: number;
  linkType?: number;
  major?: number;
  minor?: number;
}

export function pcapHeader(s: PcapHeaderSpec = {}): Uint8Array {
  const b = new Bytes(s.le ?? true);
  return b
    .u32(s.nano ? 0xa1b23c4d : 0xa1b2c3d4)
    .u16(s.major ?? 2)
    .u16(s.minor ?? 4)
    .u32(0)
    .u32(0)
    .u32(s.snaplen ?? 262144)
    .u32(s.linkType ?? 1)
    .done();
}

export interface PcapRecordSpec {
  le?: boolean;
  sec: number;
  frac: number;
  data: Uint8Array;
  caplen?: number;
  len?: number;
}

export function pcapRecord(s: PcapRecordSpec): Uint8Array {
  return new Bytes(s.le ?? true)
    .u32(s.sec)
    .u32(s.frac)
    .u32(s.caplen ?? s.data.length)
    .u32(s.len ?? s.data.length)
    .bytes(s.data)
    .done();
}

export interface OptionSpec {
  code: number;
  value: Uint8Array;
}

/** A pcapng block of any type; length and trailer can be overridden to build broken ones. */
export function block(le: boolean, type: number, body: Uint8Array, over: { length?: number; trailer?: number } = {}): Uint8Array {
  const padded = new Bytes(le).bytes(body).pad4().done();
  const length = 12 + padded.length;
  return new Bytes(le)
    .u32(type)
    .u32(over.length ?? length)
    .bytes(padded)
    .u32(over.trailer ?? over.length ?? length)
    .done();
}

export function options(le: boolean, opts: readonly OptionSpec[], endOfOpt = true): Uint8Array {
  const b = new Bytes(le);
  for (const o of opts) b.u16(o.code).u16(o.value.length).bytes(o.value).pad4();
  if (endOfOpt && opts.length > 0) b.u16(0).u16(0);
  return b.done();
}

export function shb(le: boolean, s: { major?: number; minor?: number; opts?: OptionSpec[] } = {}): Uint8Array {
  const body = new Bytes(le)
    .u32(0x1a2b3c4d)
    .u16(s.major ?? 1)
    .u16(s.minor ?? 0)
    .u32(0xffffffff)
    .u32(0xffffffff)
    .bytes(options(le, s.opts ?? []))
    .done();
  return block(le, 0x0a0d0d0a, body);
}

export function tsresolOpt(v: number): OptionSpec {
  return { code: 9, value: Uint8Array.of(v) };
}

/** if_tsoffset: signed 64-bit seconds (a bigint reaches the extremes exactly). */
export function tsoffsetOpt(le: boolean, seconds: number | bigint): OptionSpec {
  const v = BigInt.asUintN(64, BigInt(seconds));
  const hi = Number(v >> 32n);
  const lo = Number(v & 0xffffffffn);
  const b = new Bytes(le);
  if (le) b.u32(lo).u32(hi);
  else b.u32(hi).u32(lo);
  return { code: 14, value: b.done() };
}

export function idb(le: boolean, s: { linkType: number; snaplen?: number; opts?: OptionSpec[] }): Uint8Array {
  const body = new Bytes(le)
    .u16(s.linkType)
    .u16(0)
    .u32(s.snaplen ?? 0)
    .bytes(options(le, s.opts ?? []))
    .done();
  return block(le, 1, body);
}

/** Enhanced packet block; `ts` is the 64-bit timestamp in interface units (a bigint, exact). */
export function epb(le: boolean, s: { ifId?: number; ts: bigint; data: Uint8Array; origLen?: number; caplen?: number; opts?: OptionSpec[] }): Uint8Array {
  const body = new Bytes(le)
    .u32(s.ifId ?? 0)
    .u32(Number(s.ts >> 32n))
    .u32(Number(s.ts & 0xffffffffn))
    .u32(s.caplen ?? s.data.length)
    .u32(s.origLen ?? s.data.length)
    .bytes(s.data)
    .pad4()
    .bytes(options(le, s.opts ?? []))
    .done();
  return block(le, 6, body);
}

export function spb(le: boolean, s: { origLen?: number; data: Uint8Array }): Uint8Array {
  const body = new Bytes(le)
    .u32(s.origLen ?? s.data.length)
    .bytes(s.data)
    .done();
  return block(le, 3, body);
}

/** Obsolete packet block (pcapng 0.x writers): 16-bit interface id and drop count. */
export function opb(le: boolean, s: { ifId?: number; ts: bigint; data: Uint8Array }): Uint8Array {
  const body = new Bytes(le)
    .u16(s.ifId ?? 0)
    .u16(0)
    .u32(Number(s.ts >> 32n))
    .u32(Number(s.ts & 0xffffffffn))
    .u32(s.data.length)
    .u32(s.data.length)
    .bytes(s.data)
    .done();
  return block(le, 2, body);
}

/** A section header and `n` minimal interface descriptions (20 bytes each), built fast. */
export function manyIdbs(le: boolean, n: number, linkType = 1): Uint8Array {
  const one = idb(le, { linkType });
  const head = shb(le);
  const out = new Uint8Array(head.length + n * one.length);
  out.set(head, 0);
  for (let i = 0; i < n; i++) out.set(one, head.length + i * one.length);
  return out;
}

export function bytesOf(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

export interface Outcome {
  frames: Frame[];
  error?: Error;
  completed: boolean;
}

/** Subscribes and resolves with every frame and how the Observable ended. */
export function collect(obs: Observable<Frame>): Promise<Outcome> {
  return new Promise((resolve) => {
    const frames: Frame[] = [];
    obs.subscribe({
      next: (f) => frames.push(f),
      error: (error: Error) => resolve({ frames, error, completed: false }),
      complete: () => resolve({ frames, completed: true }),
    });
  });
}

/** Like collect() for Observables that finish synchronously (readCaptureBytes). */
export function collectSync(obs: Observable<Frame>): Outcome {
  const frames: Frame[] = [];
  let out: Outcome | undefined;
  obs.subscribe({
    next: (f) => frames.push(f),
    error: (error: Error) => (out = { frames, error, completed: false }),
    complete: () => (out = { frames, completed: true }),
  });
  if (!out) throw new Error('the Observable did not finish synchronously');
  return out;
}
