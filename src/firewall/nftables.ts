// nftables backend: one table of our own (`inet knockwatch`), replaced
// atomically at start-up, left in place by a clean stop (release) and deleted
// only on uninstall (shutdown); nothing outside it is ever
// touched. Access lives in per-door sets whose elements carry their own
// timeout, so the KERNEL ends an access even if the daemon is SIGKILLed.
//
//   set ports    { type inet_proto . inet_service; elements = { tcp . 2222 } }
//   set v4_<door> { type ipv4_addr . inet_proto . inet_service; flags timeout }
//   set v6_<door> { type ipv6_addr . inet_proto . inet_service; flags timeout }
//   chain input (hook input, priority filter - 1, policy accept):
//     from loopback                       -> accept (local clients are not knockers)
//     door ports, ct established/related  -> accept
//     saddr . proto . dport in a door set -> accept
//     door ports otherwise                -> drop
//
// A second knock while open refreshes the element's timeout in place (see
// NftRefreshMode; init finds out which way this kernel supports).
//
// open() and close() run on the hot path of a knock: they queue (batch.ts)
// and each batch of pending changes is ONE transaction, whose timeouts are
// computed from the accesses' deadlines when it is applied. A small batch
// (a real knock) goes through a long-lived `nft -i` (nft-session.ts) when one
// is given, with `nft -f -` as the fallback for anything the session cannot
// confirm; a large one (a flood) goes straight to `nft -f -` (see
// SESSION_MAX_ELEMENTS).
//
// Set names put the family first (v4_ssh, not ssh_v4) because nft identifiers
// must start with a letter and door names may start with a digit or '-'.
// Our accepts only end this chain: nft still runs other tables' base chains
// at the same hook, where a drop is final. So this table can only take
// access away; a host firewall that drops the door ports must allow them
// itself for knockwatch to be able to open them.
import { droppedPorts } from './door-ports.js';
import type { Door, PortSpec } from '../types.js';
import { createBatchQueue, logAppliedBatch, type ApplyBatch, type BatchQueueOptions, type Outcome } from './batch.js';
import type { NftSession } from './nft-session.js';
import { runChecked, type Runner } from './run.js';
import { FirewallError, type Access, type AccessKey, type FirewallAdapter, type FirewallLogger } from './types.js';
import { checkAccess, comparePorts, indexDoors, remainingMs, sortAccesses } from './validate.js';

export interface NftablesOptions {
  readonly runner: Runner;
  readonly logger: FirewallLogger;
  /** Table name (family inet); tests use their own. */
  readonly table?: string;
  /** nft binary. */
  readonly nft?: string;
  /** Maximum elements per door set (one per source and port). */
  readonly setSize?: number;
  /** Wall clock, ms since the epoch. */
  readonly now?: () => number;
  /** How open() refreshes an element; 'auto' probes the kernel at init. */
  readonly refresh?: NftRefreshMode | 'auto';
  /**
   * Long-lived `nft -i` for open() and close(); whatever it cannot confirm
   * goes through `nft -f -` (the runner) as before. Stopped by shutdown().
   */
  readonly session?: NftSession;
  /** Batch size and bound of the open queue (defaults in batch.ts). */
  readonly batch?: Pick<BatchQueueOptions, 'maxElements' | 'maxQueuedOpens'>;
}

/**
 * 'add': a plain `add element` sets the timeout of an existing element too
 * (Linux >= 6.12; older kernels keep the old timeout). It carries `expires`
 * as well: the kernel updates an existing element only when the timeout
 * differs (in jiffies) or an expiration is given, so a refresh with the same
 * duration, the usual case, would otherwise leave the old deadline (seen on
 * 6.18). 'replace': add, delete, add again in one transaction, which works
 * everywhere but makes the kernel wait for an RCU grace period: measured
 * ~19 ms against ~6 ms for 'add'.
 */
export type NftRefreshMode = 'add' | 'replace';

