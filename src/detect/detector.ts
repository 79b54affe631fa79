// Knock-sequence detection: per door and per source, ordered steps within a
// window, opening access for durationMs. Time comes only from the events
// (packet timestamps) and from advanceTo()/shutdown() arguments, so a replay
// gives the same decisions at any speed.
//
// Semantics, per door and source:
// - A knock on the door's first step starts an attempt (progress 1).
// - While an attempt is part-way through, the next knock must be the next
//   step (port and protocol). Otherwise it resets ('wrong-protocol' when only
//   the protocol differs, else 'wrong-port'), and if that knock is itself the
//   first step, a new attempt starts. Exceptions that neither reset nor
//   progress: an exact repeat of the step just accepted within REPEAT_MS
//   (1.5 s, inclusive, counted from that step; covers Linux's first SYN
//   retransmission about 1 s later and doubled SYNs) and a knock on one of
//   the door's own open ports (the client trying the service early).
// - A port sweep therefore never opens a door: after the first step, every
//   port between two steps resets the attempt (doors whose consecutive steps
//   are neighbouring ports are refused in doors.ts, by the rule in src/ports.ts
//   that the config loader applies too).
// - The whole attempt must complete within windowMs of its first step and,
//   when gapMs is set, each step within gapMs of the previous one (both
//   inclusive). A knock arriving later first resets the old attempt
//   ('window' or 'gap', whichever deadline passed first), then counts fresh.
// - Completion opens access until completion time + durationMs (refreshed and
//   extended when already open); exactly one close is emitted, at the final
//   deadline. Access is valid for [open, until): a knock at `until` sees the
//   close first.
// - The repeat rule also covers the completing step, so a doubled final
//   (or single-step) knock does not open twice.
//
// State exists only for sources that hit some door's first step, in a Map
// plus an intrusive list ordered by last accepted step (oldest first):
// - Stale state (no accepted step for horizonMs = the longest window, at
//   least REPEAT_MS) is dropped as packet time passes, emitting reset 'window'
//   (or 'gap') for each door it was part-way through. So every attempt that
//   does not complete ends with exactly one reset (unless input ends first),
//   and memory holds only sources that knocked within the last window.
// - Beyond maxSources the oldest source is evicted, emitting reset 'evicted'
//   for each door it was part-way through; stats.evictions counts them.
//
// Emission order for one knock at packet time t (deterministic):
//   1. closes with deadline <= t, by (deadline, order the deadline was set),
//      each stamped with its deadline;
//   2. resets of stale sources, oldest first (time t);
//   3. reset 'evicted' of the source evicted to make room (time t);
//   4. per door in config order: reset of its own stale attempt
//      ('window'/'gap'), knock, reset ('wrong-port'/'wrong-protocol'),
//      progress, open.
// Packet times that go backwards are treated as the latest time seen, so
// windows never run backwards and decision times never decrease.
// finish() (end of input) emits only the pending closes, at their deadlines;
// attempts still part-way through are left without a reset.
import type { Decision, Door, KnockEvent, PortSpec, ResetReason } from '../types.js';
import { compileDoors, REPEAT_MS, type CompiledDoor } from './doors.js';
import { createDeadlineHeap, type HeapEntry } from './deadline-heap.js';

import { DEFAULT_MAX_SOURCES } from '../limits.js';

export { DEFAULT_MAX_SOURCES };

export interface DetectorOptions {
  /** Cap on sources with sequence state (default 100,000). */
  readonly maxSources?: number;
}

export interface DetectorStats {
  /** Sources holding sequence state now. */
  readonly sources: number;
  /** Sources dropped because the table was full. */
  readonly evictions: number;
  /** Sources dropped because their state went stale. */
  readonly expired: number;
  /** Open decisions emitted, refreshes included. */
  readonly opens: number;
  readonly closes: number;
  readonly resets: number;
}

export interface OpenAccess {
  readonly door: string;
  readonly source: string;
  readonly until: number;
  readonly ports: readonly PortSpec[];
}

export type Emit = (decision: Decision) => void;

