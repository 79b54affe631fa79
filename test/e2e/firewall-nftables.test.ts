// The nftables adapter against real nft and a real kernel, inside a lab
// namespace: real TCP connections from the client namespace decide whether a
// door is open. Nothing here touches the host's own ruleset.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeLab } from '../support/lab.js';
import { createLab, LAB_V4, LAB_V6, type Lab } from '../../src/lab/netns.js';
import { createFirewall, FirewallCommandError, type Access, type FirewallAdapter } from '../../src/firewall/index.js';
import { parseNftDuration } from '../../src/firewall/nftables.js';
import { DOOR_PORT, LOCAL_PROBES, OTHER_PORT, holdAcrossExpiry, inServer, probe, sleep, startEchoServer, testDoor } from './firewall-support.js';
import { reportProgress } from '../support/progress.js';

reportProgress(import.meta.url);

const v4 = { host: LAB_V4.server, port: DOOR_PORT, from: LAB_V4.client };
const v4Other = { ...v4, from: LAB_V4.extra };
const v4OtherPort = { ...v4, port: OTHER_PORT };
const v6 = { host: LAB_V6.server, port: DOOR_PORT, from: LAB_V6.client };
const v6Other = { ...v6, from: LAB_V6.extra };

const FOREIGN = `table inet foreign {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 9999 counter accept
	}
}
`;

function access(source: string, family: 4 | 6, ms: number): Access {
  return { door: 'ssh', source, family, ports: testDoor.open, until: Date.now() + ms };
}

/** Elements of one of our sets as nft prints them, with their remaining time. */
async function elements(lab: Lab, set: string): Promise<{ key: string; expiresMs: number }[]> {
  const text = await inServer(lab, ['nft', 'list', 'set', 'inet', 'knockwatch', set]);
  const m = /elements = \{([^}]*)\}/.exec(text);
  if (!m) return [];
  return m[1].split(',').map((e) => {
    const [key, expires] = e.trim().split(/ timeout \S+ expires /);
    return { key, expiresMs: parseNftDuration(expires) };
  });
}