export const DEFAULT_NFT_TABLE = 'knockwatch';
export const DEFAULT_SET_SIZE = 65_536;
const TABLE_RE = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
/** A set that lives only during init; the name cannot clash with v4_/v6_ door sets or `ports`. */
const PROBE_SET = 'timeout_probe';
/**
 * Largest batch (in elements) sent through the `nft -i` session. nft -i
 * spends ~0.12 ms of CPU an element on a long line (line editing), nft -f -
 * ~0.01 ms plus ~5-8 ms to start: 2,048 elements took 0.30 s of CPU through
 * nft -i against 0.04 s through nft -f - (nft 1.0.6). Break-even ~40.
 */
const SESSION_MAX_ELEMENTS = 32;

export function checkTableName(table: string): string {
  if (!TABLE_RE.test(table)) throw new FirewallError(`invalid nftables table name '${table}': a letter, then up to 31 letters, digits, '_' or '-'`);
  return table;
}

export function nftSetName(door: string, family: 4 | 6): string {
  return `v${family}_${door}`;
}

/** nft's own duration syntax (1d2h3m4s5ms): a bare "864000000ms" is rejected as too large by nft 1.0.6. */
export function formatNftDuration(ms: number): string {
  if (!Number.isInteger(ms) || ms <= 0) throw new FirewallError(`invalid nft timeout ${ms} ms`);
  const units: [string, number][] = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]];
  let rest = ms;
  let out = '';
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) out += `${n}${unit}`;
  }
  return out;
}

const NFT_DURATION_RE = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$/;

export function parseNftDuration(text: string): number {
  const m = NFT_DURATION_RE.exec(text);
  if (!m || text === '') throw new FirewallError(`cannot parse nft duration '${text}'`);
  const [d, h, min, s, ms] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  return (((d * 24 + h) * 60 + min) * 60 + s) * 1000 + ms;
}

/**
 * The whole table, replacing any previous one in a single transaction:
 * `table` (create if missing) + `delete table` + the definition. There is no
 * moment without protection, and no other table is named.
 */
export function buildNftRuleset(table: string, doors: readonly Door[], setSize: number, withProbe = true): string {
  checkTableName(table);
  indexDoors(doors);
  if (!Number.isInteger(setSize) || setSize < 1) throw new FirewallError(`invalid set size ${setSize}`);
  const ports = new Map<string, string>();
  for (const door of doors) for (const p of droppedPorts(door)) ports.set(`${p.protocol} . ${p.port}`, '');
  const lines: string[] = [`table inet ${table} {}`, `delete table inet ${table}`, `table inet ${table} {`];
  lines.push('\tset ports {', '\t\ttype inet_proto . inet_service');
  if (ports.size > 0) lines.push(`\t\telements = { ${[...ports.keys()].join(', ')} }`);
  lines.push('\t}');
  for (const door of doors) {
    for (const family of [4, 6] as const) {
      lines.push(
        `\tset ${nftSetName(door.name, family)} {`,
        `\t\ttype ipv${family}_addr . inet_proto . inet_service`,
        '\t\tflags timeout',
        `\t\tsize ${setSize}`,
        '\t}',
      );
    }
  }
  lines.push(
    '\tchain input {',
    // Just before the usual filter chains, so our drop comes first.
    '\t\ttype filter hook input priority filter - 1; policy accept;',
    // Packets from this host itself (including to its own external address)
    // arrive on lo; the kernel drops outside packets claiming a loopback source.
    '\t\tiif "lo" accept',
    '\t\tmeta l4proto . th dport @ports ct state established,related accept',
  );
  for (const door of doors) {
    lines.push(`\t\tip saddr . meta l4proto . th dport @${nftSetName(door.name, 4)} accept`);
    lines.push(`\t\tip6 saddr . meta l4proto . th dport @${nftSetName(door.name, 6)} accept`);
  }
  lines.push('\t\tmeta l4proto . th dport @ports drop', '\t}');
  // Removed again by init once it has learnt how this kernel treats a re-add.
  if (withProbe) lines.push(`\tset ${PROBE_SET} {`, '\t\ttype inet_service', '\t\tflags timeout', '\t\telements = { 1 timeout 1h }', '\t}');
  lines.push('}', '');
  return lines.join('\n');
}


