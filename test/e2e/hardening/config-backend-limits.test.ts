// Issue 8 item 11: 130 doors x 32 steps = 4,160 knock ports, over the eBPF
// loader's 4,096 (MAX_PORTS in ebpf/loader.c). check-config accepted it and
// `run` then failed at start with the loader's misleading "bad --first". The
// built CLI now names the limit in check-config and at `run` start-up, before
// any capture or firewall is touched.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnDaemon, type DaemonProcess } from '../../../src/lab/daemon-process.js';
import { createLab, type Lab } from '../../../src/lab/netns.js';
import { describeLab } from '../../support/lab.js';
import { requireBuiltCli } from '../support/daemon.js';

const LIMIT_MESSAGE = 'the doors use 4160 distinct ports (knock steps and open ports); capture ebpf takes at most 4096 (MAX_PORTS of its loader)';
const BOUND_MS = 20_000;

/** 130 doors of 32 steps, every port distinct and 3 apart; each door opens the next door's first step. */
function issueConfig(capture: 'pcap' | 'ebpf'): string {
  const port = (door: number, step: number): number => 1024 + (door * 32 + step) * 3;
  const lines = ['interface: kw0', 'firewall: none', `capture: ${capture}`, 'doors:'];
  for (let d = 0; d < 130; d++) {
    const sequence = Array.from({ length: 32 }, (_, s) => port(d, s)).join(', ');
    lines.push(`  - name: d${d}`, `    sequence: [${sequence}]`, '    window: 10s', `    open: [${port((d + 1) % 130, 0)}]`, '    duration: 20s');
  }
  return `${lines.join('\n')}\n`;
}

let dir: string;
let ebpfPath: string;
let pcapPath: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kw-hard-limits-'));
  ebpfPath = join(dir, 'ebpf.yaml');
  pcapPath = join(dir, 'pcap.yaml');
  await writeFile(ebpfPath, issueConfig('ebpf'));
  await writeFile(pcapPath, issueConfig('pcap'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  return execa(process.execPath, [requireBuiltCli(), ...args], { reject: false, stdin: 'ignore', timeout: BOUND_MS, killSignal: 'SIGKILL' });
}

describe('check-config knows the capture backends limits', () => {
  it('capture: ebpf over the loader limit: exit 2 naming the limit and where', async () => {
    const r = await cli('check-config', ebpfPath);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`${ebpfPath}:4:1: doors: ${LIMIT_MESSAGE}`);
  });

  it('capture: pcap: accepted (pcap has no port limit), with a warning for eBPF', async () => {
    const r = await cli('check-config', pcapPath);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain(`warning: ${pcapPath}: doors: ${LIMIT_MESSAGE}`);
  });
});

describeLab('run refuses the same config at start-up with the same message (namespace lab, firewall none)', () => {
  let lab: Lab;
  let daemon: DaemonProcess | undefined;
  beforeAll(async () => {
    lab = await createLab('cfglimit');
  });
  afterAll(async () => {
    await daemon?.stop(2000);
    await lab?.destroy();
  });

  it('run --capture ebpf with a pcap config over the limit: exit 2, "configuration refused" naming the limit', async () => {
    daemon = spawnDaemon(lab, { cliPath: requireBuiltCli(), configPath: pcapPath, firewall: 'none', capture: 'ebpf' });
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([daemon.exited, new Promise<string>((r) => (timer = setTimeout(() => r('still running'), BOUND_MS)))]);
    clearTimeout(timer);
    expect(exit).toEqual({ exitCode: 2 });
    const fatal = daemon.find((l) => l.msg === 'configuration refused');
    expect(fatal).toHaveLength(1);
    expect(String(fatal[0].err)).toContain(`doors: ${LIMIT_MESSAGE}`);
    expect(String(fatal[0].err)).toContain('(selected by --capture)');
  });
});
