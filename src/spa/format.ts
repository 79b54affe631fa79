// The spa datagram, format version 1: one UDP payload of exactly 101 bytes.
//
//   offset size  field
//        0    1  version = 1
//        1    8  hint: HMAC-SHA256(hint key, time step)[0..8] (hint.ts)
//        9   12  nonce: 12 random bytes, fresh per datagram; the replay identifier
//       21   64  ChaCha20-Poly1305 ciphertext of the 64-byte plaintext below
//       85   16  Poly1305 tag
//
// Associated data: the ASCII label "knockwatch spa\0" followed by bytes 0-20
// (version, hint, nonce), so a header moved onto another ciphertext, or a
// ciphertext made under another format's label, fails authentication.
//
// Plaintext (64 bytes, every byte fixed by the rules below; anything else is
// refused after decryption even though it authenticated):
//        0    8  client time, ms since the Unix epoch, unsigned big-endian (< 2^53)
//        8    1  address family: 4 or 6
//        9   16  address to open: IPv4 in bytes 9-12 and zeros after; IPv6 in all 16
//                (an IPv4-mapped IPv6 address is sent as family 4, never as ::ffff:a.b.c.d)
//       25    1  door name length, 1-32
//       26   32  door name ([A-Za-z0-9_-]), zero bytes after it
//       58    1  flags: bit 0 = a TOTP code follows; other bits zero
//       59    4  TOTP code, unsigned big-endian, 0-999999 (zero when bit 0 is clear)
//       63    1  zero
//
// Every datagram has the same length whatever the family, door or TOTP use:
// the length tells an observer nothing. Version 2 is reserved for a format
// signed with a per-user public key (so a server could hold public keys
// only); it is refused today, as is every other version.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { SpaAddress } from './address.js';

export const FORMAT_VERSION = 1;
/** Reserved: public-key signatures (not implemented; such datagrams are refused). */
export const RESERVED_PUBLIC_KEY_VERSION = 2;
export const HINT_BYTES = 8;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const PLAINTEXT_BYTES = 64;
export const HEADER_BYTES = 1 + HINT_BYTES + NONCE_BYTES;
export const DATAGRAM_BYTES = HEADER_BYTES + PLAINTEXT_BYTES + TAG_BYTES;
export const MAX_DOOR_NAME_BYTES = 32;
export const MAX_TOTP_CODE = 999_999;
const DOOR_NAME_RE = /^[A-Za-z0-9_-]{1,32}$/;
const AAD_LABEL = Buffer.from('knockwatch spa\0', 'ascii');

const OFF_TIME = 0;
const OFF_FAMILY = 8;
const OFF_ADDRESS = 9;
const OFF_NAME_LEN = 25;
const OFF_NAME = 26;
const OFF_FLAGS = 58;
const OFF_CODE = 59;
const OFF_PAD = 63;
const FLAG_TOTP = 1;

/** What the sealed part says. */
export interface SpaPlaintext {
  /** Client time, whole ms since the epoch. */
  readonly time: number;
  readonly address: SpaAddress;
  readonly door: string;
  /** The TOTP code (0-999999), when one was sent. */
  readonly totp?: number;
}

export interface SealInput {
  readonly aeadKey: Uint8Array;
  readonly hint: Uint8Array;
  readonly nonce: Uint8Array;
  readonly plaintext: SpaPlaintext;
}

function aad(header: Uint8Array): Buffer {
  return Buffer.concat([AAD_LABEL, header.subarray(0, HEADER_BYTES)]);
}

/** The 64-byte plaintext; throws naming the field when the input cannot be encoded. */
export function encodePlaintext(p: SpaPlaintext): Buffer {
  const out = Buffer.alloc(PLAINTEXT_BYTES);
  if (!Number.isSafeInteger(p.time) || p.time < 0) throw new RangeError(`spa plaintext: time must be whole ms >= 0, got ${p.time}`);
  out.writeBigUInt64BE(BigInt(p.time), OFF_TIME);
  const a = p.address;
  if ((a.family !== 4 && a.family !== 6) || a.bytes.length !== 16) throw new RangeError('spa plaintext: address must be family 4 or 6 with 16 bytes');
  if (a.family === 4) for (let i = 4; i < 16; i++) if (a.bytes[i] !== 0) throw new RangeError('spa plaintext: IPv4 address with non-zero bytes after the fourth');
  out[OFF_FAMILY] = a.family;
  out.set(a.bytes, OFF_ADDRESS);
  if (!DOOR_NAME_RE.test(p.door)) throw new RangeError(`spa plaintext: invalid door name '${p.door}' (1-32 of A-Z a-z 0-9 _ -)`);
  out[OFF_NAME_LEN] = p.door.length;
  out.write(p.door, OFF_NAME, 'ascii');
  if (p.totp !== undefined) {
    if (!Number.isInteger(p.totp) || p.totp < 0 || p.totp > MAX_TOTP_CODE) throw new RangeError('spa plaintext: TOTP code must be 0-999999');
    out[OFF_FLAGS] = FLAG_TOTP;
    out.writeUInt32BE(p.totp, OFF_CODE);
  }
  return out;
}

