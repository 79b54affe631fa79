import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isIPv6 } from 'node:net';
import { formatIPv4, formatIPv6 } from '../../src/decode/address.js';
import { parseAddress } from '../../src/lab/packets.js';

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}

/** The WHATWG URL serializer also implements RFC 5952, except IPv4-mapped addresses (printed in hex). */
function urlForm(bytes: Uint8Array): string {
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i] << 8) | bytes[2 * i + 1]).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

describe('formatIPv4', () => {
  it('prints a dotted quad at an offset', () => {
    expect(formatIPv4(Uint8Array.from([9, 10, 199, 0, 2, 255]), 1)).toBe('10.199.0.2');
    expect(formatIPv4(Uint8Array.from([0, 0, 0, 0]), 0)).toBe('0.0.0.0');
    expect(formatIPv4(Uint8Array.from([255, 255, 255, 255]), 0)).toBe('255.255.255.255');
  });
  it('agrees with a naive join for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (b) => {
        expect(formatIPv4(b, 0)).toBe(Array.from(b).join('.'));
      }),
    );
  });
});

describe('formatIPv6 (RFC 5952)', () => {
  const vectors: [string, string][] = [
    // RFC 5952 section 4 examples
    ['20010db8000000000000000000000001', '2001:db8::1'],
    ['20010db8000000000000000000020001', '2001:db8::2:1'], // 4.2.1 longest run
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'], // 4.2.2 a single zero group is not compressed
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'], // 4.2.3 first of equal runs
    ['20010db8000000010000000000000001', '2001:db8:0:1::1'],
    ['20010db8aaaabbbbccccddddeeeeaaaa', '2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa'], // 4.3 lowercase
    ['20010db800000000000000000000000f', '2001:db8::f'], // 4.1 no leading zeros
    ['00000000000000000000000000000000', '::'],
    ['00000000000000000000000000000001', '::1'],
    ['00010000000000000000000000000000', '1::'],
    ['fe800000000000000000000000000000', 'fe80::'],
    ['00000000000000000000000000010000', '::1:0'],
    ['00010000000000010000000000000001', '1:0:0:1::1'], // 2 zeros then 3 zeros: the longer wins
    ['00000001000000000001000000000000', '0:1:0:0:1::'], // longest run (3) at the end
    ['ffffffffffffffffffffffffffffffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['fd006b77000000000000000000000002', 'fd00:6b77::2'],
    // RFC 5952 section 5: IPv4-mapped in mixed notation
    ['00000000000000000000ffffc0000280', '::ffff:192.0.2.128'],
    ['00000000000000000000ffff00000000', '::ffff:0.0.0.0'],
    // Not mapped (prefix differs): plain hex
    ['00000000000000000001ffffc0000280', '::1:ffff:c000:280'],
    ['00000000000000000000fffec0000280', '::fffe:c000:280'],
    ['0000000000000000ffff0000c0000280', '::ffff:0:c000:280'],
    ['00000000000000000000000001020304', '::102:304'], // deprecated IPv4-compatible: hex
  ];
  it.each(vectors)('%s -> %s', (hex, text) => {
    expect(formatIPv6(hexBytes(hex), 0)).toBe(text);
  });

  it('reads at an offset', () => {
    const b = new Uint8Array(20);
    b.set(hexBytes('20010db8000000000000000000000001'), 3);
    expect(formatIPv6(b, 3)).toBe('2001:db8::1');
  });

  // Sparse groups make zero runs (and ties) common, which uniform bytes almost never do.
  const sparse = fc
    .array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 0xffff }), fc.integer({ min: 0, max: 0xff })), { minLength: 8, maxLength: 8 })
    .map((gs) => Uint8Array.from(gs.flatMap((g) => [g >> 8, g & 0xff])));

  it('matches the WHATWG URL serializer for non-mapped addresses', () => {
    fc.assert(
      fc.property(fc.oneof(sparse, fc.uint8Array({ minLength: 16, maxLength: 16 })), (b) => {
        const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
        fc.pre(!mapped);
        expect(formatIPv6(b, 0)).toBe(urlForm(b));
      }),
      { numRuns: 5000 },
    );
  });

  it('round-trips: the text is valid IPv6 and parses back to the same bytes', () => {
    fc.assert(
      fc.property(fc.oneof(sparse, fc.uint8Array({ minLength: 16, maxLength: 16 })), (b) => {
        const text = formatIPv6(b, 0);
        expect(isIPv6(text)).toBe(true);
        expect(parseAddress(text).bytes).toEqual(b);
      }),
      { numRuns: 2000 },
    );
  });

  it('prints every IPv4-mapped address in mixed notation', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (v4) => {
        const b = new Uint8Array(16);
        b[10] = 0xff;
        b[11] = 0xff;
        b.set(v4, 12);
        expect(formatIPv6(b, 0)).toBe(`::ffff:${Array.from(v4).join('.')}`);
      }),
    );
  });
});
