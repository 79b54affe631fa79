// Issue 8 item 3: a clean stop (SIGTERM/SIGINT) must not open the door ports
// to everyone. The drop rules and the remaining accesses stay in the kernel
// (their timeouts end them); `knockwatch remove-rules` and
// `run --remove-rules-on-exit` are the ways to uninstall. Real daemon, real
// nftables / iptables+ipset in a namespace lab.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectFrom } from '../../../src/lab/connect.js';
import { createLab, type Lab } from '../../../src/lab/netns.js';
import type { FirewallKind } from '../../../src/types.js';
import { describeLab } from '../../support/lab.js';
import { DOOR_PORT, probe, sleep, startEchoServer } from '../firewall-support.js';
import { knockFrom, launchDaemon, lineFor, removeRules, untilOf, writeDoorConfig, type DaemonProcess, type TestDoor } from '../support/daemon.js';
import { countOurObjects, snapshotRules } from '../support/ruleset.js';
import { reportProgress } from '../../support/progress.js';

reportProgress(import.meta.url);

const SEQUENCE = [1234, 5678, 9012];
/** Long enough to look at the kernel after the stop, short enough to see the access expire. */
// 12 s: knock, connect, SIGTERM and the exit must all fit before the deadline on a busy machine.
const DOOR: TestDoor = { sequence: SEQUENCE, windowMs: 3000, durationMs: 12_000, open: [DOOR_PORT] };
/** Bound on the log line and on connect retries (a wait that passes early costs nothing; load 15 needed > 3 s). */
const OPEN_WITHIN_MS = 10_000;
/** ipset counts whole seconds and the adapter rounds up. */
const EXPIRY_GRACE_MS: Record<FirewallKind, number> = { nftables: 400, iptables: 1400, none: 0 };
const OURS: Record<string, Record<string, number>> = {
  nftables: { tables: 1, chains: 1, drops: 1 },
  iptables: { jumps: 2, chains: 2, drops: 2, sets: 2 },
};
const NONE: Record<string, Record<string, number>> = {
  nftables: { tables: 0, chains: 0, drops: 0 },
  iptables: { jumps: 0, chains: 0, drops: 0, sets: 0 },
};

for (const firewall of ['nftables', 'iptables'] as const) {
  describeLab(`clean stop keeps the door shut (${firewall}, namespace lab, built CLI)`, () => {
    let lab: Lab;
    let dir: string;
    let configPath: string;
    let daemon: DaemonProcess | undefined;
    const backend = { firewall, capture: 'pcap' } as const;

    beforeAll(async () => {
      lab = await createLab(`cs${firewall.slice(0, 3)}`);
      dir = await mkdtemp(join(tmpdir(), 'knockwatch-stop-'));
      configPath = join(dir, 'knockwatch.yaml');
      await startEchoServer(lab);
      await writeDoorConfig(configPath, DOOR, firewall, 'pcap');
    });
    afterAll(async () => {
      await daemon?.stop();
      await lab?.destroy();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('SIGTERM: exit 0, the door port stays dropped for everyone else, the open access lasts until its deadline; remove-rules then removes everything', async () => {
      daemon = await launchDaemon(lab, configPath, backend);
      const from = lab.client.v4;
      await knockFrom(lab, { host: lab.server.v4, ports: SEQUENCE, from });
      const until = untilOf(await daemon.waitFor(lineFor('access opened', from), '"access opened"', OPEN_WITHIN_MS));
      const c = await connectFrom(lab, lab.client, { host: lab.server.v4, port: DOOR_PORT, from, timeoutMs: 300, retryForMs: OPEN_WITHIN_MS });
      expect(c.outcome).toBe('open');

      daemon.signal('SIGTERM');
      expect(await daemon.exited, daemon.recentOutput()).toEqual({ exitCode: 0 });
      expect(Date.now(), 'test too slow to see the access after the stop').toBeLessThan(until - 1000);
      const kernel = await snapshotRules(lab, firewall);
      expect(countOurObjects(kernel, firewall)).toEqual(OURS[firewall]);
      expect(kernel.elements).toEqual([`${from} tcp/${DOOR_PORT}`]);
      // The bystander stays out; the knocked source keeps its access.
      expect(
        await probe(lab, [
          { host: lab.server.v4, port: DOOR_PORT, from: lab.clientExtraV4 },
          { host: lab.server.v4, port: DOOR_PORT, from },
        ]),
      ).toEqual(['timeout', 'open']);

      // The kernel ends the access on time without the daemon.
      await sleep(Math.max(0, until + EXPIRY_GRACE_MS[firewall] - Date.now()));
      expect(await probe(lab, [{ host: lab.server.v4, port: DOOR_PORT, from }])).toEqual(['timeout']);

      const removed = await removeRules(lab, firewall);
      expect(removed.exitCode, removed.stderr).toBe(0);
      expect(countOurObjects(await snapshotRules(lab, firewall), firewall)).toEqual(NONE[firewall]);
      expect(await probe(lab, [{ host: lab.server.v4, port: DOOR_PORT, from: lab.clientExtraV4 }])).toEqual(['open']);
      // Nothing left: removing again is not an error.
      expect((await removeRules(lab, firewall)).exitCode).toBe(0);
    });

    it('run --remove-rules-on-exit: SIGINT removes every rule and set it made', async () => {
      daemon = await launchDaemon(lab, configPath, backend, ['--remove-rules-on-exit']);
      expect(countOurObjects(await snapshotRules(lab, firewall), firewall)).toEqual(OURS[firewall]);
      expect(await daemon.stop(), daemon.recentOutput()).toEqual({ exitCode: 0 });
      expect(countOurObjects(await snapshotRules(lab, firewall), firewall)).toEqual(NONE[firewall]);
    });
  });
}
