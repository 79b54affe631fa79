// The spa key schedule. Each user has a 256-bit secret (a key file written by
// `knockwatch keygen`); the server holds the same secret (there is no public
// part: whoever reads the server's key files can knock as every user, so one
// key per user per server). Two sub-keys are derived with HKDF-SHA256 and
// distinct `info` labels that name the format version and the user:
//
//   hint key = HKDF(ikm = user key, salt = "knockwatch spa salt v1",
//                   info = "knockwatch spa v1 hint\0" || user name, 32 bytes)
//   AEAD key = HKDF(ikm = user key, salt = "knockwatch spa salt v1",
//                   info = "knockwatch spa v1 aead\0" || user name, 32 bytes)
//
// So the hint (sent in clear) reveals nothing usable against the AEAD key, a
// key file copied under another user name derives other keys, and a later
// format version derives keys of its own from the same files.
import { hkdfSync } from 'node:crypto';

export const KEY_BYTES = 32;
const SALT = Buffer.from('knockwatch spa salt v1', 'ascii');
/** User names go into HKDF labels, file names and log lines. */
export const USER_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;

export interface UserKeys {
  readonly user: string;
  readonly hintKey: Buffer;
  readonly aeadKey: Buffer;
}

function derive(key: Uint8Array, label: string, user: string): Buffer {
  const info = Buffer.concat([Buffer.from(`knockwatch spa v1 ${label}\0`, 'ascii'), Buffer.from(user, 'utf8')]);
  return Buffer.from(hkdfSync('sha256', key, SALT, info, KEY_BYTES));
}

/** The hint and AEAD sub-keys of one user key. */
export function deriveKeys(key: Uint8Array, user: string): UserKeys {
  if (key.length !== KEY_BYTES) throw new RangeError(`spa key for user '${user}' must be ${KEY_BYTES} bytes, got ${key.length}`);
  if (!USER_NAME_RE.test(user)) throw new RangeError(`invalid user name '${user}'`);
  return { user, hintKey: derive(key, 'hint', user), aeadKey: derive(key, 'aead', user) };
}

/** A key or TOTP file whose text is wrong; `line` is 1-based (0: the file as a whole). */
export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(line > 0 ? `${file}:${line}: ${reason}` : `${file}: ${reason}`);
  }
}

/** The one meaningful line of a key-like file: blank lines and '#' comments are skipped. */
function onlyLine(file: string, text: string, what: string): { value: string; line: number } {
  let found: { value: string; line: number } | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const value = lines[i].replace(/\r$/, '').trim();
    if (value === '' || value.startsWith('#')) continue;
    if (found !== undefined) throw new KeyFileError(file, i + 1, `a second ${what} line (the first is line ${found.line}); a ${what} file holds exactly one`);
    found = { value, line: i + 1 };
  }
  if (found === undefined) throw new KeyFileError(file, 0, `no ${what} in the file (empty, or only comments)`);
  return found;
}

const BASE64_KEY_RE = /^[A-Za-z0-9+/]{43}=$/;

/** The 32 bytes of a key file's text: one line of standard base64 (44 characters). */
export function parseKeyText(file: string, text: string): Buffer {
  const { value, line } = onlyLine(file, text, 'key');
  if (!BASE64_KEY_RE.test(value)) {
    const bad = value.search(/[^A-Za-z0-9+/=]/);
    const why = bad >= 0 ? `character ${JSON.stringify(value[bad])} at column ${bad + 1} is not base64` : `${value.length} characters`;
    throw new KeyFileError(file, line, `expected a 256-bit key as 44 characters of base64 (as 'knockwatch keygen' writes), got ${why}`);
  }
  const key = Buffer.from(value, 'base64');
  // Canonical: the last character's unused bits must be zero, so one key has one text.
  if (key.length !== KEY_BYTES || key.toString('base64') !== value) throw new KeyFileError(file, line, 'not a canonical base64 encoding of 32 bytes');
  return key;
}

export const TOTP_SECRET_BYTES = 20;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Base32 (RFC 4648, no padding needed) to bytes; undefined if a character is not base32. */
export function base32Decode(text: string): Buffer | undefined {
  const clean = text.replace(/=+$/, '').toUpperCase();
  const out: number[] = [];
  let bits = 0;
  let acc = 0;
  for (const ch of clean) {
    const v = BASE32.indexOf(ch);
    if (v < 0) return undefined;
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(acc >> bits) & 31];
    }
  }
  if (bits > 0) out += BASE32[(acc << (5 - bits)) & 31];
  return out;
}

/** The TOTP secret of a .totp file: one base32 line of at least 160 bits. */
export function parseTotpText(file: string, text: string): Buffer {
  const { value, line } = onlyLine(file, text, 'TOTP secret');
  const secret = base32Decode(value.replace(/[\s-]/g, ''));
  if (secret === undefined) throw new KeyFileError(file, line, 'expected the TOTP secret in base32 (A-Z, 2-7), as `knockwatch keygen --totp` writes');
  if (secret.length < TOTP_SECRET_BYTES) throw new KeyFileError(file, line, `TOTP secret is ${secret.length * 8} bits; at least ${TOTP_SECRET_BYTES * 8} are required (RFC 4226)`);
  return secret;
}
