// The iptables + ipset adapter against the real tools and kernel, inside a lab
// namespace: real TCP connections from the client namespace decide whether a
// door is open. Nothing here touches the host's own firewall.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeLab } from '../support/lab.js';
import { createLab, LAB_V4, LAB_V6, type Lab } from '../../src/lab/netns.js';
import { createFirewall, FirewallCommandError, type Access, type FirewallAdapter } from '../../src/firewall/index.js';
import { DOOR_PORT, LOCAL_PROBES, OTHER_PORT, holdAcrossExpiry, inServer, probe, startEchoServer, testDoor } from './firewall-support.js';
import { reportProgress } from '../support/progress.js';

reportProgress(import.meta.url);

const v4 = { host: LAB_V4.server, port: DOOR_PORT, from: LAB_V4.client };
const v4Other = { ...v4, from: LAB_V4.extra };
const v4OtherPort = { ...v4, port: OTHER_PORT };
const v6 = { host: LAB_V6.server, port: DOOR_PORT, from: LAB_V6.client };
const v6Other = { ...v6, from: LAB_V6.extra };

function access(source: string, family: 4 | 6, ms: number): Access {
  return { door: 'ssh', source, family, ports: testDoor.open, until: Date.now() + ms };
}

/** `add` lines of one set as ipset saves them: element and remaining seconds. */
async function members(lab: Lab, set: string): Promise<{ element: string; seconds: number }[]> {
  const text = await inServer(lab, ['ipset', 'save', set]);
  return [...text.matchAll(/^add \S+ (\S+) timeout (\d+)$/gm)].map((m) => ({ element: m[1], seconds: Number(m[2]) }));
}

async function rulesOf(lab: Lab, tool: 'iptables' | 'ip6tables', chain: string): Promise<string[]> {
  return (await inServer(lab, [tool, '-w', '-S', chain])).split('\n').filter((l) => l.startsWith('-A '));
}

