// Shared makers for the spa unit tests: users with fixed keys, a server, and
// datagrams sealed as the client seals them.
import { parseAddress, type SpaAddress } from '../../src/spa/address.js';
import { deriveKeys } from '../../src/spa/keys.js';
import { knockDatagram } from '../../src/spa/seal.js';
import { createSpaServer } from '../../src/spa/server.js';
import type { SpaDoorPolicy, SpaServer, SpaUser } from '../../src/spa/verify.js';

export const T0 = Date.UTC(2026, 11, 2, 18, 0, 0);
export const KEY_A = Buffer.alloc(32, 0xa1);
export const KEY_B = Buffer.alloc(32, 0xb2);
export const TOTP_A = Buffer.from('12345678901234567890', 'ascii'); // the RFC 6238 test secret

export function addr(text: string): SpaAddress {
  const a = parseAddress(text);
  if (a === undefined) throw new Error(`bad test address ${text}`);
  return a;
}

export function user(name: string, key: Buffer, totp?: Buffer, extraKey?: Buffer): SpaUser {
  const keys = [deriveKeys(key, name), ...(extraKey ? [deriveKeys(extraKey, name)] : [])];
  return { name, keys, ...(totp ? { totpSecret: totp } : {}) };
}

export function door(name: string, over: Partial<SpaDoorPolicy> = {}): SpaDoorPolicy {
  return { name, port: 62201, totp: false, allowIp: 'source', maxAgeMs: 30_000, durationMs: 30_000, ...over };
}

/** alice (key A, TOTP) and bob (key B); doors ssh (everyone), alice-only, totp (alice, TOTP), any (allow_ip any). */
export function server(over: { doors?: SpaDoorPolicy[]; users?: SpaUser[] } = {}): SpaServer {
  return createSpaServer({
    users: over.users ?? [user('alice', KEY_A, TOTP_A), user('bob', KEY_B)],
    doors: over.doors ?? [
      door('ssh'),
      door('alice-only', { users: new Set(['alice']) }),
      door('totp', { totp: true, users: new Set(['alice']) }),
      door('any', { allowIp: 'any' }),
    ],
  });
}

export function datagram(over: { key?: Buffer; user?: string; door?: string; address?: string; time?: number; totp?: number; nonce?: Buffer } = {}): Buffer {
  return knockDatagram({
    key: over.key ?? KEY_A,
    user: over.user ?? 'alice',
    door: over.door ?? 'ssh',
    address: addr(over.address ?? '192.0.2.10'),
    time: over.time ?? T0,
    ...(over.totp !== undefined ? { totp: over.totp } : {}),
    ...(over.nonce ? { nonce: over.nonce } : {}),
  });
}
