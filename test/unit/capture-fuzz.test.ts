// Bounded fuzz of the capture-file reader (issue 8, Proof): the recorded
// fixtures and the hostile shapes found so far (timestamps beyond the Date
// range, huge lengths, floods of interface descriptions...) are mutated with
// bit flips, hostile 32-bit values, truncation and repeated slices, then read
// in random chunk sizes and pushed through decoding, detection and output.
// Whatever the bytes: frames, then completion or a CaptureFileError with an
// in-range byte offset; never another exception, never a hang, bounded memory,
// and every accepted time renders. Stops after ~25 s (interruptAfterTimeLimit).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CaptureFileError, END_PACKET_TIME_MS, FIRST_PACKET_TIME_MS, MAX_BLOCK_BYTES, MAX_PACKET_BYTES, readCaptureBytes } from '../../src/capture/file.js';
import { decisionToJSON, decisionToText } from '../../src/cli/format.js';
import { defaultConfig } from '../../src/config/defaults.js';
import { createDecodeStats } from '../../src/decode/decode.js';
import { decodeFrames } from '../../src/decode/operator.js';
import { detectKnocks } from '../../src/detect/operator.js';
import type { Frame } from '../../src/types.js';
import { block, bytesOf, concat, epb, idb, manyIdbs, opb, pcapHeader, pcapRecord, shb, spb, tsoffsetOpt, tsresolOpt } from './capture-builders.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/', import.meta.url));
/** The whole property stops starting new runs after this long. */
const TIME_LIMIT_MS = 25_000;
/** One run reads at most ~1.4 MB: far longer than this means a loop, not work. */
const RUN_LIMIT_MS = 5_000;
/** Heap growth allowed over the whole fuzz: a leak or an unbounded table shows as hundreds of MB. */
const HEAP_LIMIT_BYTES = 256 * 1024 * 1024;
/** Big fixtures (sweeps of 10,000 packets) are cut to this prefix so a run stays in milliseconds. */
const SEED_PREFIX_BYTES = 48 * 1024;

function fixtureSeeds(): [string, Uint8Array][] {
  const files = [
    ...readdirSync(FIXTURES).map((f) => join(FIXTURES, f)),
    ...readdirSync(join(FIXTURES, 'formats')).map((f) => join(FIXTURES, 'formats', f)),
  ].filter((f) => /\.pcap(ng)?$/.test(f));
  expect(files.length).toBeGreaterThan(10);
  return files.map((f) => [f.slice(FIXTURES.length), new Uint8Array(readFileSync(f)).subarray(0, SEED_PREFIX_BYTES)]);
}