/** Why a decrypted plaintext is not canonical, or the plaintext. */
export function decodePlaintext(b: Uint8Array): SpaPlaintext | string {
  if (b.length !== PLAINTEXT_BYTES) return `plaintext is ${b.length} bytes, not ${PLAINTEXT_BYTES}`;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  const time = buf.readBigUInt64BE(OFF_TIME);
  if (time > BigInt(Number.MAX_SAFE_INTEGER)) return 'time above 2^53 ms';
  const family = buf[OFF_FAMILY];
  if (family !== 4 && family !== 6) return `address family byte ${family}, not 4 or 6`;
  const bytes = new Uint8Array(16);
  bytes.set(buf.subarray(OFF_ADDRESS, OFF_ADDRESS + 16));
  if (family === 4) {
    for (let i = 4; i < 16; i++) if (bytes[i] !== 0) return 'IPv4 address with non-zero bytes after the fourth';
  } else {
    let mapped = bytes[10] === 0xff && bytes[11] === 0xff;
    for (let i = 0; i < 10; i++) if (bytes[i] !== 0) mapped = false;
    if (mapped) return 'IPv4-mapped IPv6 address (must be sent as family 4)';
  }
  const len = buf[OFF_NAME_LEN];
  if (len < 1 || len > MAX_DOOR_NAME_BYTES) return `door name length ${len}, not 1-32`;
  const door = buf.toString('latin1', OFF_NAME, OFF_NAME + len);
  if (!DOOR_NAME_RE.test(door)) return 'door name has bytes outside A-Z a-z 0-9 _ -';
  for (let i = OFF_NAME + len; i < OFF_NAME + MAX_DOOR_NAME_BYTES; i++) if (buf[i] !== 0) return 'non-zero byte after the door name';
  const flags = buf[OFF_FLAGS];
  if ((flags & ~FLAG_TOTP) !== 0) return `unknown flag bits 0x${flags.toString(16)}`;
  const code = buf.readUInt32BE(OFF_CODE);
  if (flags === 0 && code !== 0) return 'TOTP code present without its flag';
  if (code > MAX_TOTP_CODE) return 'TOTP code above 999999';
  if (buf[OFF_PAD] !== 0) return 'non-zero padding byte';
  const plain: SpaPlaintext = { time: Number(time), address: { family, bytes }, door };
  return flags === FLAG_TOTP ? { ...plain, totp: code } : plain;
}

/** The whole datagram (DATAGRAM_BYTES). */
export function sealDatagram(input: SealInput): Buffer {
  if (input.hint.length !== HINT_BYTES) throw new RangeError(`spa: hint must be ${HINT_BYTES} bytes`);
  if (input.nonce.length !== NONCE_BYTES) throw new RangeError(`spa: nonce must be ${NONCE_BYTES} bytes`);
  if (input.aeadKey.length !== 32) throw new RangeError('spa: AEAD key must be 32 bytes');
  const out = Buffer.alloc(DATAGRAM_BYTES);
  out[0] = FORMAT_VERSION;
  out.set(input.hint, 1);
  out.set(input.nonce, 1 + HINT_BYTES);
  const cipher = createCipheriv('chacha20-poly1305', input.aeadKey, input.nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(out), { plaintextLength: PLAINTEXT_BYTES });
  const ct = Buffer.concat([cipher.update(encodePlaintext(input.plaintext)), cipher.final()]);
  if (ct.length !== PLAINTEXT_BYTES) throw new Error('spa: cipher output length changed');
  ct.copy(out, HEADER_BYTES);
  cipher.getAuthTag().copy(out, HEADER_BYTES + PLAINTEXT_BYTES);
  return out;
}

/**
 * Authenticates and decrypts a DATAGRAM_BYTES datagram with one AEAD key:
 * the plaintext bytes, or undefined when the tag does not verify. Nothing
 * decrypted is returned unless it authenticated.
 */
export function openDatagram(datagram: Uint8Array, aeadKey: Uint8Array): Buffer | undefined {
  if (datagram.length !== DATAGRAM_BYTES) return undefined;
  const nonce = datagram.subarray(1 + HINT_BYTES, HEADER_BYTES);
  const decipher = createDecipheriv('chacha20-poly1305', aeadKey, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad(datagram), { plaintextLength: PLAINTEXT_BYTES });
  decipher.setAuthTag(datagram.subarray(HEADER_BYTES + PLAINTEXT_BYTES));
  const pt = decipher.update(datagram.subarray(HEADER_BYTES, HEADER_BYTES + PLAINTEXT_BYTES));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return pt;
}

/** The hint bytes of a datagram, as a Map key (8 latin1 characters). */
export function hintKeyOf(datagram: Uint8Array): string {
  return Buffer.from(datagram.buffer, datagram.byteOffset + 1, HINT_BYTES).toString('latin1');
}

/** The nonce of a datagram, as a Map key (12 latin1 characters). */
export function nonceKeyOf(datagram: Uint8Array): string {
  return Buffer.from(datagram.buffer, datagram.byteOffset + 1 + HINT_BYTES, NONCE_BYTES).toString('latin1');
}
