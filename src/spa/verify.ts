// The server's verdict on one spa datagram. Pure: the datagram, where it came
// from, the server's time and the server's state go in, a verdict comes out;
// no clock is read and nothing is sent back (no oracle: the client learns
// only whether the door opened, by connecting).
//
// Order, cheapest and most common rejection first:
//   guard      clock below the persisted floor; no lease on disk yet
//   framing    exact length, known version (junk ends here or at the hint)
//   hint       one Map lookup; unknown -> rejected without any crypto
//   budget     failed AEAD opens per hint and overall
//   replay     (user, nonce) seen before -> rejected before any AEAD
//   AEAD       at most MAX_CANDIDATES (2) opens
//   canonical  strict parse of the plaintext
//   fresh      |server time - client time| <= max_age; client time after the restart horizon
//   -> spent:  from here on the nonce is in the replay cache, whatever follows
//   door, user, address, rate, TOTP
import { formatAddress, parseAddress, refusedAddress, type SpaAddress } from './address.js';
import { hasToken, newBucket, takeToken, type Bucket, type BucketRule } from './bucket.js';
import { DATAGRAM_BYTES, FORMAT_VERSION, RESERVED_PUBLIC_KEY_VERSION, decodePlaintext, nonceKeyOf, openDatagram, type SpaPlaintext } from './format.js';
import type { HintIndex } from './hint.js';
import type { UserKeys } from './keys.js';
import { REPLAY_SLACK_MS, type ReplayCache } from './replay-cache.js';
import type { TotpState } from './totp.js';

/** Every reason a datagram is refused; each one is counted. */
export const SPA_REJECT_REASONS = [
  'bad-length',
  'bad-version',
  'unknown-hint',
  'replayed',
  'rate-limited',
  'auth-failed',
  'bad-format',
  'stale',
  'before-restart',
  'clock-below-floor',
  'no-lease',
  'replay-cache-full',
  'unknown-door',
  'user-not-allowed',
  'address-mismatch',
  'address-refused',
  'too-many-addresses',
  'totp-missing',
  'totp-wrong',
  'totp-reused',
  'totp-locked',
  'fragment',
  'no-keys',
] as const;
export type SpaRejectReason = (typeof SPA_REJECT_REASONS)[number];

/** Longest accepted clock difference any door may set. */
export const MAX_MAX_AGE_MS = 300_000;
export const DEFAULT_MAX_AGE_MS = 30_000;
/** Accepted opens per user: 5 at once, then one every 6 s (10 a minute). */
export const USER_OPEN_RULE: BucketRule = { burst: 5, perSecond: 1 / 6 };
/** Addresses one user may hold open at once (each knock from a new address adds one). */
export const MAX_ADDRESSES_PER_USER = 8;

export interface SpaUser {
  readonly name: string;
  /** One or two keys (two during a rotation). */
  readonly keys: readonly UserKeys[];
  /** The TOTP secret, when the user has a .totp file. */
  readonly totpSecret?: Uint8Array;
}

export interface SpaDoorPolicy {
  readonly name: string;
  /** The UDP port the datagram must arrive on. */
  readonly port: number;
  /** Users who may open it; undefined: every user. */
  readonly users?: ReadonlySet<string>;
  readonly totp: boolean;
  readonly allowIp: 'source' | 'any';
  readonly maxAgeMs: number;
  readonly durationMs: number;
}

/** Numbers the daemon keeps current (the strike register and the clock check); replay leaves them open. */
export interface SpaGuard {
  /** Server times below this refuse spa (system clock below the persisted floor). */
  floorMs: number;
  /** Server times at or above this refuse spa (the lease on disk does not cover them yet). */
  leaseUntil: number;
  /** Client times at or below this are refused (a crash may have accepted them). */
  horizonMs: number;
}

