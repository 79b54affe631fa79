// Packet times at the edges: a pcapng timestamp, resolution and offset can put
// a packet anywhere in ±2^64 units, far outside what a JS Date holds. The reader
// accepts 1970-01-01 to 9999-12-31 and reports anything else as a
// CaptureFileError at the packet's block; every time it accepts must then go
// through decoding, detection and output without an exception.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { CaptureFileError, readCaptureBytes } from '../../src/capture/file.js';
import { encodePcapng } from '../../src/capture/write.js';
import { decisionToJSON, decisionToText } from '../../src/cli/format.js';
import { defaultConfig } from '../../src/config/defaults.js';
import { createDecodeStats } from '../../src/decode/decode.js';
import { decodeFrames } from '../../src/decode/operator.js';
import { detectKnocks } from '../../src/detect/operator.js';
import type { Decision } from '../../src/types.js';
import { bytesOf, collectSync, concat, epb, idb, opb, type Outcome, pcapHeader, pcapRecord, shb, spb, tsoffsetOpt, tsresolOpt } from './capture-builders.js';

/** The last millisecond the reader accepts, and so the last one ISO 8601 writes with a 4-digit year. */
const LAST_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const U64_MAX = 2n ** 64n - 1n;
const I64_MAX = 2n ** 63n - 1n;
const I64_MIN = -(2n ** 63n);
const T0 = 1_700_000_000n;
const FIXTURES = fileURLToPath(new URL('../../fixtures/', import.meta.url));

function read(bytes: Uint8Array): Outcome {
  return collectSync(readCaptureBytes(bytes, 'ts.cap'));
}

function expectTimeError(out: Outcome, offset: number, message: RegExp): void {
  expect(out.completed).toBe(false);
  expect(out.error).toBeInstanceOf(CaptureFileError);
  const err = out.error as CaptureFileError;
  expect(err.offset).toBe(offset);
  expect(err.message.startsWith(`ts.cap: byte ${offset}: `)).toBe(true);
  expect(err.message).toMatch(message);
  expect(err.message).toMatch(/outside 1970-01-01T00:00:00\.000Z to 9999-12-31T23:59:59\.999Z/);
}

/** Every way a time can leave the reader must render: text, JSON and the ISO string itself. */
function expectRenders(time: number): void {
  expect(Number.isFinite(time)).toBe(true);
  expect(() => new Date(time).toISOString()).not.toThrow();
}

