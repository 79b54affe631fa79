// The capture process's stream format (both ends), cap's link-type names and
// the sorting of libpcap open errors.
import { describe, expect, it } from 'vitest';
import {
  CaptureStreamError,
  classifyOpenError,
  createRecordReader,
  createRecordWriter,
  MAX_RECORD_BODY_BYTES,
  RECORD_HEADER_BYTES,
  type ChildRecord,
} from '../../src/capture/live-stream.js';
import { linkTypeFromCap } from '../../src/capture/live-link.js';

function encode(fill: (w: ReturnType<typeof createRecordWriter>) => void, capacity?: number): Uint8Array {
  const parts: Uint8Array[] = [];
  const w = createRecordWriter((b) => parts.push(Uint8Array.from(b)), capacity);
  fill(w);
  w.flush();
  return Buffer.concat(parts);
}

function decodeAll(bytes: Uint8Array, split: number[] = []): ChildRecord[] {
  const r = createRecordReader();
  const out: ChildRecord[] = [];
  let at = 0;
  for (const cut of [...split, bytes.length]) {
    r.push(bytes.subarray(at, cut), (rec) => out.push(rec));
    at = cut;
  }
  expect(r.buffered).toBe(0);
  return out;
}

const capBuffer = Buffer.alloc(65_536);
capBuffer.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

const SAMPLE = encode((w) => {
  w.opened(113);
  w.frame(1_700_000_000_123.456, capBuffer, 10, 10);
  w.frame(1_700_000_000_124.5, capBuffer, 4, 1500);
  w.error({ kind: 'not-up', message: 'That device is not up' });
});

