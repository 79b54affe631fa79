// Knock detection: door matchers (one module per door kind, matcher.ts),
// composed over the per-source table (source-table.ts) and the access ledger
// (access-ledger.ts). Time comes only from the events (packet timestamps) and
// from advanceTo()/shutdown() arguments, so a replay gives the same decisions
// at any speed. The rules of each door kind are in its module (kinds.ts).
//
// Sources get state only when they knock on some door's start key. A source
// with no progress for the horizon (the longest window, at least REPEAT_MS)
// is dropped as packet time passes, emitting reset 'window' (or 'gap') for
// each door it was part-way through; beyond maxSources the oldest is evicted
// with reset 'evicted'. So every attempt that does not complete ends with
// exactly one reset (unless input ends first), and memory stays bounded.
//
// Emission order for one knock at packet time t (deterministic):
//   1. closes with deadline <= t, by (deadline, order the deadline was set),
//      each stamped with its deadline;
//   2. resets of stale sources, oldest first (time t);
//   3. reset 'evicted' of the source evicted to make room (time t);
//   4. packet doors (spa) on this knock's key, in config order: knock, then
//      open or reject; they never touch the source table;
//   5. per source door in config order: what its matcher reports (for a
//      sequence: reset of its own stale attempt, knock, reset, progress), then open.
// Packet times that go backwards are treated as the latest time seen, so
// windows never run backwards and decision times never decrease.
// finish() (end of input) emits only the pending closes, at their deadlines;
// attempts still part-way through are left without a reset.
import type { Door, KnockEvent, ResetReason } from '../types.js';
import { DEFAULT_MAX_SOURCES } from '../limits.js';
import { createAccessLedger, type Emit, type OpenAccess } from './access-ledger.js';
import { compileDoors, type CompiledDoor } from './doors.js';
import type { DoorStores } from './kinds.js';
import { isPacketMatcher, type MatchSink, type PacketMatcher, type SourceMatcher } from './matcher.js';
import { createSourceTable, type DropReason, type SourceEntry } from './source-table.js';

export { DEFAULT_MAX_SOURCES };
export type { Emit, OpenAccess };

export interface DetectorOptions {
  /** Cap on sources with sequence state (default 100,000). */
  readonly maxSources?: number;
  /** Durable state of kinds that keep some (kinds.ts); absent: in memory, as replay wants. */
  readonly stores?: DoorStores;
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
  /** Packets a single-packet door refused. */
  readonly rejects: number;
}

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
  /**
   * Config reload: at `time`, closes already due expire, then every open
   * access `ends` selects (its door removed, or its ports or commands changed)
   * closes with reason 'reload' and is forgotten.
   */
  closeForReload(ends: (access: OpenAccess) => boolean, time: number, emit: Emit): void;
  /** Deadline of the next close, if any access is open. */
  nextDeadline(): number | undefined;
  openAccesses(): readonly OpenAccess[];
  readonly stats: DetectorStats;
}

/** A malformed event is a decoder bug: say which field and which packet. */
function badEvent(ev: KnockEvent): RangeError {
  const where = `(source ${String(ev.source)}, time ${String(ev.time)})`;
  if ((ev.port & 0xffff) !== ev.port) return new RangeError(`detector: KnockEvent.port must be an integer 0-65535, got ${String(ev.port)} ${where}`);
  return new RangeError(`detector: KnockEvent.protocol must be 'tcp' or 'udp', got ${String(ev.protocol)} ${where}`);
}

