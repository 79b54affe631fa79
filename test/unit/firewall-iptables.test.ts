import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createFirewall } from '../../src/firewall/index.js';
import { buildIptablesRestore, ipsetName, parseIpsetSave, parseIptablesS } from '../../src/firewall/iptables.js';
import { FirewallCommandError, type CommandRequest } from '../../src/firewall/run.js';
import { recorder, sshDoor, webDoor } from './firewall-support.js';

const NOW = 1_700_000_000_000;
const now = (): number => NOW;
const line = (r: CommandRequest): string => [r.file, ...r.args].join(' ');

// `iptables -S` of a table where a killed run left two jumps and a set of a
// door that no longer exists, next to a foreign rule.
const STALE_S = `-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT
-N KNOCKWATCH
-N OTHER
-A INPUT -j KNOCKWATCH
-A INPUT -s 10.0.0.0/8 -j KNOCKWATCH
-A INPUT -j KNOCKWATCH
-A INPUT -p tcp --dport 80 -j OTHER
-A KNOCKWATCH -p tcp -m tcp --dport 2222 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KNOCKWATCH -m set --match-set kw-old-4 src,dst -j ACCEPT
-A OTHER -m set --match-set foreign src,dst -j ACCEPT
`;

describe('iptables helpers', () => {
  it('reads our chain, our exact jumps and the sets our chain refers to', () => {
    expect(parseIptablesS(STALE_S, 'KNOCKWATCH')).toEqual({ chainExists: true, jumps: 2, referencedSets: ['kw-old-4'], rules: 2 });
    expect(parseIptablesS('-P INPUT ACCEPT\n', 'KNOCKWATCH')).toEqual({ chainExists: false, jumps: 0, referencedSets: [], rules: 0 });
  });

  it('builds ipset names within 31 characters, distinct for distinct doors (property)', () => {
    expect(ipsetName('kw', 'ssh', 4)).toBe('kw-ssh-4');
    const long = ipsetName('kw', 'a'.repeat(32), 6);
    expect(long).toHaveLength(31);
    expect(long).toMatch(/^kw-a+\.[0-9a-f]{6}-6$/);
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/), fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/), (a, b) => {
        const na = ipsetName('kwtest', a, 4);
        return na.length <= 31 && (a === b || na !== ipsetName('kwtest', b, 4));
      }),
    );
  });

  it('builds a fail-closed interim chain and the full chain', () => {
    const name = (d: string, f: 4 | 6): string => `kw-${d}-${f}`;
    const interim = buildIptablesRestore('KNOCKWATCH', [sshDoor, webDoor], 6, name, { withSets: false, removeJumps: 2, addJump: true });
    expect(interim.split('\n')).toEqual([
      '*filter',
      ':KNOCKWATCH - [0:0]',
      '-D INPUT -j KNOCKWATCH',
      '-D INPUT -j KNOCKWATCH',
      '-A KNOCKWATCH -i lo -j RETURN',
      '-A KNOCKWATCH -p tcp --dport 443 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
      '-A KNOCKWATCH -p tcp --dport 2222 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
      '-A KNOCKWATCH -p udp --dport 53 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
      '-A KNOCKWATCH -p tcp --dport 443 -j DROP',
      '-A KNOCKWATCH -p tcp --dport 2222 -j DROP',
      '-A KNOCKWATCH -p udp --dport 53 -j DROP',
      '-I INPUT 1 -j KNOCKWATCH',
      'COMMIT',
      '',
    ]);
    const full = buildIptablesRestore('KNOCKWATCH', [sshDoor, webDoor], 6, name, { withSets: true, removeJumps: 0, addJump: false });
    expect(full).toContain('-A KNOCKWATCH -m set --match-set kw-ssh-6 src,dst -j ACCEPT\n-A KNOCKWATCH -m set --match-set kw-9web-x-6 src,dst -j ACCEPT\n');
    expect(full.indexOf('--match-set')).toBeLessThan(full.indexOf('-j DROP'));
    expect(full).not.toContain('INPUT');
  });

  it('parses ipset save output of our sets only', () => {
    const sets = new Map([
      ['kw-ssh-4', { door: 'ssh', family: 4 as const }],
      ['kw-ssh-6', { door: 'ssh', family: 6 as const }],
    ]);
    const text = [
      'create kw-ssh-4 hash:ip,port family inet hashsize 1024 maxelem 65536 timeout 0 bucketsize 12 initval 0x1',
      'add kw-ssh-4 10.0.0.2,tcp:2222 timeout 17',
      'add kw-ssh-6 fd00::2,tcp:2222 timeout 4',
      'add foreign 10.0.0.9,tcp:2222 timeout 4',
    ].join('\n');
    expect(parseIpsetSave(text, sets, NOW)).toEqual([
      { door: 'ssh', source: '10.0.0.2', family: 4, ports: [{ port: 2222, protocol: 'tcp' }], until: NOW + 17_000 },
      { door: 'ssh', source: 'fd00::2', family: 6, ports: [{ port: 2222, protocol: 'tcp' }], until: NOW + 4000 },
    ]);
    expect(() => parseIpsetSave('add kw-ssh-4 garbage', sets, NOW)).toThrow(/cannot parse ipset save line/);
  });
});