describe('capture stream', () => {
  it('round-trips opened, frame and error records', () => {
    const recs = decodeAll(SAMPLE);
    expect(recs).toHaveLength(4);
    expect(recs[0]).toEqual({ kind: 'opened', linkType: 113 });
    expect(recs[1]).toMatchObject({ kind: 'frame', time: 1_700_000_000_123.456, origLength: 10 });
    expect([...(recs[1] as { data: Uint8Array }).data]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(recs[2]).toMatchObject({ kind: 'frame', origLength: 1500 });
    expect([...(recs[2] as { data: Uint8Array }).data]).toEqual([1, 2, 3, 4]);
    expect(recs[3]).toEqual({ kind: 'error', error: { kind: 'not-up', message: 'That device is not up' } });
  });

  it('copies frame bytes: later changes to cap\'s buffer do not reach a frame', () => {
    const buf = Buffer.from([9, 9, 9, 9]);
    const bytes = encode((w) => {
      w.opened(1);
      w.frame(1, buf, 4, 4);
      buf.fill(0); // cap reuses its buffer for the next packet before the batch is written
    });
    const [, frame] = decodeAll(bytes);
    expect([...(frame as { data: Uint8Array }).data]).toEqual([9, 9, 9, 9]);
  });

  it('decodes the same records however the stream is split', () => {
    const whole = decodeAll(SAMPLE);
    for (let cut = 1; cut < SAMPLE.length; cut += 1) {
      expect(decodeAll(SAMPLE, [cut])).toEqual(whole);
    }
    const bytewise = Array.from({ length: SAMPLE.length - 1 }, (_, i) => i + 1);
    expect(decodeAll(SAMPLE, bytewise)).toEqual(whole);
  });

  it('flushes by itself when the batch is full and keeps records whole', () => {
    const writes: number[] = [];
    const w = createRecordWriter((b) => writes.push(b.length), 1); // raised to the minimum
    const big = Buffer.alloc(65_535, 7);
    for (let i = 0; i < 10; i += 1) w.frame(i, big, big.length, big.length);
    w.flush();
    expect(writes.length).toBeGreaterThan(1);
    for (const n of writes) expect(n % (RECORD_HEADER_BYTES + 65_535)).toBe(0);
  });

  it('holds back an incomplete record', () => {
    const r = createRecordReader();
    const seen: ChildRecord[] = [];
    r.push(SAMPLE.subarray(0, RECORD_HEADER_BYTES + 5), (x) => seen.push(x));
    expect(seen).toHaveLength(1); // the opened record
    expect(r.buffered).toBe(5);
  });

  it('rejects corruption with the byte offset of the bad record', () => {
    const corrupt = (mutate: (b: Uint8Array) => void): (() => void) => {
      const b = Uint8Array.from(SAMPLE);
      mutate(b);
      return () => decodeAll(b);
    };
    const second = RECORD_HEADER_BYTES; // the first frame record starts here
    expect(corrupt((b) => (b[second] = 9))).toThrow(/unknown record kind 9 at byte offset 20/);
    expect(corrupt((b) => (b[second + 2] = 1))).toThrow(/reserved header bytes not zero at byte offset 20/);
    expect(
      corrupt((b) => new DataView(b.buffer).setUint32(second + 4, MAX_RECORD_BODY_BYTES + 1, true)),
    ).toThrow(/body length 262145 exceeds 262144 at byte offset 20/);
    expect(corrupt((b) => new DataView(b.buffer).setUint32(second + 8, 3, true))).toThrow(/wire length 3 below captured length 10 at byte offset 20/);
    expect(corrupt((b) => new DataView(b.buffer).setFloat64(second + 12, Number.NaN, true))).toThrow(/time is not finite at byte offset 20/);
    const err = (() => {
      try {
        corrupt((b) => (b[0] = 0))();
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(CaptureStreamError);
    expect((err as CaptureStreamError).offset).toBe(0);
  });

  it('round-trips the capture process\'s counters, and rejects counters that are not counts', () => {
    const c = { captured: 2 ** 40, shed: 3, backlogBytes: 0, maxBacklogBytes: 77, interfaceDrops: 9 };
    const bytes = encode((w) => {
      w.opened(1);
      w.counters(c);
    });
    expect(decodeAll(bytes, [7, 30])).toEqual([{ kind: 'opened', linkType: 1 }, { kind: 'counters', counters: c }]);
    const body = Buffer.from('{"captured":-1,"shed":0,"backlogBytes":0,"maxBacklogBytes":0}');
    const header = Buffer.alloc(RECORD_HEADER_BYTES);
    header[0] = 4;
    header.writeUInt32LE(body.length, 4);
    expect(() => decodeAll(Buffer.concat([header, body]))).toThrow(/counters record field 'captured' is not a count at byte offset 0/);
  });

  it('keeps byte offsets right after a record split across chunks', () => {
    const b = Uint8Array.from(SAMPLE);
    const third = 2 * RECORD_HEADER_BYTES + 10; // the second frame record
    b[third] = 9;
    for (const cut of [3, RECORD_HEADER_BYTES + 3, RECORD_HEADER_BYTES + 25, third + 1]) {
      expect(() => decodeAll(b, [cut])).toThrow(new RegExp(`unknown record kind 9 at byte offset ${third}$`));
    }
  });

  it('frames of one chunk share one copy of it, never the caller\'s chunk', () => {
    const chunk = Buffer.from(SAMPLE);
    const recs: ChildRecord[] = [];
    createRecordReader().push(chunk, (r) => recs.push(r));
    const [a, b] = recs.filter((r) => r.kind === 'frame') as { data: Uint8Array }[];
    expect(a.data.buffer).toBe(b.data.buffer);
    expect(a.data.buffer).not.toBe(chunk.buffer);
    chunk.fill(0);
    expect([...a.data]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('rejects an error record that is not the expected JSON', () => {
    const body = Buffer.from('{"kind":"bogus","message":"x"}');
    const header = Buffer.alloc(RECORD_HEADER_BYTES);
    header[0] = 3;
    header.writeUInt32LE(body.length, 4);
    expect(() => decodeAll(Buffer.concat([header, body]))).toThrow(/malformed error record at byte offset 0/);
    const notJson = Buffer.from('nope');
    header.writeUInt32LE(notJson.length, 4);
    expect(() => decodeAll(Buffer.concat([header, notJson]))).toThrow(/not JSON at byte offset 0/);
  });
});

describe('linkTypeFromCap', () => {
  it('maps cap\'s names and unknown numbers to LINKTYPE values', () => {
    expect(linkTypeFromCap('ETHERNET')).toBe(1);
    expect(linkTypeFromCap('LINKTYPE_LINUX_SLL')).toBe(113);
    expect(linkTypeFromCap('RAW')).toBe(101);
    expect(linkTypeFromCap('NULL')).toBe(0);
    expect(linkTypeFromCap('IEEE802_11_RADIO')).toBe(127);
    expect(linkTypeFromCap('Unknown linktype 276')).toBe(276);
    expect(linkTypeFromCap('Unknown linktype 12')).toBe(101);
  });

  it('throws on anything else', () => {
    expect(() => linkTypeFromCap('TOKEN_RING')).toThrow(/unrecognised link type: "TOKEN_RING"/);
    expect(() => linkTypeFromCap(undefined)).toThrow(/unrecognised link type/);
    expect(() => linkTypeFromCap('constructor')).toThrow(/unrecognised/);
  });
});

describe('classifyOpenError', () => {
  it('sorts the messages libpcap gives (seen here) into kinds', () => {
    expect(classifyOpenError('socket: Operation not permitted')).toBe('permission');
    expect(classifyOpenError("You don't have permission to capture on that device (socket: Operation not permitted)")).toBe('permission');
    expect(classifyOpenError('syntax error in filter expression')).toBe('filter');
    expect(classifyOpenError("can't parse filter expression: syntax error")).toBe('filter');
    expect(classifyOpenError('No such device exists')).toBe('no-device');
    expect(classifyOpenError('That device is not up')).toBe('not-up');
    expect(classifyOpenError('something else')).toBe('other');
  });
});