function elementKeys(access: AccessKey): string[] {
  return access.ports.map((p) => `${access.source} . ${p.protocol} . ${p.port}`);
}

/**
 * Grant or refresh in one transaction (a set never holds a key twice, so
 * there is no duplicate either way). 'replace': add (so the element exists),
 * delete, add again with the new timeout.
 */
export function buildNftOpen(table: string, access: AccessKey, timeoutMs: number, mode: NftRefreshMode): string {
  return buildNftBatch(table, [{ kind: 'open', access, timeoutMs }], mode);
}

/** Remove in one transaction; the leading add makes deleting an absent (expired) element succeed. */
export function buildNftClose(table: string, access: AccessKey): string {
  return buildNftBatch(table, [{ kind: 'close', access }], 'add');
}

/** One change of a batch; an open carries its timeout, computed when the batch is built. */
export type NftBatchEntry = { readonly kind: 'open'; readonly access: AccessKey; readonly timeoutMs: number } | { readonly kind: 'close'; readonly access: AccessKey };

/**
 * Many opens and closes as ONE transaction: per set, one `add` of every
 * element (opens with their timeout, closes with 1s so that deleting an
 * absent one succeeds), one `delete` (the closes; in 'replace' mode the opens
 * too), and in 'replace' mode the opens added again. Correct because a batch
 * holds each element at most once (batch.ts); nft parses ~30 us an element,
 * against ~1 ms a command through `nft -i` one access at a time.
 */
export function buildNftBatch(table: string, entries: readonly NftBatchEntry[], mode: NftRefreshMode): string {
  checkTableName(table);
  const sets = new Map<string, { add: string[]; del: string[]; readd: string[] }>();
  for (const e of entries) {
    const set = `inet ${table} ${nftSetName(e.access.door, e.access.family)}`;
    let s = sets.get(set);
    if (!s) sets.set(set, (s = { add: [], del: [], readd: [] }));
    const keys = elementKeys(e.access);
    if (e.kind === 'close') {
      s.add.push(...keys.map((k) => `${k} timeout 1s`));
      s.del.push(...keys);
    } else {
      const timeout = formatNftDuration(e.timeoutMs);
      if (mode === 'add') {
        s.add.push(...keys.map((k) => `${k} timeout ${timeout} expires ${timeout}`));
      } else {
        s.add.push(...keys.map((k) => `${k} timeout ${timeout}`));
        s.del.push(...keys);
        s.readd.push(...keys.map((k) => `${k} timeout ${timeout}`));
      }
    }
  }
  const lines: string[] = [];
  for (const [set, s] of sets) {
    if (s.add.length > 0) lines.push(`add element ${set} { ${s.add.join(', ')} }`);
    if (s.del.length > 0) lines.push(`delete element ${set} { ${s.del.join(', ')} }`);
    if (s.readd.length > 0) lines.push(`add element ${set} { ${s.readd.join(', ')} }`);
  }
  if (lines.length === 0) throw new FirewallError('nft batch: no changes');
  return `${lines.join('\n')}\n`;
}

const ELEMENT_RE = /^(\S+) \. (tcp|udp|6|17) \. (\d+)(?: timeout (\S+))?(?: expires (\S+))?$/;

/**
 * Read the door sets' elements out of `nft list table` text (the JSON output
 * rounds expiry to whole seconds). One Access per door and source.
 */