/** The hostile shapes of issue 8 and capture-hostile.test.ts, each as a whole file. */
function hostileSeeds(): [string, Uint8Array][] {
  const le = true;
  const pkt = bytesOf(60);
  const ng = (...opts: Parameters<typeof idb>[1]['opts'] & object) => concat(shb(le), idb(le, { linkType: 1, opts }));
  return [
    ['max 64-bit timestamp', concat(ng(), epb(le, { ts: 2n ** 64n - 1n, data: pkt }))],
    ['whole-second resolution', concat(ng(tsresolOpt(0)), epb(le, { ts: 2n ** 40n, data: pkt }))],
    ['2^-127 resolution', concat(ng(tsresolOpt(0xff)), epb(le, { ts: 2n ** 64n - 1n, data: pkt }))],
    ['if_tsoffset 2^63-1', concat(ng(tsoffsetOpt(le, 2n ** 63n - 1n)), epb(le, { ts: 1n, data: pkt }), spb(le, { data: pkt }))],
    ['if_tsoffset -2^63', concat(ng(tsoffsetOpt(le, -(2n ** 63n))), opb(le, { ts: 1n, data: pkt }))],
    ['if_tsoffset -1 s', concat(ng(tsoffsetOpt(le, -1n)), epb(le, { ts: 0n, data: pkt }))],
    ['big-endian, offset and resolution', concat(shb(false), idb(false, { linkType: 1, opts: [tsresolOpt(9), tsoffsetOpt(false, 1 << 30)] }), epb(false, { ts: 2n ** 62n, data: pkt }))],
    ['65,537 interface descriptions', concat(manyIdbs(le, 65_537), epb(le, { ts: 1n, data: pkt }))],
    ['interfaces over two sections', concat(manyIdbs(le, 40_000), manyIdbs(false, 40_000), epb(false, { ifId: 39_999, ts: 1n, data: pkt }))],
    ['zero block length', concat(ng(), block(le, 6, bytesOf(20), { length: 0 }))],
    ['block length 2^32-4', concat(ng(), block(le, 5, bytesOf(8), { length: 0xfffffffc }))],
    ['block length just past the cap', concat(ng(), block(le, 5, bytesOf(8), { length: MAX_BLOCK_BYTES + 4 }))],
    ['caplen 2^32-1', concat(ng(), epb(le, { ts: 1n, data: bytesOf(8), caplen: 0xffffffff }))],
    ['interface id 2^32-1', concat(ng(), epb(le, { ifId: 0xffffffff, ts: 1n, data: pkt }))],
    ['overlong option', concat(shb(le), block(le, 1, Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 200, 0, 6, 0, 0, 0)))],
    ['pcap µs max time', concat(pcapHeader(), pcapRecord({ sec: 0xffffffff, frac: 0xffffffff, data: pkt }))],
    ['pcap ns big-endian max time', concat(pcapHeader({ le: false, nano: true }), pcapRecord({ le: false, sec: 0xffffffff, frac: 0xffffffff, data: pkt }))],
    ['pcap caplen 2^32-1', concat(pcapHeader(), pcapRecord({ sec: 1, frac: 0, data: bytesOf(4), caplen: 0xffffffff }))],
    ['pcap snaplen 0', concat(pcapHeader({ snaplen: 0 }), pcapRecord({ sec: 1, frac: 0, data: bytesOf(4), caplen: MAX_PACKET_BYTES + 1 }))],
  ];
}

const seeds = [...fixtureSeeds(), ...hostileSeeds()];

/** 32-bit values that land on length, type, magic and timestamp fields. */
const HOSTILE_WORDS = [
  0, 1, 2, 3, 4, 6, 12, 16, 20, 24, 28, 32, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff, 0x0a0d0d0a, 0x1a2b3c4d, 0x4d3c2b1a,
  0xa1b2c3d4, 0xa1b23c4d, MAX_PACKET_BYTES, MAX_PACKET_BYTES + 1, MAX_BLOCK_BYTES, MAX_BLOCK_BYTES + 4, 0x00090001, 0x000e0008,
];

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'word'; at: number; value: number; le: boolean }
  | { kind: 'cut'; at: number }
  | { kind: 'repeat'; at: number; length: number; times: number };

const position = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.integer({ min: 0, max: 7 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('word' as const),
      at: position,
      value: fc.oneof(fc.constantFrom(...HOSTILE_WORDS), fc.nat({ max: 0xffffffff })),
      le: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cut' as const), at: position }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('repeat' as const), at: position, length: fc.integer({ min: 4, max: 64 }), times: fc.integer({ min: 2, max: 2000 }) }),
  },
);

function mutate(seed: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let b: Uint8Array = seed.slice();
  for (const m of mutations) {
    if (b.length === 0) break;
    // Words go on 4-byte boundaries, where pcap and pcapng keep their fields.
    const at = Math.floor(m.at * b.length);
    if (m.kind === 'flip') b[at] ^= 1 << m.bit;
    else if (m.kind === 'word') {
      const p = Math.min(at & ~3, b.length - 4);
      if (p >= 0) new DataView(b.buffer, b.byteOffset).setUint32(p, m.value, m.le);
    } else if (m.kind === 'cut') b = b.slice(0, at);
    else {
      const p = at & ~3;
      const slice = b.slice(p, p + m.length);
      b = concat(b.subarray(0, p), ...Array.from({ length: m.times }, () => slice), b.subarray(p));
    }
  }
  return b;
}

interface Run {
  frames: Frame[];
  error?: unknown;
  completed: boolean;
}

