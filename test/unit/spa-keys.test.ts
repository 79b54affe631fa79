// Requirement 3 (key schedule with domain separation) and key file parsing.
import { hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyFileError, base32Decode, base32Encode, deriveKeys, parseKeyText, parseTotpText } from '../../src/spa/keys.js';
import { KEY_A } from './spa-support.js';

describe('spa key schedule', () => {
  it('derives hint and AEAD keys with HKDF-SHA256 and distinct labels naming the version and user', () => {
    const k = deriveKeys(KEY_A, 'alice');
    const salt = Buffer.from('knockwatch spa salt v1');
    const expected = (label: string): Buffer => Buffer.from(hkdfSync('sha256', KEY_A, salt, Buffer.from(`knockwatch spa v1 ${label}\0alice`), 32));
    expect(k.hintKey).toEqual(expected('hint'));
    expect(k.aeadKey).toEqual(expected('aead'));
    expect(k.hintKey).not.toEqual(k.aeadKey);
    expect(k.aeadKey).not.toEqual(KEY_A);
  });
  it('the same key under another user name gives other sub-keys', () => {
    const a = deriveKeys(KEY_A, 'alice');
    const b = deriveKeys(KEY_A, 'alice2');
    expect(a.hintKey).not.toEqual(b.hintKey);
    expect(a.aeadKey).not.toEqual(b.aeadKey);
  });
  it('refuses keys that are not 32 bytes and bad user names', () => {
    expect(() => deriveKeys(Buffer.alloc(16), 'alice')).toThrow(/32 bytes/);
    expect(() => deriveKeys(KEY_A, '../x')).toThrow(/user name/);
    expect(() => deriveKeys(KEY_A, '')).toThrow(/user name/);
  });
});

describe('key files', () => {
  const b64 = KEY_A.toString('base64');
  it('reads one base64 line, skipping comments and blank lines', () => {
    expect(parseKeyText('a.key', `${b64}\n`)).toEqual(KEY_A);
    expect(parseKeyText('a.key', `# knockwatch key\n\n  ${b64}  \r\n`)).toEqual(KEY_A);
  });
  it('names file and line for what is wrong', () => {
    expect(() => parseKeyText('/k/a.key', '')).toThrow('/k/a.key: no key in the file');
    expect(() => parseKeyText('/k/a.key', `# c\n${b64.slice(0, 40)}\n`)).toThrow(/^\/k\/a\.key:2: expected a 256-bit key .* got 40 characters/);
    expect(() => parseKeyText('/k/a.key', `${b64}\n${b64}\n`)).toThrow('/k/a.key:2: a second key line (the first is line 1)');
    expect(() => parseKeyText('/k/a.key', `${b64.slice(0, 10)}!${b64.slice(11)}\n`)).toThrow(/:1: .*character "!" at column 11/);
    // Non-canonical: the last character's spare bits set.
    const last = b64[42];
    const other = last === 'A' ? 'B' : String.fromCharCode(last.charCodeAt(0) + 1);
    expect(() => parseKeyText('a.key', `${b64.slice(0, 42)}${other}=\n`)).toThrow(/canonical/);
    try {
      parseKeyText('x.key', 'zz');
    } catch (err) {
      expect(err).toBeInstanceOf(KeyFileError);
      expect((err as KeyFileError).line).toBe(1);
    }
  });
  it('reads a 160-bit base32 TOTP secret; refuses shorter ones and bad characters', () => {
    const secret = Buffer.from('12345678901234567890');
    const text = base32Encode(secret);
    expect(text).toBe('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
    expect(parseTotpText('a.totp', `${text}\n`)).toEqual(secret);
    expect(parseTotpText('a.totp', `${text.toLowerCase()}\n`)).toEqual(secret);
    expect(() => parseTotpText('a.totp', 'GEZDGNBVGY3TQOJQ\n')).toThrow('a.totp:1: TOTP secret is 80 bits; at least 160 are required');
    expect(() => parseTotpText('a.totp', 'GEZDGNBVGY3TQOJ1GEZDGNBVGY3TQOJQ\n')).toThrow(/a\.totp:1: expected the TOTP secret in base32/);
    expect(base32Decode(base32Encode(Buffer.from([1, 2, 3, 4, 5, 6, 7])))).toEqual(Buffer.from([1, 2, 3, 4, 5, 6, 7]));
  });
});
