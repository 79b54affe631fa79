// The client's half: one datagram from a user key, what to open and the time.
import { randomBytes } from 'node:crypto';
import type { SpaAddress } from './address.js';
import { NONCE_BYTES, sealDatagram } from './format.js';
import { computeHint, hintStep } from './hint.js';
import { deriveKeys } from './keys.js';

export interface KnockDatagramInput {
  /** The user's 32-byte key (the key file's content). */
  readonly key: Uint8Array;
  readonly user: string;
  readonly door: string;
  /** The address the server is to open (the client's own, as the server sees it). */
  readonly address: SpaAddress;
  /** Client time, whole ms since the epoch. */
  readonly time: number;
  readonly totp?: number;
  /** A fresh random nonce unless given (tests only). */
  readonly nonce?: Uint8Array;
}

export function knockDatagram(input: KnockDatagramInput): Buffer {
  const keys = deriveKeys(input.key, input.user);
  const time = Math.floor(input.time);
  return sealDatagram({
    aeadKey: keys.aeadKey,
    hint: computeHint(keys.hintKey, hintStep(time)),
    nonce: input.nonce ?? randomBytes(NONCE_BYTES),
    plaintext: { time, address: input.address, door: input.door, ...(input.totp !== undefined ? { totp: input.totp } : {}) },
  });
}