export interface Detector {
  /** Handles one knock; decisions go to emit in the documented order. Not re-entrant. */
  onKnock(event: KnockEvent, emit: Emit): void;
  /** Moves packet time to `time`: emits closes due by then and drops stale state. */
  advanceTo(time: number, emit: Emit): void;
  /** End of input: emits every pending close at its own deadline, in order. */
  finish(emit: Emit): void;
  /** Clean exit at `time`: closes already due expire, the rest close with reason 'shutdown'; all state is dropped. */
  shutdown(time: number, emit: Emit): void;
  /**
   * Takes over an access granted earlier (by a detector replaced on config
   * reload): it is tracked, refreshed and closed like one opened here. Emits
   * nothing; the caller re-applies the firewall rule. An access already open
   * for the same door and source keeps the later deadline and its ports.
   */
  restore(access: OpenAccess): void;
  /** Deadline of the next close, if any access is open. */
  nextDeadline(): number | undefined;
  openAccesses(): readonly OpenAccess[];
  readonly stats: DetectorStats;
}

/** One door's progress for one source. */
interface Progress {
  /** Steps accepted in the current attempt; 0 when not part-way through. */
  step: number;
  /** Packet time of the attempt's first step. */
  start: number;
  /** Packet time of the step accepted last (also of the completing step). */
  last: number;
  /** The step accepted last completed the sequence (for the repeat rule). */
  completed: boolean;
}

interface SourceState {
  readonly source: string;
  /** KnockEvent.sourceFold of the event that created the state, or -1 without one. */
  readonly fold: number;
  /** Indexed by door index; created when the source first touches a door. */
  readonly progress: (Progress | undefined)[];
  /** Packet time of the last accepted step on any door; orders the list. */
  lastActivity: number;
  older: SourceState | null;
  newer: SourceState | null;
}

interface Access {
  readonly door: CompiledDoor;
  readonly source: string;
  /** The door's open ports, or the subset a restored access still holds. */
  ports: readonly PortSpec[];
  until: number;
  /** Order in which `until` was last set: breaks ties between equal deadlines. */
  seq: number;
}

/** A malformed event is a decoder bug: say which field and which packet. */
function badEvent(ev: KnockEvent): RangeError {
  const where = `(source ${String(ev.source)}, time ${String(ev.time)})`;
  if ((ev.port & 0xffff) !== ev.port) return new RangeError(`detector: KnockEvent.port must be an integer 0-65535, got ${String(ev.port)} ${where}`);
  return new RangeError(`detector: KnockEvent.protocol must be 'tcp' or 'udp', got ${String(ev.protocol)} ${where}`);
}

function checkMaxSources(value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`detector: maxSources must be a positive integer, got ${String(value)}`);
  }
  return value;
}

