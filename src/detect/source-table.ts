// Per-source state shared by every door kind: a Map from source address to an
// entry holding each door's matcher state, plus an intrusive list ordered by
// last progress (oldest first), so the stale and the oldest are found in O(1).
// - Only sources that hit some door's start key get an entry (the caller
//   checks that before add()).
// - An entry with no progress for horizonMs is dropped as packet time passes
//   (expire()), so memory holds only sources that knocked within the last window.
// - Beyond maxSources the oldest entry is evicted to make room (add()).
// In both cases onDrop lets the detector report the attempts that died with it.

export interface SourceEntry {
  readonly source: string;
  /** KnockEvent.sourceFold of the event that created the entry, or -1 without one. */
  readonly fold: number;
  /** Matcher state per door index; undefined until the source touches that door. */
  readonly states: unknown[];
  /** Packet time of the last progress on any door; orders the list. */
  lastActivity: number;
  older: SourceEntry | null;
  newer: SourceEntry | null;
}

export type DropReason = 'evicted' | 'expired';

export interface SourceTableOptions<C> {
  readonly maxSources: number;
  /** Entries with no progress for longer than this are stale. */
  readonly horizonMs: number;
  /** Length of each entry's `states` (the number of doors). */
  readonly slots: number;
  /** Called after an entry left the table because it was stale or evicted; `ctx` is passed through. */
  readonly onDrop: (entry: SourceEntry, reason: DropReason, t: number, ctx: C) => void;
}

export interface SourceTable<C> {
  readonly size: number;
  /**
   * [0]: last progress of the oldest entry, +Infinity when empty, so the
   * caller's per-packet test `t - oldestActivity[0] > horizonMs` is a read, not
   * a call: a call taking the (double) packet time boxes it when V8 does not
   * inline it; with the ledger's twin check as calls, strangers (the flood
   * path) ran at 23 instead of 30 M events/s of CPU (one detector, 1 M random
   * sources and ports, loaded 2-core machine).
   */
  readonly oldestActivity: Float64Array;
  readonly evictions: number;
  readonly expired: number;
  /** The entry of `source`, if any. `fold` (KnockEvent.sourceFold) lets strangers skip the Map. */
  find(source: string, fold: number | undefined): SourceEntry | undefined;
  /** A new entry at time t, evicting the oldest when the table is full. */
  add(source: string, fold: number | undefined, t: number, ctx: C): SourceEntry;
  /** Marks progress at t: the entry becomes the newest. */
  touch(entry: SourceEntry, t: number): void;
  /** Forgets an entry that has nothing left to remember (no onDrop). */
  remove(entry: SourceEntry): void;
  /** True when some entry is stale at t. */
  hasStale(t: number): boolean;
  /** Drops every entry stale at t, oldest first. */
  expire(t: number, ctx: C): void;
  clear(): void;
}

export function createSourceTable<C>(options: SourceTableOptions<C>): SourceTable<C> {
  const { maxSources, horizonMs, slots, onDrop } = options;
  if (!Number.isInteger(maxSources) || maxSources < 1) {
    throw new Error(`detector: maxSources must be a positive integer, got ${String(maxSources)}`);
  }
  const sources = new Map<string, SourceEntry>();
  // Counting filter over KnockEvent.sourceFold: a zero count proves a source
  // holds no entry, so a flood of strangers never hashes its (fresh, often
  // rope-shaped) address strings into the Map. Entries created from events
  // without a fold are counted in `unfolded`, which disables the shortcut.
  const foldCounts = new Uint32Array(65536);
  let unfolded = 0;
  let oldest: SourceEntry | null = null;
  let newest: SourceEntry | null = null;
  let evictions = 0;
  let expired = 0;
  const oldestActivity = new Float64Array([Infinity]);

  function syncOldest(): void {
    oldestActivity[0] = oldest === null ? Infinity : oldest.lastActivity;
  }

  function unlink(e: SourceEntry): void {
    if (e.older) e.older.newer = e.newer;
    else oldest = e.newer;
    if (e.newer) e.newer.older = e.older;
    else newest = e.older;
    e.older = null;
    e.newer = null;
    syncOldest();
  }

  function append(e: SourceEntry): void {
    e.older = newest;
    e.newer = null;
    if (newest) newest.newer = e;
    else oldest = e;
    newest = e;
    syncOldest();
  }

  function remove(e: SourceEntry): void {
    unlink(e);
    sources.delete(e.source);
    if (e.fold < 0) unfolded--;
    else foldCounts[e.fold]--;
  }

  function find(source: string, fold: number | undefined): SourceEntry | undefined {
    if (sources.size === 0) return undefined;
    if (fold !== undefined && unfolded === 0 && foldCounts[fold & 0xffff] === 0) return undefined;
    return sources.get(source);
  }

  function add(source: string, fold: number | undefined, t: number, ctx: C): SourceEntry {
    if (sources.size >= maxSources && oldest !== null) {
      const victim = oldest;
      remove(victim);
      evictions++;
      onDrop(victim, 'evicted', t, ctx);
    }
    const f = fold === undefined ? -1 : fold & 0xffff;
    const e: SourceEntry = { source, fold: f, states: new Array<unknown>(slots).fill(undefined), lastActivity: t, older: null, newer: null };
    if (f < 0) unfolded++;
    else foldCounts[f]++;
    sources.set(source, e);
    append(e);
    return e;
  }

  function touch(e: SourceEntry, t: number): void {
    e.lastActivity = t;
    if (newest !== e) {
      unlink(e);
      append(e);
    } else if (oldest === e) {
      syncOldest();
    }
  }

  function hasStale(t: number): boolean {
    return t - oldestActivity[0] > horizonMs;
  }

  function expire(t: number, ctx: C): void {
    while (oldest !== null && t - oldest.lastActivity > horizonMs) {
      const e = oldest;
      remove(e);
      expired++;
      onDrop(e, 'expired', t, ctx);
    }
  }

  function clear(): void {
    sources.clear();
    foldCounts.fill(0);
    unfolded = 0;
    oldest = null;
    newest = null;
    syncOldest();
  }

  return {
    oldestActivity,
    get size(): number {
      return sources.size;
    },
    get evictions(): number {
      return evictions;
    },
    get expired(): number {
      return expired;
    },
    find,
    add,
    touch,
    remove,
    hasStale,
    expire,
    clear,
  };
}
