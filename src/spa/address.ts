// Addresses inside an spa datagram: parsed from text to 16 bytes (the fixed
// slot in the plaintext) and back to the canonical text the rest of
// knockwatch uses as a source key (decode/address.ts, RFC 5952), so an
// address that came sealed in a packet and one that came from a packet header
// compare as equal strings.
//
// IPv4-mapped IPv6 (::ffff:a.b.c.d) is the same host as a.b.c.d: a dual-stack
// socket reports an IPv4 peer that way. It is normalised to family 4 before it
// is sealed or compared, so there is one encoding per address.
import { formatIPv4, formatIPv6 } from '../decode/address.js';

export interface SpaAddress {
  readonly family: 4 | 6;
  /** 16 bytes: IPv4 in the first 4 (the rest zero), IPv6 in all 16. */
  readonly bytes: Uint8Array;
}

function parseIPv4Into(text: string, out: Uint8Array, off: number): boolean {
  const parts = text.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    // No leading zeros (0127 is octal to some parsers, decimal to others).
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return false;
    const n = Number(p);
    if (n > 255) return false;
    out[off + i] = n;
  }
  return true;
}

/** 16 bytes of an IPv6 text address (with an optional embedded IPv4 tail), or undefined. */
function parseIPv6(text: string): Uint8Array | undefined {
  if (text.length > 45 || text.includes('%')) return undefined;
  const out = new Uint8Array(16);
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = groupsOf(halves[0]);
  const tail = halves.length === 2 ? groupsOf(halves[1]) : [];
  // An IPv4 tail counts as two groups.
  const all = halves.length === 2 ? tail : head;
  let v4: Uint8Array | undefined;
  if (all.length > 0 && all[all.length - 1].includes('.')) {
    v4 = new Uint8Array(4);
    if (!parseIPv4Into(all.pop() as string, v4, 0)) return undefined;
  }
  const groupCount = head.length + tail.length + (v4 ? 2 : 0);
  if (halves.length === 2 ? groupCount > 7 : groupCount !== 8) return undefined;
  const write = (groups: string[], at: number): boolean => {
    for (let i = 0; i < groups.length; i++) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(groups[i])) return false;
      const n = parseInt(groups[i], 16);
      out[at + 2 * i] = n >> 8;
      out[at + 2 * i + 1] = n & 0xff;
    }
    return true;
  };
  if (!write(head, 0)) return undefined;
  const tailBytes = tail.length * 2 + (v4 ? 4 : 0);
  if (halves.length === 2 && !write(tail, 16 - tailBytes)) return undefined;
  if (v4) out.set(v4, 12);
  return out;
}

/** True for ::ffff:0:0/96 (IPv4-mapped). */
function isMapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** Text (IPv4 dotted quad or IPv6) to an SpaAddress; IPv4-mapped IPv6 becomes family 4. Undefined if not an address. */
export function parseAddress(text: string): SpaAddress | undefined {
  if (text.includes(':')) {
    const b = parseIPv6(text);
    if (b === undefined) return undefined;
    if (isMapped(b)) {
      const v4 = new Uint8Array(16);
      v4.set(b.subarray(12, 16), 0);
      return { family: 4, bytes: v4 };
    }
    return { family: 6, bytes: b };
  }
  const bytes = new Uint8Array(16);
  return parseIPv4Into(text, bytes, 0) ? { family: 4, bytes } : undefined;
}

/** Canonical text (the form decode gives packet sources). */
export function formatAddress(a: SpaAddress): string {
  return a.family === 4 ? formatIPv4(a.bytes, 0) : formatIPv6(a.bytes, 0);
}

/** The canonical text of any address text (IPv4-mapped IPv6 as IPv4), or undefined. */
export function normaliseAddress(text: string): string | undefined {
  const a = parseAddress(text);
  return a === undefined ? undefined : formatAddress(a);
}

/**
 * Why an address must never be opened for, or undefined when it may be.
 * Unspecified, loopback, multicast and (IPv4) broadcast addresses name no
 * single remote host: opening them would open the door to nobody in
 * particular, or to this host itself.
 */
export function refusedAddress(a: SpaAddress): string | undefined {
  const b = a.bytes;
  if (a.family === 4) {
    if (b[0] === 0) return 'unspecified (0.0.0.0/8)';
    if (b[0] === 127) return 'loopback (127.0.0.0/8)';
    if (b[0] >= 224 && b[0] <= 239) return 'multicast (224.0.0.0/4)';
    if (b[0] === 255 && b[1] === 255 && b[2] === 255 && b[3] === 255) return 'broadcast (255.255.255.255)';
    if (b[0] >= 240) return 'reserved (240.0.0.0/4)';
    return undefined;
  }
  let zero = true;
  for (let i = 0; i < 15; i++) if (b[i] !== 0) zero = false;
  if (zero && b[15] === 0) return 'unspecified (::)';
  if (zero && b[15] === 1) return 'loopback (::1)';
  if (b[0] === 0xff) return 'multicast (ff00::/8)';
  return undefined;
}