/** State that lives across reloads (the replay cache, TOTP, rate limits) and the config-derived parts. */
export interface SpaServer {
  readonly users: ReadonlyMap<string, SpaUser>;
  readonly doors: ReadonlyMap<string, SpaDoorPolicy>;
  readonly hints: HintIndex;
  readonly replay: ReplayCache;
  readonly totp: TotpState;
  readonly guard: SpaGuard;
  /** Largest max_age of the doors, ms: the replay cache keeps entries this long past their client time. */
  readonly maxAgeMs: number;
  /** Per user: accepted-open bucket. */
  readonly opens: Map<string, Bucket>;
  /** Per user: addresses opened and until when (server time). */
  readonly holders: Map<string, Map<string, number>>;
  /** Rejections counted by reason. */
  readonly counts: Record<SpaRejectReason, number>;
}

export type SpaVerdict =
  | { readonly ok: true; readonly user: string; readonly door: string; readonly address: string; readonly family: 4 | 6; readonly clientTime: number }
  | {
      readonly ok: false;
      readonly reason: SpaRejectReason;
      /** Known once the datagram authenticated. */
      readonly user?: string;
      readonly door?: string;
      /** A loud event the daemon must log (a TOTP lockout). */
      readonly alert?: string;
      readonly detail?: string;
    };

export function emptyCounts(): Record<SpaRejectReason, number> {
  return Object.fromEntries(SPA_REJECT_REASONS.map((r) => [r, 0])) as Record<SpaRejectReason, number>;
}

/** One frozen verdict per reason for rejections that name nothing more: junk allocates nothing. */
const PLAIN: Readonly<Record<SpaRejectReason, SpaVerdict>> = Object.fromEntries(
  SPA_REJECT_REASONS.map((r) => [r, Object.freeze({ ok: false as const, reason: r })]),
) as Record<SpaRejectReason, SpaVerdict>;

function reject(server: SpaServer, reason: SpaRejectReason, extra?: { user?: string; door?: string; alert?: string; detail?: string }): SpaVerdict {
  server.counts[reason] += 1;
  return extra === undefined ? PLAIN[reason] : { ok: false, reason, ...extra };
}

/** Live addresses of one user at `now` (expired ones are forgotten). */
function liveHolders(server: SpaServer, user: string, now: number): Map<string, number> {
  let m = server.holders.get(user);
  if (m === undefined) {
    m = new Map();
    server.holders.set(user, m);
  }
  for (const [a, until] of m) if (until <= now) m.delete(a);
  return m;
}

/**
 * Judges one datagram that arrived on UDP `port` from `source` (canonical
 * text) at server time `now` (ms). A verdict that is not ok names the reason;
 * once the datagram authenticated it also names the user (for the log; the
 * reason alone goes to whoever watches counters).
 */
