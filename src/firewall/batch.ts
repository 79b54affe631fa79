// The queue between open()/close() calls and the kernel: pending changes are
// applied in batches, one batch in flight at a time, the next one filling up
// meanwhile (issue 8, item 6).
//
// Why: one command per access capped the firewall at ~850-1,000 opens/s
// through `nft -i` (and iptables ran one `ipset` process per source, all at
// once: 300 completions -> 300 processes). With 30,000 spoofed completions a
// real user's element appeared 18 s after the knock. One transaction of 1,000
// elements costs ~30 ms in nft (~30 us an element, measured with nft 1.0.6 on
// Linux 6.18) and ~35 ms in `ipset restore`, so batches drain ~30,000
// elements/s through a single process.
//
// The rules:
// - A batch is built when it is about to be applied, and the backend computes
//   each element's timeout from `access.until` right then (not when queued),
//   so time spent waiting never extends an access in the kernel.
// - Closes come first in every batch and are never refused. Opens wait in a
//   bounded queue, one bucket per source prefix (/24, /48), and each batch
//   takes them round-robin over the prefixes: a knock from a prefix with
//   little waiting goes in the next batch, however many wait from a flooding
//   prefix (FIFO made it wait for all of them: 1.2-2.5 s behind 30,000
//   spoofed completions on a loaded 2-core machine).
// - When the queue is full, one open is refused (QueueFullError, counted, a
//   warning at most once a second): the newcomer if its prefix already has
//   the most waiting, otherwise the oldest waiting open of the prefix that
//   has the most ("longest queue drop"). So a flood refuses its own opens
//   first, and a real knock after it is never refused because of it, unless
//   the flood comes from as many prefixes as there are places (then it is
//   first come, first served among equals). First come first served alone
//   refused the real knock after 30,000 completions (the queue was full of
//   them).
// - One door/source pair appears at most once per batch, so a batch never
//   holds an open and a close of the same element (the later one waits for
//   the next batch); a close arriving while an open of its pair is still
//   queued waits behind that open, so call order holds per pair.
// - Each call's promise settles with its own outcome: resolved once its batch
//   was applied, rejected with the error of the command (or the backend's
//   reason for that access alone).
import { FirewallError, type Access, type AccessKey, type FirewallLogger } from './types.js';
import { formatPort } from '../types.js';

export type Change = { readonly kind: 'open'; readonly access: Access } | { readonly kind: 'close'; readonly access: AccessKey };

/**
 * What happened to one change of a batch: `undefined` = applied; an Error =
 * failed; `{ again }` = not known to be applied, put it back at the front of
 * the queue (rejected with `again` if it already came back once).
 */
export type Outcome = undefined | Error | { readonly again: Error };

/**
 * Apply one batch as few commands as the backend can (ideally one) and say
 * what happened to each change, in order. A rejection fails every change.
 */
export type ApplyBatch = (changes: readonly Change[]) => Promise<readonly Outcome[]>;

export interface BatchQueueOptions {
  readonly apply: ApplyBatch;
  readonly logger: FirewallLogger;
  /** Names the backend in messages. */
  readonly name: string;
  /** Most elements (one per port of an access) in one batch; a single larger access still goes alone. */
  readonly maxElements?: number;
  /** Most opens waiting for a batch; more are refused. */
  readonly maxQueuedOpens?: number;
  /** Monotonic ms, only for spacing the "queue full" warnings. */
  readonly clock?: () => number;
}

export interface BatchStats {
  /** Batches handed to the backend (each one command, plus retries). */
  readonly batches: number;
  /** Changes applied. */
  readonly applied: number;
  /** Changes that failed. */
  readonly failed: number;
  /** Opens refused because the queue was full. */
  readonly refused: number;
  /** Queued opens dropped by dropOpens() (shutdown). */
  readonly dropped: number;
  /** Changes waiting right now (not counting the batch in flight). */
  readonly queued: number;
  /** Elements in the largest batch so far. */
  readonly largestBatch: number;
}

export interface BatchQueue {
  open(access: Access): Promise<void>;
  close(access: AccessKey): Promise<void>;
  /** Reject every queued open (shutdown); queued closes still go. Returns how many were dropped. */
  dropOpens(reason: string): number;
  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void>;
  readonly stats: BatchStats;
}

