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

/** Copy with one byte replaced. */
export function withByte(data: Uint8Array, at: number, value: number): Uint8Array {
  const copy = Uint8Array.from(data);
  copy[at] = value;
  return copy;
}

export const text = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('utf8');
