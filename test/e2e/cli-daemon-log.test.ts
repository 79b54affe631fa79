// Issue 9 item 5, end to end with the built daemon in a namespace lab:
// - 'knockwatch running' comes only once the capture is open (it used to be
//   logged before the pcap child said 'live capture open': a knock sent on
//   'running' could go unseen);
// - every firewall change is logged at info with the command that made it
//   (the README promises it; it was only a debug line);
// - NO_COLOR: the pretty log on a terminal carries no ESC byte (pino-pretty
//   was told to colour whenever the output was a TTY).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLab, LAB_V4, type Lab } from '../../src/lab/netns.js';
import { describeLab } from '../support/lab.js';
import { knockFrom, launchDaemon, removeRules, requireBuiltCli, writeDoorConfig, type DaemonProcess } from './support/daemon.js';

// 8 s: long enough that the --check after the open does not race the expiry on a loaded machine.
const DOOR = { sequence: [1234, 5678, 9012], windowMs: 10_000, durationMs: 8000, open: [2222] };
const WAIT_MS = 20_000;
const INFO = 30;

/** `knockwatch knock SERVER --check 2222` from the client's main address. */
function checkFrom(lab: Lab, timeoutMs: string) {
  return lab.run(lab.client, [process.execPath, requireBuiltCli(), 'knock', LAB_V4.server, '--check', '2222', '--timeout', timeoutMs, '--source', LAB_V4.client], { timeout: WAIT_MS });
}

describeLab('daemon log lines (namespace lab)', () => {
  let lab: Lab;
  let dir: string;
  beforeAll(async () => {
    lab = await createLab('clilog');
    dir = await mkdtemp(join(tmpdir(), 'kw-cli-log-'));
  });
  afterAll(async () => {
    await lab?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const firewall of ['nftables', 'iptables'] as const) {
    it(`${firewall}: 'knockwatch running' after 'live capture open'; open and close logged at info with their command`, async () => {
      const config = join(dir, `${firewall}.yaml`);
      await writeDoorConfig(config, DOOR, firewall, 'pcap');
      let daemon: DaemonProcess | undefined;
      try {
        daemon = await launchDaemon(lab, config, { firewall, capture: 'pcap' });
        const running = await daemon.waitFor((l) => l.msg === 'knockwatch running', "'knockwatch running'", WAIT_MS);
        const order = daemon.lines.map((l) => l.msg);
        expect(order.indexOf('live capture open')).toBeGreaterThanOrEqual(0);
        expect(order.indexOf('live capture open')).toBeLessThan(order.indexOf('knockwatch running'));
        expect(running.level).toBe(INFO);

        // knock --check against the real door, nothing listening on 2222: shut = filtered (exit 4) ...
        const shut = await checkFrom(lab, '1000');
        expect(shut.stdout).toBe(`${LAB_V4.server} port 2222/tcp: filtered`);
        expect(shut.exitCode).toBe(4);

        await knockFrom(lab, { host: LAB_V4.server, ports: DOOR.sequence, from: LAB_V4.client });
        const opened = await daemon.waitFor((l) => l.msg === 'firewall open (or refresh) applied', 'the open at info', WAIT_MS);
        expect(opened.level).toBe(INFO);
        expect(opened).toMatchObject({ door: 'ssh', source: LAB_V4.client, ports: ['2222/tcp'] });
        expect(String(opened.command)).toMatch(firewall === 'nftables' ? /^nft -(i|f -)$/ : /^ipset -exist restore$/);
        expect(String(opened.input)).toContain(LAB_V4.client);
        // ... and once the door let us through, the host answers with a reset: refused (exit 3).
        const through = await checkFrom(lab, '3000');
        expect(through.stdout).toBe(`${LAB_V4.server} port 2222/tcp: refused`);
        expect(through.exitCode).toBe(3);

        // The access ends after 8 s: its close is a firewall change too.
        const closed = await daemon.waitFor((l) => l.msg === 'firewall close applied', 'the close at info', WAIT_MS);
        expect(closed.level).toBe(INFO);
        expect(closed).toMatchObject({ door: 'ssh', source: LAB_V4.client });
        expect(String(closed.input)).toContain(LAB_V4.client);
      } finally {
        await daemon?.stop(5000);
        await removeRules(lab, firewall);
      }
    });
  }

  /** `knockwatch run --log-format pretty` on a pseudo-terminal (script(1)), stopped with ^C once running. */
  async function prettyOnTerminal(env: Record<string, string | undefined>): Promise<string> {
    const cmd = `${process.execPath} ${requireBuiltCli()} run --firewall none --interface kw0 --log-format pretty`;
    const child = lab.spawn(lab.server, ['script', '-qec', cmd, '/dev/null'], { env, extendEnv: false, buffer: false, stdin: 'pipe' });
    let out = '';
    const running = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no 'knockwatch running' within ${WAIT_MS} ms:\n${out}`)), WAIT_MS);
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString('latin1');
        if (out.includes('knockwatch running')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    try {
      await running;
      child.stdin?.write('\x03'); // ^C on the terminal: SIGINT to the daemon
      const exited = await Promise.race([child, new Promise<undefined>((r) => setTimeout(() => r(undefined), WAIT_MS))]);
      expect(exited, `the daemon did not stop on ^C:\n${out}`).toBeDefined();
      expect(out).toContain('knockwatch stopped');
      return out;
    } finally {
      child.kill('SIGKILL');
    }
  }

  it('NO_COLOR: the pretty log on a terminal has no ESC byte (and has colours without it)', async () => {
    const base = { PATH: process.env.PATH, TERM: 'xterm' };
    const coloured = await prettyOnTerminal(base);
    expect(coloured).toContain('\x1b[');
    const plain = await prettyOnTerminal({ ...base, NO_COLOR: '1' });
    expect(plain).not.toContain('\x1b');
    // One line per event: every log line starts with its time.
    const lines = plain.split(/\r?\n/).filter((l) => l.trim() !== '' && l !== '^C');
    for (const l of lines) expect(l.replace(/^\^C/, '')).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] [A-Z]+: /);
  });
});