describe('pcapng timestamps outside the Date range are a CaptureFileError at the packet', () => {
  const le = true;
  const head = (...opts: Parameters<typeof idb>[1]['opts'] & object) => concat(shb(le), idb(le, { linkType: 1, opts }));
  const at = 28 + 20; // the first packet block after shb + an option-less idb

  it('the largest 64-bit timestamp at the default microsecond resolution', () => {
    const out = read(concat(head(), epb(le, { ts: 5n, data: bytesOf(4) }), epb(le, { ts: U64_MAX, data: bytesOf(4) })));
    expect(out.frames).toHaveLength(1);
    expectTimeError(out, at + 36, /^ts\.cap: byte 84: enhanced packet block timestamp 18446744073709551615 \(interface 0: 10\^-6 s units, if_tsoffset 0 s\) lies outside/);
  });

  it('whole-second resolutions (if_tsresol 10^0 and 2^0) with big timestamps', () => {
    for (const resol of [0, 0x80]) {
      const h = head(tsresolOpt(resol));
      expectTimeError(read(concat(h, epb(le, { ts: 2n ** 40n, data: bytesOf(4) }))), h.length, /timestamp 1099511627776 \(interface 0: (10\^-0|2\^-0) s units/);
    }
  });

  it('huge positive and negative if_tsoffset, and a small negative one before 1970', () => {
    for (const [offset, ts] of [
      [I64_MAX, T0 * 1_000_000n],
      [I64_MIN, T0 * 1_000_000n],
      [-T0 - 1n, T0 * 1_000_000n],
    ] as const) {
      const h = head(tsoffsetOpt(le, offset));
      expectTimeError(read(concat(h, epb(le, { ts, data: bytesOf(4) }))), h.length, new RegExp(`if_tsoffset ${offset} s\\) lies outside`));
    }
  });

  it('obsolete packet blocks are checked the same way; big-endian sections too', () => {
    const out = read(concat(head(), opb(le, { ts: U64_MAX, data: bytesOf(4) })));
    expectTimeError(out, at, /^ts\.cap: byte 48: packet block timestamp 18446744073709551615/);
    const be = concat(shb(false), idb(false, { linkType: 1, opts: [tsresolOpt(0), tsoffsetOpt(false, I64_MAX)] }));
    expectTimeError(read(concat(be, epb(false, { ts: 1n, data: bytesOf(4) }))), be.length, /if_tsoffset 9223372036854775807 s/);
  });

  it('the edges themselves: 1970-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z are accepted, 10000-01-01 is not', () => {
    // Microseconds: nanoseconds in 64 bits end in 2554.
    const h = head();
    const endUs = BigInt(LAST_MS + 1) * 1000n;
    const ok = read(concat(h, epb(le, { ts: 0n, data: bytesOf(4) }), epb(le, { ts: endUs - 1000n, data: bytesOf(4) }), spb(le, { data: bytesOf(4) })));
    expect(ok.error).toBeUndefined();
    expect(ok.frames.map((f) => f.time)).toEqual([0, LAST_MS, LAST_MS]);
    for (const f of ok.frames) expectRenders(f.time);
    expectTimeError(read(concat(h, epb(le, { ts: endUs, data: bytesOf(4) }))), h.length, /timestamp 253402300800000000 /);
    const before = head(tsoffsetOpt(le, -1n));
    expectTimeError(read(concat(before, epb(le, { ts: 999_999n, data: bytesOf(4) }))), before.length, /if_tsoffset -1 s/);
  });

  it('extreme resolutions with ordinary timestamps stay exact enough and in range', () => {
    for (const resol of [127, 0xff]) {
      const out = read(concat(head(tsresolOpt(resol)), epb(le, { ts: U64_MAX, data: bytesOf(4) })));
      expect(out.error).toBeUndefined();
      expectRenders(out.frames[0].time);
    }
  });
});

describe('classic pcap: every timestamp it can hold is accepted and renders', () => {
  for (const nano of [false, true]) {
    for (const le of [true, false]) {
      it(`${nano ? 'nano' : 'micro'}second, ${le ? 'little' : 'big'}-endian: largest seconds and fraction fields`, () => {
        const out = read(
          concat(
            pcapHeader({ le, nano }),
            pcapRecord({ le, sec: 0xffffffff, frac: 0xffffffff, data: bytesOf(4) }),
            pcapRecord({ le, sec: 0, frac: 0, data: bytesOf(4) }),
          ),
        );
        expect(out.error).toBeUndefined();
        expect(out.frames).toHaveLength(2);
        for (const f of out.frames) expectRenders(f.time);
        expect(out.frames[0].time).toBe(0xffffffff * 1000 + 0xffffffff / (nano ? 1e6 : 1e3));
      });
    }
  }
});

describe('an accepted time never crashes a later stage', () => {
  /** The ipv4-knock fixture (opens door ssh), re-timed so its last packet lands on `last`. */
  async function decisionsAt(last: number): Promise<Decision[]> {
    const frames = collectSync(readCaptureBytes(readFileSync(`${FIXTURES}ipv4-knock.pcap`), 'ipv4-knock.pcap')).frames;
    const shift = last - frames[frames.length - 1].time;
    const moved = frames.map((f) => ({ time: f.time + shift, data: f.data }));
    // Microseconds: 64 bits of nanoseconds end in 2554.
    const bytes = encodePcapng(moved, { interfaces: [{ linkType: frames[0].linkType, tsresol: 6 }] });
    return lastValueFrom(
      readCaptureBytes(bytes, 'late.pcapng').pipe(decodeFrames(createDecodeStats()), detectKnocks(defaultConfig().doors), toArray()),
    );
  }

  it('a door opened in the last millisecond of 9999 renders its open and close (until in year 10000)', async () => {
    const decisions = await decisionsAt(LAST_MS);
    expect(decisions.map((d) => d.type).filter((t) => t === 'open' || t === 'close')).toEqual(['open', 'close']);
    for (const d of decisions) {
      expect(decisionToText(d)).toMatch(/^(9999-12-31T23:59:|\+010000-01-01T00:00:)/);
      expect(() => JSON.stringify(decisionToJSON(d))).not.toThrow();
    }
    const open = decisions.find((d) => d.type === 'open');
    expect(decisionToJSON(open as Decision).time).toMatch(/^9999-12-31T23:59:/);
    expect(decisionToJSON(open as Decision).until).toMatch(/^\+010000-01-01T00:00:/);
  });

  it('the output formats render any number, even ones no stage should produce', () => {
    for (const time of [Number.NaN, Infinity, -Infinity, 8.64e15 + 1, -1e300]) {
      const open: Decision = { type: 'open', time, door: 'ssh', source: '192.0.2.1', ports: [{ port: 22, protocol: 'tcp' }], until: time, refreshed: false };
      expect(decisionToText(open)).toContain(String(time));
      expect(JSON.stringify(decisionToJSON(open))).toContain(String(time));
    }
  });
});
