// Shared by the decode-*.test.ts files: decode one frame with fresh stats and
// say what happened to it.
import { decodeFrame, createDecodeStats, type DecodeStats } from '../../src/decode/decode.js';
import { toFrame } from '../../src/lab/packets.js';
import type { KnockEvent } from '../../src/types.js';

export interface Outcome {
  readonly event: KnockEvent | undefined;
  readonly stats: DecodeStats;
  /** 'knock', 'ignored:<reason>' or 'malformed:<reason>'. */
  readonly verdict: string;
}

export function decodeOne(data: Uint8Array, linkType: number, origLength = data.length, time = 1000): Outcome {
  const stats = createDecodeStats();
  const event = decodeFrame(toFrame(data, linkType, time, origLength), stats);
  return { event, stats, verdict: verdictOf(stats) };
}

export function verdictOf(stats: DecodeStats): string {
  if (stats.frames !== 1 || stats.knocks + stats.ignored + stats.malformed !== 1) {
    throw new Error(`expected exactly one frame with one outcome, got ${JSON.stringify(stats)}`);
  }
  if (stats.knocks === 1) return 'knock';
  if (stats.ignored === 1) return `ignored:${Object.keys(stats.ignoredReasons)[0]}`;
  return `malformed:${Object.keys(stats.malformedReasons)[0]}`;
}

/**
 * Copy with one byte replaced. When `data` is a raw IPv4 packet and the byte
 * lies in its header, the header checksum is recomputed, so the test reaches
 * the field it changed (a bad checksum is itself a reason to drop).
 */
export function withByte(data: Uint8Array, at: number, value: number): Uint8Array {
  const copy = Uint8Array.from(data);
  copy[at] = value;
  if (data.length >= 20 && data[0] >> 4 === 4 && at < Math.min(20, ((data[0] & 0x0f) << 2) || 20) && at !== 10 && at !== 11) fixIpv4Checksum(copy);
  return copy;
}

/** Recomputes the IPv4 header checksum of a raw packet in place (header length from IHL, at least 20). */
export function fixIpv4Checksum(b: Uint8Array): Uint8Array {
  const headerLen = Math.min(Math.max((b[0] & 0x0f) << 2, 20), b.length & ~1);
  b[10] = b[11] = 0;
  let sum = 0;
  for (let i = 0; i < headerLen; i += 2) sum += (b[i] << 8) | b[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  sum = ~sum & 0xffff;
  b[10] = sum >> 8;
  b[11] = sum & 0xff;
  return b;
}

export const text = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('utf8');
