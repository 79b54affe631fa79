import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createFirewall } from '../../src/firewall/index.js';
import {
  buildNftRuleset,
  formatNftDuration,
  parseNftDuration,
  parseNftTable,
} from '../../src/firewall/nftables.js';
import { FirewallCommandError } from '../../src/firewall/run.js';
import { createNftables } from '../../src/firewall/nftables.js';
import { FirewallError } from '../../src/firewall/types.js';
import { indexDoors } from '../../src/firewall/validate.js';
import { recorder, sshDoor, webDoor } from './firewall-support.js';

const NOW = 1_700_000_000_000;
const now = (): number => NOW;

describe('nftables ruleset', () => {
  const text = buildNftRuleset('knockwatch', [sshDoor, webDoor], 65536);

  it('replaces only its own table, atomically', () => {
    const lines = text.split('\n');
    expect(lines.slice(0, 3)).toEqual(['table inet knockwatch {}', 'delete table inet knockwatch', 'table inet knockwatch {']);
    // No other table, no ruleset-wide command.
    expect(text).not.toMatch(/flush ruleset|table (ip|ip6|inet|arp|bridge|netdev) (?!knockwatch)/);
  });

  it('has timeout sets per door and family, with family-first names', () => {
    expect(text).toContain('\tset v4_ssh {\n\t\ttype ipv4_addr . inet_proto . inet_service\n\t\tflags timeout\n\t\tsize 65536\n\t}');
    expect(text).toContain('\tset v6_9web-x {\n\t\ttype ipv6_addr . inet_proto . inet_service');
  });

  it('lists each protected port once, and puts every accept before the drop', () => {
    expect(text).toContain('elements = { tcp . 2222, tcp . 443, udp . 53 }');
    const chain = text.slice(text.indexOf('chain input'));
    const rules = chain.split('\n').map((l) => l.trim()).filter((l) => /^(meta|ip|iif)/.test(l));
    expect(rules).toEqual([
      'iif "lo" accept',
      'meta l4proto . th dport @ports ct state established,related accept',
      'ip saddr . meta l4proto . th dport @v4_ssh accept',
      'ip6 saddr . meta l4proto . th dport @v6_ssh accept',
      'ip saddr . meta l4proto . th dport @v4_9web-x accept',
      'ip6 saddr . meta l4proto . th dport @v6_9web-x accept',
      'meta l4proto . th dport @ports drop',
    ]);
    expect(chain).toContain('type filter hook input priority filter - 1; policy accept;');
  });

  it('refuses hostile table names and doors', () => {
    expect(() => buildNftRuleset('kw; flush ruleset', [sshDoor], 10)).toThrow(FirewallError);
    expect(() => buildNftRuleset('1kw', [sshDoor], 10)).toThrow(FirewallError);
    expect(() => buildNftRuleset('kw', [{ ...sshDoor, name: 'x } ; flush ruleset ; {' }], 10)).toThrow(/invalid door name/);
    expect(() => buildNftRuleset('kw', [sshDoor], 0)).toThrow(/set size/);
  });
});

describe('nft durations', () => {
  it('formats in nft units', () => {
    expect(formatNftDuration(2500)).toBe('2s500ms');
    expect(formatNftDuration(86_400_000 + 1)).toBe('1d1ms');
    expect(formatNftDuration(60_000)).toBe('1m');
    expect(() => formatNftDuration(0)).toThrow();
    expect(() => formatNftDuration(1.5)).toThrow();
  });
  it('parses what nft prints', () => {
    expect(parseNftDuration('1d1h59m59s988ms')).toBe(93_599_988);
    expect(parseNftDuration('3m4ms')).toBe(180_004);
    expect(parseNftDuration('22s')).toBe(22_000);
    expect(() => parseNftDuration('')).toThrow(/cannot parse/);
    expect(() => parseNftDuration('5x')).toThrow(/cannot parse/);
  });
  it('round-trips (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 2_147_483_000 }), (ms) => parseNftDuration(formatNftDuration(ms)) === ms));
  });
});