export function createDetector(doors: readonly Door[], options: DetectorOptions = {}): Detector {
  const { doors: compiled, firstStepMask, horizonMs } = compileDoors(doors);
  const doorCount = compiled.length;
  const maxSources = checkMaxSources(options.maxSources ?? DEFAULT_MAX_SOURCES);

  const sources = new Map<string, SourceState>();
  // Counting filter over KnockEvent.sourceFold: a zero count proves a source
  // holds no state, so a flood of strangers never hashes its (fresh, often
  // rope-shaped) address strings into the Map. States created from events
  // without a fold are counted in `unfolded`, which disables the shortcut.
  const foldCounts = new Uint32Array(65536);
  let unfolded = 0;
  let oldest: SourceState | null = null;
  let newest: SourceState | null = null;

  const accesses: Map<string, Access>[] = compiled.map(() => new Map<string, Access>());
  const closeHeap = createDeadlineHeap<Access>();
  // Cached top deadline so the hot path tests one number, not the heap.
  let nextClose = Infinity;
  let seq = 0;

  // Latest packet time seen; decisions are never stamped earlier.
  // Kept in a typed array: a double stored in a closure variable is boxed, and
  // boxing it on every packet made the hot path allocate (and GC) per event.
  const clock = new Float64Array([-Infinity]);

  let evictions = 0;
  let expired = 0;
  let opens = 0;
  let closes = 0;
  let resets = 0;

  // --- source list (oldest first by last accepted step) -------------------

  function unlink(st: SourceState): void {
    if (st.older) st.older.newer = st.newer;
    else oldest = st.newer;
    if (st.newer) st.newer.older = st.older;
    else newest = st.older;
    st.older = null;
    st.newer = null;
  }

  function append(st: SourceState): void {
    st.older = newest;
    st.newer = null;
    if (newest) newest.newer = st;
    else oldest = st;
    newest = st;
  }

  function touch(st: SourceState, t: number): void {
    st.lastActivity = t;
    if (newest !== st) {
      unlink(st);
      append(st);
    }
  }

  function drop(st: SourceState): void {
    unlink(st);
    sources.delete(st.source);
    if (st.fold < 0) unfolded--;
    else foldCounts[st.fold]--;
  }

  // --- decisions -----------------------------------------------------------

  function emitReset(emit: Emit, t: number, door: CompiledDoor, source: string, reason: ResetReason, step: number, key: number): void {
    resets++;
    if (key < 0) {
      emit({ type: 'reset', time: t, door: door.name, source, reason, step });
    } else {
      emit({ type: 'reset', time: t, door: door.name, source, reason, step, port: key & 0xffff, protocol: key > 0xffff ? 'udp' : 'tcp' });
    }
  }

  /** Which deadline of a part-way attempt passed first. */
  function expiryReason(door: CompiledDoor, p: Progress): ResetReason {
    return p.last + door.gapMs < p.start + door.windowMs ? 'gap' : 'window';
  }

  /** Resets every part-way attempt of a source being dropped. */
  function resetAll(emit: Emit, st: SourceState, t: number, reason: ResetReason | 'expiry'): void {
    for (let d = 0; d < doorCount; d++) {
      const p = st.progress[d];
      if (p === undefined || p.step === 0) continue;
      const door = compiled[d];
      emitReset(emit, t, door, st.source, reason === 'expiry' ? expiryReason(door, p) : reason, p.step, -1);
      p.step = 0;
    }
  }

  function emitCloses(upTo: number, emit: Emit): void {
    for (;;) {
      const top = closeHeap.peek();
      if (top === undefined || top.deadline > upTo) break;
      closeHeap.pop();
      const access = top.value;
      if (access.until > top.deadline) {
        // Refreshed since this entry was pushed: wait for the new deadline.
        closeHeap.push({ deadline: access.until, seq: access.seq, value: access });
        continue;
      }
      accesses[access.door.index].delete(access.source);
      closes++;
      if (top.deadline > clock[0]) clock[0] = top.deadline;
      emit({ type: 'close', time: top.deadline, door: access.door.name, source: access.source, ports: access.ports, reason: 'expired' });
    }
    nextClose = closeHeap.peek()?.deadline ?? Infinity;
  }

  function sweep(t: number, emit: Emit): void {
    while (oldest !== null && t - oldest.lastActivity > horizonMs) {
      const st = oldest;
      drop(st);
      expired++;
      resetAll(emit, st, t, 'expiry');
    }
  }

  function open(emit: Emit, door: CompiledDoor, source: string, t: number): void {
    opens++;
    const existing = accesses[door.index].get(source);
    if (existing !== undefined) {
      // Never shorter than before: a restored access may carry a longer deadline.
      const until = Math.max(t + door.durationMs, existing.until);
      existing.until = until;
      existing.seq = ++seq;
      // A completed sequence grants every open port of the door, even to a restored access.
      existing.ports = door.ports;
      emit({ type: 'open', time: t, door: door.name, source, ports: door.ports, until, refreshed: true });
      return;
    }
    const until = t + door.durationMs;
    const access: Access = { door, source, ports: door.ports, until, seq: ++seq };
    accesses[door.index].set(source, access);
    closeHeap.push({ deadline: until, seq: access.seq, value: access });
    nextClose = closeHeap.peek()?.deadline ?? Infinity;
    emit({ type: 'open', time: t, door: door.name, source, ports: door.ports, until, refreshed: false });
  }

  /** Accepts the next step of `door`; opens when it was the last. */
  function accept(emit: Emit, st: SourceState, door: CompiledDoor, p: Progress, t: number): void {
    if (p.step === 0) p.start = t;
    p.step++;
    p.last = t;
    touch(st, t);
    emit({ type: 'progress', time: t, door: door.name, source: st.source, step: p.step, of: door.length });
    if (p.step === door.length) {
      p.step = 0;
      p.completed = true;
      open(emit, door, st.source, t);
    } else {
      p.completed = false;
    }
  }

  function emitKnock(emit: Emit, t: number, door: CompiledDoor, ev: KnockEvent): void {
    emit({ type: 'knock', time: t, door: door.name, source: ev.source, port: ev.port, protocol: ev.protocol });
  }

  /** One knock against every door, for a source that has state. */
  function handle(emit: Emit, st: SourceState, ev: KnockEvent, key: number, t: number): void {
    let live = false;
    for (let d = 0; d < doorCount; d++) {
      const door = compiled[d];
      let p = st.progress[d];
      if (p !== undefined && p.step > 0 && (t - p.start > door.windowMs || t - p.last > door.gapMs)) {
        // No port: the reset is about the stale attempt, whichever knock finds it.
        emitReset(emit, t, door, st.source, expiryReason(door, p), p.step, -1);
        p.step = 0;
        p.completed = false;
      }
      if (p !== undefined && p.step > 0) {
        emitKnock(emit, t, door, ev);
        if (key === door.stepKeys[p.step]) {
          accept(emit, st, door, p, t);
        } else if ((key === door.stepKeys[p.step - 1] && t - p.last <= REPEAT_MS) || door.openKeys.has(key)) {
          // Retransmitted step, or the client trying the service early: no change.
        } else {
          const reason: ResetReason = (key & 0xffff) === (door.stepKeys[p.step] & 0xffff) ? 'wrong-protocol' : 'wrong-port';
          emitReset(emit, t, door, st.source, reason, p.step, key);
          p.step = 0;
          p.completed = false;
          if (key === door.firstKey) accept(emit, st, door, p, t);
        }
      } else if (key === door.firstKey) {
        emitKnock(emit, t, door, ev);
        if (p === undefined) {
          p = { step: 0, start: t, last: t, completed: false };
          st.progress[d] = p;
          accept(emit, st, door, p, t);
        } else if (!(p.completed && key === door.lastKey && t - p.last <= REPEAT_MS)) {
          accept(emit, st, door, p, t);
        }
      }
      if (p !== undefined && (p.step > 0 || (p.completed && t - p.last <= REPEAT_MS))) live = true;
    }
    // Nothing left to remember: drop the source now rather than at the horizon.
    if (!live) drop(st);
  }

  function advanceClock(time: number): number {
    // `!(time >= clock)` also maps NaN to the current clock.
    if (!(time >= clock[0])) return clock[0];
    clock[0] = time;
    return time;
  }

  function onKnock(ev: KnockEvent, emit: Emit): void {
    const t = advanceClock(ev.time);
    if (nextClose <= t) emitCloses(t, emit);
    if (oldest !== null && t - oldest.lastActivity > horizonMs) sweep(t, emit);
    const port = ev.port;
    const protocol = ev.protocol;
    // `& 0xffff` keeps only 16-bit integers equal to themselves (rejects NaN, fractions, negatives).
    if ((port & 0xffff) !== port || (protocol !== 'tcp' && protocol !== 'udp')) throw badEvent(ev);
    const key = protocol === 'tcp' ? port : port + 65536;
    const fold = ev.sourceFold;
    const known = fold === undefined || unfolded > 0 || foldCounts[fold & 0xffff] !== 0;
    let st = sources.size === 0 || !known ? undefined : sources.get(ev.source);
    if (st === undefined) {
      // The hot path for floods and scans: a stranger on a non-first-step port.
      if (firstStepMask[key] !== 1) return;
      if (sources.size >= maxSources && oldest !== null) {
        const victim = oldest;
        drop(victim);
        evictions++;
        resetAll(emit, victim, t, 'evicted');
      }
      const f = fold === undefined ? -1 : fold & 0xffff;
      st = { source: ev.source, fold: f, progress: new Array<Progress | undefined>(doorCount).fill(undefined), lastActivity: t, older: null, newer: null };
      if (f < 0) unfolded++;
      else foldCounts[f]++;
      sources.set(ev.source, st);
      append(st);
    }
    handle(emit, st, ev, key, t);
  }

  function advanceTo(time: number, emit: Emit): void {
    const t = advanceClock(time);
    if (nextClose <= t) emitCloses(t, emit);
    if (oldest !== null && t - oldest.lastActivity > horizonMs) sweep(t, emit);
  }

  function finish(emit: Emit): void {
    emitCloses(Infinity, emit);
  }

  function shutdown(time: number, emit: Emit): void {
    const t = advanceClock(time);
    emitCloses(t, emit);
    for (let top = closeHeap.pop(); top !== undefined; top = closeHeap.pop()) {
      const access = top.value;
      if (access.until > top.deadline) {
        closeHeap.push({ deadline: access.until, seq: access.seq, value: access });
        continue;
      }
      closes++;
      emit({ type: 'close', time: t, door: access.door.name, source: access.source, ports: access.ports, reason: 'shutdown' });
    }
    nextClose = Infinity;
    for (const m of accesses) m.clear();
    sources.clear();
    foldCounts.fill(0);
    unfolded = 0;
    oldest = null;
    newest = null;
  }

  function restore(access: OpenAccess): void {
    const door = compiled.find((d) => d.name === access.door);
    if (door === undefined) throw new Error(`detector.restore: no door named '${access.door}' (source ${access.source})`);
    if (typeof access.until !== 'number' || !Number.isFinite(access.until)) {
      throw new Error(`detector.restore: until must be a finite packet time, got ${String(access.until)} (door '${access.door}', source ${access.source})`);
    }
    access.ports.forEach((p, i) => {
      if (!door.ports.some((o) => o.port === p.port && o.protocol === p.protocol)) {
        throw new Error(`detector.restore: ports[${i}] ${p.port}/${p.protocol} is not an open port of door '${door.name}' (source ${access.source})`);
      }
    });
    const existing = accesses[door.index].get(access.source);
    if (existing !== undefined) {
      if (access.until > existing.until) {
        existing.until = access.until;
        existing.seq = ++seq;
      }
      return;
    }
    const a: Access = { door, source: access.source, ports: Object.freeze(access.ports.map((p) => Object.freeze({ port: p.port, protocol: p.protocol }))), until: access.until, seq: ++seq };
    accesses[door.index].set(a.source, a);
    closeHeap.push({ deadline: a.until, seq: a.seq, value: a });
    nextClose = closeHeap.peek()?.deadline ?? Infinity;
  }

  function nextDeadline(): number | undefined {
    // Entries of refreshed accesses carry an old deadline: move them first.
    for (let top = closeHeap.peek(); top !== undefined && top.value.until > top.deadline; top = closeHeap.peek()) {
      closeHeap.pop();
      closeHeap.push({ deadline: top.value.until, seq: top.value.seq, value: top.value });
    }
    const top: HeapEntry<Access> | undefined = closeHeap.peek();
    nextClose = top?.deadline ?? Infinity;
    return top?.deadline;
  }

  function openAccesses(): readonly OpenAccess[] {
    const out: OpenAccess[] = [];
    for (let d = 0; d < doorCount; d++) {
      for (const a of accesses[d].values()) out.push({ door: a.door.name, source: a.source, until: a.until, ports: a.ports });
    }
    return out;
  }

  return {
    onKnock,
    advanceTo,
    finish,
    shutdown,
    restore,
    nextDeadline,
    openAccesses,
    get stats(): DetectorStats {
      return { sources: sources.size, evictions, expired, opens, closes, resets };
    },
  };
}
