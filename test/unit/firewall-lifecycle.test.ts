// The firewall's lifecycle around the backends (issue 8 items 1, 3, 5): door
// commands exactly once per access, a close that leaves the kernel element
// (clean stop), and the state watcher that reinstalls lost rules.
import { afterEach, describe, expect, it } from 'vitest';
import { createFirewall } from '../../src/firewall/index.js';
import { deletesFromTable } from '../../src/firewall/nft-monitor.js';
import { watchFirewallState, type StateWatch } from '../../src/firewall/state-watch.js';
import { silentLogger, type Access, type Firewall } from '../../src/firewall/types.js';
import type { Door } from '../../src/types.js';
import { recorder, sshDoor } from './firewall-support.js';

const NOW = 1_800_000_000_000;
const door = { ...sshDoor, startCommand: ['on', '%IP%'], stopCommand: ['off', '%IP%'] };
const access: Access = { door: 'ssh', source: '10.0.0.2', family: 4, ports: door.open, until: NOW + 5000 };

describe('verify: are our rules still in the kernel?', () => {
  it('nftables: our chain with its final drop, read without listing set elements', async () => {
    let answer = { exitCode: 0, stdout: 'table inet knockwatch {\n\tchain input {\n\t\tmeta l4proto . th dport @ports drop\n\t}\n}\n', stderr: '' };
    const rec = recorder((req) => (req.args[0] === 'list' && req.args[1] === 'chain' ? answer : undefined));
    const fw = createFirewall('nftables', { runner: rec.runner, now: () => NOW, nftRefresh: 'add' });
    await fw.init([door]);
    expect(await fw.verify()).toBe(true);
    expect(rec.calls.at(-1)?.args).toEqual(['list', 'chain', 'inet', 'knockwatch', 'input']);
    answer = { exitCode: 1, stdout: '', stderr: 'Error: No such file or directory' };
    expect(await fw.verify()).toBe(false);
    answer = { exitCode: 0, stdout: 'table inet knockwatch {\n\tchain input {\n\t}\n}\n', stderr: '' };
    expect(await fw.verify()).toBe(false);
  });

  it('iptables: our chain with every rule init put there and exactly one jump, in both families', async () => {
    let listing = '';
    const rec = recorder((req) => (req.args.includes('-S') ? { stdout: listing } : undefined));
    const fw = createFirewall('iptables', { runner: rec.runner, now: () => NOW });
    await fw.init([door]);
    const installed = rec.calls.filter((c) => c.file === 'iptables-restore').at(-1)?.input ?? '';
    const rules = installed.split('\n').filter((l) => l.startsWith('-A KNOCKWATCH '));
    expect(rules.length).toBeGreaterThan(2);
    listing = ['-P INPUT ACCEPT', '-N KNOCKWATCH', '-A INPUT -j KNOCKWATCH', ...rules].join('\n');
    expect(await fw.verify()).toBe(true);
    for (const broken of [
      ['-P INPUT ACCEPT', '-N KNOCKWATCH', ...rules], // iptables -F INPUT took the jump
      ['-P INPUT ACCEPT', '-N KNOCKWATCH', '-A INPUT -j KNOCKWATCH'], // our chain flushed
      ['-P INPUT ACCEPT'], // iptables -F; iptables -X
    ]) {
      listing = broken.join('\n');
      expect(await fw.verify(), broken.join(' | ')).toBe(false);
    }
  });
});

describe('nft monitor lines', () => {
  it('a deletion in our table is a hint; additions, other tables and elements are not', () => {
    expect(deletesFromTable('delete rule inet knockwatch input handle 7', 'knockwatch')).toBe(true);
    expect(deletesFromTable('delete table inet knockwatch', 'knockwatch')).toBe(true);
    expect(deletesFromTable('delete rule inet knockwatch2 input handle 7', 'knockwatch')).toBe(false);
    expect(deletesFromTable('delete rule inet filter input handle 3', 'knockwatch')).toBe(false);
    expect(deletesFromTable('add rule inet knockwatch input meta l4proto . th dport @ports drop', 'knockwatch')).toBe(false);
  });
});

describe('door commands once per access', () => {
  it('a refresh or re-application runs no start; a clean-stop close runs the stop but keeps the access in the firewall', async () => {
    const rec = recorder();
    const fw = createFirewall('none', { runner: rec.runner, now: () => NOW });
    await fw.init([door]);
    await fw.open(access);
    await fw.open({ ...access, until: NOW + 9000 }, { start: false });
    expect(rec.calls.map((c) => c.file)).toEqual(['on']);
    await fw.close(access, { kernel: false });
    expect(rec.calls.map((c) => c.file)).toEqual(['on', 'off']);
    expect((await fw.list()).map((a) => a.source)).toEqual(['10.0.0.2']);
    await fw.close(access);
    expect(await fw.list()).toEqual([]);
  });
});

/** A firewall whose kernel state can be "lost"; records reinstalls. */
function fakeFirewall(): Firewall & { intact: boolean; reinstalls: { doors: readonly Door[]; accesses: readonly Access[] }[] } {
  const fake = {
    kind: 'nftables' as const,
    intact: true,
    reinstalls: [] as { doors: readonly Door[]; accesses: readonly Access[] }[],
    init: async () => {},
    open: async () => {},
    close: async () => {},
    shutdown: async () => {},
    release: async () => {},
    list: async () => [],
    verify: async () => fake.intact,
    reinstall: async (doors: readonly Door[], accesses: readonly Access[]) => {
      fake.reinstalls.push({ doors, accesses });
      fake.intact = true;
    },
  };
  return fake;
}

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('firewall state watch', () => {
  let watch: StateWatch | undefined;
  afterEach(async () => {
    await watch?.stop();
  });

  it('reinstalls a lost state with the doors and the accesses still valid, and counts it', async () => {
    const fw = fakeFirewall();
    const live: Access = { ...access, until: Date.now() + 60_000 };
    const ended: Access = { ...access, source: '10.0.0.3', until: Date.now() - 1 };
    const warnings: string[] = [];
    watch = watchFirewallState({
      firewall: fw,
      doors: () => [door],
      accesses: () => [live, ended],
      logger: { ...silentLogger, warn: (_o, msg) => warnings.push(String(msg)) },
      intervalMs: 20,
    });
    await until(() => watch!.stats.checks >= 2);
    expect(fw.reinstalls).toEqual([]);
    fw.intact = false;
    await until(() => fw.reinstalls.length === 1);
    expect(fw.reinstalls[0]).toEqual({ doors: [door], accesses: [live] });
    await until(() => warnings.length === 1);
    expect(warnings).toEqual(['firewall state lost: reinstalled']);
    expect(watch.stats.reinstalls).toBe(1);
  });

  it('checkSoon checks at once (a command failed); nothing runs while paused', async () => {
    const fw = fakeFirewall();
    watch = watchFirewallState({ firewall: fw, doors: () => [door], accesses: () => [], logger: silentLogger, intervalMs: 60_000 });
    fw.intact = false;
    await watch.paused(async () => {
      watch!.checkSoon();
      await new Promise((r) => setTimeout(r, 50));
      expect(fw.reinstalls).toHaveLength(0);
    });
    watch.checkSoon();
    await until(() => fw.reinstalls.length === 1, 1000);
  });
});
