// iptables backend (iptables + ip6tables, legacy or nft flavour) with ipset
// for kernel-enforced expiry. Everything we own carries our names: one chain
// (KNOCKWATCH) in the filter table of each family, jumped to by exactly one
// rule at the top of INPUT, and two sets per door, kw-<door>-4 / kw-<door>-6
// (hash:ip,port, per-element timeout). Chain contents:
//   -i lo -j RETURN                                                       (this host's own clients)
//   -p P --dport N -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT   (each door port)
//   -m set --match-set kw-<door>-F src,dst -j ACCEPT                      (each door)
//   -p P --dport N -j DROP                                                (each door port)
// ipset counts timeouts in whole seconds, so access is rounded UP to the next second.
// open() and close() queue (batch.ts): each batch of pending changes is one
// `ipset -exist restore`, one process at a time, its timeouts computed from
// the accesses' deadlines when it runs (before: one ipset process per
// access, all at once; 300 completions -> 300 processes).
import { droppedPorts } from './door-ports.js';
import { createHash } from 'node:crypto';
import type { Door, PortSpec } from '../types.js';
import { createBatchQueue, logAppliedBatch, type ApplyBatch, type BatchQueueOptions, type Outcome } from './batch.js';
import { runChecked, type Runner } from './run.js';
import { FirewallError, type Access, type AccessKey, type FirewallAdapter, type FirewallLogger } from './types.js';
import { checkAccess, comparePorts, indexDoors, remainingMs, sortAccesses } from './validate.js';

export interface IptablesBinaries {
  readonly iptables?: string;
  readonly ip6tables?: string;
  readonly iptablesRestore?: string;
  readonly ip6tablesRestore?: string;
  readonly ipset?: string;
}

export interface IptablesOptions {
  readonly runner: Runner;
  readonly logger: FirewallLogger;
  /** Our chain's name in the filter table of both families. */
  readonly chain?: string;
  /** First part of our ipset names. */
  readonly setPrefix?: string;
  readonly binaries?: IptablesBinaries;
  /** ipset maxelem: maximum elements per door set. */
  readonly setSize?: number;
  readonly now?: () => number;
  /** Batch size and bound of the open queue (defaults in batch.ts). */
  readonly batch?: Pick<BatchQueueOptions, 'maxElements' | 'maxQueuedOpens'>;
}

export const DEFAULT_CHAIN = 'KNOCKWATCH';
export const DEFAULT_SET_PREFIX = 'kw';
const CHAIN_RE = /^[A-Za-z][A-Za-z0-9_-]{0,27}$/;
const PREFIX_RE = /^[A-Za-z][A-Za-z0-9_]{0,7}$/;
/** Names that would make us flush or jump to something that is not ours. */
const RESERVED_CHAINS = new Set(['INPUT', 'OUTPUT', 'FORWARD', 'PREROUTING', 'POSTROUTING', 'ACCEPT', 'DROP', 'RETURN', 'QUEUE', 'REJECT']);
const IPSET_NAME_MAX = 31;

export function checkChainName(chain: string): string {
  if (!CHAIN_RE.test(chain) || RESERVED_CHAINS.has(chain.toUpperCase())) {
    throw new FirewallError(`invalid iptables chain name '${chain}': a letter then up to 27 letters, digits, '_' or '-', not a built-in name`);
  }
  return chain;
}

export function checkSetPrefix(prefix: string): string {
  if (!PREFIX_RE.test(prefix)) throw new FirewallError(`invalid ipset name prefix '${prefix}': a letter then up to 7 letters, digits or '_'`);
  return prefix;
}

/**
 * `<prefix>-<door>-<family>`; a door name too long for ipset's 31 characters
 * is cut and given a hash of the full name so two long names cannot collide.
 */
export function ipsetName(prefix: string, door: string, family: 4 | 6): string {
  const plain = `${prefix}-${door}-${family}`;
  if (plain.length <= IPSET_NAME_MAX) return plain;
  const hash = createHash('sha256').update(door).digest('hex').slice(0, 6);
  const keep = IPSET_NAME_MAX - `${prefix}--${family}`.length - 1 - hash.length;
  return `${prefix}-${door.slice(0, keep)}.${hash}-${family}`;
}

