// Issue 8 item 5: start_command / stop_command stay balanced across reloads.
// Exactly one start per open and one stop per close: SIGHUP with the same
// config re-applies the open access without running start again, a refresh
// (second completion while open) runs no start, and a reload that removes the
// door closes its access (reason 'reload') with one stop. Before the fix: two
// SIGHUPs gave 3 starts, and removing the door gave no stop at all.
// Each door command makes one file (mktemp), so the files count invocations.
// Real daemon, real nftables, namespace lab.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectFrom } from '../../../src/lab/connect.js';
import { createLab, type Lab } from '../../../src/lab/netns.js';
import { describeLab } from '../../support/lab.js';
import { DOOR_PORT, startEchoServer } from '../firewall-support.js';
import { knockFrom, launchDaemon, lineFor, type DaemonLogLine, type DaemonProcess } from '../support/daemon.js';
import { snapshotRules } from '../support/ruleset.js';

const SEQUENCE = [1234, 5678, 9012];
const OTHER_SEQUENCE = [3141, 5926, 5358];
/** Bound on the log line and on connect retries (a wait that passes early costs nothing; load 15 needed > 3 s). */
const OPEN_WITHIN_MS = 15_000;

function config(door: string, sequence: readonly number[], commandDir: string): string {
  return [
    'interface: kw0',
    'firewall: nftables',
    'capture: pcap',
    'doors:',
    `  - name: ${door}`,
    `    sequence: [${sequence.join(', ')}]`,
    '    window: 3s',
    `    open: [${DOOR_PORT}/tcp]`,
    '    duration: 60s',
    `    start_command: [/usr/bin/mktemp, -p, ${commandDir}, start.XXXXXX]`,
    `    stop_command: [/usr/bin/mktemp, -p, ${commandDir}, stop.XXXXXX]`,
    '',
  ].join('\n');
}

describeLab('reloads keep start_command / stop_command balanced (nftables, namespace lab, built CLI)', () => {
  let lab: Lab;
  let dir: string;
  let commandDir: string;
  let configPath: string;
  let daemon: DaemonProcess;

  const counts = async (): Promise<{ start: number; stop: number }> => {
    const names = await readdir(commandDir);
    return { start: names.filter((n) => n.startsWith('start.')).length, stop: names.filter((n) => n.startsWith('stop.')).length };
  };
  const doorCommand = (phase: 'start' | 'stop') => (l: DaemonLogLine) => l.msg === 'door command ran' && l.phase === phase;
  const reload = async (): Promise<void> => {
    const mark = daemon.lines.length;
    daemon.signal('SIGHUP');
    await daemon.waitFor((l) => l.msg === 'configuration reloaded' || l.msg.startsWith('reload '), 'reload outcome', 10_000, mark);
    expect(daemon.find((l) => l.msg.startsWith('reload '), mark)).toEqual([]);
  };

  beforeAll(async () => {
    lab = await createLab('reloadcmd');
    dir = await mkdtemp(join(tmpdir(), 'knockwatch-reload-'));
    commandDir = await mkdtemp(join(dir, 'commands-'));
    configPath = join(dir, 'knockwatch.yaml');
    await startEchoServer(lab);
    await writeFile(configPath, config('ssh', SEQUENCE, commandDir));
    daemon = await launchDaemon(lab, configPath, { firewall: 'nftables', capture: 'pcap' });
  });
  afterAll(async () => {
    await daemon?.stop();
    await lab?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('knock, two same-config SIGHUPs and a refresh run one start; removing the door closes the access (reload) with one stop', async () => {
    const from = lab.client.v4;
    await knockFrom(lab, { host: lab.server.v4, ports: SEQUENCE, from });
    await daemon.waitFor(lineFor('access opened', from), '"access opened"', OPEN_WITHIN_MS);
    await daemon.waitFor(doorCommand('start'), 'the start command', 15_000);

    await reload();
    await reload();
    // A reload settles its firewall work (and door commands) before it logs.
    expect(await counts()).toEqual({ start: 1, stop: 0 });
    // The access survived both reloads, in the kernel too.
    const c = await connectFrom(lab, lab.client, { host: lab.server.v4, port: DOOR_PORT, from, timeoutMs: 300, retryForMs: OPEN_WITHIN_MS });
    expect(c.outcome).toBe('open');

    // A second completion while open is a refresh, not a new access.
    const mark = daemon.lines.length;
    await knockFrom(lab, { host: lab.server.v4, ports: SEQUENCE, from });
    await daemon.waitFor(lineFor('access refreshed', from), '"access refreshed"', OPEN_WITHIN_MS, mark);

    // The door goes away: its access closes now, with its own stop command.
    await writeFile(configPath, config('web', OTHER_SEQUENCE, commandDir));
    const before = daemon.lines.length;
    await reload();
    const closed = await daemon.waitFor(lineFor('access closed', from), '"access closed"', 5000, before);
    expect(closed.reason).toBe('reload');
    await daemon.waitFor(doorCommand('stop'), 'the stop command', 5000, before);

    expect(await counts()).toEqual({ start: 1, stop: 1 });
    expect({ start: daemon.find(doorCommand('start')).length, stop: daemon.find(doorCommand('stop')).length }).toEqual({ start: 1, stop: 1 });
    expect((await snapshotRules(lab, 'nftables')).elements).toEqual([]);
  });
});
