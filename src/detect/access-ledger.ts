// Who holds access to which door until when, shared by every door kind.
// - open(): a completed door grants its open ports until t + durationMs; an
//   access already open is refreshed and extended (never shortened).
// - Exactly one close per access, at its final deadline, stamped with that
//   deadline. Access is valid for [open, until): a knock at `until` sees the
//   close first. Equal deadlines close in the order they were set.
// - Refreshing does not touch the heap: the stale entry is moved to the new
//   deadline when it surfaces, so a refresh costs O(1), not a heap search.
// Time comes only from the caller (packet time); closes advance the shared
// packet clock so no later decision is stamped earlier than a close.
import type { Decision, PortSpec } from '../types.js';
import { createDeadlineHeap, type DeadlineHeap } from './deadline-heap.js';

/** What the ledger needs of a door. */
export interface LedgerDoor {
  readonly index: number;
  readonly name: string;
  readonly durationMs: number;
  readonly ports: readonly PortSpec[];
}

export interface OpenAccess {
  readonly door: string;
  readonly source: string;
  readonly until: number;
  readonly ports: readonly PortSpec[];
}

export type Emit = (decision: Decision) => void;

interface Access {
  readonly door: LedgerDoor;
  readonly source: string;
  /** The door's open ports, or the subset a restored access still holds. */
  ports: readonly PortSpec[];
  until: number;
  /** Order in which `until` was last set: breaks ties between equal deadlines. */
  seq: number;
}

export interface AccessLedger {
  readonly opens: number;
  readonly closes: number;
  /**
   * [0]: never later than the next close's deadline (+Infinity when none), so
   * the per-packet test `nextClose[0] <= t` is a read, not a call that would box
   * the packet time (see SourceTable.oldestActivity for the measurement).
   */
  readonly nextClose: Float64Array;
  /** True when some close is due at t. */
  due(t: number): boolean;
  /** Emits every close with deadline <= upTo, in deadline order. */
  closeDue(upTo: number, emit: Emit): void;
  open(door: LedgerDoor, source: string, t: number, emit: Emit): void;
  /** Closes already due expire; every other access closes at t with reason 'shutdown'. Empties the ledger. */
  shutdown(t: number, emit: Emit): void;
  /** Closes at t, with reason 'reload', every access `ends` selects (a config reload removed or changed its door). */
  closeWhere(ends: (access: OpenAccess) => boolean, t: number, emit: Emit): void;
  /** Tracks an access granted by an earlier detector (see Detector.restore). Emits nothing. */
  restore(access: OpenAccess): void;
  nextDeadline(): number | undefined;
  openAccesses(): readonly OpenAccess[];
}

