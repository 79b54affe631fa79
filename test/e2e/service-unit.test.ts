// deploy/knockwatch.service: systemd accepts it, rates it <= 2.5 exposed (with
// and without the eBPF drop-in), and the daemon really works with what the unit
// gives it: run as an unprivileged user holding only the unit's ambient
// capabilities (setpriv, like systemd's User= + AmbientCapabilities= +
// CapabilityBoundingSet= + NoNewPrivileges=), in a lab namespace, it drops the
// door port and opens it for a knocking source, with nftables and with iptables,
// and with eBPF capture holding the unit's plus the eBPF drop-in's capabilities.
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectFrom, startGreetingService } from '../../src/lab/connect.js';
import { isCaptureReady, type DaemonLogLine } from '../../src/lab/daemon-process.js';
import { createLab, type Lab } from '../../src/lab/netns.js';
import { ebpfUnavailableReason } from '../../src/capture/ebpf.js';
import { describeLab, labSkipReason } from '../support/lab.js';
import { knockFrom, requireBuiltCli, writeDoorConfig, type Backend } from './support/daemon.js';

const UNIT = fileURLToPath(new URL('../../deploy/knockwatch.service', import.meta.url));
const EBPF_DROPIN = fileURLToPath(new URL('../../deploy/knockwatch.service.d/ebpf.conf', import.meta.url));
const MAX_EXPOSURE = 2.5;
const DOOR_PORT = 2222;
const SEQUENCE = [1234, 5678, 9012];
/** `nobody`: exists on every Debian machine, owns nothing the daemon needs. */
const UNPRIVILEGED = { uid: 65534, gid: 65534 };

async function systemdAnalyzeSkipReason(): Promise<string | undefined> {
  const r = await execa('systemd-analyze', ['--version'], { reject: false });
  if (r.failed) return "needs systemd-analyze (Debian package systemd; scripts/setup.sh installs it)";
  const version = Number(/systemd (\d+)/.exec(r.stdout)?.[1]);
  // `security --offline=true` (a unit file, no running manager) came in systemd 250.
  return version >= 250 ? undefined : `needs systemd >= 250 for 'systemd-analyze security --offline' (found ${r.stdout.split('\n')[0]})`;
}

/** Values of every `Key=` line in [Service] order; an empty assignment resets, as in systemd. */
function unitValues(text: string, key: string): string[] {
  let values: string[] = [];
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${key}=(.*)$`).exec(line.trim());
    if (!m) continue;
    const v = m[1].trim();
    values = v === '' ? [] : [...values, ...v.split(/\s+/)];
  }
  return values;
}

/** The unit with the eBPF drop-in applied (a drop-in's lines act as if appended). */
async function unitWithEbpfDropIn(dir: string): Promise<string> {
  const merged = join(dir, 'knockwatch.service');
  await writeFile(merged, `${await readFile(UNIT, 'utf8')}\n${await readFile(EBPF_DROPIN, 'utf8')}`);
  return merged;
}

async function exposure(unitPath: string): Promise<number> {
  const r = await execa('systemd-analyze', ['security', '--offline=true', '--no-pager', unitPath], { reject: false });
  const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.stdout);
  if (!m) throw new Error(`no exposure level in systemd-analyze output (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
  return Number(m[1]);
}

const analyzeSkip = await systemdAnalyzeSkipReason();
if (analyzeSkip) console.warn(`[skipped] deploy/knockwatch.service checks: ${analyzeSkip}`);

describe('deploy/knockwatch.service', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'knockwatch-unit-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs as User=knockwatch with exactly CAP_NET_ADMIN and CAP_NET_RAW, eBPF capabilities only in the drop-in', async () => {
    const unit = await readFile(UNIT, 'utf8');
    expect(unitValues(unit, 'User')).toEqual(['knockwatch']);
    expect(unitValues(unit, 'AmbientCapabilities').sort()).toEqual(['CAP_NET_ADMIN', 'CAP_NET_RAW']);
    expect(unitValues(unit, 'CapabilityBoundingSet').sort()).toEqual(['CAP_NET_ADMIN', 'CAP_NET_RAW']);
    expect(unitValues(unit, 'NoNewPrivileges')).toEqual(['true']);
    expect(unitValues(unit, 'StateDirectory')).toEqual(['knockwatch']);
    expect(unitValues(unit, 'RuntimeDirectory')).toEqual(['knockwatch']);
    // Debian has no iptables.service; naming it only hides a typo-class mistake.
    expect(unitValues(unit, 'After')).not.toContain('iptables.service');
    const dropIn = await readFile(EBPF_DROPIN, 'utf8');
    expect(unitValues(dropIn, 'AmbientCapabilities').sort()).toEqual(['CAP_BPF', 'CAP_PERFMON']);
    expect(unitValues(dropIn, 'CapabilityBoundingSet').sort()).toEqual(['CAP_BPF', 'CAP_PERFMON']);
  });

  it.skipIf(analyzeSkip !== undefined)('systemd-analyze verify finds nothing to say, with or without the eBPF drop-in', async () => {
    for (const unit of [UNIT, await unitWithEbpfDropIn(dir)]) {
      const r = await execa('systemd-analyze', ['verify', unit], { reject: false });
      expect({ unit, exitCode: r.exitCode, stderr: r.stderr.trim(), stdout: r.stdout.trim() }).toEqual({ unit, exitCode: 0, stderr: '', stdout: '' });
    }
  });

  it.skipIf(analyzeSkip !== undefined)(`systemd-analyze security rates it at most ${MAX_EXPOSURE}, with or without the eBPF drop-in`, async () => {
    const plain = await exposure(UNIT);
    const ebpf = await exposure(await unitWithEbpfDropIn(dir));
    console.log(`systemd-analyze security exposure: ${plain} (unit), ${ebpf} (with the eBPF drop-in)`);
    expect(plain).toBeLessThanOrEqual(MAX_EXPOSURE);
    expect(ebpf).toBeLessThanOrEqual(MAX_EXPOSURE);
  });
});

