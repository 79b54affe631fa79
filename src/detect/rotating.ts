// The rotating door kind: a sequence whose ports change every period,
// derived from the door's key (rotating-ports.ts), so a recorded knock is
// worthless after its period or after it was used once.
//
// Per source, as for a sequence door (sequence.ts), with these differences:
// - A knock starts an attempt when it is the first port of the sequence of
//   period n-1, n or n+1, n being the period of the knock's packet time
//   (clock skew either way). The attempt follows every candidate period whose
//   ports it has matched so far (almost always one), fixed at its first step.
// - Wrong ports reset (any SYN/UDP of the source to another port, except an
//   exact repeat of the step just accepted within REPEAT_MS and the door's own
//   open ports), so a sweep of the whole range never opens.
// - A period is marked used when its sequence COMPLETES, not on its first
//   step: whoever copies a first knock cannot burn the period. The mark is
//   recorded by the injected store (file-backed in the daemon, so a restart
//   does not make a used sequence valid again) BEFORE the door opens; if it
//   cannot be recorded the door does not open ('reject'). A completed
//   sequence of a period already used is rejected ('reject'), not opened.
// Time is packet time only (periodOf(t)); no clock is read here.
import { createHmac } from 'node:crypto';
import type { KnockEvent, ResetReason, RotatingDoor } from '../types.js';
import { checkDuration, checkPort } from './checks.js';
import type { KindContext } from './kinds.js';
import { portKey, type MatchSink, type SourceMatcher } from './matcher.js';
import { periodOf, rangeProblem, rotatingPorts } from './rotating-ports.js';
import { REPEAT_MS } from './sequence.js';

/**
 * Durable record of used periods (DoorStores.rotating). `fingerprint` names
 * the door's derivation (key, steps, range, period length): periods recorded
 * under another fingerprint do not apply.
 */
export interface RotatingStore {
  /** Periods of this door recorded as used. */
  used(door: string, fingerprint: string): readonly number[];
  /** Records `period` as used, durably; false when it could not (the store has logged why). */
  markUsed(door: string, fingerprint: string, period: number): boolean;
}

/** One source's progress on one rotating door. */
export interface RotatingProgress {
  step: number;
  start: number;
  last: number;
  /** Periods whose sequence the attempt has matched so far (1-3). */
  periods: number[];
  /** Key of the step accepted last (for the repeat rule). */
  lastKey: number;
  completed: boolean;
}

/** Whose derivation a used-period record belongs to (not secret: an HMAC of the settings). */
export function rotatingFingerprint(door: RotatingDoor, key: Uint8Array): string {
  const settings = `knockwatch rotating fingerprint v1\0${door.periodMs}\0${door.steps}\0${door.portRange.low}-${door.portRange.high}\0${door.protocol}`;
  return createHmac('sha256', key).update(settings).digest('hex').slice(0, 16);
}

/** Periods kept in the sequence cache: the three accepted ones and one more while time moves on. */
const CACHE_PERIODS = 4;

