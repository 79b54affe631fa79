// Broken and hostile capture files: every one must end in a CaptureFileError
// naming the byte offset (or complete, when the cut falls between records),
// never throw out of subscribe, never hang, never allocate what a corrupt
// length asks for.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { CaptureFileError, MAX_BLOCK_BYTES, readCaptureBytes, readCaptureFile } from '../../src/capture/file.js';
import {
  block,
  bytesOf,
  collect,
  collectSync,
  concat,
  epb,
  idb,
  manyIdbs,
  type Outcome,
  pcapHeader,
  pcapRecord,
  shb,
  spb,
  tsresolOpt,
} from './capture-builders.js';

const T0 = 1_700_000_000;
const dir = mkdtempSync(join(tmpdir(), 'kw-capture-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function readBytes(bytes: Uint8Array, chunkBytes?: number): Outcome {
  return collectSync(readCaptureBytes(bytes, 'bad.cap', chunkBytes ? { chunkBytes } : {}));
}

function expectError(out: Outcome, offset: number, message: RegExp): CaptureFileError {
  expect(out.completed).toBe(false);
  expect(out.error).toBeInstanceOf(CaptureFileError);
  const err = out.error as CaptureFileError;
  expect(err.file).toBe('bad.cap');
  expect(err.offset).toBe(offset);
  expect(err.message).toMatch(message);
  expect(err.message.startsWith(`bad.cap: byte ${offset}: `)).toBe(true);
  return err;
}

/** A small pcap and the file offset where each of its records ends. */
function smallPcap(): { bytes: Uint8Array; ends: number[] } {
  const parts = [pcapHeader(), ...[40, 0, 61, 17].map((n, i) => pcapRecord({ sec: T0 + i, frac: i, data: bytesOf(n, i) }))];
  const ends: number[] = [];
  let at = 0;
  for (const p of parts) ends.push((at += p.length));
  return { bytes: concat(...parts), ends };
}

/** A small pcapng: every block kind, and where each block ends. */
function smallPcapng(): { bytes: Uint8Array; ends: number[] } {
  const le = true;
  const parts = [
    shb(le),
    idb(le, { linkType: 1, opts: [tsresolOpt(9)] }),
    epb(le, { ts: 5n, data: bytesOf(33) }),
    block(le, 5, bytesOf(12)),
    spb(le, { data: bytesOf(9) }),
    shb(false),
    idb(false, { linkType: 113 }),
    epb(false, { ts: 7n, data: bytesOf(20) }),
  ];
  const ends: number[] = [];
  let at = 0;
  for (const p of parts) ends.push((at += p.length));
  return { bytes: concat(...parts), ends };
}

describe('truncation at every byte position', () => {
  for (const [name, make, headerEnd] of [
    ['pcap', smallPcap, 24],
    ['pcapng', smallPcapng, 0],
  ] as const) {
    it(`${name}: completes exactly at record boundaries, else names the cut record's offset`, () => {
      const { bytes, ends } = make();
      const framesBefore = (len: number) => ends.filter((e, i) => e <= len && !(name === 'pcap' && i === 0)).length;
      for (let len = 0; len < bytes.length; len++) {
        for (const chunk of [undefined, 1, 5]) {
          const out = readBytes(bytes.subarray(0, len), chunk);
          const atBoundary = ends.includes(len) && len >= headerEnd;
          if (atBoundary) {
            expect(out.completed, `cut at ${len}`).toBe(true);
            if (name === 'pcap') expect(out.frames).toHaveLength(framesBefore(len));
            continue;
          }
          expect(out.error, `cut at ${len}`).toBeInstanceOf(CaptureFileError);
          const start = Math.max(0, ...ends.filter((e) => e <= len && (name === 'pcapng' || e >= headerEnd)));
          const expected = len < 4 ? 0 : start;
          expect((out.error as CaptureFileError).offset, `cut at ${len}`).toBe(expected);
          expect(out.error?.message).toMatch(len === 0 ? /empty file/ : /truncated/);
        }
      }
    });
  }

  it('a truncated file on disk errors the same way through readCaptureFile', async () => {
    const { bytes, ends } = smallPcap();
    for (const cut of [3, 10, ends[1] + 7, ends[2] + 16, ends[3] + 1]) {
      const path = join(dir, `cut-${cut}.pcap`);
      writeFileSync(path, bytes.subarray(0, cut));
      const out = await collect(readCaptureFile(path, { chunkBytes: 16 }));
      expect(out.error).toBeInstanceOf(CaptureFileError);
      expect(out.error?.message).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: byte \\d+: (truncated|empty)`));
    }
  });
});

describe('pcap: bad headers and lengths', () => {
  it('huge caplen: errors at the record, without waiting for (or allocating) 4 GiB', () => {
    const file = concat(pcapHeader(), pcapRecord({ sec: T0, frac: 0, data: bytesOf(10) }), pcapRecord({ sec: T0, frac: 0, data: bytesOf(4), caplen: 0xffffffff }));
    const out = readBytes(file);
    expectError(out, 24 + 26, /^bad\.cap: byte 50: record caplen 4294967295 exceeds snaplen 262144$/);
    expect(out.frames).toHaveLength(1);
  });

  it('caplen above the file snaplen; snaplen 0 means the 256 KiB maximum', () => {
    expectError(readBytes(concat(pcapHeader({ snaplen: 96 }), pcapRecord({ sec: 0, frac: 0, data: bytesOf(97) }))), 24, /record caplen 97 exceeds snaplen 96/);
    expectError(
      readBytes(concat(pcapHeader({ snaplen: 0 }), pcapRecord({ sec: 0, frac: 0, data: bytesOf(4), caplen: 262145 }))),
      24,
      /caplen 262145 exceeds the maximum packet size 262144/,
    );
  });

  it('unsupported version', () => {
    expectError(readBytes(concat(pcapHeader({ major: 3 }))), 4, /unsupported pcap version 3\.4/);
  });

  it('unknown, gzip and modified-pcap magic; empty and short files', () => {
    expectError(readBytes(Uint8Array.of(1, 2, 3, 4, 5, 6)), 0, /not a pcap or pcapng file: unknown magic 0x01020304/);
    expectError(readBytes(Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0)), 0, /gzip/);
    expectError(readBytes(Uint8Array.of(0x34, 0xcd, 0xb2, 0xa1, 0, 0)), 0, /modified \(Kuznetsov\) pcap/);
    expectError(readBytes(new Uint8Array(0)), 0, /empty file/);
    expectError(readBytes(Uint8Array.of(0xd4, 0xc3)), 0, /truncated file header: the file has only 2 byte/);
    expectError(readBytes(pcapHeader().subarray(0, 23)), 0, /truncated file header: needs 24 bytes, the file ends after 23/);
  });
});

describe('pcapng: bad blocks', () => {
  const le = true;
  const head = concat(shb(le), idb(le, { linkType: 1 }));
  const at = head.length;

  it('zero block length: an error, not an endless loop', () => {
    expectError(readBytes(concat(head, block(le, 6, bytesOf(20), { length: 0 }))), at, /enhanced packet block total length 0 is below the minimum 32/);
    expectError(readBytes(concat(head, block(le, 0x99, new Uint8Array(0), { length: 0 }))), at, /block 0x00000099 total length 0 is below the minimum 12/);
  });

  it('block length not a multiple of 4', () => {
    expectError(readBytes(concat(head, block(le, 5, bytesOf(8), { length: 22 }))), at, /total length 22 is not a multiple of 4/);
  });

  it('huge block length: bounded at 16 MiB, errors before reading further', () => {
    expectError(readBytes(concat(head, block(le, 5, bytesOf(8), { length: 0xfffffff0 }))), at, new RegExp(`total length 4294967280 exceeds the maximum ${MAX_BLOCK_BYTES}`));
  });

  it('trailing length that disagrees with the leading one', () => {
    expectError(readBytes(concat(head, block(le, 6, bytesOf(24), { trailer: 40 }))), at, /total length 36 does not match its trailing copy 40/);
  });

  it('captured length larger than the block, or than 256 KiB', () => {
    expectError(readBytes(concat(head, epb(le, { ts: 1n, data: bytesOf(8), caplen: 9 }))), at, /captured length 9 exceeds the 8 data bytes the block holds/);
    expectError(readBytes(concat(head, epb(le, { ts: 1n, data: bytesOf(8), caplen: 0xffffffff }))), at, /captured length 4294967295 exceeds/);
  });

  it('packets referring to interfaces the section does not have', () => {
    expectError(readBytes(concat(head, epb(le, { ifId: 1, ts: 1n, data: bytesOf(4) }))), at, /refers to interface 1, but the section has 1 interface/);
    // A new section forgets the interfaces of the previous one.
    const again = concat(head, shb(le));
    expectError(readBytes(concat(again, epb(le, { ts: 1n, data: bytesOf(4) }))), again.length, /refers to interface 0, but the section has 0/);
    expectError(readBytes(concat(shb(le), spb(le, { data: bytesOf(4) }))), 28, /simple packet block refers to interface 0/);
  });

  it('interface options: overlong, wrong if_tsresol/if_tsoffset sizes', () => {
    const overlong = concat(shb(le), block(le, 1, Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 200, 0, 6, 0, 0, 0)));
    expectError(readBytes(overlong), 28 + 16, /interface option 9 of length 200 runs past the end of its block/);
    const resol = concat(shb(le), idb(le, { linkType: 1, opts: [{ code: 9, value: Uint8Array.of(6, 6) }] }));
    expectError(readBytes(resol), 28 + 16, /if_tsresol option has length 2, expected 1/);
    const offset = concat(shb(le), idb(le, { linkType: 1, opts: [{ code: 14, value: bytesOf(4) }] }));
    expectError(readBytes(offset), 28 + 16, /if_tsoffset option has length 4, expected 8/);
  });

  it('section header: bad byte-order magic, unsupported version, too short', () => {
    const bad = shb(le);
    bad[8] = 0x11;
    expectError(readBytes(bad), 8, /bad section byte-order magic/);
    expectError(readBytes(shb(le, { major: 2 })), 12, /unsupported pcapng version 2\.0/);
    expectError(readBytes(block(le, 0x0a0d0d0a, Uint8Array.of(0x4d, 0x3c, 0x2b, 0x1a))), 0, /section header block total length 16 is below the minimum 28/);
    // A second section with a broken magic is reported at its own offset.
    const second = shb(false);
    second[9] = 0;
    expectError(readBytes(concat(head, second)), at + 8, /byte-order magic/);
  });

  it('a block larger than the read size (2 MiB custom block) is skipped, not an error', async () => {
    const big = block(le, 0xbad, new Uint8Array(2 << 20));
    const path = join(dir, 'big-block.pcapng');
    writeFileSync(path, concat(head, big, epb(le, { ts: 1n, data: bytesOf(4) })));
    const out = await collect(readCaptureFile(path, { chunkBytes: 4096 }));
    expect(out.completed).toBe(true);
    expect(out.frames.map((f) => f.offset)).toEqual([head.length + big.length]);
  });
});

describe('pcapng: floods of interface descriptions stay bounded', () => {
  // 100 MB of 20-byte descriptions used to cost 689 MB RSS: now at most 65,536 per section.
  const le = true;

  it('65,536 interfaces are accepted and usable; the 65,537th is an error at its own offset', () => {
    const full = manyIdbs(le, 65_536);
    const ok = readBytes(concat(full, epb(le, { ifId: 65_535, ts: 1n, data: bytesOf(4) })));
    expect(ok.completed).toBe(true);
    expect(ok.frames).toHaveLength(1);
    const over = readBytes(concat(full, idb(le, { linkType: 1 }), epb(le, { ts: 1n, data: bytesOf(4) })));
    const at = 28 + 65_536 * 20;
    expectError(over, at, new RegExp(`^bad\\.cap: byte ${at}: interface description block would be the 65537th in its section; at most 65536 are accepted$`));
  });

  it('the cap counts per section: a new section header starts again from zero', () => {
    const out = readBytes(concat(manyIdbs(le, 65_536), manyIdbs(false, 65_536), epb(false, { ifId: 65_535, ts: 1n, data: bytesOf(4) })));
    expect(out.completed).toBe(true);
    expect(out.frames).toHaveLength(1);
  });
});

describe('random bytes never crash or hang the reader', () => {
  const headers = [
    ['pcap', pcapHeader()],
    ['pcap ns big-endian', pcapHeader({ le: false, nano: true })],
    ['pcapng', concat(shb(true), idb(true, { linkType: 1 }))],
    ['pcapng big-endian', concat(shb(false), idb(false, { linkType: 1, opts: [tsresolOpt(9)] }))],
  ] as const;

  it('after a valid header: completes or errors with an in-range offset, synchronously', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...headers),
        fc.uint8Array({ maxLength: 400 }),
        fc.option(fc.integer({ min: 1, max: 64 }), { nil: undefined }),
        ([, header], tail, chunk) => {
          const bytes = concat(header, tail);
          let out: Outcome | undefined;
          expect(() => (out = readBytes(bytes, chunk))).not.toThrow();
          if (!out) return;
          if (out.error) {
            expect(out.error).toBeInstanceOf(CaptureFileError);
            const { offset } = out.error as CaptureFileError;
            expect(offset).toBeGreaterThanOrEqual(0);
            expect(offset).toBeLessThanOrEqual(bytes.length);
          }
          for (const f of out.frames) {
            expect(f.offset).toBeGreaterThanOrEqual(header.length);
            expect(f.offset + f.data.length).toBeLessThanOrEqual(bytes.length);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('random bytes with pcap/pcapng-looking lengths sprinkled in', () => {
    // Pure noise rarely gets past the first length check; this mixes in
    // plausible little lengths so records and blocks sometimes parse.
    const word = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 64 }).map((n) => n * 4), fc.integer({ min: 0, max: 0xffffffff }));
    fc.assert(
      fc.property(fc.constantFrom(...headers), fc.array(word, { maxLength: 60 }), ([, header], words) => {
        const tail = new Uint8Array(words.length * 4);
        const view = new DataView(tail.buffer);
        words.forEach((w, i) => view.setUint32(i * 4, w, true));
        const out = readBytes(concat(header, tail));
        if (out.error) expect(out.error).toBeInstanceOf(CaptureFileError);
        else expect(out.completed).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
