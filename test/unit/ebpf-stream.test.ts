import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  EbpfStreamError,
  createLoaderStreamDecoder,
  type LoaderRecord,
} from '../../src/capture/ebpf-stream.js';
import { counterRecord, frameRecord, readyRecord, record } from './ebpf-support.js';

function decodeAll(bytes: Uint8Array, cuts: number[] = []): LoaderRecord[] {
  const d = createLoaderStreamDecoder();
  const out: LoaderRecord[] = [];
  let prev = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    out.push(...d.push(bytes.subarray(prev, cut)));
    prev = cut;
  }
  out.push(...d.push(bytes.subarray(prev)));
  d.finish();
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

function errorOf(fn: () => unknown): EbpfStreamError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EbpfStreamError);
    return err as EbpfStreamError;
  }
  throw new Error('expected an EbpfStreamError');
}

describe('eBPF loader stream decoder', () => {
  const packet = Uint8Array.from({ length: 60 }, (_, i) => i);

  it('decodes frame, counters and ready records', () => {
    const bytes = concat(
      readyRecord([{ name: 'kw0', ifindex: 7, linkType: 1 }, { name: 'wg0', ifindex: 9, linkType: 101 }]),
      frameRecord({ timeNs: 1_700_000_000_123_456_789n, wireLength: 74, ifindex: 7, linkType: 1, data: packet }),
      counterRecord({ seen: 10, candidates: 4, events: 1, drops: 0 }),
    );
    const out = decodeAll(bytes);
    expect(out).toHaveLength(3);
    expect(out[0]).toEqual({
      type: 'ready',
      interfaces: [
        { name: 'kw0', ifindex: 7, linkType: 1 },
        { name: 'wg0', ifindex: 9, linkType: 101 },
      ],
    });
    const frame = out[1];
    if (frame.type !== 'frame') throw new Error('expected a frame');
    expect(frame.ifindex).toBe(7);
    expect(frame.frame.linkType).toBe(1);
    expect(frame.frame.origLength).toBe(74);
    expect(frame.frame.offset).toBe(-1);
    expect([...frame.frame.data]).toEqual([...packet]);
    expect(frame.frame.time).toBeCloseTo(1_700_000_000_123.456_789, 3);
    expect(out[2]).toEqual({ type: 'counters', counters: { seen: 10, candidates: 4, events: 1, drops: 0 } });
  });

  it('gives the same records however the stream is split into chunks', () => {
    const bytes = concat(
      readyRecord([{ name: 'eth0', ifindex: 2, linkType: 1 }]),
      frameRecord({ timeNs: 5_000_000n, wireLength: 60, ifindex: 2, linkType: 1, data: packet }),
      frameRecord({ timeNs: 6_000_000n, wireLength: 1500, ifindex: 2, linkType: 101, data: packet.subarray(0, 40) }),
      counterRecord({ seen: 3, candidates: 2, events: 2, drops: 1 }),
    );
    const whole = decodeAll(bytes);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }), (cuts) => {
        expect(decodeAll(bytes, cuts)).toEqual(whole);
      }),
    );
  });

  it('does not keep the chunk alive through a frame', () => {
    const bytes = frameRecord({ timeNs: 1n, wireLength: 60, ifindex: 1, linkType: 1, data: packet });
    const [r] = decodeAll(bytes);
    if (r.type !== 'frame') throw new Error('expected a frame');
    expect(r.frame.data.buffer).not.toBe(bytes.buffer);
    expect(r.frame.data.byteLength).toBe(60);
  });

  it('names the byte offset of a record with an unknown type', () => {
    const first = counterRecord({ seen: 1, candidates: 0, events: 0, drops: 0 });
    const err = errorOf(() => decodeAll(concat(first, record(9, new Uint8Array(4)))));
    expect(err.offset).toBe(first.length);
    expect(err.message).toBe(`eBPF loader output: byte ${first.length}: unknown record type 9`);
  });

  it('rejects nonzero flags, oversized lengths and short fixed parts', () => {
    const flagged = record(2, new Uint8Array(32));
    flagged[6] = 1;
    expect(errorOf(() => decodeAll(flagged)).message).toMatch(/byte 0: record flags are 1/);

    const huge = new Uint8Array(8);
    new DataView(huge.buffer).setUint32(0, 1 << 20, true);
    huge[4] = 1;
    // Rejected from the header alone: the decoder does not wait for a megabyte.
    expect(() => createLoaderStreamDecoder().push(huge)).toThrow(/record length 1048576 exceeds 65536/);

    expect(errorOf(() => decodeAll(record(2, new Uint8Array(24)))).message).toMatch(/counters record has 24 bytes/);
    expect(errorOf(() => decodeAll(record(1, new Uint8Array(20)))).message).toMatch(/frame record has 20 bytes/);
  });

  it('rejects frames that contradict themselves', () => {
    const short = frameRecord({ timeNs: 1n, wireLength: 10, ifindex: 1, linkType: 1, data: packet });
    expect(errorOf(() => decodeAll(short)).message).toMatch(/wire length 10 is less than its 60 captured bytes/);
    const link = frameRecord({ timeNs: 1n, wireLength: 60, ifindex: 1, linkType: 113, data: packet });
    expect(errorOf(() => decodeAll(link)).message).toMatch(/link type 113 is not 1 or 101/);
  });

  it('rejects ready records whose entries overrun or underrun the body', () => {
    const good = readyRecord([{ name: 'kw0', ifindex: 1, linkType: 1 }]);
    const overrun = good.slice();
    new DataView(overrun.buffer).setUint32(8, 2, true); // claims two interfaces
    expect(errorOf(() => decodeAll(overrun)).message).toMatch(/ends inside interface 1 of 2/);
    const underrun = good.slice();
    new DataView(underrun.buffer).setUint32(8, 0, true);
    expect(errorOf(() => decodeAll(underrun)).message).toMatch(/11 bytes after its 0 interfaces/);
  });

  it('reports a stream that ends inside a record, with the record offset', () => {
    const first = counterRecord({ seen: 1, candidates: 0, events: 0, drops: 0 });
    const second = frameRecord({ timeNs: 1n, wireLength: 60, ifindex: 1, linkType: 1, data: packet });
    const d = createLoaderStreamDecoder();
    expect(d.push(concat(first, second.subarray(0, 30)))).toHaveLength(1);
    expect(d.offset).toBe(first.length);
    expect(() => d.finish()).toThrow(`byte ${first.length}: stream ended inside a record (30 bytes of it received)`);
  });
});
