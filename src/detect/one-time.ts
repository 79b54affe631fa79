// The one_time door kind (knockd's one_time_sequences): the door's valid
// sequence is the first unused line of its file (config/one-time-file.ts);
// each line opens once.
//
// Per source, as for a sequence door (sequence.ts): a knock on the first port
// of the current line starts an attempt that follows that line; any other
// SYN/UDP of the source resets it (except an exact repeat of the step just
// accepted within REPEAT_MS and the door's own open ports); window and gap as
// for sequences.
//
// On completion the line is marked used by the injected store BEFORE the door
// opens (daemon: '#' in front of the line, written atomically and synced;
// replay: in memory only). If the store cannot record it, the door does not
// open ('reject') and the line stays the valid one. An attempt that completes
// a line someone else used in the meantime is rejected, not opened. The store
// is told how many lines are left, at start and at each use, so it can warn
// when none is.
import type { KnockEvent, OneTimeDoor, OneTimeEntry, PortSpec, ResetReason } from '../types.js';
import { formatPort } from '../types.js';
import { sequenceHazards } from '../ports.js';
import { checkDuration, checkPort } from './checks.js';
import type { KindContext } from './kinds.js';
import { portKey, type MatchSink, type SourceMatcher } from './matcher.js';
import { REPEAT_MS } from './sequence.js';

/** Durable marking of used lines (DoorStores.oneTime). */
export interface OneTimeStore {
  /** The door was compiled with `left` unused lines (warn when none). */
  loaded(door: string, file: string, left: number): void;
  /**
   * Marks `entry` of `file` used, durably, before the door opens; `left` is
   * how many unused lines remain after it. False when it could not (the store
   * has logged why): the door must not open.
   */
  markUsed(door: string, file: string, entry: OneTimeEntry, left: number): boolean;
}

/** One source's progress on one one-time door. */
export interface OneTimeProgress {
  step: number;
  start: number;
  last: number;
  /** Index (in the door's unused lines) of the line the attempt follows. */
  entry: number;
  lastKey: number;
  completed: boolean;
}

export function oneTimeMatcher(door: OneTimeDoor, ctx: KindContext): SourceMatcher<OneTimeProgress> {
  const { index, at } = ctx;
  checkDuration(door.windowMs, `${at} windowMs`);
  if (door.gapMs !== undefined) checkDuration(door.gapMs, `${at} gapMs`);
  const entries = door.sequences ?? [];
  const openKeys = new Set(door.open.map((s) => portKey(s.port, s.protocol)));
  const keys = entries.map((e) => {
    const where = `${at} ${door.file}:${e.line}`;
    if (e.sequence.length === 0) throw new Error(`${where}: empty sequence`);
    e.sequence.forEach((s, j) => checkPort(s, `${where} step ${j + 1}`));
    const hazard = sequenceHazards(e.sequence)[0];
    if (hazard !== undefined) throw new Error(`${where} step ${hazard.index + 1}: ${hazard.message}`);
    e.sequence.forEach((s) => {
      if (openKeys.has(portKey(s.port, s.protocol))) throw new Error(`${where}: ${formatPort(s)} is also an open port of this door`);
    });
    return Int32Array.from(e.sequence, (s) => portKey(s.port, s.protocol));
  });
  const store = ctx.stores.oneTime;
  const windowMs = door.windowMs;
  const gapMs = door.gapMs ?? Infinity;
  // The valid line: the first not used since the file was read.
  let current = 0;
  store?.loaded(door.name, door.file, entries.length);

  function expiryReason(p: OneTimeProgress): ResetReason {
    return p.last + gapMs < p.start + windowMs ? 'gap' : 'window';
  }

  function complete(p: OneTimeProgress, sink: MatchSink): void {
    if (p.entry !== current) {
      sink.reject(`one-time sequence of ${door.file}:${entries[p.entry].line} already used`);
      return;
    }
    const left = entries.length - current - 1;
    if (store !== undefined && !store.markUsed(door.name, door.file, entries[current], left)) {
      sink.reject(`one-time sequence of ${door.file}:${entries[current].line} could not be marked used: not opened`);
      return;
    }
    current++;
    sink.complete();
  }

  function accept(p: OneTimeProgress, k: number, t: number, sink: MatchSink): void {
    if (p.step === 0) p.start = t;
    p.step++;
    p.last = t;
    p.lastKey = k;
    const length = keys[p.entry].length;
    sink.progress(p.step, length);
    p.completed = p.step === length;
    if (p.completed) {
      p.step = 0;
      complete(p, sink);
    }
  }

  function startsHere(k: number): boolean {
    return current < keys.length && keys[current][0] === k;
  }

  function consume(p: OneTimeProgress | undefined, k: number, _ev: KnockEvent, t: number, sink: MatchSink): OneTimeProgress | undefined {
    if (p !== undefined && p.step > 0 && (t - p.start > windowMs || t - p.last > gapMs)) {
      sink.reset(expiryReason(p), p.step, -1);
      p.step = 0;
      p.completed = false;
    }
    if (p !== undefined && p.step > 0) {
      sink.knock();
      const seq = keys[p.entry];
      if (k === seq[p.step]) {
        accept(p, k, t, sink);
      } else if ((k === p.lastKey && t - p.last <= REPEAT_MS) || openKeys.has(k)) {
        // Retransmitted step, or the client trying the service early: no change.
      } else {
        sink.reset((k & 0xffff) === (seq[p.step] & 0xffff) ? 'wrong-protocol' : 'wrong-port', p.step, k);
        p.step = 0;
        p.completed = false;
        if (startsHere(k)) {
          p.entry = current;
          accept(p, k, t, sink);
        }
      }
      return p;
    }
    if (p !== undefined && p.completed && k === p.lastKey && t - p.last <= REPEAT_MS) {
      // A doubled completing knock of a one-step line starts nothing.
      sink.knock();
      return p;
    }
    if (!startsHere(k)) return p;
    sink.knock();
    const q = p ?? { step: 0, start: t, last: t, entry: current, lastKey: -1, completed: false };
    q.entry = current;
    accept(q, k, t, sink);
    return q;
  }

  // Capture: every line's ports (the valid line changes while running; the
  // file is read again only on reload).
  const all = new Map<number, PortSpec>();
  const firsts = new Map<number, PortSpec>();
  entries.forEach((e) => {
    e.sequence.forEach((s, j) => {
      const key = portKey(s.port, s.protocol);
      all.set(key, { port: s.port, protocol: s.protocol });
      if (j === 0) firsts.set(key, { port: s.port, protocol: s.protocol });
    });
  });

  return {
    index,
    name: door.name,
    startKeys: [...firsts.keys()],
    horizonMs: Math.max(windowMs, REPEAT_MS),
    watch: {
      protocols: ['tcp', 'udp'],
      firstSteps: [...firsts.values()],
      steps: [...all.values()],
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