/** `clock[0]` is the latest packet time seen, shared with the detector. */
export function createAccessLedger(doors: readonly LedgerDoor[], clock: Float64Array): AccessLedger {
  const byDoor: Map<string, Access>[] = doors.map(() => new Map<string, Access>());
  const heap: DeadlineHeap<Access> = createDeadlineHeap<Access>();
  // Cached top deadline so the hot path tests one number, not the heap.
  const next = new Float64Array([Infinity]);
  let seq = 0;
  let opens = 0;
  let closes = 0;

  function push(a: Access): void {
    heap.push({ deadline: a.until, seq: a.seq, value: a });
  }

  /** Moves entries of refreshed accesses to their new deadline until the top is real. */
  function settleTop(): void {
    for (let top = heap.peek(); top !== undefined && top.value.until > top.deadline; top = heap.peek()) {
      heap.pop();
      push(top.value);
    }
    next[0] = heap.peek()?.deadline ?? Infinity;
  }

  function close(a: Access, time: number, reason: 'expired' | 'shutdown' | 'reload', emit: Emit): void {
    closes++;
    emit({ type: 'close', time, door: a.door.name, source: a.source, ports: a.ports, reason });
  }

  function closeDue(upTo: number, emit: Emit): void {
    for (settleTop(); heap.size > 0 && next[0] <= upTo; settleTop()) {
      const a = heap.pop()!.value;
      byDoor[a.door.index].delete(a.source);
      if (a.until > clock[0]) clock[0] = a.until;
      close(a, a.until, 'expired', emit);
    }
  }

  function open(door: LedgerDoor, source: string, t: number, emit: Emit): void {
    opens++;
    const existing = byDoor[door.index].get(source);
    if (existing !== undefined) {
      // Never shorter than before: a restored access may carry a longer deadline.
      const until = Math.max(t + door.durationMs, existing.until);
      existing.until = until;
      existing.seq = ++seq;
      // A completed door grants every open port, even to a restored access.
      existing.ports = door.ports;
      emit({ type: 'open', time: t, door: door.name, source, ports: door.ports, until, refreshed: true });
      return;
    }
    const a: Access = { door, source, ports: door.ports, until: t + door.durationMs, seq: ++seq };
    byDoor[door.index].set(source, a);
    push(a);
    if (a.until < next[0]) next[0] = a.until;
    emit({ type: 'open', time: t, door: door.name, source, ports: door.ports, until: a.until, refreshed: false });
  }

  function shutdown(t: number, emit: Emit): void {
    closeDue(t, emit);
    for (settleTop(); heap.size > 0; settleTop()) close(heap.pop()!.value, t, 'shutdown', emit);
    for (const m of byDoor) m.clear();
  }

  function closeWhere(ends: (access: OpenAccess) => boolean, t: number, emit: Emit): void {
    const gone: Access[] = [];
    for (const m of byDoor) {
      for (const a of m.values()) {
        if (!ends({ door: a.door.name, source: a.source, until: a.until, ports: a.ports })) continue;
        m.delete(a.source);
        gone.push(a);
      }
    }
    if (gone.length === 0) return;
    // Each access left has exactly one heap entry; rebuilding drops the gone ones
    // (a reload is rare, so O(n log n) here keeps the hot path free of tombstone checks).
    heap.clear();
    for (const m of byDoor) for (const a of m.values()) push(a);
    settleTop();
    // Deadline order, as closes are always emitted, whatever order the Maps hold.
    gone.sort((a, b) => a.until - b.until || a.seq - b.seq);
    for (const a of gone) close(a, t, 'reload', emit);
  }

  function restore(access: OpenAccess): void {
    const door = doors.find((d) => d.name === access.door);
    if (door === undefined) throw new Error(`detector.restore: no door named '${access.door}' (source ${access.source})`);
    if (typeof access.until !== 'number' || !Number.isFinite(access.until)) {
      throw new Error(`detector.restore: until must be a finite packet time, got ${String(access.until)} (door '${access.door}', source ${access.source})`);
    }
    access.ports.forEach((p, i) => {
      if (!door.ports.some((o) => o.port === p.port && o.protocol === p.protocol)) {
        throw new Error(`detector.restore: ports[${i}] ${p.port}/${p.protocol} is not an open port of door '${door.name}' (source ${access.source})`);
      }
    });
    const existing = byDoor[door.index].get(access.source);
    if (existing !== undefined) {
      if (access.until > existing.until) {
        existing.until = access.until;
        existing.seq = ++seq;
      }
      return;
    }
    const ports = Object.freeze(access.ports.map((p) => Object.freeze({ port: p.port, protocol: p.protocol })));
    const a: Access = { door, source: access.source, ports, until: access.until, seq: ++seq };
    byDoor[door.index].set(a.source, a);
    push(a);
    if (a.until < next[0]) next[0] = a.until;
  }

  function nextDeadline(): number | undefined {
    settleTop();
    return heap.peek()?.deadline;
  }

  function openAccesses(): readonly OpenAccess[] {
    const out: OpenAccess[] = [];
    for (const m of byDoor) for (const a of m.values()) out.push({ door: a.door.name, source: a.source, until: a.until, ports: a.ports });
    return out;
  }

  return {
    get opens(): number {
      return opens;
    },
    get closes(): number {
      return closes;
    },
    nextClose: next,
    due: (t) => next[0] <= t,
    closeDue,
    open,
    shutdown,
    closeWhere,
    restore,
    nextDeadline,
    openAccesses,
  };
}