interface Family {
  readonly family: 4 | 6;
  readonly list: string;
  readonly restore: string;
}

/** What `iptables -S` says about our objects in one family's filter table. */
export interface ChainState {
  readonly chainExists: boolean;
  /** Number of `-A INPUT -j <chain>` rules (more than one means an earlier run duplicated it). */
  readonly jumps: number;
  /** Sets our chain's rules refer to: ours, possibly from doors no longer configured. */
  readonly referencedSets: readonly string[];
  /** Rules in our chain (`-A <chain> ...` lines). */
  readonly rules: number;
}

export function parseIptablesS(text: string, chain: string): ChainState {
  let chainExists = false;
  let jumps = 0;
  let rules = 0;
  const referenced = new Set<string>();
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === `-N ${chain}`) chainExists = true;
    else if (t === `-A INPUT -j ${chain}`) jumps++;
    else if (t.startsWith(`-A ${chain} `)) {
      rules++;
      const m = /--match-set (\S+) /.exec(t);
      if (m) referenced.add(m[1]);
    }
  }
  return { chainExists, jumps, referencedSets: [...referenced], rules };
}

function uniquePorts(doors: readonly Door[]): PortSpec[] {
  const seen = new Map<string, PortSpec>();
  for (const d of doors) for (const p of droppedPorts(d)) seen.set(`${p.protocol}/${p.port}`, p);
  return [...seen.values()].sort(comparePorts);
}

/**
 * iptables-restore --noflush input for one family. `withSets: false` gives the
 * fail-closed interim chain (door ports dropped, no set references) that lets
 * init replace the sets without a moment of open ports.
 */