describeLab('iptables + ipset firewall (namespace lab, real tools)', () => {
  let lab: Lab;
  let fw: FirewallAdapter;
  const make = (extra: Parameters<typeof createFirewall>[1] = {}): FirewallAdapter =>
    createFirewall('iptables', { netns: lab.server.ns, ...extra });

  beforeAll(async () => {
    lab = await createLab('fwipt');
    await startEchoServer(lab);
    // Someone else's chain, jump and set: they must survive everything we do.
    for (const argv of [
      ['iptables', '-w', '-N', 'FOREIGN'],
      ['iptables', '-w', '-A', 'FOREIGN', '-p', 'tcp', '--dport', '9999', '-j', 'ACCEPT'],
      ['iptables', '-w', '-A', 'INPUT', '-j', 'FOREIGN'],
      ['ipset', 'create', 'foreign', 'hash:ip'],
    ]) {
      await inServer(lab, argv);
    }
    fw = make();
    await fw.init([testDoor]);
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('before any open, the door port drops new connections; other ports and local clients are untouched', async () => {
    expect(await probe(lab, [v4, v4Other, v4OtherPort, v6])).toEqual(['timeout', 'timeout', 'open', 'timeout']);
    expect(await probe(lab, LOCAL_PROBES, lab.server)).toEqual(['open', 'open', 'open']);
    expect(await rulesOf(lab, 'iptables', 'INPUT')).toEqual(['-A INPUT -j KNOCKWATCH', '-A INPUT -j FOREIGN']);
    expect(await rulesOf(lab, 'ip6tables', 'INPUT')).toEqual(['-A INPUT -j KNOCKWATCH']);
  });

  it('open admits exactly that source; the KERNEL ends it with nobody calling close; an established connection survives', async () => {
    // ipset counts whole seconds: 7.5 s becomes 8 s. Nothing in this process
    // acts on the access afterwards, as if the daemon had been SIGKILLed.
    // 7.5 s: the probes below must run before the end on a busy machine.
    await fw.open(access(LAB_V4.client, 4, 7500));
    // When the kernel ends it, by its own account: whole seconds left,
    // read before now, so now + one more second is an upper bound.
    const [member] = await members(lab, 'kw-ssh-4');
    const kernelEnd = Date.now() + (member.seconds + 1) * 1000;
    const [held, probes] = await Promise.all([
      holdAcrossExpiry(lab, v4, kernelEnd + 400),
      probe(lab, [v4, v4Other, v4OtherPort, v6]),
    ]);
    expect(probes).toEqual(['open', 'timeout', 'open', 'timeout']);
    expect(held).toEqual({ before: 'before', newAfter: 'timeout', heldAfter: 'after' });
    expect(await members(lab, 'kw-ssh-4')).toEqual([]);
    expect(await fw.list()).toEqual([]);
  });

  it('a second open refreshes the expiry without duplicating the element', async () => {
    // 10 s then 30 s: 20 s apart, so a slow read between them cannot hide the move.
    await fw.open(access(LAB_V4.client, 4, 10_000));
    const first = await members(lab, 'kw-ssh-4');
    const refreshed = access(LAB_V4.client, 4, 30_000);
    await fw.open(refreshed);
    const second = await members(lab, 'kw-ssh-4');
    expect(first).toHaveLength(1);
    expect(second).toEqual([{ element: `${LAB_V4.client},tcp:${DOOR_PORT}`, seconds: expect.any(Number) as number }]);
    expect(second[0].seconds).toBeGreaterThanOrEqual(first[0].seconds + 15);
    const listed = await fw.list();
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ door: 'ssh', source: LAB_V4.client, family: 4, ports: testDoor.open });
    // The deadline read back is the one given, to ipset's whole seconds.
    expect(Math.abs(listed[0].until - refreshed.until)).toBeLessThan(2000);
  });

  it('IPv6: opens for fd00:6b77::2 only, and close ends it at once', async () => {
    await fw.open(access(LAB_V6.client, 6, 30_000));
    expect(await probe(lab, [v6, v6Other])).toEqual(['open', 'timeout']);
    expect((await fw.list()).map((a) => `${a.family}:${a.source}`)).toEqual([`4:${LAB_V4.client}`, `6:${LAB_V6.client}`]);
    await fw.close({ door: 'ssh', source: LAB_V6.client, family: 6, ports: testDoor.open });
    await fw.close({ door: 'ssh', source: LAB_V6.client, family: 6, ports: testDoor.open }); // idempotent
    expect(await probe(lab, [v6])).toEqual(['timeout']);
    expect(await members(lab, 'kw-ssh-6')).toEqual([]);
  });

  it('init after a killed run removes stale access, stale sets and duplicate jumps', async () => {
    expect(await members(lab, 'kw-ssh-4')).toHaveLength(1); // left open by the "killed" run
    // What a crashed older version might have left: a second jump and a set of a door since removed.
    await inServer(lab, ['iptables', '-w', '-A', 'INPUT', '-j', 'KNOCKWATCH']);
    await inServer(lab, ['ipset', 'create', 'kw-old-4', 'hash:ip,port', 'timeout', '0']);
    await inServer(lab, ['iptables', '-w', '-I', 'KNOCKWATCH', '-m', 'set', '--match-set', 'kw-old-4', 'src,dst', '-j', 'ACCEPT']);
    fw = make();
    await fw.init([testDoor]);
    await fw.init([testDoor]);
    expect(await members(lab, 'kw-ssh-4')).toEqual([]);
    expect(await rulesOf(lab, 'iptables', 'INPUT')).toEqual(['-A INPUT -j KNOCKWATCH', '-A INPUT -j FOREIGN']);
    expect(await rulesOf(lab, 'ip6tables', 'INPUT')).toEqual(['-A INPUT -j KNOCKWATCH']);
    expect(await rulesOf(lab, 'iptables', 'KNOCKWATCH')).toEqual([
      '-A KNOCKWATCH -i lo -j RETURN',
      `-A KNOCKWATCH -p tcp -m tcp --dport ${DOOR_PORT} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
      '-A KNOCKWATCH -m set --match-set kw-ssh-4 src,dst -j ACCEPT',
      `-A KNOCKWATCH -p tcp -m tcp --dport ${DOOR_PORT} -j DROP`,
    ]);
    expect((await inServer(lab, ['ipset', 'list', '-n'])).split('\n').sort()).toEqual(['foreign', 'kw-ssh-4', 'kw-ssh-6']);
    expect(await probe(lab, [v4])).toEqual(['timeout']);
  });

  it('a failing command is reported with its stderr and list() stays true', async () => {
    const small = make({ setSize: 1 });
    await small.init([testDoor]);
    await small.open(access(LAB_V4.client, 4, 30_000));
    await small.open(access(LAB_V4.client, 4, 31_000)); // a refresh fits in a full set
    const err = await small.open(access(LAB_V4.extra, 4, 30_000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirewallCommandError);
    expect((err as FirewallCommandError).stderr).toMatch(/Hash is full/);
    expect((await small.list()).map((a) => a.source)).toEqual([LAB_V4.client]);
    expect(await probe(lab, [v4, v4Other])).toEqual(['open', 'timeout']);

    const dir = await mkdtemp(join(tmpdir(), 'kwfw-'));
    try {
      const fake = join(dir, 'ipset');
      await writeFile(fake, '#!/bin/sh\necho "ipset: simulated failure" >&2\nexit 1\n');
      await chmod(fake, 0o755);
      const broken = make({ binaries: { ipset: fake } });
      await expect(broken.init([testDoor])).rejects.toMatchObject({ exitCode: 1, stderr: 'ipset: simulated failure' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // The broken init stopped after its fail-closed first step: the port stays shut, nothing leaked open.
    expect(await probe(lab, [v4])).toEqual(['timeout']);
  });

  it('shutdown removes our chains, jumps and sets and nothing else', async () => {
    await fw.shutdown();
    await fw.shutdown(); // nothing left to remove: still fine
    expect(await rulesOf(lab, 'iptables', 'INPUT')).toEqual(['-A INPUT -j FOREIGN']);
    expect(await rulesOf(lab, 'ip6tables', 'INPUT')).toEqual([]);
    expect(await rulesOf(lab, 'iptables', 'FOREIGN')).toEqual(['-A FOREIGN -p tcp -m tcp --dport 9999 -j ACCEPT']);
    expect((await inServer(lab, ['iptables', '-w', '-S'])).includes('KNOCKWATCH')).toBe(false);
    expect((await inServer(lab, ['ip6tables', '-w', '-S'])).includes('KNOCKWATCH')).toBe(false);
    expect((await inServer(lab, ['ipset', 'list', '-n'])).trim()).toBe('foreign');
    expect(await probe(lab, [v4Other])).toEqual(['open']);
  });
});
