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
//   bounded queue; when it is full, a new open is refused at once
//   (QueueFullError) and counted, with a warning at most once a second.
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
}

/**
 * 2,048 elements: one `nft -f -` of that size costs ~40 ms of CPU (0.2-1 s
 * on a 2-core machine at load 15-20), and the kernel's deadline is off by at
 * most that one transaction's latency.
 */
export const DEFAULT_BATCH_ELEMENTS = 2048;
/**
 * Four batches: a real knock arriving behind a full queue waits for them
 * (~0.2 s idle), but the deeper the queue, the less often a burst of spoofed
 * completions fills it just as the real knock comes. Measured at load 15-17
 * on 2 cores (bench:flood, 30,000 completions, the real knock right after):
 * with 2,048 the real open was refused with both firewalls, with 4,096 it
 * got in (0.2 s nftables, 4.8 s iptables); the kernel's deadline does not
 * depend on it (computed when applied).
 */
export const DEFAULT_MAX_QUEUED_OPENS = 8192;
const WARN_EVERY_MS = 1000;

interface Item {
  readonly change: Change;
  readonly key: string;
  readonly elements: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  attempts: number;
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

  /** Closes, in call order. */
  let closes: Item[] = [];
  /** Opens, in call order, plus closes of pairs that had an open queued when they came. */
  let opens: Item[] = [];
  let queuedOpens = 0;
  /** Queued opens per door/source pair, so a close can tell it must wait behind one. */
  const openPairs = new Map<string, number>();
  let inFlight = false;
  let scheduled = false;
  let idleWaiters: (() => void)[] = [];
  const stats = { batches: 0, applied: 0, failed: 0, refused: 0, dropped: 0, largestBatch: 0 };
  let refusedSinceWarning = 0;
  let lastWarning = Number.NEGATIVE_INFINITY;

  const forgetOpen = (item: Item): void => {
    if (item.change.kind !== 'open') return;
    queuedOpens -= 1;
    const n = (openPairs.get(item.key) ?? 1) - 1;
    if (n <= 0) openPairs.delete(item.key);
    else openPairs.set(item.key, n);
  };

  const rememberOpen = (item: Item): void => {
    if (item.change.kind !== 'open') return;
    queuedOpens += 1;
    openPairs.set(item.key, (openPairs.get(item.key) ?? 0) + 1);
  };

  /** Take items from the head of `list` while they fit; stops at the first that does not (order). */
  const take = (list: Item[], batch: Item[], keys: Set<string>, room: { left: number }): Item[] => {
    let n = 0;
    while (n < list.length) {
      const item = list[n];
      if (keys.has(item.key)) break;
      if (item.elements > room.left && batch.length > 0) break;
      keys.add(item.key);
      batch.push(item);
      room.left -= item.elements;
      n += 1;
    }
    // One splice per batch, not a shift per item.
    return n === 0 ? list : list.slice(n);
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

  const run = async (): Promise<void> => {
    scheduled = false;
    const batch: Item[] = [];
    const keys = new Set<string>();
    const room = { left: maxElements };
    closes = take(closes, batch, keys, room);
    opens = take(opens, batch, keys, room);
    if (batch.length === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
      return;
    }
    for (const item of batch) forgetOpen(item);
    inFlight = true;
    stats.batches += 1;
    stats.largestBatch = Math.max(stats.largestBatch, maxElements - room.left);
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
    if (requeue.length > 0) {
      const backToCloses = (i: Item): boolean => i.change.kind === 'close' && !openPairs.has(i.key);
      closes = [...requeue.filter(backToCloses), ...closes];
      opens = [...requeue.filter((i) => !backToCloses(i)), ...opens];
      for (const item of requeue) rememberOpen(item);
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

  const enqueue = (change: Change): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const key = pairKey(change.access);
      const item: Item = { change, key, elements: Math.max(1, change.access.ports.length), resolve, reject, attempts: 0 };
      if (change.kind === 'open') {
        opens.push(item);
        rememberOpen(item);
      } else if (openPairs.has(key)) {
        opens.push(item);
      } else {
        closes.push(item);
      }
      schedule();
    });

  const refuse = (access: Access): Promise<void> => {
    stats.refused += 1;
    refusedSinceWarning += 1;
    const t = clock();
    if (t - lastWarning >= WARN_EVERY_MS) {
      logger.warn(
        { refused: refusedSinceWarning, refusedTotal: stats.refused, queued: queuedOpens, limit: maxQueuedOpens, backend: name },
        'firewall queue full: opens refused',
      );
      lastWarning = t;
      refusedSinceWarning = 0;
    }
    return Promise.reject(
      new QueueFullError(`${name}: ${queuedOpens} opens already waiting (limit ${maxQueuedOpens}); open of door '${access.door}' for ${access.source} refused`),
    );
  };

  return {
    open: (access) => (queuedOpens >= maxQueuedOpens ? refuse(access) : enqueue({ kind: 'open', access })),
    close: (access) => enqueue({ kind: 'close', access }),
    dropOpens(reason) {
      const dropped = opens.filter((i) => i.change.kind === 'open');
      // Closes that waited behind an open of their pair still go.
      closes = [...closes, ...opens.filter((i) => i.change.kind === 'close')];
      opens = [];
      openPairs.clear();
      queuedOpens = 0;
      stats.dropped += dropped.length;
      for (const item of dropped) item.reject(new FirewallError(`${name}: ${reason}; queued open of door '${item.change.access.door}' for ${item.change.access.source} dropped`));
      if (dropped.length > 0) logger.info({ dropped: dropped.length, backend: name, reason }, 'queued opens dropped');
      return dropped.length;
    },
    idle: () =>
      new Promise<void>((resolve) => {
        if (!inFlight && !scheduled && closes.length === 0 && opens.length === 0) resolve();
        else {
          idleWaiters.push(resolve);
          schedule();
        }
      }),
    get stats(): BatchStats {
      return { ...stats, queued: closes.length + opens.length };
    },
  };
}