export function parseNftTable(text: string, doors: ReadonlyMap<string, Door>, now: number): Access[] {
  const bySet = new Map<string, { door: string; family: 4 | 6 }>();
  for (const name of doors.keys()) for (const family of [4, 6] as const) bySet.set(nftSetName(name, family), { door: name, family });
  const grouped = new Map<string, { door: string; source: string; family: 4 | 6; ports: PortSpec[]; until: number }>();
  let set: string | undefined;
  let collecting: string | undefined;
  const flush = (elementsText: string): void => {
    const owner = set === undefined ? undefined : bySet.get(set);
    if (!owner) return;
    for (const raw of elementsText.split(',')) {
      const element = raw.trim();
      if (element === '') continue;
      const m = ELEMENT_RE.exec(element);
      if (!m) throw new FirewallError(`cannot parse nft set element '${element}' in set ${set}`);
      const [, source, proto, port, , expires] = m;
      const until = expires === undefined ? Number.POSITIVE_INFINITY : now + parseNftDuration(expires);
      const key = `${owner.door}|${source}`;
      const entry = grouped.get(key) ?? { door: owner.door, source, family: owner.family, ports: [], until };
      entry.ports.push({ port: Number(port), protocol: proto === 'tcp' || proto === '6' ? 'tcp' : 'udp' });
      entry.until = Math.min(entry.until, until);
      grouped.set(key, entry);
    }
  };
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (collecting === undefined) {
      const m = /^set (\S+) \{$/.exec(t);
      if (m) {
        set = m[1];
        continue;
      }
      if (/^(chain|map|flowtable) /.test(t)) set = undefined;
      if (set === undefined || !t.startsWith('elements = {')) continue;
      collecting = t.slice('elements = {'.length);
    } else {
      collecting += ` ${t}`;
    }
    const end = collecting.indexOf('}');
    if (end >= 0) {
      flush(collecting.slice(0, end));
      collecting = undefined;
    }
  }
  if (collecting !== undefined) throw new FirewallError(`cannot parse nft output: set ${set} elements not closed`);
  return sortAccesses([...grouped.values()].map((a) => ({ ...a, ports: a.ports.sort(comparePorts) })));
}

