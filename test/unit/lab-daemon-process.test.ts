// The daemon-process wrapper's log handling, with a stand-in "lab" whose
// spawn runs a small node script instead of the daemon (no root needed):
// JSON lines split across writes, non-JSON output kept aside, waitFor from a
// mark, timeouts and exits that name what was awaited.
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { isCaptureReady, spawnDaemon } from '../../src/lab/daemon-process.js';
import type { Lab } from '../../src/lab/netns.js';

/**
 * Bound on a line the fake daemon prints at once: a node start-up. 2 s was
 * too short with 4 test workers beside stress-ng --cpu 2 at load 12 (no line
 * at all by then); like the tests below, 20 s (a wait that passes early costs nothing).
 */
const READY_WITHIN_MS = 20_000;

/** A Lab whose spawn runs `node -e script` locally; the daemon's argv is ignored. */
function fakeLab(script: string): { lab: Lab; argv: string[][] } {
  const argv: string[][] = [];
  const host = { ns: 'fake', ifname: 'kw0', v4: '10.199.0.1', v6: 'fd00:6b77::1' };
  const lab = {
    server: host,
    client: host,
    clientExtraV4: '10.199.0.3',
    clientExtraV6: 'fd00:6b77::3',
    run: () => Promise.reject(new Error('not used')),
    spawn: (_host: unknown, args: readonly string[], options = {}) => {
      argv.push([...args]);
      return execa(process.execPath, ['-e', script], { reject: false, ...options });
    },
    destroy: () => Promise.resolve(),
  } as unknown as Lab;
  return { lab, argv };
}

const line = (msg: string, extra: object = {}): string => JSON.stringify({ level: 30, time: 1, msg, ...extra });

describe('spawnDaemon', () => {
  it('passes the run options as CLI flags', async () => {
    const { lab, argv } = fakeLab('');
    const d = spawnDaemon(lab, { cliPath: '/x/cli.js', configPath: '/c.yaml', firewall: 'iptables', capture: 'ebpf' });
    await d.exited;
    expect(argv[0].slice(1)).toEqual([
      '/x/cli.js', 'run', '--config', '/c.yaml', '--interface', 'kw0', '--firewall', 'iptables', '--capture', 'ebpf',
      '--log-format', 'json', '--log-level', 'info',
    ]);
  });

  it('parses JSON lines split across writes, keeps other output aside, and waits from a mark', async () => {
    // The first line arrives in two writes; a plain-text line sits between.
    const a = line('live capture open');
    const script = `
      process.stdout.write(${JSON.stringify(a.slice(0, 10))});
      setTimeout(() => process.stdout.write(${JSON.stringify(a.slice(10) + '\nnot json\n')}), 20);
      setTimeout(() => console.log(${JSON.stringify(line('access opened', { source: '10.0.0.1' }))}), 60);
      setTimeout(() => console.log(${JSON.stringify(line('access opened', { source: '10.0.0.2' }))}), 100);
      setTimeout(() => {}, 300);`;
    const { lab } = fakeLab(script);
    const seen: string[] = [];
    const d = spawnDaemon(lab, { cliPath: 'x', configPath: 'y', firewall: 'none', onLine: (l) => seen.push(l.msg) });
    const ready = await d.waitFor(isCaptureReady, 'ready', READY_WITHIN_MS);
    expect(ready.msg).toBe('live capture open');
    const mark = d.lines.length;
    const second = await d.waitFor((l) => l.msg === 'access opened' && l.source === '10.0.0.2', 'second open', READY_WITHIN_MS, mark);
    expect(second.source).toBe('10.0.0.2');
    expect(d.find((l) => l.msg === 'access opened').map((l) => l.source)).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(d.find((l) => l.msg === 'access opened', 2)).toHaveLength(1);
    expect(d.otherOutput()).toBe('not json\n');
    expect(seen).toEqual(['live capture open', 'access opened', 'access opened']);
    expect(await d.exited).toEqual({ exitCode: 0 });
  });

  it('a line logged before the wait is found; one before the mark is not', async () => {
    const { lab } = fakeLab(`console.log(${JSON.stringify(line('access closed'))}); setTimeout(() => {}, 200);`);
    const d = spawnDaemon(lab, { cliPath: 'x', configPath: 'y', firewall: 'none' });
    await d.waitFor((l) => l.msg === 'access closed', 'close', READY_WITHIN_MS);
    await expect(d.waitFor((l) => l.msg === 'access closed', 'a second close', 2000, d.lines.length)).rejects.toThrow(
      /daemon exited while waiting for a second close/,
    );
  });

  it('times out naming what it waited for and showing the recent log', async () => {
    const { lab } = fakeLab(`console.log(${JSON.stringify(line('knockwatch running'))}); setTimeout(() => {}, 5000);`);
    const d = spawnDaemon(lab, { cliPath: 'x', configPath: 'y', firewall: 'none' });
    // The line must be in the recent log before the short wait starts (a loaded machine starts node slowly).
    await d.waitFor((l) => l.msg === 'knockwatch running', 'running', 20_000);
    await expect(d.waitFor((l) => l.msg === 'never', '"never" line', 150)).rejects.toThrow(/no "never" line from the daemon within 150 ms[\s\S]*knockwatch running/);
    expect(await d.stop(1000)).toEqual({ signal: 'SIGINT' });
  });

  it('stop() escalates to SIGKILL when SIGINT is ignored', async () => {
    const { lab } = fakeLab(`process.on('SIGINT', () => {}); console.log(${JSON.stringify(line('ignoring SIGINT'))}); setTimeout(() => {}, 30000);`);
    const d = spawnDaemon(lab, { cliPath: 'x', configPath: 'y', firewall: 'none' });
    // Its handler is installed once it says so; before that a SIGINT would simply kill it.
    await d.waitFor((l) => l.msg === 'ignoring SIGINT', 'the SIGINT handler', 20_000);
    expect(await d.stop(100)).toEqual({ signal: 'SIGKILL' });
  });
});