/** An open refused because too many are waiting: the firewall is behind (a flood of completions). */
export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
  constructor(message: string) {
    // No stack: it is always the same place, and capturing it cost ~15 us a
    // refusal (0.12 s of the daemon's CPU for 8,000 refusals in bench:flood).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
  }
}

/**
 * 2,048 elements: one `nft -f -` or `ipset restore` of that size costs
 * ~40-50 ms idle (0.2-0.4 s on a 2-core machine at load 10), and it is what a
 * real knock behind a flood waits for twice at most: the batch in flight, then
 * its own (its prefix is served in the first round of the next batch, see
 * below). Larger batches drain a little faster (the ~5-10 ms start of a
 * process is shared by more elements) but make that wait longer: with one
 * batch of 8,192, FIFO, the real open waited 1.2-1.5 s behind it at load 10
 * (bench:flood, 30,000 completions). The kernel's deadline is off by at most
 * one transaction's latency (computed when applied).
 */
export const DEFAULT_BATCH_ELEMENTS = 2048;
/**
 * Four batches. Opens are refused only when this many wait, and then from the
 * source prefix that has the most waiting (see createBatchQueue), so a flood
 * from a few prefixes cannot crowd out a knock from another one.
 */
export const DEFAULT_MAX_QUEUED_OPENS = 8192;
const WARN_EVERY_MS = 1000;
/** Prefix lengths of the fair-share buckets: one site, as ingress filtering (BCP 38) bounds what a spoofer can forge. */
export const FAIR_PREFIX_V4 = 24;
export const FAIR_PREFIX_V6 = 48;

interface Item {
  readonly change: Change;
  readonly key: string;
  readonly elements: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  attempts: number;
  /** Refused after it was queued (evicted for a shorter prefix's open, or dropped at stop): skipped when met. */
  gone: boolean;
}

/** The changes queued for one source prefix, oldest first (items[head..]). */
interface Bucket {
  readonly key: string;
  items: Item[];
  head: number;
  /** Live opens among items (what the fair share counts). */
  opens: number;
  /** Gone items still in `items`. */
  gone: number;
  /** Its index in the list of buckets with as many opens (byOpens). */
  slot: number;
}

/**
 * The fair-share bucket of a source: its /24 (IPv4) or /48 (IPv6). The
 * address was checked by the backend (checkSource) before it got here.
 */
export function sourcePrefix(source: string, family: 4 | 6): string {
  if (family === 4) return `4 ${source.slice(0, source.lastIndexOf('.'))}`;
  const cut = source.indexOf('::');
  // Groups before '::' (all of them without one); those missing are zeros.
  const groups = (cut < 0 ? source : source.slice(0, cut)).split(':');
  const g = (i: number): string => (groups[i] === undefined || groups[i] === '' ? '0' : Number.parseInt(groups[i], 16).toString(16));
  return `6 ${g(0)}:${g(1)}:${g(2)}`;
}
/**
 * Most characters of a command's input text in its log line. A full batch of
 * 2,048 elements is ~150 kB of nft text; the log line says how many changes it
 * held and shows only the start (the text repeats one form per element).
 */
export const LOGGED_INPUT_CHARS = 400;

/**
 * The info line for a batch the kernel took (the README promises one per
 * change): one change is logged with its door, source and ports; a larger
 * batch is ONE line with the counts, so a flood of 2,048 completions is one
 * line, not 2,048. `command` is what ran (`nft -i`, `nft -f -`, `ipset -exist
 * restore`), `input` the text it was given, cut at LOGGED_INPUT_CHARS. The
 * text holds addresses and ports only (no secret can be in it).
 */
export function logAppliedBatch(logger: FirewallLogger, command: string, input: string, applied: readonly Change[]): void {
  if (applied.length === 0) return;
  const text = input.length <= LOGGED_INPUT_CHARS ? input.trimEnd() : `${input.slice(0, LOGGED_INPUT_CHARS)}... (${input.length} chars)`;
  if (applied.length === 1) {
    const c = applied[0];
    const fields = { door: c.access.door, source: c.access.source, ports: c.access.ports.map(formatPort), command, input: text };
    if (c.kind === 'open') logger.info({ ...fields, until: new Date(c.access.until).toISOString() }, 'firewall open (or refresh) applied');
    else logger.info(fields, 'firewall close applied');
    return;
  }
  const opens = applied.reduce((n, c) => n + (c.kind === 'open' ? 1 : 0), 0);
  const elements = applied.reduce((n, c) => n + c.access.ports.length, 0);
  logger.info({ opens, closes: applied.length - opens, elements, command, input: text }, `firewall batch applied: ${opens} opens, ${applied.length - opens} closes`);
}