export function createDetector(doors: readonly Door[], options: DetectorOptions = {}): Detector {
  const { doors: compiled, firstStepMask, packetMask, horizonMs } = compileDoors(doors, options.stores);
  const doorCount = compiled.length;
  // Per-source doors, by door index (a packet door's slot stays undefined).
  const sourceMatchers: (SourceMatcher<unknown> | undefined)[] = compiled.map((d) => (isPacketMatcher(d.matcher) ? undefined : d.matcher));
  const packetDoors: { door: CompiledDoor; matcher: PacketMatcher }[] = compiled.flatMap((door) =>
    isPacketMatcher(door.matcher) ? [{ door, matcher: door.matcher }] : [],
  );
  // Latest packet time seen; decisions are never stamped earlier. A typed
  // array, not a closure variable: a double stored in a closure variable is
  // boxed, and boxing it on every packet made the hot path allocate per event.
  const clock = new Float64Array([-Infinity]);
  const ledger = createAccessLedger(compiled, clock);
  const table = createSourceTable<Emit>({ maxSources: options.maxSources ?? DEFAULT_MAX_SOURCES, horizonMs, slots: doorCount, onDrop: resetAll });
  let resets = 0;
  let rejects = 0;
  // Read, not called, on every packet (why: SourceTable.oldestActivity).
  const nextClose = ledger.nextClose;
  const oldestActivity = table.oldestActivity;

  // The one sink every matcher reports to; `at` says for which knock, so no
  // closure or object is made per knock.
  // `entry` is null while a packet door judges (it has no per-source state).
  const at = { emit: ((): void => {}) as Emit, entry: null as SourceEntry | null, door: compiled[0], ev: null as unknown as KnockEvent, t: 0 };
  const sink: MatchSink = {
    knock(): void {
      at.emit({ type: 'knock', time: at.t, door: at.door.name, source: at.ev.source, port: at.ev.port, protocol: at.ev.protocol });
    },
    progress(step: number, of: number): void {
      if (at.entry !== null) table.touch(at.entry, at.t);
      at.emit({ type: 'progress', time: at.t, door: at.door.name, source: at.ev.source, step, of });
    },
    reset(reason: ResetReason, step: number, key: number): void {
      emitReset(at.emit, at.t, at.door, at.ev.source, reason, step, key);
    },
    complete(address?: string): void {
      ledger.open(at.door, address ?? at.ev.source, at.t, at.emit);
    },
    reject(reason: string): void {
      rejects++;
      at.emit({ type: 'reject', time: at.t, door: at.door.name, source: at.ev.source, reason });
    },
  };

  function emitReset(emit: Emit, t: number, door: CompiledDoor, source: string, reason: ResetReason, step: number, key: number): void {
    resets++;
    if (key < 0) {
      emit({ type: 'reset', time: t, door: door.name, source, reason, step });
    } else {
      emit({ type: 'reset', time: t, door: door.name, source, reason, step, port: key & 0xffff, protocol: key > 0xffff ? 'udp' : 'tcp' });
    }
  }

  /** Reports every part-way attempt of a source the table dropped. */
  function resetAll(entry: SourceEntry, why: DropReason, t: number, emit: Emit): void {
    for (let d = 0; d < doorCount; d++) {
      const state = entry.states[d];
      const matcher = sourceMatchers[d];
      if (state === undefined || matcher === undefined) continue;
      const step = matcher.pending(state);
      if (step === 0) continue;
      emitReset(emit, t, compiled[d], entry.source, why === 'evicted' ? 'evicted' : matcher.expiryReason(state), step, -1);
      matcher.abandon(state);
    }
  }

  function advanceClock(time: number): number {
    // `!(time >= clock)` also maps NaN to the current clock.
    if (!(time >= clock[0])) return clock[0];
    clock[0] = time;
    return time;
  }

  function onKnock(ev: KnockEvent, emit: Emit): void {
    const t = advanceClock(ev.time);
    if (nextClose[0] <= t) ledger.closeDue(t, emit);
    if (t - oldestActivity[0] > horizonMs) table.expire(t, emit);
    const port = ev.port;
    const protocol = ev.protocol;
    // `& 0xffff` keeps only 16-bit integers equal to themselves (rejects NaN, fractions, negatives).
    if ((port & 0xffff) !== port || (protocol !== 'tcp' && protocol !== 'udp')) throw badEvent(ev);
    const key = protocol === 'tcp' ? port : port + 65536;
    if (packetMask[key] === 1) judge(ev, key, t, emit);
    let entry = table.find(ev.source, ev.sourceFold);
    if (entry === undefined) {
      // The hot path for floods and scans: a stranger on a port that starts nothing.
      if (firstStepMask[key] !== 1) return;
      entry = table.add(ev.source, ev.sourceFold, t, emit);
    }
    handle(entry, ev, key, t, emit);
  }

  /** A knock on a packet door's key, judged on its own before (and whatever) the source table holds. */
  function judge(ev: KnockEvent, key: number, t: number, emit: Emit): void {
    at.emit = emit;
    at.entry = null;
    at.ev = ev;
    at.t = t;
    for (const { door, matcher } of packetDoors) {
      if (!matcher.startKeys.includes(key)) continue;
      at.door = door;
      matcher.judge(ev, key, t, sink);
    }
  }

  /** One knock against every per-source door, for a source that has state. */
  function handle(entry: SourceEntry, ev: KnockEvent, key: number, t: number, emit: Emit): void {
    at.emit = emit;
    at.entry = entry;
    at.ev = ev;
    at.t = t;
    let live = false;
    for (let d = 0; d < doorCount; d++) {
      const matcher = sourceMatchers[d];
      if (matcher === undefined) continue;
      at.door = compiled[d];
      const state = matcher.consume(entry.states[d], key, ev, t, sink);
      entry.states[d] = state;
      if (state !== undefined && matcher.live(state, t)) live = true;
    }
    // Nothing left to remember: drop the source now rather than at the horizon.
    if (!live) table.remove(entry);
  }

  function advanceTo(time: number, emit: Emit): void {
    const t = advanceClock(time);
    if (ledger.due(t)) ledger.closeDue(t, emit);
    if (table.hasStale(t)) table.expire(t, emit);
  }

  function finish(emit: Emit): void {
    ledger.closeDue(Infinity, emit);
  }

  function shutdown(time: number, emit: Emit): void {
    ledger.shutdown(advanceClock(time), emit);
    table.clear();
  }

  function closeForReload(ends: (access: OpenAccess) => boolean, time: number, emit: Emit): void {
    const t = advanceClock(time);
    ledger.closeDue(t, emit);
    ledger.closeWhere(ends, t, emit);
  }

  return {
    onKnock,
    advanceTo,
    finish,
    shutdown,
    restore: ledger.restore,
    closeForReload,
    nextDeadline: ledger.nextDeadline,
    openAccesses: ledger.openAccesses,
    get stats(): DetectorStats {
      return { sources: table.size, evictions: table.evictions, expired: table.expired, opens: ledger.opens, closes: ledger.closes, resets, rejects };
    },
  };
}