describeLab('nftables firewall (namespace lab, real nft)', () => {
  let lab: Lab;
  let fw: FirewallAdapter;
  const make = (extra: Parameters<typeof createFirewall>[1] = {}): FirewallAdapter =>
    createFirewall('nftables', { netns: lab.server.ns, ...extra });

  beforeAll(async () => {
    lab = await createLab('fwnft');
    await startEchoServer(lab);
    // Someone else's table: it must survive everything we do.
    const r = await lab.run(lab.server, ['nft', '-f', '-'], { input: FOREIGN });
    expect(r.exitCode, r.stderr).toBe(0);
    fw = make();
    await fw.init([testDoor]);
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('before any open, the door port drops new connections; other ports and local clients are untouched', async () => {
    expect(await probe(lab, [v4, v4Other, v4OtherPort, v6])).toEqual(['timeout', 'timeout', 'open', 'timeout']);
    expect(await probe(lab, LOCAL_PROBES, lab.server)).toEqual(['open', 'open', 'open']);
  });

  it('open admits exactly that source; the KERNEL ends it with nobody calling close; an established connection survives', async () => {
    // The adapter keeps no timers: from here on nothing in this process acts
    // on the access, as if the daemon had been SIGKILLed right after open().
    // 8 s: the probes below must run before the end on a busy machine.
    await fw.open(access(LAB_V4.client, 4, 8000));
    // When the kernel ends it, by its own account (read before readAt: an upper bound).
    const [element] = await elements(lab, 'v4_ssh');
    const kernelEnd = Date.now() + element.expiresMs;
    const [held, probes] = await Promise.all([
      holdAcrossExpiry(lab, v4, kernelEnd + 300),
      probe(lab, [v4, v4Other, v4OtherPort, v6]),
    ]);
    expect(probes).toEqual(['open', 'timeout', 'open', 'timeout']);
    expect(held).toEqual({ before: 'before', newAfter: 'timeout', heldAfter: 'after' });
    expect(await elements(lab, 'v4_ssh')).toEqual([]);
    expect(await fw.list()).toEqual([]);
  });

  // 'auto' probes the kernel at init (Linux >= 6.12 updates a timeout on re-add);
  // 'replace' is the add-delete-add transaction for older kernels.
  it.each(['auto', 'replace'] as const)('a second open refreshes the expiry without duplicating the element (%s)', async (mode) => {
    const refreshing = make({ nftRefresh: mode });
    await refreshing.init([testDoor]);
    // 10 s then 30 s: 20 s apart, so a slow read between them cannot hide the move.
    await refreshing.open(access(LAB_V4.client, 4, 10_000));
    const first = await elements(lab, 'v4_ssh');
    expect(first).toHaveLength(1);
    const refreshed = access(LAB_V4.client, 4, 30_000);
    await refreshing.open(refreshed);
    const second = await elements(lab, 'v4_ssh');
    expect(second.map((e) => e.key)).toEqual([`${LAB_V4.client} . tcp . ${DOOR_PORT}`]);
    expect(second[0].expiresMs).toBeGreaterThan(first[0].expiresMs + 15_000);
    const listed = await refreshing.list();
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ door: 'ssh', source: LAB_V4.client, family: 4, ports: testDoor.open });
    // The deadline read back is the one given (nft keeps ms).
    expect(Math.abs(listed[0].until - refreshed.until)).toBeLessThan(1000);
    fw = refreshing;
  });

  it('IPv6: opens for fd00:6b77::2 only, and close ends it at once', async () => {
    await fw.open(access(LAB_V6.client, 6, 30_000));
    expect(await probe(lab, [v6, v6Other])).toEqual(['open', 'timeout']);
    expect((await fw.list()).map((a) => `${a.family}:${a.source}`)).toEqual([`4:${LAB_V4.client}`, `6:${LAB_V6.client}`]);
    await fw.close({ door: 'ssh', source: LAB_V6.client, family: 6, ports: testDoor.open });
    await fw.close({ door: 'ssh', source: LAB_V6.client, family: 6, ports: testDoor.open }); // idempotent
    expect(await probe(lab, [v6])).toEqual(['timeout']);
    expect(await elements(lab, 'v6_ssh')).toEqual([]);
  });

  it('init after a killed run removes stale access and leaves one table with one set of rules', async () => {
    expect(await elements(lab, 'v4_ssh')).toHaveLength(1); // left open by the "killed" run
    fw = make();
    await fw.init([testDoor]);
    await fw.init([testDoor]);
    expect(await elements(lab, 'v4_ssh')).toEqual([]);
    const tables = await inServer(lab, ['nft', 'list', 'tables']);
    expect(tables.split('\n').filter((l) => l.trim() !== '').sort()).toEqual(['table inet foreign', 'table inet knockwatch']);
    const sets = await inServer(lab, ['nft', 'list', 'sets', 'inet']);
    expect([...sets.matchAll(/^\s*set (\S+) \{/gm)].map((m) => m[1]).sort()).toEqual(['ports', 'v4_ssh', 'v6_ssh']);
    const chain = await inServer(lab, ['nft', 'list', 'chain', 'inet', 'knockwatch', 'input']);
    expect(chain.match(/ (accept|drop)$/gm)).toHaveLength(5);
    expect(await probe(lab, [v4])).toEqual(['timeout']);
  });

  it('a failing command is reported with its stderr and list() stays true', async () => {
    const small = make({ setSize: 1 });
    await small.init([testDoor]);
    await small.open(access(LAB_V4.client, 4, 30_000));
    await small.open(access(LAB_V4.client, 4, 31_000)); // a refresh fits in a full set
    const err = await small.open(access(LAB_V4.extra, 4, 30_000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirewallCommandError);
    expect((err as FirewallCommandError).exitCode).toBe(1);
    expect((err as FirewallCommandError).stderr).toMatch(/Error: Could not process rule/);
    expect((await small.list()).map((a) => a.source)).toEqual([LAB_V4.client]);
    expect(await probe(lab, [v4, v4Other])).toEqual(['open', 'timeout']);

    // A broken nft binary: the error carries its exit code and what it printed.
    const dir = await mkdtemp(join(tmpdir(), 'kwfw-'));
    try {
      const fake = join(dir, 'nft');
      await writeFile(fake, '#!/bin/sh\necho "nft: simulated failure" >&2\nexit 1\n');
      await chmod(fake, 0o755);
      const broken = make({ binaries: { nft: fake } });
      await expect(broken.init([testDoor])).rejects.toMatchObject({ exitCode: 1, stderr: 'nft: simulated failure' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    fw = small;
  });

  it('shutdown removes our table and nothing else', async () => {
    await fw.shutdown();
    await fw.shutdown(); // nothing left to remove: still fine
    const tables = await inServer(lab, ['nft', 'list', 'tables']);
    expect(tables.trim()).toBe('table inet foreign');
    expect(await inServer(lab, ['nft', 'list', 'chain', 'inet', 'foreign', 'input'])).toMatch(/tcp dport 9999 counter packets \d+ bytes \d+ accept/);
    // Unprotected again (the foreign table accepts everything).
    await sleep(0);
    expect(await probe(lab, [v4Other])).toEqual(['open']);
  });
});
