// Crash consistency of the replay cache (the "strike register"): a datagram
// accepted before a crash or a restart must never be accepted after it, yet
// the replay cache lives in memory. Writing each cache entry to disk (fsync)
// before the firewall opens would put a disk flush on every knock's path;
// instead the daemon keeps a persisted time lease:
//
//  - it accepts an spa datagram only while the server's time is below the
//    lease on disk (written and fsynced ahead of time, LEASE_AHEAD_MS past
//    now, renewed every LEASE_RENEW_MS);
//  - so every datagram accepted by a run that crashed had client time <=
//    lease + max_age (freshness), and after a start every datagram whose
//    client time is not later than that horizon is refused;
//  - a missing or unreadable state file means the horizon is now + max_age
//    (the previous run may have accepted anything up to now), never an empty
//    cache;
//  - a clean stop writes the replay cache itself (and marks the file clean),
//    so a planned restart needs no horizon; the first thing a run does is
//    overwrite the file with a lease again, so a crash after that start is
//    treated as a crash.
// TOTP steps are covered the same way: after a crash every step up to the
// lease's step (+1, the accepted window) counts as used.
//
// The file also carries a floor: the highest server time any run saw. A
// system clock below it (a reset RTC, a bad NTP step) refuses spa until the
// clock has caught up, since freshness and the horizon mean nothing then.
//
// Pure logic: the file store is src/daemon/spa-state-store.ts.
import type { ReplayEntry } from './replay-cache.js';
import { totpStep, type TotpUserState } from './totp.js';

/** How far ahead of now a lease is written. Bounds how long spa stays refused after a crash: lease + max_age. */
export const LEASE_AHEAD_MS = 30_000;
/** A lease is renewed once less than this is left of it (so renewals come every LEASE_AHEAD_MS - this). */
export const LEASE_RENEW_BELOW_MS = 20_000;
export const STATE_VERSION = 1;

/** The state file's content. */
export interface SpaStateRecord {
  readonly version: typeof STATE_VERSION;
  /** No datagram was accepted at a server time >= this (ms). */
  readonly lease: number;
  /** Highest server time seen (ms). */
  readonly floor: number;
  /** Largest max_age in force when the lease was written (ms). */
  readonly maxAgeMs: number;
  readonly totp: ReadonlyArray<readonly [string, TotpUserState]>;
  /** Present only when a run stopped cleanly: its whole replay cache. */
  readonly replay?: readonly ReplayEntry[];
}

/** What a start takes from the state file it found (or did not). */
export interface StartGuard {
  /** Datagrams with client time <= this are refused (-Infinity: none). */
  readonly horizonMs: number;
  /** Server times below this refuse spa (the clock went back). */
  readonly floorMs: number;
  /** TOTP steps up to this count as used for every user (-Infinity: none). */
  readonly totpFloorStep: number;
  /** Replay entries to load (a clean stop's cache). */
  readonly replay: readonly ReplayEntry[];
  readonly totp: ReadonlyArray<readonly [string, TotpUserState]>;
  /** Why the horizon is what it is, for the log. */
  readonly why: 'clean-stop' | 'crash' | 'no-state' | 'bad-state';
}

/**
 * The guard for a start at server time `now` with `maxAgeMs` now in force;
 * `record` is what the store read (undefined: no file; 'bad': unreadable).
 */
export function startGuard(record: SpaStateRecord | undefined | 'bad', now: number, maxAgeMs: number): StartGuard {
  if (record === undefined || record === 'bad') {
    return { horizonMs: now + maxAgeMs, floorMs: -Infinity, totpFloorStep: totpStep(now) + 1, replay: [], totp: [], why: record === 'bad' ? 'bad-state' : 'no-state' };
  }
  if (record.replay !== undefined) {
    return { horizonMs: -Infinity, floorMs: record.floor, totpFloorStep: -Infinity, replay: record.replay, totp: record.totp, why: 'clean-stop' };
  }
  const maxAge = Math.max(maxAgeMs, record.maxAgeMs);
  return { horizonMs: record.lease + maxAge, floorMs: record.floor, totpFloorStep: totpStep(record.lease) + 1, replay: [], totp: record.totp, why: 'crash' };
}

/** Whether a lease ending at `lease` must be renewed at server time `now`. */
export function leaseDue(lease: number, now: number): boolean {
  return lease - now < LEASE_RENEW_BELOW_MS;
}

/** The record a running daemon writes at `now` (a lease ahead of it). */
export function leaseRecord(now: number, floor: number, maxAgeMs: number, totp: ReadonlyArray<readonly [string, TotpUserState]>): SpaStateRecord {
  return { version: STATE_VERSION, lease: now + LEASE_AHEAD_MS, floor: Math.max(floor, now), maxAgeMs, totp };
}

/** The record of a clean stop at `now`: nothing is accepted after it, and the cache goes with it. */
export function cleanStopRecord(now: number, floor: number, maxAgeMs: number, totp: ReadonlyArray<readonly [string, TotpUserState]>, replay: readonly ReplayEntry[]): SpaStateRecord {
  return { version: STATE_VERSION, lease: now, floor: Math.max(floor, now), maxAgeMs, totp, replay };
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function isTotpState(v: unknown): v is TotpUserState {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  const num = (x: unknown): boolean => typeof x === 'number' && !Number.isNaN(x);
  return num(s.lastStep) && num(s.failures) && num(s.failStep) && num(s.lockedUntil) && num(s.backoffMs);
}

/** The record in a state file's text, or 'bad' with nothing trusted from it. */
export function parseStateRecord(text: string): SpaStateRecord | 'bad' {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'bad';
  }
  if (typeof v !== 'object' || v === null) return 'bad';
  const r = v as Record<string, unknown>;
  if (r.version !== STATE_VERSION || !isFiniteNumber(r.lease) || !isFiniteNumber(r.floor) || !isFiniteNumber(r.maxAgeMs)) return 'bad';
  if (!Array.isArray(r.totp) || !r.totp.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && isTotpState(e[1]))) return 'bad';
  if (r.replay !== undefined) {
    if (!Array.isArray(r.replay)) return 'bad';
    for (const e of r.replay as unknown[]) {
      const x = e as Record<string, unknown>;
      if (typeof e !== 'object' || e === null || typeof x.user !== 'string' || typeof x.nonce !== 'string' || !/^[0-9a-f]{24}$/.test(x.nonce) || !isFiniteNumber(x.expiresAt)) return 'bad';
    }
  }
  return r as unknown as SpaStateRecord;
}

/** JSON text of a record. Infinity (a TOTP state never locked) is written as null-free numbers. */
export function stateRecordText(r: SpaStateRecord): string {
  return `${JSON.stringify(r, (_k, val: unknown) => (typeof val === 'number' && !Number.isFinite(val) ? (val > 0 ? 1e308 : -1e308) : val))}\n`;
}
