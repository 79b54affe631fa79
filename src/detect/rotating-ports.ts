// The ports of a rotating door's sequence for one period, derived from the
// door's key (README "Rotating sequences: the derivation", with test vectors in
// test/unit/detect-rotating-ports.test.ts, so a third-party client can compute
// them):
//
//   n        = floor(unix_time_ms / period_ms)            the period number
//   block_i  = HMAC-SHA256(key, "knockwatch rotating v1" || 0x00 || u64be(n) || u32be(i))
//   stream   = block_0 || block_1 || block_2 || ...        (counter mode)
//   words    = the stream read as unsigned 32-bit big-endian integers, in order
//   size     = high - low + 1;  limit = 2^32 - (2^32 mod size)
//   for each word w, until `steps` ports are chosen:
//     skip w if w >= limit                                (no modulo bias)
//     port = low + (w mod size)
//     skip it if already chosen, or if d = |port - previous chosen port| is
//     1 or 65534 (neighbours; 65535 and 1 too, for a sweep that wraps)
//     otherwise choose it
//
// So every port of the range is equally likely, no port repeats within a
// sequence and consecutive steps are never the same or neighbouring ports (a
// sweep cannot walk through them). A range of at least MIN_PORTS_PER_STEP
// ports per step keeps each word's chance of being chosen above 1/4 (the modulo
// rejection drops under 1/2 of the words, the exclusions under 1/4 of the
// range), so a handful of blocks always suffices.
import { createHmac } from 'node:crypto';

export const ROTATING_LABEL = 'knockwatch rotating v1';
/** A range must hold at least this many ports per step (see above). */
export const MIN_PORTS_PER_STEP = 4;
export const MAX_ROTATING_STEPS = 32;

const LABEL_BYTES = Buffer.concat([Buffer.from(ROTATING_LABEL, 'ascii'), Buffer.from([0])]);
// Past this many blocks the derivation has gone wrong (a range check was
// bypassed): with the range rule above 32 steps take about 8 blocks at worst.
const MAX_BLOCKS = 4096;
const TWO_32 = 0x1_0000_0000;

export interface PortRange {
  readonly low: number;
  readonly high: number;
}

/** The period number of a time (ms since the epoch) for a period of `periodMs`. */
export function periodOf(timeMs: number, periodMs: number): number {
  return Math.floor(timeMs / periodMs);
}

/** Why `steps` ports cannot be drawn from `range`, or undefined when they can. */
export function rangeProblem(steps: number, range: PortRange): string | undefined {
  if (!Number.isInteger(steps) || steps < 1 || steps > MAX_ROTATING_STEPS) return `steps must be 1-${MAX_ROTATING_STEPS}, got ${steps}`;
  const { low, high } = range;
  if (!Number.isInteger(low) || !Number.isInteger(high) || low < 1 || high > 65535 || low > high) {
    return `port range ${low}-${high} is not within 1-65535, low to high`;
  }
  const size = high - low + 1;
  if (size < steps * MIN_PORTS_PER_STEP) {
    return `port range ${low}-${high} holds ${size} ports; ${steps} steps need at least ${steps * MIN_PORTS_PER_STEP} (${MIN_PORTS_PER_STEP} per step)`;
  }
  return undefined;
}

function block(key: Uint8Array, period: number, counter: number): Buffer {
  const msg = Buffer.alloc(LABEL_BYTES.length + 12);
  LABEL_BYTES.copy(msg, 0);
  msg.writeBigUInt64BE(BigInt(period), LABEL_BYTES.length);
  msg.writeUInt32BE(counter, LABEL_BYTES.length + 8);
  return createHmac('sha256', key).update(msg).digest();
}

/** The `steps` ports of period `period` (see the derivation above). Throws on a range rangeProblem() refuses. */
export function rotatingPorts(key: Uint8Array, period: number, steps: number, range: PortRange): number[] {
  const problem = rangeProblem(steps, range);
  if (problem !== undefined) throw new RangeError(problem);
  if (!Number.isSafeInteger(period) || period < 0) throw new RangeError(`period number must be a whole number >= 0, got ${period}`);
  if (key.length === 0) throw new RangeError('rotating key is empty');
  const size = range.high - range.low + 1;
  const limit = TWO_32 - (TWO_32 % size);
  const ports: number[] = [];
  for (let counter = 0; counter < MAX_BLOCKS; counter++) {
    const b = block(key, period, counter);
    for (let off = 0; off < b.length; off += 4) {
      const w = b.readUInt32BE(off);
      if (w >= limit) continue;
      const port = range.low + (w % size);
      if (ports.includes(port)) continue;
      if (ports.length > 0) {
        const d = Math.abs(port - ports[ports.length - 1]);
        if (d === 1 || d === 65534) continue;
      }
      ports.push(port);
      if (ports.length === steps) return ports;
    }
  }
  throw new Error(`rotating derivation drew fewer than ${steps} ports from ${MAX_BLOCKS} blocks`);
}