describe('iptables adapter commands', () => {
  const answer = (req: CommandRequest) => {
    if (line(req) === 'iptables -w -S') return { stdout: STALE_S };
    if (line(req) === 'ip6tables -w -S') return { stdout: '-N KNOCKWATCH\n-A INPUT -j KNOCKWATCH\n' };
    if (line(req) === 'ipset list -n') return { stdout: 'kw-old-4\nkw-ssh-4\nforeign\n' };
    return undefined;
  };

  it('init: fail closed, replace the sets, then the real rules; only our objects are named', async () => {
    const rec = recorder(answer);
    const fw = createFirewall('iptables', { runner: rec.runner, now });
    await fw.init([sshDoor]);
    expect(rec.calls.map(line)).toEqual([
      'iptables -w -S',
      'iptables-restore -w --noflush',
      'ip6tables -w -S',
      'ip6tables-restore -w --noflush',
      'ipset list -n',
      'ipset restore',
      'iptables-restore -w --noflush',
      'ip6tables-restore -w --noflush',
    ]);
    // Two stale jumps removed and exactly one inserted.
    expect(rec.calls[1].input?.match(/-D INPUT -j KNOCKWATCH/g)).toHaveLength(2);
    expect(rec.calls[1].input?.match(/-I INPUT/g)).toHaveLength(1);
    expect(rec.calls[1].input).not.toContain('--match-set');
    expect(rec.calls[5].input).toBe(
      'destroy kw-old-4\ndestroy kw-ssh-4\n' +
        'create kw-ssh-4 hash:ip,port family inet timeout 0 maxelem 65536\n' +
        'create kw-ssh-6 hash:ip,port family inet6 timeout 0 maxelem 65536\n',
    );
    expect(rec.calls[7].input).toContain('--match-set kw-ssh-6 src,dst');
    for (const c of rec.calls) expect(c.input ?? '').not.toMatch(/foreign|OTHER|-F INPUT|-X INPUT/);
  });

  it('open is ONE ipset call, rounding up to whole seconds; close deletes with -exist', async () => {
    const rec = recorder(answer);
    const fw = createFirewall('iptables', { runner: rec.runner, now });
    await fw.init([sshDoor, webDoor]);
    rec.calls.length = 0;
    await fw.open({ door: '9web-x', source: 'fd00::2', family: 6, ports: webDoor.open, until: NOW + 2001 });
    expect(rec.calls).toHaveLength(1);
    expect(line(rec.calls[0])).toBe('ipset -exist restore');
    expect(rec.calls[0].input).toBe(
      'add kw-9web-x-6 fd00::2,tcp:443 timeout 3\nadd kw-9web-x-6 fd00::2,tcp:2222 timeout 3\nadd kw-9web-x-6 fd00::2,udp:53 timeout 3\n',
    );
    await fw.close({ door: 'ssh', source: '10.0.0.2', family: 4, ports: sshDoor.open });
    expect(rec.calls[1].input).toBe('del kw-ssh-4 10.0.0.2,tcp:2222\n');
  });

  it('shutdown removes jumps, our chain and our sets, nothing else', async () => {
    const rec = recorder(answer);
    const fw = createFirewall('iptables', { runner: rec.runner, now });
    await fw.init([sshDoor]);
    rec.calls.length = 0;
    await fw.shutdown();
    expect(rec.calls.map(line)).toEqual([
      'iptables -w -S',
      'iptables-restore -w --noflush',
      'ip6tables -w -S',
      'ip6tables-restore -w --noflush',
      'ipset list -n',
      'ipset restore',
    ]);
    expect(rec.calls[1].input).toBe('*filter\n:KNOCKWATCH - [0:0]\n-D INPUT -j KNOCKWATCH\n-D INPUT -j KNOCKWATCH\n-X KNOCKWATCH\nCOMMIT\n');
    expect(rec.calls[3].input).toBe('*filter\n:KNOCKWATCH - [0:0]\n-D INPUT -j KNOCKWATCH\n-X KNOCKWATCH\nCOMMIT\n');
    expect(rec.calls[5].input).toBe('destroy kw-ssh-4\ndestroy kw-old-4\n');
  });

  it('reports a failing ipset with its stderr', async () => {
    const rec = recorder((req) =>
      line(req) === 'ipset -exist restore' ? { exitCode: 1, stderr: 'ipset v7.17: Error in line 1: Hash is full, cannot add more elements' } : undefined,
    );
    const fw = createFirewall('iptables', { runner: rec.runner, now });
    await fw.init([sshDoor]);
    const err = await fw.open({ door: 'ssh', source: '10.0.0.2', family: 4, ports: sshDoor.open, until: NOW + 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirewallCommandError);
    expect(err).toMatchObject({
      command: 'ipset -exist restore',
      exitCode: 1,
      stderr: 'ipset v7.17: Error in line 1: Hash is full, cannot add more elements',
      input: 'add kw-ssh-4 10.0.0.2,tcp:2222 timeout 1\n',
    });
  });

  it('refuses dangerous chain names and prefixes', () => {
    const rec = recorder();
    for (const chain of ['INPUT', 'input', 'ACCEPT', 'a b', 'X'.repeat(29), '-j']) {
      expect(() => createFirewall('iptables', { runner: rec.runner, chain })).toThrow(/invalid iptables chain name/);
    }
    expect(() => createFirewall('iptables', { runner: rec.runner, setPrefix: 'kw-x' })).toThrow(/invalid ipset name prefix/);
  });
});

// Issue 8, item 6: one `ipset` process per source, all at once (300 completions -> 300 processes).
describe('iptables batching (issue 8: spoofed completions)', { timeout: 10_000 }, () => {
  const access = (i: number, until: number) => ({ door: 'ssh', source: `198.18.${i >> 8}.${i & 255}`, family: 4 as const, ports: sshDoor.open, until });
  const isElements = (req: CommandRequest): boolean => line(req) === 'ipset -exist restore';

  /** Records like recorder(); element restores wait for `release()` (and `answer` may fail them). */
  const gated = (answer: (req: CommandRequest) => { exitCode: number; stderr: string } | undefined = () => undefined) => {
    let open: () => void = () => {};
    let gate = new Promise<void>((r) => (open = r));
    const calls: CommandRequest[] = [];
    let running = 0;
    let most = 0;
    const runner = async (req: CommandRequest) => {
      calls.push(req);
      running += 1;
      most = Math.max(most, running);
      try {
        if (isElements(req)) {
          await gate;
          await new Promise((r) => setTimeout(r, 5));
        }
        return { exitCode: 0, stdout: '', stderr: '', ...answer(req) };
      } finally {
        running -= 1;
      }
    };
    return {
      calls,
      runner,
      most: () => most,
      release: () => {
        open();
        gate = Promise.resolve();
      },
    };
  };

  it('300 opens made together: batched `ipset restore` runs, never more than one ipset process at a time', async () => {
    const g = gated();
    const fw = createFirewall('iptables', { runner: g.runner, now });
    await fw.init([sshDoor]);
    g.calls.length = 0;
    const all = Array.from({ length: 300 }, (_, i) => fw.open(access(i, NOW + 20_000)));
    g.release();
    await Promise.all(all);
    expect(g.calls.every(isElements)).toBe(true);
    expect(g.calls.length).toBeLessThanOrEqual(2); // the first alone, the rest together
    expect(g.most()).toBe(1);
    const lines = g.calls.flatMap((c) => (c.input ?? '').split('\n').filter(Boolean));
    expect(lines).toHaveLength(300);
    expect(new Set(lines)).toEqual(new Set(Array.from({ length: 300 }, (_, i) => `add kw-ssh-4 ${access(i, 0).source},tcp:2222 timeout 20`)));
  });

  it('the ipset timeout is computed from the deadline when the batch is applied (whole seconds, rounded up)', async () => {
    let t = NOW;
    const g = gated();
    const fw = createFirewall('iptables', { runner: g.runner, now: () => t });
    await fw.init([sshDoor]);
    g.calls.length = 0;
    const first = fw.open(access(1, NOW + 20_000));
    await new Promise((r) => setTimeout(r, 20));
    const second = fw.open(access(2, NOW + 20_000));
    await new Promise((r) => setTimeout(r, 20)); // queued for good
    t = NOW + 7_250;
    g.release();
    await Promise.all([first, second]);
    expect(g.calls.map((c) => c.input)).toEqual(['add kw-ssh-4 198.18.0.1,tcp:2222 timeout 20\n', 'add kw-ssh-4 198.18.0.2,tcp:2222 timeout 13\n']);
  });

  it('an error in line N: that access is rejected with it, the others of the batch are applied again', async () => {
    let failed = false;
    const g = gated((req) => {
      if (failed || !req.input?.includes('198.18.0.4,')) return undefined;
      failed = true;
      return { exitCode: 1, stderr: 'ipset v7.17: Error in line 3: Hash is full, cannot add more elements' };
    });
    const fw = createFirewall('iptables', { runner: g.runner, now });
    await fw.init([sshDoor]);
    g.calls.length = 0;
    const first = fw.open(access(1, NOW + 20_000));
    await new Promise((r) => setTimeout(r, 20));
    const batch = [2, 3, 4, 5].map((i) => fw.open(access(i, NOW + 20_000)));
    g.release();
    await first;
    const results = await Promise.allSettled(batch);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(FirewallCommandError);
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ stderr: expect.stringMatching(/Error in line 3: Hash is full/) as string });
    // Lines before the failing one may or may not have been applied (ipset sends them in buffers): all again.
    expect(g.calls.map((c) => c.input)).toEqual([
      'add kw-ssh-4 198.18.0.1,tcp:2222 timeout 20\n',
      'add kw-ssh-4 198.18.0.2,tcp:2222 timeout 20\nadd kw-ssh-4 198.18.0.3,tcp:2222 timeout 20\nadd kw-ssh-4 198.18.0.4,tcp:2222 timeout 20\nadd kw-ssh-4 198.18.0.5,tcp:2222 timeout 20\n',
      'add kw-ssh-4 198.18.0.2,tcp:2222 timeout 20\nadd kw-ssh-4 198.18.0.3,tcp:2222 timeout 20\nadd kw-ssh-4 198.18.0.5,tcp:2222 timeout 20\n',
    ]);
  });
});
