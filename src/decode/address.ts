// Address bytes -> canonical text, on the decode hot path.
// IPv4: dotted quad. IPv6: RFC 5952 (lowercase hex, no leading zeros, the
// longest run of two or more zero groups compressed to '::', the first run on
// ties, IPv4-mapped addresses as ::ffff:a.b.c.d).
// No result cache: under a spoofed-source flood every address is new, and a
// cache would only grow. The fixed tables below are built once at load.

/** '0'..'255' */
const DEC: readonly string[] = Array.from({ length: 256 }, (_, i) => String(i));
/** '0.'..'255.' so a dotted quad takes three concatenations. */
const DEC_DOT: readonly string[] = DEC.map((s) => `${s}.`);
/** Byte as hex without leading zeros: '0'..'ff'. */
const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16));
/** Byte as two hex digits: '00'..'ff' (low byte of a group whose high byte is non-zero). */
const HEX2: readonly string[] = HEX.map((s) => s.padStart(2, '0'));

/**
 * Dotted quad of the 4 bytes at `off`. The caller guarantees off + 4 <= b.length
 * (the decoder checks the IP header length before formatting).
 */
export function formatIPv4(b: Uint8Array, off: number): string {
  return DEC_DOT[b[off]] + DEC_DOT[b[off + 1]] + DEC_DOT[b[off + 2]] + DEC[b[off + 3]];
}

function group(b: Uint8Array, i: number): number {
  return (b[i] << 8) | b[i + 1];
}

function hexGroup(b: Uint8Array, i: number): string {
  const hi = b[i];
  return hi === 0 ? HEX[b[i + 1]] : HEX[hi] + HEX2[b[i + 1]];
}

/**
 * RFC 5952 text of the 16 bytes at `off`. The caller guarantees
 * off + 16 <= b.length.
 */
export function formatIPv6(b: Uint8Array, off: number): string {
  // Longest run of zero groups (first one wins on ties), in group indexes.
  let bestStart = -1;
  let bestLen = 0;
  let runStart = -1;
  for (let i = 0; i < 8; i++) {
    if (group(b, off + 2 * i) === 0) {
      if (runStart < 0) runStart = i;
      const len = i - runStart + 1;
      if (len > bestLen) {
        bestLen = len;
        bestStart = runStart;
      }
    } else {
      runStart = -1;
    }
  }
  // IPv4-mapped ::ffff:a.b.c.d (RFC 5952 section 5).
  if (bestStart === 0 && bestLen === 5 && group(b, off + 10) === 0xffff) {
    return '::ffff:' + formatIPv4(b, off + 12);
  }
  let s = '';
  if (bestLen < 2) {
    s = hexGroup(b, off);
    for (let i = 1; i < 8; i++) s += ':' + hexGroup(b, off + 2 * i);
    return s;
  }
  for (let i = 0; i < bestStart; i++) {
    if (i > 0) s += ':';
    s += hexGroup(b, off + 2 * i);
  }
  s += '::';
  const after = bestStart + bestLen;
  for (let i = after; i < 8; i++) {
    if (i > after) s += ':';
    s += hexGroup(b, off + 2 * i);
  }
  return s;
}
