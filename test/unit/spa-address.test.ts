// Requirement 1 (bind the address): parsing, normalising IPv4-mapped IPv6,
// and the addresses never opened.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatIPv6 } from '../../src/decode/address.js';
import { formatAddress, normaliseAddress, parseAddress, refusedAddress } from '../../src/spa/address.js';

describe('spa addresses', () => {
  it('parses IPv4 and IPv6 to canonical text (the form decode gives sources)', () => {
    expect(normaliseAddress('192.0.2.10')).toBe('192.0.2.10');
    expect(normaliseAddress('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(normaliseAddress('::')).toBe('::');
    expect(normaliseAddress('fe80::1:2')).toBe('fe80::1:2');
    expect(normaliseAddress('64:ff9b::192.0.2.1')).toBe('64:ff9b::c000:201');
  });
  it('normalises IPv4-mapped IPv6 to IPv4', () => {
    expect(normaliseAddress('::ffff:192.0.2.10')).toBe('192.0.2.10');
    expect(normaliseAddress('::ffff:c000:20a')).toBe('192.0.2.10');
    expect(parseAddress('::ffff:192.0.2.10')?.family).toBe(4);
  });
  it.each(['1.2.3', '1.2.3.4.5', '01.2.3.4', '256.1.1.1', '1::2::3', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', 'g::1', '', 'localhost', '1:2:3:4:5:6:7'])('refuses %s', (t) => {
    expect(parseAddress(t)).toBeUndefined();
  });
  it('agrees with decode for any 16 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
        const text = formatIPv6(b, 0);
        const a = parseAddress(text);
        expect(a).toBeDefined();
        if (a?.family === 6) expect(formatAddress(a)).toBe(text);
        else expect(`::ffff:${formatAddress(a!)}`).toBe(text);
      }),
    );
  });
  it('refuses unspecified, loopback, multicast and broadcast addresses', () => {
    for (const t of ['0.0.0.0', '127.0.0.1', '127.9.9.9', '224.0.0.1', '239.1.2.3', '255.255.255.255', '::', '::1', 'ff02::1', '::ffff:127.0.0.1']) {
      expect(refusedAddress(parseAddress(t)!), t).toBeDefined();
    }
    for (const t of ['192.0.2.10', '10.1.2.3', '2001:db8::1', 'fe80::1']) {
      expect(refusedAddress(parseAddress(t)!), t).toBeUndefined();
    }
  });
});