/** Reads synchronously, keeping every frame and the way the read ended. */
function readAll(bytes: Uint8Array, chunkBytes: number | undefined): Run {
  const run: Run = { frames: [], completed: false };
  let done = false;
  readCaptureBytes(bytes, 'fuzz.cap', chunkBytes ? { chunkBytes } : {}).subscribe({
    next: (f) => run.frames.push(f),
    error: (e: unknown) => ((run.error = e), (done = true)),
    complete: () => ((run.completed = true), (done = true)),
  });
  expect(done, 'readCaptureBytes finished synchronously').toBe(true);
  return run;
}

/** The whole offline pipeline: decode, detect, render every decision as replay would. */
function replayAll(bytes: Uint8Array): void {
  const doors = defaultConfig().doors;
  let done = false;
  readCaptureBytes(bytes, 'fuzz.cap')
    .pipe(decodeFrames(createDecodeStats()), detectKnocks(doors))
    .subscribe({
      next: (d) => {
        decisionToText(d);
        JSON.stringify(decisionToJSON(d));
      },
      error: (e: unknown) => {
        expect(e).toBeInstanceOf(CaptureFileError);
        done = true;
      },
      complete: () => (done = true),
    });
  expect(done).toBe(true);
}

function check(bytes: Uint8Array, chunkBytes: number | undefined): void {
  const started = performance.now();
  // Byte-sized reads of a megabyte-sized input only burn the time budget.
  if (chunkBytes !== undefined && chunkBytes < 64 && bytes.length > 64 * 1024) chunkBytes = 4096;
  const run = readAll(bytes, chunkBytes);
  if (!run.completed) {
    expect(run.error).toBeInstanceOf(CaptureFileError);
    const err = run.error as CaptureFileError;
    expect(err.offset).toBeGreaterThanOrEqual(0);
    expect(err.offset).toBeLessThanOrEqual(bytes.length);
    expect(err.message.startsWith(`fuzz.cap: byte ${err.offset}: `)).toBe(true);
  }
  // Plain checks: expect() per frame would cost more than the reading itself.
  for (const f of run.frames) {
    if (!(f.time >= FIRST_PACKET_TIME_MS && f.time < END_PACKET_TIME_MS)) throw new Error(`frame at byte ${f.offset}: time ${f.time} out of range`);
    new Date(f.time).toISOString();
    if (f.data.length > MAX_PACKET_BYTES || f.offset + f.data.length > bytes.length) throw new Error(`frame at byte ${f.offset}: ${f.data.length} bytes run past the file`);
  }
  replayAll(bytes);
  expect(performance.now() - started, 'one run').toBeLessThan(RUN_LIMIT_MS);
}

describe('capture reader fuzz: fixtures and hostile shapes, mutated', () => {
  it('frames, then completion or a CaptureFileError with a byte offset; never another exception, a hang or unbounded memory', () => {
    const heapBefore = process.memoryUsage().heapUsed;
    let runs = 0;
    const result = fc.check(
      fc.property(
        fc.nat({ max: seeds.length - 1 }),
        fc.array(mutation, { maxLength: 6 }),
        fc.option(fc.constantFrom(1, 3, 7, 16, 64, 4096), { nil: undefined }),
        (seed, mutations, chunkBytes) => {
          runs++;
          check(mutate(seeds[seed][1], mutations), chunkBytes);
          expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(HEAP_LIMIT_BYTES);
        },
      ),
      {
        numRuns: 20_000,
        interruptAfterTimeLimit: TIME_LIMIT_MS,
        markInterruptAsFailure: false,
        // Every seed unmutated first, so each hostile shape is always checked.
        examples: seeds.map((_, i) => [i, [], undefined] as [number, Mutation[], number | undefined]),
      },
    );
    if (result.failed) {
      const [seed, mutations, chunk] = result.counterexample ?? [];
      throw new Error(
        `seed ${seeds[seed as number]?.[0]} with ${JSON.stringify(mutations)}, chunkBytes ${chunk}: ${String(result.errorInstance)}\n` +
          `(replay with fast-check seed ${result.seed}, path ${result.counterexamplePath})`,
      );
    }
    console.log(`capture fuzz: ${runs} runs over ${seeds.length} seeds`);
    expect(runs).toBeGreaterThanOrEqual(seeds.length);
  }, 120_000);
});