export function rotatingMatcher(door: RotatingDoor, ctx: KindContext): SourceMatcher<RotatingProgress> {
  const { index, at } = ctx;
  const { low, high } = door.portRange;
  const problem = rangeProblem(door.steps, door.portRange);
  if (problem !== undefined) throw new Error(`${at} rotating: ${problem}`);
  if (!Number.isInteger(door.periodMs) || door.periodMs < 1000) throw new Error(`${at} rotating period: must be at least 1 s, got ${door.periodMs} ms`);
  checkDuration(door.windowMs, `${at} windowMs`);
  if (door.gapMs !== undefined) checkDuration(door.gapMs, `${at} gapMs`);
  checkPort({ port: low, protocol: door.protocol }, `${at} rotating ports`);
  checkPort({ port: high, protocol: door.protocol }, `${at} rotating ports`);
  door.open.forEach((p, i) => {
    if (p.protocol === door.protocol && p.port >= low && p.port <= high) {
      throw new Error(`${at} open[${i}]: ${p.port}/${p.protocol} is inside the rotating range ${low}-${high}/${door.protocol} (the knocker's own connections would count as knocks)`);
    }
  });

  const key = door.key?.bytes;
  const store = ctx.stores.rotating;
  const fingerprint = key === undefined ? '' : rotatingFingerprint(door, key);
  // Used periods: the store's record (daemon), else this matcher's memory (replay).
  const used = new Set<number>(key !== undefined && store !== undefined ? store.used(door.name, fingerprint) : []);
  const steps = door.steps;
  const windowMs = door.windowMs;
  const gapMs = door.gapMs ?? Infinity;
  const openKeys = new Set(door.open.map((s) => portKey(s.port, s.protocol)));
  const proto = door.protocol;
  const cache = new Map<number, Int32Array>();

  /** The step keys of period n (cached: the HMAC runs once per period). */
  function keysOf(n: number): Int32Array {
    let k = cache.get(n);
    if (k === undefined) {
      k = Int32Array.from(rotatingPorts(key as Uint8Array, n, steps, door.portRange), (p) => portKey(p, proto));
      cache.set(n, k);
      if (cache.size > CACHE_PERIODS) {
        let oldest = n;
        for (const c of cache.keys()) if (c < oldest) oldest = c;
        cache.delete(oldest);
      }
    }
    return k;
  }

  // The first keys of periods n-1, n, n+1 for the period n seen last: a
  // stranger's knock anywhere in the range is judged with three comparisons
  // and no allocation (a random-port flood lands in a 40,000-port range most
  // of the time). bench/detect-rotating.mjs: 0.7 M events/s before (an object
  // and three Map lookups per knock), 1.4 M after; a sequence door: 3.6-6.8 M.
  let firstsOf = -1;
  const firsts = new Int32Array(3);
  function isFirstKey(k: number, t: number): boolean {
    const n = periodOf(t, door.periodMs);
    if (n !== firstsOf) {
      for (let i = 0; i < 3; i++) firsts[i] = n - 1 + i >= 0 ? keysOf(n - 1 + i)[0] : -1;
      firstsOf = n;
    }
    return k === firsts[0] || k === firsts[1] || k === firsts[2];
  }

  function expiryReason(p: RotatingProgress): ResetReason {
    return p.last + gapMs < p.start + windowMs ? 'gap' : 'window';
  }

  function complete(p: RotatingProgress, sink: MatchSink): void {
    // Two candidate periods left would mean two identical sequences: take the latest.
    const period = Math.max(...p.periods);
    if (used.has(period)) {
      sink.reject(`rotating sequence of period ${period} already used`);
      return;
    }
    if (store !== undefined && !store.markUsed(door.name, fingerprint, period)) {
      sink.reject(`rotating period ${period} could not be recorded as used: not opened`);
      return;
    }
    used.add(period);
    // Periods before n-1 can never be accepted again: forget them.
    for (const u of used) if (u < period - 2) used.delete(u);
    sink.complete();
  }

  function accept(p: RotatingProgress, key: number, t: number, sink: MatchSink): void {
    if (p.step === 0) p.start = t;
    p.step++;
    p.last = t;
    p.lastKey = key;
    sink.progress(p.step, steps);
    p.completed = p.step === steps;
    if (p.completed) {
      p.step = 0;
      complete(p, sink);
    }
  }

  /** Starts an attempt if `key` is the first port of period n-1, n or n+1; false if not. */
  function tryStart(p: RotatingProgress, k: number, t: number, sink: MatchSink): boolean {
    const n = periodOf(t, door.periodMs);
    p.periods.length = 0;
    for (let c = n - 1; c <= n + 1; c++) if (c >= 0 && keysOf(c)[0] === k) p.periods.push(c);
    if (p.periods.length === 0) return false;
    accept(p, k, t, sink);
    return true;
  }

  function consume(p: RotatingProgress | undefined, k: number, _ev: KnockEvent, t: number, sink: MatchSink): RotatingProgress | undefined {
    if (key === undefined) return undefined; // no key read: nothing can match
    if (p !== undefined && p.step > 0 && (t - p.start > windowMs || t - p.last > gapMs)) {
      sink.reset(expiryReason(p), p.step, -1);
      p.step = 0;
      p.completed = false;
    }
    if (p !== undefined && p.step > 0) {
      sink.knock();
      const next = p.periods.filter((c) => keysOf(c)[p.step] === k);
      if (next.length > 0) {
        p.periods = next;
        accept(p, k, t, sink);
      } else if ((k === p.lastKey && t - p.last <= REPEAT_MS) || openKeys.has(k)) {
        // Retransmitted step, or the client trying the service early: no change.
      } else {
        const wanted = keysOf(p.periods[0])[p.step];
        sink.reset((k & 0xffff) === (wanted & 0xffff) ? 'wrong-protocol' : 'wrong-port', p.step, k);
        p.step = 0;
        p.completed = false;
        tryStart(p, k, t, sink);
      }
      return p;
    }
    // Not part-way: only a first port of an accepted period matters. A doubled
    // completing knock (a one-step door) must not start again.
    if (p !== undefined && p.completed && k === p.lastKey && t - p.last <= REPEAT_MS) {
      sink.knock();
      return p;
    }
    if (!isFirstKey(k, t)) return p;
    const fresh = p ?? { step: 0, start: t, last: t, periods: [], lastKey: -1, completed: false };
    sink.knock();
    tryStart(fresh, k, t, sink);
    return fresh;
  }

  // Every port of the range may be a step of some period: capture delivers
  // the whole range (and, as for any door, every SYN/UDP of a source part-way).
  const rangePorts = Array.from({ length: high - low + 1 }, (_, i) => ({ port: low + i, protocol: proto }));
  const startKeys = rangePorts.map((s) => portKey(s.port, s.protocol));

  return {
    index,
    name: door.name,
    startKeys,
    horizonMs: Math.max(windowMs, REPEAT_MS),
    watch: {
      protocols: ['tcp', 'udp'],
      firstSteps: rangePorts,
      steps: rangePorts,
      openPorts: door.open,
    },
    consume,
    pending: (p) => p.step,
    expiryReason,
    abandon: (p) => {
      p.step = 0;
    },
    live: (p, t) => p.step > 0 || (p.completed && t - p.last <= REPEAT_MS),
  };
}
