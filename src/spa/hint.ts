// Key hints: how the server finds the one key a datagram claims to be sealed
// with, without trying every user's key (which would make every junk datagram
// cost one AEAD open per user).
//
// hint = HMAC-SHA256(hint key, "knockwatch spa hint" || time step as uint64 BE)[0..8]
// with its own 10 s step of the client's clock. It is sent in clear, so
// datagrams sent by one user within one step share a hint and can be linked
// to each other by an observer; across steps they cannot.
//
// The server keeps Map<hint, candidates> for every key and every step within
// +-(max_age + grace) of its own time, so a datagram whose clock is off by a
// little more than max_age is still recognised and rejected as 'stale' (a
// useful answer for whoever reads the log) rather than 'unknown hint'. A junk
// datagram costs one Map lookup: 8 bytes as a latin1 string key.
//
// A captured hint with forged ciphertext makes the server try AEAD opens, so
// failed opens have a budget per hint and one overall (token buckets on the
// server's time). Past it the datagram is refused without an open.
import { createHmac } from 'node:crypto';
import { hasToken, newBucket, takeToken, type Bucket, type BucketRule } from './bucket.js';
import { HINT_BYTES } from './format.js';
import type { UserKeys } from './keys.js';

export const HINT_STEP_MS = 10_000;
/** How far past max_age a datagram is still recognised (and rejected as stale). */
export const HINT_GRACE_MS = 60_000;
/** At most this many keys are tried on one datagram. */
export const MAX_CANDIDATES = 2;
/** Failed opens per hint: 4 at once, then one a second. A real client never fails one. */
export const HINT_FAIL_RULE: BucketRule = { burst: 4, perSecond: 1 };
/**
 * Failed opens overall: 500 a second. One failed open costs about 2-4 us
 * here (test/unit/spa-verify.test.ts prints it), so at most ~0.2 % of a core.
 */
export const GLOBAL_FAIL_RULE: BucketRule = { burst: 500, perSecond: 500 };
const HINT_LABEL = Buffer.from('knockwatch spa hint', 'ascii');

export function hintStep(timeMs: number): number {
  return Math.floor(timeMs / HINT_STEP_MS);
}

/** The 8 hint bytes of one key for one step. */
export function computeHint(hintKey: Uint8Array, step: number): Buffer {
  const s = Buffer.alloc(8);
  s.writeBigUInt64BE(BigInt(step));
  return createHmac('sha256', hintKey).update(HINT_LABEL).update(s).digest().subarray(0, HINT_BYTES);
}

/** One user key that a hint may stand for. */
export interface HintCandidate {
  readonly keys: UserKeys;
  /** Index of the key among the user's key files (0 or 1: rotation). */
  readonly keyIndex: number;
  readonly step: number;
}

interface HintEntry {
  candidates: HintCandidate[];
  fails: Bucket | undefined;
}

export interface HintUser {
  readonly user: string;
  readonly keys: readonly UserKeys[];
}

export interface HintIndex {
  /** Makes the Map cover every step within the window of `t` (cheap when the step is unchanged). */
  advance(t: number): void;
  /** Candidates for a hint (8 latin1 characters), at most MAX_CANDIDATES. */
  lookup(hint: string): readonly HintCandidate[] | undefined;
  /** Whether a failed open on this hint is within both budgets at `t` (takes nothing). */
  mayTry(hint: string, t: number): boolean;
  /** Charges one failed open to the hint and to the overall budget. */
  failed(hint: string, t: number): void;
  /** Replaces the users (reload): hints of removed users and keys are gone at once. */
  setUsers(users: readonly HintUser[]): void;
  /** Hints in the Map. */
  readonly size: number;
}

export interface HintIndexOptions {
  /** Largest max_age of any spa door, ms. */
  readonly maxAgeMs: number;
  readonly graceMs?: number;
}

export function createHintIndex(users: readonly HintUser[], options: HintIndexOptions): HintIndex {
  const radius = Math.ceil((options.maxAgeMs + (options.graceMs ?? HINT_GRACE_MS)) / HINT_STEP_MS);
  const map = new Map<string, HintEntry>();
  /** Hints added for each step, to remove them when the step leaves the window. */
  const byStep = new Map<number, string[]>();
  let current: UserKeys[][] = users.map((u) => [...u.keys]);
  let lo = 0;
  let hi = -1; // empty window
  let global: Bucket | undefined;

  function addStep(step: number): void {
    const added: string[] = [];
    for (const keys of current) {
      for (let k = 0; k < keys.length; k++) {
        const h = computeHint(keys[k].hintKey, step).toString('latin1');
        const cand: HintCandidate = { keys: keys[k], keyIndex: k, step };
        const e = map.get(h);
        if (e === undefined) map.set(h, { candidates: [cand], fails: undefined });
        else e.candidates.push(cand);
        added.push(h);
      }
    }
    byStep.set(step, added);
  }

  function removeStep(step: number): void {
    for (const h of byStep.get(step) ?? []) {
      const e = map.get(h);
      if (e === undefined) continue;
      e.candidates = e.candidates.filter((c) => c.step !== step);
      if (e.candidates.length === 0) map.delete(h);
    }
    byStep.delete(step);
  }

  function rebuild(center: number): void {
    map.clear();
    byStep.clear();
    lo = center - radius;
    hi = center + radius;
    for (let s = lo; s <= hi; s++) addStep(s);
  }

  function advance(t: number): void {
    if (!Number.isFinite(t)) return;
    const center = hintStep(t);
    const wantLo = center - radius;
    if (wantLo === lo && hi >= lo) return;
    // A jump further than the window (first packet, a replay from another day): start afresh.
    if (hi < lo || Math.abs(wantLo - lo) > 2 * radius) {
      rebuild(center);
      return;
    }
    // Time only moves the window forward; a step back keeps what is there.
    while (lo < wantLo) removeStep(lo++);
    while (hi < center + radius) addStep(++hi);
  }

  return {
    advance,
    lookup(hint) {
      const e = map.get(hint);
      if (e === undefined) return undefined;
      return e.candidates.length > MAX_CANDIDATES ? e.candidates.slice(0, MAX_CANDIDATES) : e.candidates;
    },
    mayTry(hint, t) {
      global ??= newBucket(GLOBAL_FAIL_RULE, t);
      if (!hasToken(global, GLOBAL_FAIL_RULE, t)) return false;
      const e = map.get(hint);
      if (e === undefined) return false;
      e.fails ??= newBucket(HINT_FAIL_RULE, t);
      return hasToken(e.fails, HINT_FAIL_RULE, t);
    },
    failed(hint, t) {
      global ??= newBucket(GLOBAL_FAIL_RULE, t);
      takeToken(global, GLOBAL_FAIL_RULE, t);
      const e = map.get(hint);
      if (e === undefined) return;
      e.fails ??= newBucket(HINT_FAIL_RULE, t);
      takeToken(e.fails, HINT_FAIL_RULE, t);
    },
    setUsers(next) {
      current = next.map((u) => [...u.keys]);
      const center = hi >= lo ? lo + radius : undefined;
      map.clear();
      byStep.clear();
      if (center !== undefined) rebuild(center);
    },
    get size() {
      return map.size;
    },
  };
}
