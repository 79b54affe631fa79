// Passphrase-hash steps (spknock): a sequence step may require its UDP
// datagram to carry the hex SHA-256 digest of a passphrase. The payload
// matches when, after removing ASCII whitespace at both ends (a client may
// send a trailing newline), it is exactly 64 hex digits (either case) spelling
// the step's digest. Compared in constant time, as any secret is.
import { timingSafeEqual } from 'node:crypto';

/** SHA-256 digest length in bytes (64 hex digits). */
export const DIGEST_BYTES = 32;

function isSpace(b: number): boolean {
  // space, \t, \n, \v, \f, \r
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  const l = b | 0x20; // ASCII lower case
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

// One scratch buffer: the detector is single-threaded and not re-entrant.
const scratch = Buffer.alloc(DIGEST_BYTES);

/** Whether `payload` spells `digest` (32 bytes) in hex, as above. */
export function payloadMatchesDigest(payload: Uint8Array, digest: Uint8Array): boolean {
  let start = 0;
  let end = payload.length;
  while (start < end && isSpace(payload[start])) start++;
  while (end > start && isSpace(payload[end - 1])) end--;
  if (end - start !== DIGEST_BYTES * 2) return false;
  let bad = 0;
  for (let i = 0; i < DIGEST_BYTES; i++) {
    const hi = hexValue(payload[start + 2 * i]);
    const lo = hexValue(payload[start + 2 * i + 1]);
    bad |= (hi | lo) & 0x100 ? 1 : 0; // -1 has bit 8 set
    scratch[i] = ((hi & 0xf) << 4) | (lo & 0xf);
  }
  return timingSafeEqual(scratch, digest) && bad === 0;
}

/** The 32 bytes of a 64-hex-digit digest; throws RangeError otherwise. */
export function digestBytes(hex: string, where: string): Buffer {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new RangeError(`${where}: sha256 must be 64 hex digits, got ${hex.length} characters`);
  return Buffer.from(hex, 'hex');
}