export function createNftables(options: NftablesOptions): FirewallAdapter {
  const table = checkTableName(options.table ?? DEFAULT_NFT_TABLE);
  const nft = options.nft ?? 'nft';
  const setSize = options.setSize ?? DEFAULT_SET_SIZE;
  const now = options.now ?? Date.now;
  const { runner, logger } = options;
  let doors: Map<string, Door> | undefined;
  let refresh: NftRefreshMode = options.refresh === 'add' ? 'add' : 'replace';
  /** The refresh probe runs at the first init only (see init). */
  let probed = false;

  const { session } = options;
  const transaction = (input: string) => runChecked(runner, { file: nft, args: ['-f', '-'], input });
  const ready = (): Map<string, Door> => {
    if (!doors) throw new FirewallError('nftables firewall is not initialised (call init() first)');
    return doors;
  };
  /**
   * The batch's transaction text, built now: each open's timeout is what is
   * left until its deadline at this moment. A change that is no longer valid
   * (its deadline passed while it waited, its door went away) fails alone.
   */
  const buildBatch = (changes: Parameters<ApplyBatch>[0]) => {
    const known = ready();
    const t = now();
    const outcomes: Outcome[] = changes.map(() => undefined);
    const included: number[] = [];
    const entries: NftBatchEntry[] = [];
    changes.forEach((c, i) => {
      try {
        checkAccess(c.access, known);
        entries.push(c.kind === 'open' ? { kind: 'open', access: c.access, timeoutMs: remainingMs(c.access, t) } : { kind: 'close', access: c.access });
        included.push(i);
      } catch (err) {
        outcomes[i] = err as Error;
      }
    });
    return { outcomes, included, text: entries.length > 0 ? buildNftBatch(table, entries, refresh) : undefined };
  };
  /**
   * One batch: the session when it confirms the transaction ran without
   * error, else `nft -f -`, whose result (and error message) is definitive,
   * with the text built again (time has passed). The texts are idempotent,
   * so a transaction the session did run before failing is harmless to run
   * again. nft transactions are atomic: an error fails every change in it.
   */
  const applyBatch: ApplyBatch = async (changes) => {
    let batch = buildBatch(changes);
    if (batch.text === undefined) return batch.outcomes;
    const elements = batch.included.reduce((n, i) => n + changes[i].access.ports.length, 0);
    if (session && elements <= SESSION_MAX_ELEMENTS) {
      const result = await session.apply(batch.text);
      if (result.ok) {
        logger.debug({ ms: result.ms, pid: session.pid, changes: batch.included.length }, 'nft session command');
        logAppliedBatch(logger, 'nft -i', batch.text, batch.included.map((i) => changes[i]));
        return batch.outcomes;
      }
      logger.debug({ reason: result.reason }, 'nft session did not confirm; running nft -f -');
      batch = buildBatch(changes);
      if (batch.text === undefined) return batch.outcomes;
    }
    try {
      await transaction(batch.text);
      logAppliedBatch(logger, `${nft} -f -`, batch.text, batch.included.map((i) => changes[i]));
    } catch (err) {
      for (const i of batch.included) batch.outcomes[i] = err as Error;
    }
    return batch.outcomes;
  };
  const queue = createBatchQueue({ apply: applyBatch, logger, name: 'nftables', ...options.batch });
  /** Stop (release or shutdown): queued opens are refused, queued closes and the batch in flight finish. */
  const drain = async (): Promise<void> => {
    queue.dropOpens('firewall stopping');
    await queue.idle();
  };

  return {
    kind: 'nftables',
    async init(list) {
      const indexed = indexDoors(list);
      // Until this init succeeds, the old door list no longer describes the kernel.
      doors = undefined;
      // A re-init (reload, reinstall after a loss) is one transaction: the
      // probe ran at the first, and each nft costs 5-8 ms (100-200 ms seen on
      // a loaded 2-core machine) inside the 2 s a reinstall may take.
      const probing = !probed;
      await transaction(buildNftRuleset(table, list, setSize, probing));
      if (probing) {
        // The probe set holds `1 timeout 1h`; re-add it with 2h and look.
        const probeSet = ['inet', table, PROBE_SET];
        if (options.refresh === undefined || options.refresh === 'auto') {
          await runChecked(runner, { file: nft, args: ['add', 'element', ...probeSet, '{ 1 timeout 2h }'] });
          const { stdout } = await runChecked(runner, { file: nft, args: ['list', 'set', ...probeSet] });
          refresh = /\b1 timeout 2h\b/.test(stdout) ? 'add' : 'replace';
        }
        await runChecked(runner, { file: nft, args: ['delete', 'set', ...probeSet] });
        probed = true;
      }
      doors = indexed;
      // Started now so that the first knock does not pay for nft's start-up.
      session?.warm();
      logger.info({ table: `inet ${table}`, doors: [...indexed.keys()], refresh }, 'nftables table installed');
    },
    async open(access) {
      // Refused at once when invalid; checked again when its batch is built.
      checkAccess(access, ready());
      remainingMs(access, now());
      await queue.open(access);
    },
    async close(access) {
      checkAccess(access, ready());
      await queue.close(access);
    },
    dropPending() {
      queue.dropOpens('firewall stopping');
    },
    async shutdown() {
      await drain();
      doors = undefined;
      await session?.stop();
      // `table` first so the delete succeeds when there is nothing to delete.
      await transaction(`table inet ${table} {}\ndelete table inet ${table}\n`);
      logger.info({ table: `inet ${table}` }, 'nftables table removed');
    },
    async release() {
      await drain();
      doors = undefined;
      await session?.stop();
      logger.info({ table: `inet ${table}` }, 'nftables table left in place (drop rules stay; accesses end by their kernel timeout)');
    },
    async verify() {
      // Only the chain: listing the table would print every set element (a
      // full set is 65,536 lines) on every check. The chain's last rule is the
      // drop; `nft flush ruleset`, `delete table` or `flush table` remove it.
      const r = await runner({ file: nft, args: ['list', 'chain', 'inet', table, 'input'] });
      return r.exitCode === 0 && r.stdout.includes('meta l4proto . th dport @ports drop');
    },
    async list() {
      const known = ready();
      const { stdout } = await runChecked(runner, { file: nft, args: ['list', 'table', 'inet', table] });
      return parseNftTable(stdout, known, now());
    },
  };
}