interface UnprivilegedDaemon {
  readonly child: ResultPromise;
  readonly lines: DaemonLogLine[];
  output(): string;
  waitFor(match: (line: DaemonLogLine) => boolean, what: string, timeoutMs: number): Promise<DaemonLogLine>;
}

/**
 * `knockwatch run` in the lab's server namespace through setpriv: uid/gid
 * nobody, no supplementary groups, the unit's capabilities as inheritable,
 * ambient and bounding set, no_new_privs. What systemd does for the unit.
 */
function launchUnprivileged(lab: Lab, configPath: string, backend: Backend, caps: readonly string[], runDir: string | undefined): UnprivilegedDaemon {
  const set = caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`).join(',');
  const argv = [
    'setpriv',
    `--reuid=${UNPRIVILEGED.uid}`,
    `--regid=${UNPRIVILEGED.gid}`,
    '--clear-groups',
    `--inh-caps=-all,${set}`,
    `--ambient-caps=-all,${set}`,
    `--bounding-set=-all,${set}`,
    '--no-new-privs',
    '--',
    process.execPath,
    requireBuiltCli(),
    'run',
    '--config',
    configPath,
    '--interface',
    'kw0',
    '--firewall',
    backend.firewall,
    '--capture',
    backend.capture,
    '--log-format',
    'json',
    ...(runDir !== undefined ? ['--run-dir', runDir] : []),
  ];
  const child = lab.spawn(lab.server, argv, { buffer: false, stdin: 'ignore' });
  const lines: DaemonLogLine[] = [];
  let other = '';
  let partial = '';
  const onData = (chunk: Buffer): void => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const text of parts) {
      try {
        const v = JSON.parse(text) as DaemonLogLine;
        if (typeof v.msg === 'string') {
          lines.push(v);
          continue;
        }
      } catch {
        // not a log line
      }
      other = (other + text + '\n').slice(-8192);
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  let gone = false;
  void child.finally(() => {
    gone = true;
  });
  const output = (): string => [...lines.slice(-10).map((l) => JSON.stringify(l)), other.trim()].join('\n');
  return {
    child,
    lines,
    output,
    async waitFor(match, what, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const hit = lines.find(match);
        if (hit) return hit;
        if (gone) throw new Error(`daemon exited while waiting for ${what}:\n${output()}`);
        if (performance.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms:\n${output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

/** Fields of /proc/PID/status. */
async function procStatus(pid: number): Promise<Record<string, string>> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return Object.fromEntries(text.split('\n').filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
}

/** The capability mask of these names (linux/capability.h numbers). */
function capMask(caps: readonly string[]): bigint {
  const bits: Record<string, number> = { CAP_NET_ADMIN: 12, CAP_NET_RAW: 13, CAP_PERFMON: 38, CAP_BPF: 39 };
  return caps.reduce((m, c) => m | (1n << BigInt(bits[c])), 0n);
}

const BACKENDS: readonly (Backend & { readonly dropIn?: string })[] = [
  { firewall: 'nftables', capture: 'pcap' },
  { firewall: 'iptables', capture: 'pcap' },
  // The eBPF drop-in's capabilities on top of the unit's.
  { firewall: 'nftables', capture: 'ebpf', dropIn: EBPF_DROPIN },
];
const ebpfSkip = labSkipReason === undefined ? await ebpfUnavailableReason() : undefined;
if (ebpfSkip) console.warn(`[skipped] unprivileged daemon with eBPF capture: ${ebpfSkip}`);

describeLab("the daemon as an unprivileged user with only the unit's capabilities", () => {
  for (const backend of BACKENDS) {
    const { firewall, capture } = backend;
    describe.skipIf(capture === 'ebpf' && ebpfSkip !== undefined)(`${firewall} + ${capture}`, () => {
      let lab: Lab;
      let dir: string;
      let daemon: UnprivilegedDaemon;
      let caps: string[];

      beforeAll(async () => {
        caps = unitValues(await readFile(UNIT, 'utf8'), 'AmbientCapabilities');
        if (backend.dropIn) caps = [...caps, ...unitValues(await readFile(backend.dropIn, 'utf8'), 'AmbientCapabilities')];
        lab = await createLab(`svc${firewall.slice(0, 3)}${capture}`);
        dir = await mkdtemp(join(tmpdir(), 'knockwatch-svc-'));
        await chmod(dir, 0o755); // the unprivileged daemon reads its config from here
        const configPath = join(dir, 'knockwatch.yaml');
        await writeDoorConfig(configPath, { sequence: SEQUENCE, windowMs: 5000, durationMs: 30_000, open: [DOOR_PORT] }, firewall, capture);
        await chmod(configPath, 0o644);
        await startGreetingService(lab, lab.server, DOOR_PORT, 'hello from 2222');
        // What RuntimeDirectory=knockwatch + RuntimeDirectoryMode=0750 give the
        // service (/run/knockwatch, the instance lock's default home), for a
        // daemon that keeps state there.
        let runDir: string | undefined;
        const help = await execa(process.execPath, [requireBuiltCli(), 'run', '--help'], { reject: false });
        if (help.stdout.includes('--run-dir')) {
          runDir = join(dir, 'run');
          await mkdir(runDir, { mode: 0o750 });
          await chown(runDir, UNPRIVILEGED.uid, UNPRIVILEGED.gid);
        }
        daemon = launchUnprivileged(lab, configPath, backend, caps, runDir);
        await daemon.waitFor(isCaptureReady, 'capture-ready line', 20_000);
      });
      afterAll(async () => {
        daemon?.child.kill('SIGINT');
        const timer = setTimeout(() => daemon?.child.kill('SIGKILL'), 5000);
        await daemon?.child;
        clearTimeout(timer);
        await lab?.destroy();
        if (dir) await rm(dir, { recursive: true, force: true });
      });

      it('the daemon process is uid nobody holding exactly the unit capabilities', async () => {
        const pid = daemon.child.pid as number;
        const status = await procStatus(pid);
        expect(status.Name).toBe('node');
        expect(status.Uid.split(/\s+/)).toEqual(Array(4).fill(String(UNPRIVILEGED.uid)));
        expect(status.Gid.split(/\s+/)).toEqual(Array(4).fill(String(UNPRIVILEGED.gid)));
        const mask = capMask(caps);
        for (const field of ['CapEff', 'CapPrm', 'CapAmb', 'CapBnd']) expect({ field, mask: BigInt(`0x${status[field]}`) }).toEqual({ field, mask });
        expect(status.NoNewPrivs).toBe('1');
      });

      it('drops the door port before a knock and opens it to the knocking source after', async () => {
        const before = await connectFrom(lab, lab.client, { host: lab.server.v4, port: DOOR_PORT, from: lab.client.v4, timeoutMs: 500 });
        expect(before.outcome).toBe('timeout');
        await knockFrom(lab, { host: lab.server.v4, ports: SEQUENCE, from: lab.client.v4 });
        await daemon.waitFor((l) => l.msg === 'access opened' && l.source === lab.client.v4, '"access opened" line', 10_000);
        const after = await connectFrom(lab, lab.client, { host: lab.server.v4, port: DOOR_PORT, from: lab.client.v4, timeoutMs: 500, retryForMs: 5000, readLine: true });
        expect(after).toMatchObject({ outcome: 'open', line: 'hello from 2222' });
        expect(daemon.lines.filter((l) => l.level >= 50)).toEqual([]);
      });

      it('stops cleanly on SIGINT, with no error on the way', async () => {
        daemon.child.kill('SIGINT');
        const r = await daemon.child;
        expect({ exitCode: r.exitCode, output: r.exitCode === 0 ? '' : daemon.output() }).toEqual({ exitCode: 0, output: '' });
        expect(daemon.lines.filter((l) => l.level >= 50)).toEqual([]);
      });
    });
  }
});