export function verifyDatagram(server: SpaServer, datagram: Uint8Array, source: string, port: number, now: number): SpaVerdict {
  const guard = server.guard;
  if (datagram.length !== DATAGRAM_BYTES) return reject(server, 'bad-length');
  if (datagram[0] !== FORMAT_VERSION) {
    return reject(server, 'bad-version', datagram[0] === RESERVED_PUBLIC_KEY_VERSION ? { detail: 'version 2 (public-key signatures) is reserved, not supported' } : undefined);
  }
  server.hints.advance(now);
  const hint = server.hints.lookup(datagram, 1);
  if (hint === undefined) return reject(server, 'unknown-hint');
  const candidates = server.hints.candidates(hint);
  // Checked after the hint: junk must stay cheap and must not make this loud.
  if (now < guard.floorMs) return reject(server, 'clock-below-floor');
  if (now >= guard.leaseUntil) return reject(server, 'no-lease');
  // The budget first: a flood of forged datagrams on a captured hint then costs no nonce string either.
  if (!server.hints.mayTry(hint, now)) return reject(server, 'rate-limited');
  const nonce = nonceKeyOf(datagram);
  for (const c of candidates) if (server.replay.has(c.keys.user, nonce, now)) return reject(server, 'replayed', { user: c.keys.user });

  let keys: UserKeys | undefined;
  let plain: Buffer | undefined;
  for (const c of candidates) {
    plain = openDatagram(datagram, c.keys.aeadKey);
    if (plain !== undefined) {
      keys = c.keys;
      break;
    }
  }
  if (keys === undefined || plain === undefined) {
    server.hints.failed(hint, now);
    return reject(server, 'auth-failed');
  }
  const user = keys.user;
  const parsed = decodePlaintext(plain);
  if (typeof parsed === 'string') return reject(server, 'bad-format', { user, detail: parsed });
  const p: SpaPlaintext = parsed;
  const door = server.doors.get(p.door);
  // A door on another port (or none) still has a freshness rule: the widest one.
  const maxAge = door !== undefined && door.port === port ? door.maxAgeMs : server.maxAgeMs;
  if (Math.abs(now - p.time) > maxAge) return reject(server, 'stale', { user, door: p.door, detail: `client clock ${p.time - now > 0 ? 'ahead' : 'behind'} by ${Math.round(Math.abs(now - p.time))} ms` });
  if (p.time <= guard.horizonMs) return reject(server, 'before-restart', { user, door: p.door });

  // Spent from here on, whatever the verdict.
  const added = server.replay.add(user, nonce, p.time + server.maxAgeMs + REPLAY_SLACK_MS, now);
  if (added !== 'added') return reject(server, 'replay-cache-full', { user, door: p.door, detail: added === 'user-full' ? `user quota reached` : 'global cap reached' });

  if (door === undefined || door.port !== port) return reject(server, 'unknown-door', { user, door: p.door });
  if (door.users !== undefined && !door.users.has(user)) return reject(server, 'user-not-allowed', { user, door: door.name });
  const srcAddr = parseAddress(source);
  const refused = refusedAddress(p.address);
  if (refused !== undefined) return reject(server, 'address-refused', { user, door: door.name, detail: refused });
  const address = formatAddress(p.address);
  if (door.allowIp === 'source' && (srcAddr === undefined || !sameAddress(srcAddr, p.address))) {
    return reject(server, 'address-mismatch', { user, door: door.name, detail: `sealed ${address}, sent from ${source}` });
  }

  let bucket = server.opens.get(user);
  if (bucket === undefined) {
    bucket = newBucket(USER_OPEN_RULE, now);
    server.opens.set(user, bucket);
  }
  if (!hasToken(bucket, USER_OPEN_RULE, now)) return reject(server, 'rate-limited', { user, door: door.name, detail: 'accepted opens per user' });
  const holders = liveHolders(server, user, now);
  if (!holders.has(address) && holders.size >= MAX_ADDRESSES_PER_USER) {
    return reject(server, 'too-many-addresses', { user, door: door.name, detail: `${holders.size} addresses open` });
  }

  if (door.totp) {
    const secret = server.users.get(user)?.totpSecret;
    if (p.totp === undefined || secret === undefined) return reject(server, 'totp-missing', { user, door: door.name });
    const r = server.totp.check(user, secret, p.totp, now);
    if (!r.ok) {
      const alert = r.lockout ? `TOTP lockout of user ${user} for ${Math.round(r.lockout.forMs / 1000)} s after repeated wrong codes in authenticated datagrams: someone holds this user's key file; replace the key` : undefined;
      return reject(server, r.reason, { user, door: door.name, ...(alert ? { alert } : {}) });
    }
  }

  takeToken(bucket, USER_OPEN_RULE, now);
  holders.set(address, Math.max(holders.get(address) ?? 0, now + door.durationMs));
  return { ok: true, user, door: door.name, address, family: p.address.family, clientTime: p.time };
}

function sameAddress(a: SpaAddress, b: SpaAddress): boolean {
  if (a.family !== b.family) return false;
  for (let i = 0; i < 16; i++) if (a.bytes[i] !== b.bytes[i]) return false;
  return true;
}
