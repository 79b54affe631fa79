// TOTP, the optional second factor of an spa door: RFC 6238 with SHA-1,
// 6 digits and 30 s steps (what every phone authenticator does by default),
// computed by the `otpauth` package with node:crypto's HMAC.
//
// A code is checked against the server's time, one step either side, with a
// constant-time compare of all three candidates. Per user the last accepted
// step is kept and a code from a step that is not later is refused ('reused'):
// no set of used codes, since codes of different users collide and a set
// would have to be per user anyway. Whoever holds a user's key can ask for as
// many codes as they like (one datagram each), and 10^6 codes take seconds, so
// wrong codes are limited: 3 per user per step, then the user is locked out
// for 30 s, doubling on each further lockout (up to an hour) until a right
// code. A lockout means someone holds the key file and not the authenticator:
// the daemon logs it loudly.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { HOTP, Secret, TOTP } from 'otpauth';

export const TOTP_PERIOD_MS = 30_000;
export const TOTP_DIGITS = 6;
/** Wrong codes per user within one step before a lockout. */
export const TOTP_FAILURES_PER_STEP = 3;
export const TOTP_FIRST_LOCKOUT_MS = 30_000;
export const TOTP_MAX_LOCKOUT_MS = 3_600_000;

function nodeHmac(algorithm: string, key: Uint8Array, message: Uint8Array): Uint8Array {
  return createHmac(algorithm.toLowerCase().replace('-', ''), key).update(message).digest();
}

export function totpStep(timeMs: number): number {
  return Math.floor(timeMs / TOTP_PERIOD_MS);
}

/** The 6-digit code of `secret` for one step, as text with leading zeros. */
export function totpCode(secret: Uint8Array, step: number): string {
  const buffer = new Uint8Array(secret).buffer;
  return HOTP.generate({ secret: new Secret({ buffer }), algorithm: 'SHA1', digits: TOTP_DIGITS, counter: step, hmac: nodeHmac });
}

/** The otpauth:// URI a phone authenticator enrols from. */
export function totpUri(secret: Uint8Array, label: string, issuer = 'knockwatch'): string {
  const buffer = new Uint8Array(secret).buffer;
  return new TOTP({ issuer, label, secret: new Secret({ buffer }), algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD_MS / 1000 }).toString();
}

/** Per-user TOTP state, as kept across reloads and (in the state file) restarts. */
export interface TotpUserState {
  /** Last accepted step; codes of this step or earlier are refused. */
  lastStep: number;
  /** Wrong codes within `failStep`. */
  failures: number;
  failStep: number;
  /** No code is checked before this server time (ms). */
  lockedUntil: number;
  /** Length of the last lockout (0: none since the last right code). */
  backoffMs: number;
}

export type TotpResult =
  | { readonly ok: true; readonly step: number }
  | { readonly ok: false; readonly reason: 'totp-wrong' | 'totp-reused' | 'totp-locked'; readonly lockout?: { readonly until: number; readonly forMs: number } };

export interface TotpState {
  /** Checks `code` for `user` at server time `t`; a right code is spent. */
  check(user: string, secret: Uint8Array, code: number, t: number): TotpResult;
  /** Whether `user` is locked out at `t` (nothing is charged). */
  locked(user: string, t: number): boolean;
  /** Every step up to `step` counts as used, for every user (after a restart whose state was lost). */
  raiseFloor(step: number): void;
  /** State of every user that has any, for a store. */
  entries(): Array<[string, TotpUserState]>;
  /** Takes over stored state (start-up). */
  restore(user: string, s: TotpUserState): void;
}

export function createTotpState(): TotpState {
  const users = new Map<string, TotpUserState>();
  let floor = -Infinity;

  function get(user: string): TotpUserState {
    let s = users.get(user);
    if (s === undefined) {
      s = { lastStep: floor, failures: 0, failStep: -1, lockedUntil: -Infinity, backoffMs: 0 };
      users.set(user, s);
    }
    if (s.lastStep < floor) s.lastStep = floor;
    return s;
  }

  return {
    check(user, secret, code, t) {
      const s = get(user);
      if (t < s.lockedUntil) return { ok: false, reason: 'totp-locked' };
      const step = totpStep(t);
      const given = Buffer.from(String(code).padStart(TOTP_DIGITS, '0'), 'ascii');
      let matched = Number.NaN;
      // All three compared, in constant time each, whichever matches.
      for (let d = -1; d <= 1; d++) {
        const expected = Buffer.from(totpCode(secret, step + d), 'ascii');
        if (given.length === expected.length && timingSafeEqual(given, expected) && Number.isNaN(matched)) matched = step + d;
      }
      if (!Number.isNaN(matched)) {
        if (matched <= s.lastStep) return { ok: false, reason: 'totp-reused' };
        s.lastStep = matched;
        s.failures = 0;
        s.backoffMs = 0;
        return { ok: true, step: matched };
      }
      if (s.failStep !== step) {
        s.failStep = step;
        s.failures = 0;
      }
      s.failures += 1;
      if (s.failures < TOTP_FAILURES_PER_STEP) return { ok: false, reason: 'totp-wrong' };
      s.backoffMs = s.backoffMs === 0 ? TOTP_FIRST_LOCKOUT_MS : Math.min(TOTP_MAX_LOCKOUT_MS, s.backoffMs * 2);
      s.lockedUntil = t + s.backoffMs;
      s.failures = 0;
      return { ok: false, reason: 'totp-wrong', lockout: { until: s.lockedUntil, forMs: s.backoffMs } };
    },
    locked(user, t) {
      const s = users.get(user);
      return s !== undefined && t < s.lockedUntil;
    },
    raiseFloor(step) {
      if (step > floor) floor = step;
      for (const s of users.values()) if (s.lastStep < floor) s.lastStep = floor;
    },
    entries() {
      return [...users].map(([u, s]) => [u, { ...s }]);
    },
    restore(user, s) {
      users.set(user, { ...s, lastStep: Math.max(s.lastStep, floor) });
    },
  };
}
