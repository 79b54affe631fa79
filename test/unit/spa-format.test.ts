// Requirement 2 (one AEAD, strict framing) and fixed length: the datagram
// format of src/spa/format.ts.
import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  DATAGRAM_BYTES,
  HEADER_BYTES,
  PLAINTEXT_BYTES,
  decodePlaintext,
  encodePlaintext,
  openDatagram,
  sealDatagram,
  type SpaPlaintext,
} from '../../src/spa/format.js';
import { deriveKeys } from '../../src/spa/keys.js';
import { KEY_A, T0, addr, datagram } from './spa-support.js';

const keys = deriveKeys(KEY_A, 'alice');

describe('spa datagram format v1', () => {
  it('is 101 bytes whatever the family, door name or TOTP use', () => {
    expect(DATAGRAM_BYTES).toBe(101);
    const lengths = new Set([
      datagram({ address: '192.0.2.10', door: 's' }).length,
      datagram({ address: '2001:db8::1234:5678:9abc:def0', door: 'a-door-name-of-32-characters-xyz' }).length,
      datagram({ totp: 123456 }).length,
      datagram({ totp: 0, address: '2001:db8::1' }).length,
    ]);
    expect([...lengths]).toEqual([101]);
  });

  it('round-trips: header in clear, plaintext sealed', () => {
    const nonce = Buffer.alloc(12, 7);
    const d = datagram({ nonce, totp: 42, address: '2001:db8::7', door: 'web_1' });
    expect(d[0]).toBe(1);
    expect(d.subarray(9, 21)).toEqual(nonce);
    const pt = openDatagram(d, keys.aeadKey);
    expect(pt).toBeDefined();
    const p = decodePlaintext(pt as Buffer) as SpaPlaintext;
    expect(p.time).toBe(T0);
    expect(p.door).toBe('web_1');
    expect(p.totp).toBe(42);
    expect(p.address.family).toBe(6);
  });

  it('a fresh random nonce per datagram (never the hint or the time)', () => {
    const a = datagram();
    const b = datagram();
    expect(a.subarray(1, 9)).toEqual(b.subarray(1, 9)); // same key, same step: same hint
    expect(a.subarray(9, 21)).not.toEqual(b.subarray(9, 21));
  });

  it('any flipped bit anywhere fails authentication (header is associated data, tag is 16 bytes)', () => {
    const d = datagram();
    for (let i = 0; i < d.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const t = Buffer.from(d);
        t[i] ^= bit;
        expect(openDatagram(t, keys.aeadKey), `byte ${i} bit ${bit}`).toBeUndefined();
      }
    }
    expect(openDatagram(d, keys.aeadKey)).toBeDefined();
  });

  it('a truncated or extended datagram (shorter tag, trailing bytes) is never opened', () => {
    const d = datagram();
    expect(openDatagram(d.subarray(0, d.length - 1), keys.aeadKey)).toBeUndefined();
    expect(openDatagram(Buffer.concat([d, Buffer.alloc(1)]), keys.aeadKey)).toBeUndefined();
  });

  it('a ciphertext sealed under another label (associated data) fails', () => {
    const header = Buffer.from(datagram().subarray(0, HEADER_BYTES));
    for (const label of ['knockwatch spa v2\0', 'other\0', '']) {
      const c = createCipheriv('chacha20-poly1305', keys.aeadKey, header.subarray(9, 21), { authTagLength: 16 });
      c.setAAD(Buffer.concat([Buffer.from(label, 'ascii'), header]), { plaintextLength: PLAINTEXT_BYTES });
      const ct = Buffer.concat([c.update(encodePlaintext({ time: T0, address: addr('192.0.2.10'), door: 'ssh' })), c.final()]);
      const d = Buffer.concat([header, ct, c.getAuthTag()]);
      expect(openDatagram(d, keys.aeadKey), label).toBeUndefined();
    }
  });

  it('the wrong key (another user, or the same key under another user name) fails', () => {
    const d = datagram();
    expect(openDatagram(d, deriveKeys(Buffer.alloc(32, 0xb2), 'alice').aeadKey)).toBeUndefined();
    expect(openDatagram(d, deriveKeys(KEY_A, 'bob').aeadKey)).toBeUndefined();
    expect(openDatagram(d, keys.hintKey)).toBeUndefined();
  });

  it('sealDatagram refuses a nonce, hint or key of the wrong size', () => {
    const plaintext = { time: T0, address: addr('192.0.2.1'), door: 'ssh' };
    expect(() => sealDatagram({ aeadKey: keys.aeadKey, hint: Buffer.alloc(8), nonce: Buffer.alloc(8), plaintext })).toThrow(/nonce/);
    expect(() => sealDatagram({ aeadKey: keys.aeadKey, hint: Buffer.alloc(4), nonce: Buffer.alloc(12), plaintext })).toThrow(/hint/);
    expect(() => sealDatagram({ aeadKey: Buffer.alloc(16), hint: Buffer.alloc(8), nonce: Buffer.alloc(12), plaintext })).toThrow(/key/);
  });
});

describe('strict canonical plaintext', () => {
  const good = encodePlaintext({ time: T0, address: addr('192.0.2.10'), door: 'ssh', totp: 7 });
  const withByte = (i: number, v: number): Buffer => {
    const b = Buffer.from(good);
    b[i] = v;
    return b;
  };
  it('accepts the canonical encoding', () => {
    expect(typeof decodePlaintext(good)).toBe('object');
  });
  it.each([
    ['family byte 5', withByte(8, 5), /family/],
    ['IPv4 with bytes after the fourth', withByte(20, 1), /IPv4/],
    ['door name length 0', withByte(25, 0), /length/],
    ['door name length 33', withByte(25, 33), /length/],
    ['a bad character in the name', withByte(27, 0x2e), /outside/],
    ['a byte after the name', withByte(40, 0x41), /after the door name/],
    ['unknown flag bits', withByte(58, 3), /flag/],
    ['non-zero padding', withByte(63, 1), /padding/],
    ['time above 2^53', withByte(0, 0xff), /2\^53/],
  ])('refuses %s', (_what, bytes, why) => {
    expect(decodePlaintext(bytes)).toMatch(why);
  });
  it('refuses a code without its flag and a code above 999999', () => {
    const noFlag = withByte(58, 0);
    expect(decodePlaintext(noFlag)).toMatch(/without its flag/);
    const big = Buffer.from(good);
    big.writeUInt32BE(1_000_000, 59);
    expect(decodePlaintext(big)).toMatch(/999999/);
  });
  it('refuses an IPv4-mapped IPv6 address (one encoding per address)', () => {
    const b = encodePlaintext({ time: T0, address: addr('2001:db8::1'), door: 'ssh' });
    b.fill(0, 9, 25);
    b[19] = 0xff;
    b[20] = 0xff;
    b[21] = 192;
    expect(decodePlaintext(b)).toMatch(/IPv4-mapped/);
  });
  it('any plaintext that decodes re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (bytes) => {
        const p = decodePlaintext(bytes);
        if (typeof p === 'string') return;
        expect(encodePlaintext(p)).toEqual(Buffer.from(bytes));
      }),
    );
    for (const t of [0, 1, T0, Number.MAX_SAFE_INTEGER]) {
      const b = encodePlaintext({ time: t, address: addr('2001:db8::1'), door: 'x', totp: 999999 });
      expect(encodePlaintext(decodePlaintext(b) as SpaPlaintext)).toEqual(b);
    }
  });
});
