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
// datagram costs one Map lookup with a small-integer key (30 bits of the
// hint) and no allocation: a latin1 string key made per datagram cost
// ~400 ns here, the integer key ~40 ns; the full 8 bytes are then compared.
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

/** The hint of one (key, step), or several that share all 8 bytes. */
export interface HintEntry {
  /** The whole 8-byte hint, as two unsigned 32-bit halves. */
  readonly hi: number;
  readonly lo: number;
  candidates: HintCandidate[];
  fails: Bucket | undefined;
  /** Next entry whose hint has the same Map key. */
  next: HintEntry | undefined;
}

export interface HintUser {
  readonly user: string;
  readonly keys: readonly UserKeys[];
}

export interface HintIndex {
  /** Makes the Map cover every step within the window of `t` (cheap when the step is unchanged). */
  advance(t: number): void;
  /** The entry for the hint at `offset` in `bytes` (8 bytes), if any. Allocates nothing. */
  lookup(bytes: Uint8Array, offset: number): HintEntry | undefined;
  /** At most MAX_CANDIDATES keys to try for an entry. */
  candidates(entry: HintEntry): readonly HintCandidate[];
  /** Whether a failed open on this hint is within both budgets at `t` (takes nothing). */
  mayTry(entry: HintEntry, t: number): boolean;
  /** Charges one failed open to the hint and to the overall budget. */
  failed(entry: HintEntry, t: number): void;
  /** Replaces the users (reload): hints of removed users and keys are gone at once. */
  setUsers(users: readonly HintUser[]): void;
  /** Distinct hints held. */
  readonly size: number;
}

export interface HintIndexOptions {
  /** Largest max_age of any spa door, ms. */
  readonly maxAgeMs: number;
  readonly graceMs?: number;
}

function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** 30 bits of the hint: a V8 small integer, so Map.get() boxes nothing. */
function mapKey(b: Uint8Array, o: number): number {
  return ((b[o] & 0x3f) << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
}

export function createHintIndex(users: readonly HintUser[], options: HintIndexOptions): HintIndex {
  const radius = Math.ceil((options.maxAgeMs + (options.graceMs ?? HINT_GRACE_MS)) / HINT_STEP_MS);
  const map = new Map<number, HintEntry>();
  let size = 0;
  /** Hints added for each step, to remove them when the step leaves the window. */
  const byStep = new Map<number, Buffer[]>();
  let current: UserKeys[][] = users.map((u) => [...u.keys]);
  let lo = 0;
  let hi = -1; // empty window
  let global: Bucket | undefined;

  function find(b: Uint8Array, o: number): HintEntry | undefined {
    let e = map.get(mapKey(b, o));
    if (e === undefined) return undefined;
    const h = u32(b, o);
    const l = u32(b, o + 4);
    while (e !== undefined && (e.hi !== h || e.lo !== l)) e = e.next;
    return e;
  }

  function addStep(step: number): void {
    const added: Buffer[] = [];
    for (const keys of current) {
      for (let k = 0; k < keys.length; k++) {
        const h = computeHint(keys[k].hintKey, step);
        const cand: HintCandidate = { keys: keys[k], keyIndex: k, step };
        const e = find(h, 0);
        if (e !== undefined) {
          e.candidates.push(cand);
        } else {
          const key = mapKey(h, 0);
          map.set(key, { hi: u32(h, 0), lo: u32(h, 4), candidates: [cand], fails: undefined, next: map.get(key) });
          size++;
        }
        added.push(h);
      }
    }
    byStep.set(step, added);
  }

  function removeStep(step: number): void {
    for (const h of byStep.get(step) ?? []) {
      const e = find(h, 0);
      if (e === undefined) continue;
      e.candidates = e.candidates.filter((c) => c.step !== step);
      if (e.candidates.length > 0) continue;
      const key = mapKey(h, 0);
      let head = map.get(key);
      if (head === e) head = e.next;
      else for (let p = head; p !== undefined; p = p.next) if (p.next === e) p.next = e.next;
      if (head === undefined) map.delete(key);
      else map.set(key, head);
      size--;
    }
    byStep.delete(step);
  }

  function rebuild(center: number): void {
    map.clear();
    byStep.clear();
    size = 0;
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

  function bucketFor(e: HintEntry, t: number): Bucket {
    e.fails ??= newBucket(HINT_FAIL_RULE, t);
    return e.fails;
  }

  return {
    advance,
    lookup: find,
    candidates(e) {
      return e.candidates.length > MAX_CANDIDATES ? e.candidates.slice(0, MAX_CANDIDATES) : e.candidates;
    },
    mayTry(e, t) {
      global ??= newBucket(GLOBAL_FAIL_RULE, t);
      return hasToken(global, GLOBAL_FAIL_RULE, t) && hasToken(bucketFor(e, t), HINT_FAIL_RULE, t);
    },
    failed(e, t) {
      global ??= newBucket(GLOBAL_FAIL_RULE, t);
      takeToken(global, GLOBAL_FAIL_RULE, t);
      takeToken(bucketFor(e, t), HINT_FAIL_RULE, t);
    },
    setUsers(next) {
      current = next.map((u) => [...u.keys]);
      const center = hi >= lo ? lo + radius : undefined;
      map.clear();
      byStep.clear();
      size = 0;
      hi = lo - 1;
      if (center !== undefined) rebuild(center);
    },
    get size() {
      return size;
    },
  };
}
