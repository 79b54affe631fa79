// Issue 8 item 2: one knockwatch per network namespace. A second `run` in the
// namespace must be refused (one clear line, exit status 3) before it touches
// the firewall: before the guard it replaced `inet knockwatch` and the first
// daemon's open access vanished. `remove-rules` aimed at the namespace with
// --netns from outside is refused the same way: the lock is keyed on the
// namespace the firewall acts in. Real daemons, real nftables, namespace lab.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectFrom } from '../../../src/lab/connect.js';
import { spawnDaemon } from '../../../src/lab/daemon-process.js';
import { createLab, type Lab } from '../../../src/lab/netns.js';
import { describeLab } from '../../support/lab.js';
import { DOOR_PORT, startEchoServer } from '../firewall-support.js';
import { knockFrom, launchDaemon, lineFor, requireBuiltCli, writeDoorConfig, type DaemonProcess, type TestDoor } from '../support/daemon.js';
import { snapshotRules } from '../support/ruleset.js';

const SEQUENCE = [1234, 5678, 9012];
const DOOR: TestDoor = { sequence: SEQUENCE, windowMs: 3000, durationMs: 30_000, open: [DOOR_PORT] };
const EXIT_ALREADY_RUNNING = 3;

describeLab('a second knockwatch in the same network namespace is refused (nftables, namespace lab, built CLI)', () => {
  let lab: Lab;
  let dir: string;
  let configPath: string;
  let first: DaemonProcess;
  let second: DaemonProcess | undefined;

  beforeAll(async () => {
    lab = await createLab('single');
    dir = await mkdtemp(join(tmpdir(), 'knockwatch-single-'));
    configPath = join(dir, 'knockwatch.yaml');
    await startEchoServer(lab);
    await writeDoorConfig(configPath, DOOR, 'nftables', 'pcap');
    first = await launchDaemon(lab, configPath, { firewall: 'nftables', capture: 'pcap' });
  });
  afterAll(async () => {
    second?.signal('SIGKILL');
    await first?.stop();
    await lab?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the second run exits 3 with one line naming the holder; the first keeps its table and its open access', async () => {
    const from = lab.client.v4;
    await knockFrom(lab, { host: lab.server.v4, ports: SEQUENCE, from });
    await first.waitFor(lineFor('access opened', from), '"access opened"', 15_000);
    const before = await snapshotRules(lab, 'nftables');
    expect(before.elements).toEqual([`${from} tcp/${DOOR_PORT}`]);

    second = spawnDaemon(lab, { cliPath: requireBuiltCli(), configPath, firewall: 'nftables', capture: 'pcap' });
    const exit = await Promise.race([second.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000))]);
    expect(exit, second.recentOutput()).toEqual({ exitCode: EXIT_ALREADY_RUNNING });
    expect(second.lines.map((l) => l.msg)).toEqual([`another knockwatch (pid ${String(first.pid)}) already manages the firewall of this network namespace (lock ${String(second.lines[0]?.lock)})`]);
    // Besides the JSON log line, the one readable line on stderr a fatal start-up error gets.
    expect(second.otherOutput().trim()).toBe(`knockwatch run: ${String(second.lines[0]?.msg)}`);

    // Nothing of the first daemon's changed: same rules, same access, still open.
    const after = await snapshotRules(lab, 'nftables');
    expect(after).toEqual(before);
    const c = await connectFrom(lab, lab.client, { host: lab.server.v4, port: DOOR_PORT, from, timeoutMs: 500, retryForMs: 5000 });
    expect(c.outcome).toBe('open');
    expect(first.find((l) => l.msg === 'knockwatch stopped')).toEqual([]);
  });

  it('remove-rules --netns from outside the namespace is refused while the daemon runs there', async () => {
    const r = await execa(process.execPath, [requireBuiltCli(), 'remove-rules', '--netns', lab.server.ns], { reject: false });
    expect(r.exitCode, r.stderr).toBe(EXIT_ALREADY_RUNNING);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/already manages the firewall of this network namespace .*stop it first/);
    expect((await snapshotRules(lab, 'nftables')).elements).toEqual([`${lab.client.v4} tcp/${DOOR_PORT}`]);
  });
});
