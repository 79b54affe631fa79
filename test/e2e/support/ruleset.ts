// What the kernel holds in the server namespace, read back with the real
// tools: the rules (normalised so two snapshots compare as text) and the
// access elements, for either firewall backend. The namespace holds nothing
// but what the daemon made, so the whole ruleset is ours to compare.
import type { Lab } from '../../../src/lab/netns.js';
import type { FirewallKind } from '../../../src/types.js';

export interface RuleSnapshot {
  /** Rules, chains, tables and set definitions, without counters or elements. */
  readonly rules: string;
  /** Access elements as `SOURCE PROTO/PORT`, sorted. */
  readonly elements: readonly string[];
}

async function run(lab: Lab, argv: readonly string[]): Promise<string> {
  const r = await lab.run(lab.server, argv);
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
  return r.stdout;
}

/**
 * Access elements (`ADDR . proto . port`) of every `elements = { ... }` block
 * (may span lines) of `nft list ruleset`, cut out of the rules text. The
 * `ports` set's elements (`tcp . 2222`) are rules, not accesses: they stay.
 */
function splitNft(text: string): { rules: string; elements: string[] } {
  const elements: string[] = [];
  const rules = text.replace(/\n\s*elements = \{([^}]*)\}/g, (all: string, body: string) => {
    const items = body.split(',').map((e) => e.trim());
    if (items.every((e) => /^(tcp|udp) \. \d+$/.test(e))) return all;
    for (const item of items) {
      const m = /^(\S+) \. (tcp|udp) \. (\d+)/.exec(item);
      if (!m) throw new Error(`cannot parse nft set element '${item}'`);
      elements.push(`${m[1]} ${m[2]}/${m[3]}`);
    }
    return '';
  });
  return { rules, elements };
}

export async function snapshotRules(lab: Lab, kind: FirewallKind): Promise<RuleSnapshot> {
  if (kind === 'nftables') {
    const { rules, elements } = splitNft(await run(lab, ['nft', 'list', 'ruleset']));
    return { rules, elements: elements.sort() };
  }
  if (kind === 'iptables') {
    const strip = (text: string): string =>
      text
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith('#'))
        .map((l) => l.replace(/\s*\[\d+:\d+\]/g, ''))
        .join('\n');
    const v4 = strip(await run(lab, ['iptables-save']));
    const v6 = strip(await run(lab, ['ip6tables-save']));
    const sets = (await run(lab, ['ipset', 'save'])).split('\n');
    // initval is a random hash seed chosen at each create: not part of what we compare.
    const creates = sets
      .filter((l) => l.startsWith('create '))
      .map((l) => l.replace(/ initval 0x[0-9a-f]+/, ''))
      .sort();
    const elements = sets
      .filter((l) => l.startsWith('add '))
      .map((l) => {
        const m = /^add \S+ ([0-9a-fA-F:.]+),(tcp|udp):(\d+)/.exec(l);
        if (!m) throw new Error(`cannot parse ipset line '${l}'`);
        return `${m[1]} ${m[2]}/${m[3]}`;
      })
      .sort();
    return { rules: [v4, v6, ...creates].join('\n'), elements };
  }
  return { rules: '', elements: [] };
}

/** How many times our objects occur: a duplicate after a restart shows here. */
export function countOurObjects(snapshot: RuleSnapshot, kind: FirewallKind): Record<string, number> {
  const count = (re: RegExp): number => (snapshot.rules.match(re) ?? []).length;
  if (kind === 'nftables') {
    return { tables: count(/^table inet knockwatch /gm), chains: count(/^\s*chain input /gm), drops: count(/ drop$/gm) };
  }
  return {
    jumps: count(/^-A INPUT -j KNOCKWATCH$/gm),
    chains: count(/^:KNOCKWATCH/gm),
    drops: count(/^-A KNOCKWATCH .* -j DROP$/gm),
    sets: count(/^create kw-/gm),
  };
}