const pairKey = (a: AccessKey): string => `${a.door}|${a.family}|${a.source}`;

export function createBatchQueue(options: BatchQueueOptions): BatchQueue {
  const { apply, logger, name } = options;
  const maxElements = options.maxElements ?? DEFAULT_BATCH_ELEMENTS;
  const maxQueuedOpens = options.maxQueuedOpens ?? DEFAULT_MAX_QUEUED_OPENS;
  if (!Number.isInteger(maxElements) || maxElements < 1) throw new FirewallError(`invalid batch size ${maxElements}`);
  if (!Number.isInteger(maxQueuedOpens) || maxQueuedOpens < 1) throw new FirewallError(`invalid open queue bound ${maxQueuedOpens}`);
  const clock = options.clock ?? (() => performance.now());

  /** Closes with no open of their pair queued, in call order: first in every batch. */
  let closes: Item[] = [];
  /**
   * Opens (and closes waiting behind an open of their pair) per source
   * prefix; the Map's order is the round-robin order of the next batch.
   */
  let buckets = new Map<string, Bucket>();
  /**
   * byOpens[n]: the buckets with n live opens (unordered, swap-removed), and
   * the largest such n: the longest prefix in O(1). Plain arrays: with Sets
   * the bookkeeping cost ~2.5 us an open.
   */
  let byOpens: Bucket[][] = [[]];
  let mostOpens = 0;
  /** Live items in buckets (opens and the closes behind them). */
  let bucketItems = 0;
  let queuedOpens = 0;
  /** Queued opens per door/source pair, so a close can tell it must wait behind one. */
  const openPairs = new Map<string, number>();
  let inFlight = false;
  let scheduled = false;
  let idleWaiters: (() => void)[] = [];
  const stats = { batches: 0, applied: 0, failed: 0, refused: 0, dropped: 0, largestBatch: 0 };
  let refusedSinceWarning = 0;
  let lastWarning = Number.NEGATIVE_INFINITY;
  /** The last warning of a run of refusals, so the counts logged add up to every refusal. */
  let trailingWarning: ReturnType<typeof setTimeout> | undefined;

  const setOpens = (b: Bucket, n: number): void => {
    if (b.opens > 0) {
      const list = byOpens[b.opens];
      const last = list.pop() as Bucket;
      if (last !== b) {
        list[b.slot] = last;
        last.slot = b.slot;
      }
    }
    b.opens = n;
    if (n > 0) {
      const list = (byOpens[n] ??= []);
      b.slot = list.length;
      list.push(b);
    }
    // Counts move by one, so this loop runs at most once.
    if (n > mostOpens) mostOpens = n;
    while (mostOpens > 0 && (byOpens[mostOpens]?.length ?? 0) === 0) mostOpens -= 1;
  };

  const bucketOf = (item: Item): Bucket => {
    const key = sourcePrefix(item.change.access.source, item.change.access.family);
    let b = buckets.get(key);
    if (!b) buckets.set(key, (b = { key, items: [], head: 0, opens: 0, gone: 0, slot: 0 }));
    return b;
  };

  /** An open leaves the count (taken into a batch, evicted or dropped). */
  const forgetOpen = (item: Item, b: Bucket): void => {
    if (item.change.kind !== 'open') return;
    queuedOpens -= 1;
    setOpens(b, b.opens - 1);
    const n = (openPairs.get(item.key) ?? 1) - 1;
    if (n <= 0) openPairs.delete(item.key);
    else openPairs.set(item.key, n);
  };

  const rememberOpen = (item: Item, b: Bucket): void => {
    if (item.change.kind !== 'open') return;
    queuedOpens += 1;
    setOpens(b, b.opens + 1);
    openPairs.set(item.key, (openPairs.get(item.key) ?? 0) + 1);
  };

  /** Drops what was taken or gone from a bucket's front; forgets an empty bucket; compacts. */
  const tidy = (b: Bucket): void => {
    while (b.head < b.items.length && b.items[b.head].gone) {
      b.head += 1;
      b.gone -= 1;
    }
    if (b.head >= b.items.length) {
      buckets.delete(b.key);
      return;
    }
    // Gone items behind a waiting close, or a long taken front: copy the live ones (amortised O(1) an item).
    if (b.head > 1024 || (b.gone > 64 && b.gone * 2 > b.items.length - b.head)) {
      b.items = b.items.slice(b.head).filter((i) => !i.gone);
      b.head = 0;
      b.gone = 0;
    }
  };

  /**
   * Full: the open refused is one from the prefix with the most opens
   * waiting. The newcomer itself when its prefix is among those (a flood from
   * one prefix is refused at the door, as a plain bound would), otherwise the
   * oldest waiting open of such a prefix makes room for it.
   */
  const evictFor = (newcomer: Bucket | undefined): Item | undefined => {
    if ((newcomer?.opens ?? 0) >= mostOpens) return undefined;
    const victimBucket = byOpens[mostOpens]?.[0];
    if (!victimBucket) return undefined;
    for (let i = victimBucket.head; i < victimBucket.items.length; i++) {
      const item = victimBucket.items[i];
      if (item.gone || item.change.kind !== 'open') continue;
      item.gone = true;
      victimBucket.gone += 1;
      bucketItems -= 1;
      forgetOpen(item, victimBucket);
      tidy(victimBucket);
      return item;
    }
    return undefined;
  };

  const settle = (item: Item, outcome: Outcome, requeue: Item[]): void => {
    if (outcome === undefined) {
      stats.applied += 1;
      item.resolve();
    } else if (outcome instanceof Error) {
      stats.failed += 1;
      item.reject(outcome);
    } else if (item.attempts >= 1) {
      stats.failed += 1;
      item.reject(outcome.again);
    } else {
      item.attempts += 1;
      requeue.push(item);
    }
  };

  /**
   * The next batch: closes first (in order), then opens round-robin over the
   * prefixes, one from each per round, oldest first within a prefix. A
   * prefix stops for this batch at its first item that cannot go (its pair is
   * already in the batch, or it does not fit), so order per pair holds. A
   * prefix with one waiting open is served in the first round whatever the
   * others hold; the prefixes served are moved to the back of the order.
   */
  const takeBatch = (): Item[] => {
    const batch: Item[] = [];
    const keys = new Set<string>();
    let room = maxElements;
    const fits = (item: Item): boolean => !keys.has(item.key) && (item.elements <= room || batch.length === 0);
    const add = (item: Item): void => {
      keys.add(item.key);
      batch.push(item);
      room -= item.elements;
    };
    let n = 0;
    while (n < closes.length && room > 0 && fits(closes[n])) add(closes[n++]);
    // One slice per batch, not a shift per item.
    if (n > 0) closes = closes.slice(n);
    let open = [...buckets.values()];
    const served = new Set<Bucket>();
    while (room > 0 && open.length > 0) {
      const still: Bucket[] = [];
      for (const b of open) {
        if (room <= 0) break;
        // tidy() keeps a bucket's front item live.
        const item = b.items[b.head];
        if (!fits(item)) continue;
        add(item);
        b.head += 1;
        bucketItems -= 1;
        forgetOpen(item, b);
        served.add(b);
        tidy(b);
        if (buckets.has(b.key)) still.push(b);
      }
      open = still;
    }
    // Round-robin: the prefixes served go behind those that were not.
    for (const b of served) {
      if (!buckets.has(b.key)) continue;
      buckets.delete(b.key);
      buckets.set(b.key, b);
    }
    return batch;
  };

  const run = async (): Promise<void> => {
    scheduled = false;
    const batch = takeBatch();
    if (batch.length === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
      return;
    }
    inFlight = true;
    stats.batches += 1;
    stats.largestBatch = Math.max(stats.largestBatch, batch.reduce((e, i) => e + i.elements, 0));
    let outcomes: readonly Outcome[];
    try {
      outcomes = await apply(batch.map((i) => i.change));
    } catch (err) {
      const error = err instanceof Error ? err : new FirewallError(String(err));
      outcomes = batch.map(() => error);
    }
    const requeue: Item[] = [];
    batch.forEach((item, i) => settle(item, outcomes[i], requeue));
    // Back to the front, in their order, each to the queue it came from.
    const backToCloses = new Set(requeue.filter((i) => i.change.kind === 'close' && !openPairs.has(i.key)));
    closes = [...backToCloses, ...closes];
    for (const item of [...requeue].reverse()) {
      if (backToCloses.has(item)) continue;
      const b = bucketOf(item);
      if (b.head > 0) b.items[--b.head] = item;
      else b.items.unshift(item);
      bucketItems += 1;
      rememberOpen(item, b);
    }
    inFlight = false;
    schedule();
  };

  function schedule(): void {
    if (inFlight || scheduled) return;
    scheduled = true;
    // setImmediate: calls made in the same turn of the event loop (a burst of
    // decisions) share the first batch instead of the first one going alone.
    setImmediate(() => void run());
  }

  const warnRefused = (): void => {
    logger.warn(
      { refused: refusedSinceWarning, refusedTotal: stats.refused, queued: queuedOpens, limit: maxQueuedOpens, backend: name },
      'firewall queue full: opens refused',
    );
    lastWarning = clock();
    refusedSinceWarning = 0;
  };

  const refusal = (access: AccessKey, evicted: boolean): QueueFullError => {
    stats.refused += 1;
    refusedSinceWarning += 1;
    const sinceWarning = clock() - lastWarning;
    if (sinceWarning >= WARN_EVERY_MS) {
      clearTimeout(trailingWarning);
      trailingWarning = undefined;
      warnRefused();
    } else if (trailingWarning === undefined) {
      trailingWarning = setTimeout(() => {
        trailingWarning = undefined;
        if (refusedSinceWarning > 0) warnRefused();
      }, WARN_EVERY_MS - sinceWarning);
      // Never keeps the process alive by itself.
      trailingWarning.unref?.();
    }
    const what = `open of door '${access.door}' for ${access.source}`;
    return new QueueFullError(
      evicted
        ? `${name}: open queue full (limit ${maxQueuedOpens}); queued ${what} refused to make room for one from a prefix with fewer waiting`
        : `${name}: ${queuedOpens} opens already waiting (limit ${maxQueuedOpens}), its prefix has the most; ${what} refused`,
    );
  };

  const enqueue = (change: Change): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const key = pairKey(change.access);
      const item: Item = { change, key, elements: Math.max(1, change.access.ports.length), resolve, reject, attempts: 0, gone: false };
      if (change.kind === 'close' && !openPairs.has(key)) {
        closes.push(item);
      } else {
        if (change.kind === 'open' && queuedOpens >= maxQueuedOpens) {
          const victim = evictFor(buckets.get(sourcePrefix(change.access.source, change.access.family)));
          if (!victim) {
            reject(refusal(change.access, false));
            return;
          }
          victim.reject(refusal(victim.change.access, true));
        }
        const b = bucketOf(item);
        b.items.push(item);
        bucketItems += 1;
        rememberOpen(item, b);
      }
      schedule();
    });

  return {
    open: (access) => enqueue({ kind: 'open', access }),
    close: (access) => enqueue({ kind: 'close', access }),
    dropOpens(reason) {
      const dropped: Item[] = [];
      // Closes that waited behind an open of their pair still go, in order.
      for (const b of buckets.values()) {
        for (let i = b.head; i < b.items.length; i++) {
          const item = b.items[i];
          if (item.gone) continue;
          if (item.change.kind === 'open') dropped.push(item);
          else closes.push(item);
        }
      }
      buckets = new Map();
      byOpens = [[]];
      mostOpens = 0;
      bucketItems = 0;
      openPairs.clear();
      queuedOpens = 0;
      stats.dropped += dropped.length;
      for (const item of dropped) item.reject(new FirewallError(`${name}: ${reason}; queued open of door '${item.change.access.door}' for ${item.change.access.source} dropped`));
      if (dropped.length > 0) logger.info({ dropped: dropped.length, backend: name, reason }, 'queued opens dropped');
      if (closes.length > 0) schedule();
      return dropped.length;
    },
    idle: () =>
      new Promise<void>((resolve) => {
        if (!inFlight && !scheduled && closes.length === 0 && bucketItems === 0) resolve();
        else {
          idleWaiters.push(resolve);
          schedule();
        }
      }),
    get stats(): BatchStats {
      return { ...stats, queued: closes.length + bucketItems };
    },
  };
}