describe('nftables adapter commands', () => {
  const PROBE_UPDATED = 'table inet knockwatch {\n\tset timeout_probe {\n\t\telements = { 1 timeout 2h expires 1h59m59s996ms }\n\t}\n}\n';
  const PROBE_KEPT = PROBE_UPDATED.replace('timeout 2h', 'timeout 1h');
  /** An initialised adapter and its recorder, emptied of the init commands. */
  const setup = async (answer?: Parameters<typeof recorder>[0], probe = PROBE_KEPT) => {
    const rec = recorder((req) => answer?.(req) ?? (req.args[0] === 'list' ? { stdout: probe } : undefined));
    const fw = createFirewall('nftables', { runner: rec.runner, now });
    await fw.init([sshDoor, webDoor]);
    const init = rec.calls.splice(0);
    return { fw, rec, init };
  };
  const ok = { door: 'ssh', source: '10.0.0.2', family: 4 as const, ports: sshDoor.open, until: NOW + 1000 };

  it('init: the ruleset in one nft -f -, then a probe of how the kernel treats a re-add', async () => {
    const { init } = await setup();
    expect(init.map((c) => [c.file, ...c.args].join(' '))).toEqual([
      'nft -f -',
      'nft add element inet knockwatch timeout_probe { 1 timeout 2h }',
      'nft list set inet knockwatch timeout_probe',
      'nft delete set inet knockwatch timeout_probe',
    ]);
    // The element text is ONE argv entry: nft parses it, no shell splits it.
    expect(init[1].args).toHaveLength(6);
    expect(init[0].input).toBe(buildNftRuleset('knockwatch', [sshDoor, webDoor], 65536));
  });

  it('open is ONE command; a kernel that updates timeouts on re-add gets a plain add', async () => {
    const { fw, rec } = await setup(undefined, PROBE_UPDATED);
    await fw.open({ door: '9web-x', source: '10.0.0.2', family: 4, ports: [webDoor.open[0], webDoor.open[2]], until: NOW + 20_000 });
    expect(rec.calls).toHaveLength(1);
    expect(rec.calls[0].args).toEqual(['-f', '-']);
    // `expires` too: without it the kernel ignores a re-add with an unchanged timeout.
    expect(rec.calls[0].input).toBe(
      'add element inet knockwatch v4_9web-x { 10.0.0.2 . tcp . 443 timeout 20s expires 20s, 10.0.0.2 . udp . 53 timeout 20s expires 20s }\n',
    );
  });

  it('open is ONE command; otherwise add, delete, add again in one transaction', async () => {
    const { fw, rec } = await setup();
    await fw.open({ door: '9web-x', source: '10.0.0.2', family: 4, ports: [webDoor.open[0], webDoor.open[2]], until: NOW + 20_000 });
    expect(rec.calls).toHaveLength(1);
    expect(rec.calls[0].args).toEqual(['-f', '-']);
    expect(rec.calls[0].input).toBe(
      [
        'add element inet knockwatch v4_9web-x { 10.0.0.2 . tcp . 443 timeout 20s, 10.0.0.2 . udp . 53 timeout 20s }',
        'delete element inet knockwatch v4_9web-x { 10.0.0.2 . tcp . 443, 10.0.0.2 . udp . 53 }',
        'add element inet knockwatch v4_9web-x { 10.0.0.2 . tcp . 443 timeout 20s, 10.0.0.2 . udp . 53 timeout 20s }',
        '',
      ].join('\n'),
    );
  });

  it('a forced refresh mode skips the probe', async () => {
    const rec = recorder();
    const fw = createFirewall('nftables', { runner: rec.runner, now, nftRefresh: 'add' });
    await fw.init([sshDoor]);
    expect(rec.calls.map((c) => c.args[0])).toEqual(['-f', 'delete']);
    await fw.open(ok);
    expect(rec.calls[2].input).toBe('add element inet knockwatch v4_ssh { 10.0.0.2 . tcp . 2222 timeout 1s expires 1s }\n');
  });

  it('close deletes idempotently and uses the IPv6 set for IPv6 sources', async () => {
    const { fw, rec } = await setup();
    await fw.close({ door: 'ssh', source: 'fd00:6b77::2', family: 6, ports: sshDoor.open });
    expect(rec.calls[0].input).toBe(
      'add element inet knockwatch v6_ssh { fd00:6b77::2 . tcp . 2222 timeout 1s }\ndelete element inet knockwatch v6_ssh { fd00:6b77::2 . tcp . 2222 }\n',
    );
  });

  it('runs nothing for hostile or invalid accesses', async () => {
    const { fw, rec } = await setup();
    await expect(fw.open({ ...ok, source: '10.0.0.2 . tcp . 22 timeout 1d }; flush ruleset; add element inet x y {' })).rejects.toThrow(
      FirewallError,
    );
    await expect(fw.open({ ...ok, door: 'ssh_v4 { 1.2.3.4 }' })).rejects.toThrow(/invalid door name/);
    await expect(fw.open({ ...ok, family: 6 })).rejects.toThrow(/not an IPv6 address/);
    await expect(fw.open({ ...ok, until: NOW - 1 })).rejects.toThrow(/already ended/);
    await expect(fw.open({ ...ok, ports: [{ port: 22, protocol: 'tcp' }] })).rejects.toThrow(/not one of the door's open ports/);
    await expect(fw.close({ ...ok, source: '::1' })).rejects.toThrow(/not an IPv4 address/);
    expect(rec.calls).toHaveLength(0);
  });

  it('refuses to work before init and after shutdown', async () => {
    const rec = recorder();
    const fw = createFirewall('nftables', { runner: rec.runner, now });
    await expect(fw.open(ok)).rejects.toThrow(/not initialised/);
    await expect(fw.list()).rejects.toThrow(/not initialised/);
    await fw.init([sshDoor]);
    rec.calls.length = 0;
    await fw.shutdown();
    expect(rec.calls.map((c) => c.input)).toEqual(['table inet knockwatch {}\ndelete table inet knockwatch\n']);
    await expect(fw.open(ok)).rejects.toThrow(/not initialised/);
  });

  it('reports a failing nft with command, exit code and stderr', async () => {
    const { fw } = await setup((req) =>
      req.input?.startsWith('add element') ? { exitCode: 1, stderr: 'Error: Could not process rule: Too many open files in system\n' } : undefined,
    );
    const err = await fw.open({ ...ok, until: NOW + 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirewallCommandError);
    const e = err as FirewallCommandError;
    expect(e.command).toBe('nft -f -');
    expect(e.exitCode).toBe(1);
    expect(e.stderr).toContain('Too many open files');
    expect(e.input).toContain('add element inet knockwatch v4_ssh');
    expect(e.message).toBe('nft -f - failed (exit 1): Error: Could not process rule: Too many open files in system');
  });

  it('a failing init leaves the adapter unusable rather than half-configured', async () => {
    const rec = recorder((req) => (req.args[0] === 'list' ? { exitCode: 1, stderr: 'Error: boom' } : undefined));
    const fw = createFirewall('nftables', { runner: rec.runner, now });
    await expect(fw.init([sshDoor])).rejects.toThrow(/nft list set inet knockwatch timeout_probe failed \(exit 1\): Error: boom/);
    await expect(fw.open(ok)).rejects.toThrow(/not initialised/);
  });

  it('uses the table name and nft path it is given', async () => {
    const rec = recorder();
    const fw = createFirewall('nftables', { runner: rec.runner, now, table: 'kwtest', binaries: { nft: '/opt/nft' } });
    await fw.init([sshDoor]);
    await fw.list();
    expect(new Set(rec.calls.map((c) => c.file))).toEqual(new Set(['/opt/nft']));
    expect(rec.calls[0].input).toContain('delete table inet kwtest\n');
    expect(rec.calls.at(-1)?.args).toEqual(['list', 'table', 'inet', 'kwtest']);
    expect(() => createFirewall('nftables', { runner: rec.runner, table: 'a b' })).toThrow(/invalid nftables table name/);
  });
});

// Captured from nft 1.0.6 (kernel 6.18) in a lab namespace.
const LISTING = `table inet knockwatch {
	set ports {
		type inet_proto . inet_service
		elements = { udp . 53,
			     tcp . 2222 }
	}

	set v4_ssh {
		type ipv4_addr . inet_proto . inet_service
		size 65536
		flags timeout
		elements = { 10.0.0.4 . tcp . 2222 timeout 100ms expires 88ms,
			     10.0.0.3 . tcp . 2222 timeout 1d2h expires 1d1h59m59s988ms }
	}

	set v6_ssh {
		type ipv6_addr . inet_proto . inet_service
		size 65536
		flags timeout
	}

	set v4_9web-x {
		type ipv4_addr . inet_proto . inet_service
		size 65536
		flags timeout
		elements = { 10.0.0.4 . udp . 53 timeout 30s expires 20s, 10.0.0.4 . tcp . 443 timeout 30s expires 22s856ms }
	}

	set v6_9web-x {
		type ipv6_addr . inet_proto . inet_service
		size 65536
		flags timeout
		elements = { ::ffff:1.2.3.4 . 17 . 53 timeout 5s expires 4s992ms }
	}

	chain input {
		type filter hook input priority filter - 1; policy accept;
		meta l4proto . th dport @ports ct state established,related accept
		ip saddr . meta l4proto . th dport @v4_ssh accept
		meta l4proto . th dport @ports drop
	}
}
`;

describe('nft listing parser', () => {
  const doors = indexDoors([sshDoor, webDoor]);
  it('reads accesses with millisecond expiry, grouped per door and source', () => {
    expect(parseNftTable(LISTING, doors, NOW)).toEqual([
      {
        door: '9web-x',
        source: '10.0.0.4',
        family: 4,
        ports: [
          { port: 443, protocol: 'tcp' },
          { port: 53, protocol: 'udp' },
        ],
        until: NOW + 20_000,
      },
      { door: '9web-x', source: '::ffff:1.2.3.4', family: 6, ports: [{ port: 53, protocol: 'udp' }], until: NOW + 4992 },
      { door: 'ssh', source: '10.0.0.3', family: 4, ports: [{ port: 2222, protocol: 'tcp' }], until: NOW + 93_599_988 },
      { door: 'ssh', source: '10.0.0.4', family: 4, ports: [{ port: 2222, protocol: 'tcp' }], until: NOW + 88 },
    ]);
  });
  it('ignores sets of doors it does not know and fails loudly on what it cannot read', () => {
    expect(parseNftTable(LISTING, indexDoors([{ ...sshDoor, name: 'other' }]), NOW)).toEqual([]);
    expect(() => parseNftTable(LISTING.replace('tcp . 443', 'tcp . "https"'), doors, NOW)).toThrow(/cannot parse nft set element/);
    expect(() => parseNftTable('\tset v4_ssh {\n\t\telements = { 10.0.0.1 . tcp . 1 timeout 1s expires 1s,\n', doors, NOW)).toThrow(
      /not closed/,
    );
  });
});

// Issue 8, item 6: spoofed completions must not swamp the firewall path.
describe('nftables batching (issue 8: spoofed completions)', { timeout: 10_000 }, () => {
  const PROBE_UPDATED = 'table inet knockwatch {\n\tset timeout_probe {\n\t\telements = { 1 timeout 2h expires 1h59m59s996ms }\n\t}\n}\n';
  const access = (i: number, until: number) => ({ door: 'ssh', source: `198.18.${i >> 8}.${i & 255}`, family: 4 as const, ports: sshDoor.open, until });
  const warnings: object[] = [];
  const logger = { debug() {}, info() {}, warn: (o: object) => void warnings.push(o), error() {} };

  /** A recorder whose element transactions wait for `release()`; `clock` is the adapter's wall clock. */
  const gated = () => {
    let open: () => void = () => {};
    let gate = new Promise<void>((r) => (open = r));
    const rec = recorder((req) => (req.args[0] === 'list' ? { stdout: PROBE_UPDATED } : undefined));
    const runner: typeof rec.runner = async (req) => {
      if (/^(add|delete) element/m.test(req.input ?? '')) await gate;
      return rec.runner(req);
    };
    return {
      rec,
      runner,
      release: () => {
        open();
        gate = Promise.resolve();
      },
    };
  };

  it('300 opens made together go out as ONE transaction, every element once', async () => {
    const rec = recorder((req) => (req.args[0] === 'list' ? { stdout: PROBE_UPDATED } : undefined));
    const fw = createFirewall('nftables', { runner: rec.runner, now });
    await fw.init([sshDoor]);
    rec.calls.length = 0;
    await Promise.all(Array.from({ length: 300 }, (_, i) => fw.open(access(i, NOW + 20_000))));
    expect(rec.calls.map((c) => c.args.join(' '))).toEqual(['-f -']);
    const text = rec.calls[0].input ?? '';
    expect(text.split('\n')).toHaveLength(2); // one add command (+ the final newline)
    for (let i = 0; i < 300; i++) expect(text).toContain(`${access(i, 0).source} . tcp . 2222 timeout 20s expires 20s`);
    expect(text.match(/timeout 20s expires 20s/g)).toHaveLength(300);
  });

  it("each element's timeout is computed from its deadline when its batch is applied, not when it was queued", async () => {
    let t = NOW;
    const g = gated();
    const fw = createNftables({ runner: g.runner, logger, now: () => t, refresh: 'add' });
    await fw.init([sshDoor]);
    g.rec.calls.length = 0;
    const first = fw.open(access(1, NOW + 20_000)); // applied at once, its command held by the gate
    await new Promise((r) => setTimeout(r, 20));
    const second = fw.open(access(2, NOW + 20_000)); // waits behind the batch in flight
    await new Promise((r) => setTimeout(r, 20)); // queued for good
    t = NOW + 7_250; // the kernel was slow: 7.25 s pass before the next batch
    g.release();
    await Promise.all([first, second]);
    expect(g.rec.calls.map((c) => c.input)).toEqual([
      'add element inet knockwatch v4_ssh { 198.18.0.1 . tcp . 2222 timeout 20s expires 20s }\n',
      'add element inet knockwatch v4_ssh { 198.18.0.2 . tcp . 2222 timeout 12s750ms expires 12s750ms }\n',
    ]);
    // One whose deadline passed while it waited is refused on its own, and nothing is sent for it.
    const third = fw.open(access(3, t + 1000));
    t += 2000;
    await expect(third).rejects.toThrow(/already ended/);
    expect(g.rec.calls).toHaveLength(2);
  });

  it('the queue of opens is bounded: more are refused at once with a counted warning; closes are never refused', async () => {
    const g = gated();
    warnings.length = 0;
    const fw = createNftables({ runner: g.runner, logger, now, refresh: 'add', batch: { maxQueuedOpens: 10, maxElements: 4 } });
    await fw.init([sshDoor]);
    g.rec.calls.length = 0;
    const inFlight = fw.open(access(0, NOW + 20_000));
    await new Promise((r) => setTimeout(r, 20));
    const queued = Array.from({ length: 10 }, (_, i) => fw.open(access(i + 1, NOW + 20_000)));
    const refused = await Promise.allSettled(Array.from({ length: 25 }, (_, i) => fw.open(access(i + 100, NOW + 20_000))));
    expect(refused.every((r) => r.status === 'rejected' && (r.reason as Error).name === 'QueueFullError')).toBe(true);
    expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({ message: expect.stringMatching(/10 opens already waiting \(limit 10\)/) as string });
    // One warning (at most one a second), carrying the count.
    expect(warnings).toEqual([expect.objectContaining({ refused: 1, refusedTotal: 1, limit: 10 })]);
    const closes = Array.from({ length: 5 }, (_, i) => fw.close(access(i + 200, 0)));
    g.release();
    await Promise.all([inFlight, ...queued, ...closes]);
    // 1 in flight, then batches of at most 4 elements, closes first.
    const texts = g.rec.calls.map((c) => c.input ?? '');
    const sources = (x: string): string[] => [...new Set(x.match(/198\.18\.\d+\.\d+ /g))];
    expect(texts.map((x) => sources(x).length)).toEqual([1, 4, 4, 4, 3]);
    // The 5 closes went before the 10 opens queued ahead of them.
    expect(sources(texts[1])).toEqual(['198.18.0.200 ', '198.18.0.201 ', '198.18.0.202 ', '198.18.0.203 ']);
    expect(texts[2]).toContain('delete element inet knockwatch v4_ssh { 198.18.0.204 . tcp . 2222 }');
    expect(texts.join('')).not.toMatch(/198\.18\.0\.1(0[0-9]|1[0-9]|2[0-4]) /);
  });

  it('dropPending (a stop): queued opens are refused at once, not applied; the batch in flight and closes finish', async () => {
    const g = gated();
    const fw = createFirewall('nftables', { runner: g.runner, now });
    await fw.init([sshDoor]);
    g.rec.calls.length = 0;
    const inFlight = fw.open(access(1, NOW + 20_000));
    await new Promise((r) => setTimeout(r, 20));
    const queued = Promise.allSettled([2, 3, 4].map((i) => fw.open(access(i, NOW + 20_000))));
    const close = fw.close(access(5, 0));
    await new Promise((r) => setTimeout(r, 20));
    fw.dropPending?.();
    const settled = await queued; // without waiting for the kernel
    expect(settled.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect((settled[0] as PromiseRejectedResult).reason).toMatchObject({ message: expect.stringMatching(/firewall stopping; queued open of door 'ssh' for 198\.18\.0\.2 dropped/) as string });
    g.release();
    await Promise.all([inFlight, close]);
    expect(g.rec.calls.map((c) => c.input ?? '').join('')).not.toMatch(/198\.18\.0\.[234] /);
  });

  it('a failing batch rejects every access in it with the command error; the next batch goes on', async () => {
    const g = gated();
    let fail = true;
    const runner: typeof g.runner = async (req) => {
      const r = await g.runner(req);
      if (fail && req.input?.includes('198.18.0.2 ')) {
        fail = false;
        return { exitCode: 1, stdout: '', stderr: 'Error: Could not process rule: No space left on device\n' };
      }
      return r;
    };
    const fw = createNftables({ runner, logger, now, refresh: 'add' });
    await fw.init([sshDoor]);
    const first = fw.open(access(1, NOW + 20_000));
    await new Promise((r) => setTimeout(r, 20));
    const batch = [2, 3, 4].map((i) => fw.open(access(i, NOW + 20_000)));
    g.release();
    await first;
    const results = await Promise.allSettled(batch);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(FirewallCommandError);
    await fw.open(access(5, NOW + 20_000));
  });
});