export function buildIptablesRestore(
  chain: string,
  doors: readonly Door[],
  family: 4 | 6,
  setName: (door: string, family: 4 | 6) => string,
  options: { withSets: boolean; removeJumps: number; addJump: boolean },
): string {
  checkChainName(chain);
  indexDoors(doors);
  const ports = uniquePorts(doors);
  // Declaring a chain under --noflush creates it, or flushes it if it exists.
  const lines = ['*filter', `:${chain} - [0:0]`];
  for (let i = 0; i < options.removeJumps; i++) lines.push(`-D INPUT -j ${chain}`);
  lines.push(`-A ${chain} -i lo -j RETURN`);
  for (const p of ports) lines.push(`-A ${chain} -p ${p.protocol} --dport ${p.port} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`);
  if (options.withSets) for (const d of doors) lines.push(`-A ${chain} -m set --match-set ${setName(d.name, family)} src,dst -j ACCEPT`);
  for (const p of ports) lines.push(`-A ${chain} -p ${p.protocol} --dport ${p.port} -j DROP`);
  if (options.addJump) lines.push(`-I INPUT 1 -j ${chain}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** `ipset -exist restore` lines; -exist makes add refresh the timeout and del ignore absent elements. */
export function buildIpsetLines(verb: 'add' | 'del', set: string, access: AccessKey, timeoutS?: number): string {
  return access.ports
    .map((p) => `${verb} ${set} ${access.source},${p.protocol}:${p.port}${timeoutS === undefined ? '' : ` timeout ${timeoutS}`}\n`)
    .join('');
}

/** The 1-based input line `ipset restore` stopped at, from its message (`Error in line N: ...`). */
export function ipsetErrorLine(stderr: string): number | undefined {
  const m = /\bError in line (\d+):/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

const IPSET_ADD_RE = /^add (\S+) ([0-9A-Fa-f:.]+),(tcp|udp):(\d+)(?: timeout (\d+))?/;

export function parseIpsetSave(text: string, sets: ReadonlyMap<string, { door: string; family: 4 | 6 }>, now: number): Access[] {
  const grouped = new Map<string, { door: string; source: string; family: 4 | 6; ports: PortSpec[]; until: number }>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('add ')) continue;
    const owner = sets.get(line.split(' ')[1]);
    if (!owner) continue;
    const m = IPSET_ADD_RE.exec(line);
    if (!m) throw new FirewallError(`cannot parse ipset save line '${line}'`);
    const [, , source, protocol, port, timeout] = m;
    const until = timeout === undefined ? Number.POSITIVE_INFINITY : now + Number(timeout) * 1000;
    const key = `${owner.door}|${source}`;
    const entry = grouped.get(key) ?? { door: owner.door, source, family: owner.family, ports: [], until };
    entry.ports.push({ port: Number(port), protocol: protocol as 'tcp' | 'udp' });
    entry.until = Math.min(entry.until, until);
    grouped.set(key, entry);
  }
  return sortAccesses([...grouped.values()]);
}

export function createIptables(options: IptablesOptions): FirewallAdapter {
  const chain = checkChainName(options.chain ?? DEFAULT_CHAIN);
  const prefix = checkSetPrefix(options.setPrefix ?? DEFAULT_SET_PREFIX);
  const bin = options.binaries ?? {};
  const ipset = bin.ipset ?? 'ipset';
  const setSize = options.setSize ?? 65_536;
  if (!Number.isInteger(setSize) || setSize < 1) throw new FirewallError(`invalid set size ${setSize}`);
  const now = options.now ?? Date.now;
  const { runner, logger } = options;
  const families: readonly Family[] = [
    { family: 4, list: bin.iptables ?? 'iptables', restore: bin.iptablesRestore ?? 'iptables-restore' },
    { family: 6, list: bin.ip6tables ?? 'ip6tables', restore: bin.ip6tablesRestore ?? 'ip6tables-restore' },
  ];
  const setName = (door: string, family: 4 | 6): string => ipsetName(prefix, door, family);
  let doors: Map<string, Door> | undefined;
  let setOwners = new Map<string, { door: string; family: 4 | 6 }>();
  /** Rules init put in our chain (the same in each family); verify() expects exactly these. */
  let installedRules = 0;

  const ready = (): Map<string, Door> => {
    if (!doors) throw new FirewallError('iptables firewall is not initialised (call init() first)');
    return doors;
  };
  /**
   * One batch as one `ipset -exist restore` (-exist: add refreshes the
   * timeout, del ignores an absent element, so running a line twice is
   * harmless). Timeouts are what is left until each deadline right now. It is
   * not atomic: at an error in line N the lines before may or may not have
   * been applied (ipset sends them in buffers), so the change owning line N
   * fails with the error and every other one goes back to the queue once.
   */
  const applyBatch: ApplyBatch = async (changes) => {
    const known = ready();
    const t = now();
    const outcomes: Outcome[] = changes.map(() => undefined);
    /** Input line (0-based) -> index of the change it belongs to. */
    const owner: number[] = [];
    let input = '';
    changes.forEach((c, i) => {
      try {
        checkAccess(c.access, known);
        const set = setName(c.access.door, c.access.family);
        input += c.kind === 'open' ? buildIpsetLines('add', set, c.access, Math.ceil(remainingMs(c.access, t) / 1000)) : buildIpsetLines('del', set, c.access);
        for (let n = 0; n < c.access.ports.length; n++) owner.push(i);
      } catch (err) {
        outcomes[i] = err as Error;
      }
    });
    if (owner.length === 0) return outcomes;
    try {
      await runChecked(runner, { file: ipset, args: ['-exist', 'restore'], input });
      logAppliedBatch(logger, `${ipset} -exist restore`, input, changes.filter((_, i) => outcomes[i] === undefined));
    } catch (err) {
      const error = err as Error & { stderr?: string };
      const line = ipsetErrorLine(error.stderr ?? '');
      const failing = line === undefined ? undefined : owner[line - 1];
      for (const i of new Set(owner)) outcomes[i] = failing === undefined || i === failing ? error : { again: error };
    }
    return outcomes;
  };
  const queue = createBatchQueue({ apply: applyBatch, logger, name: 'iptables', ...options.batch });
  /** Stop (release or shutdown): queued opens are refused, queued closes and the batch in flight finish. */
  const drain = async (): Promise<void> => {
    queue.dropOpens('firewall stopping');
    await queue.idle();
  };
  const chainState = async (f: Family): Promise<ChainState> =>
    parseIptablesS((await runChecked(runner, { file: f.list, args: ['-w', '-S'] })).stdout, chain);
  const restore = (f: Family, input: string) => runChecked(runner, { file: f.restore, args: ['-w', '--noflush'], input });
  const existingSets = async (): Promise<Set<string>> =>
    new Set((await runChecked(runner, { file: ipset, args: ['list', '-n'] })).stdout.split('\n').map((s) => s.trim()).filter(Boolean));
  /** Destroy (some of) `names` that exist; they must no longer be referenced by any rule. */
  const destroySets = async (names: Iterable<string>, extra = ''): Promise<void> => {
    const existing = await existingSets();
    const lines = [...new Set(names)].filter((n) => existing.has(n)).map((n) => `destroy ${n}\n`);
    if (lines.length > 0 || extra !== '') await runChecked(runner, { file: ipset, args: ['restore'], input: lines.join('') + extra });
  };

  return {
    kind: 'iptables',
    async init(list) {
      const indexed = indexDoors(list);
      const wanted = list.flatMap((d) => [setName(d.name, 4), setName(d.name, 6)]);
      if (new Set(wanted).size !== wanted.length) throw new FirewallError('two doors map to the same ipset name');
      // Until this init succeeds, the old door list no longer describes the kernel.
      doors = undefined;
      const stale: string[] = [];
      // 1. Fail closed first: our chain becomes "door ports dropped" with a
      //    single jump, no set references, in one atomic restore per family.
      for (const f of families) {
        const state = await chainState(f);
        stale.push(...state.referencedSets);
        await restore(f, buildIptablesRestore(chain, list, f.family, setName, { withSets: false, removeJumps: state.jumps, addJump: true }));
      }
      // 2. Fresh sets: whatever we used before (and any set squatting on our names) goes.
      const creates = list
        .flatMap((d) =>
          ([4, 6] as const).map((fam) => `create ${setName(d.name, fam)} hash:ip,port family ${fam === 4 ? 'inet' : 'inet6'} timeout 0 maxelem ${setSize}\n`),
        )
        .join('');
      await destroySets([...stale, ...wanted], creates);
      // 3. The real rules, again atomically per family.
      let rules = 0;
      for (const f of families) {
        const text = buildIptablesRestore(chain, list, f.family, setName, { withSets: true, removeJumps: 0, addJump: false });
        await restore(f, text);
        rules = text.split('\n').filter((l) => l.startsWith(`-A ${chain} `)).length;
      }
      doors = indexed;
      setOwners = new Map(list.flatMap((d) => ([4, 6] as const).map((fam) => [setName(d.name, fam), { door: d.name, family: fam }] as const)));
      installedRules = rules;
      logger.info({ chain, sets: wanted }, 'iptables chain and ipsets installed');
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
      const known = doors;
      doors = undefined;
      const sets = known ? [...known.keys()].flatMap((n) => [setName(n, 4), setName(n, 6)]) : [];
      for (const f of families) {
        const state = await chainState(f);
        sets.push(...state.referencedSets);
        if (!state.chainExists && state.jumps === 0) continue;
        const lines = ['*filter', `:${chain} - [0:0]`];
        for (let i = 0; i < state.jumps; i++) lines.push(`-D INPUT -j ${chain}`);
        lines.push(`-X ${chain}`, 'COMMIT', '');
        await restore(f, lines.join('\n'));
      }
      await destroySets(sets);
      logger.info({ chain }, 'iptables chain and ipsets removed');
    },
    async release() {
      await drain();
      doors = undefined;
      logger.info({ chain }, 'iptables chain and ipsets left in place (drop rules stay; accesses end by their ipset timeout)');
    },
    async verify() {
      // `iptables -F` / `-X`, a restarted host firewall (iptables-restore
      // without --noflush) or `ipset destroy` after them leave the jump
      // missing or our chain short of rules. ipsets cannot be destroyed while
      // our rules reference them, so the chains are enough to look at.
      for (const f of families) {
        const r = await runner({ file: f.list, args: ['-w', '-S'] });
        if (r.exitCode !== 0) return false;
        const state = parseIptablesS(r.stdout, chain);
        if (!state.chainExists || state.jumps !== 1 || state.rules !== installedRules) return false;
      }
      return true;
    },
    async list() {
      ready();
      const { stdout } = await runChecked(runner, { file: ipset, args: ['save'] });
      return parseIpsetSave(stdout, setOwners, now());
    },
  };
}
