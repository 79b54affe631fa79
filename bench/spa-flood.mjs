#!/usr/bin/env node
// spa under a junk flood, end to end: the built daemon (nftables, pcap or
// eBPF capture) in the server namespace of a lab, a flood of random 101-byte
// datagrams (version byte 1, so each reaches the hint lookup) to the spa port
// from the client namespace for --seconds, and --knocks real spa knocks
// (`knockwatch knock` from fresh source addresses) spread inside it. Reports
// how many knocks opened, the daemon's CPU seconds (its process and its
// capture child, from /proc) per million datagrams delivered, its resident
// memory, and the rejection totals it logged.
//
// Needs root. npm run build && node bench/spa-flood.mjs [--capture pcap,ebpf] [--seconds 5] [--rate 100000]
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

const { values } = parseArgs({
  options: {
    capture: { type: 'string', default: 'pcap,ebpf' },
    seconds: { type: 'string', default: '5' },
    rate: { type: 'string', default: '100000' },
    knocks: { type: 'string', default: '5' },
    dist: { type: 'string', default: new URL('../dist', import.meta.url).pathname },
  },
});
const dist = resolve(values.dist);
const cli = join(dist, 'cli.js');
const lib = (p) => import(pathToFileURL(join(dist, p)).href);
const { createLab } = await lib('lab/netns.js');
const { startDaemonProcess } = await lib('lab/daemon-process.js');
const SECONDS = Number(values.seconds);
const RATE = Number(values.rate);
const KNOCKS = Number(values.knocks);
const SPA_PORT = 62201;

// The flood: python3's sendto in a loop, paced per 10 ms slice; random payloads made up front.
const FLOOD = `
import os, socket, sys, time
host, port, rate, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
pool = []
for i in range(4096):
    b = bytearray(os.urandom(101)); b[0] = 1; pool.append(bytes(b))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
sent = 0; start = time.monotonic(); per = rate / 100.0; i = 0
while True:
    now = time.monotonic() - start
    if now >= seconds: break
    due = int(now * rate)
    while sent < due:
        try: s.sendto(pool[i & 4095], (host, port))
        except BlockingIOError: pass
        except OSError: pass
        sent += 1; i += 1
    time.sleep(0.001)
print(sent, round(time.monotonic() - start, 3))
`;

function cpuOfTree(pid) {
  const procs = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
      const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      procs.set(Number(d), { comm, ppid: Number(rest[1]), cpu: (Number(rest[11]) + Number(rest[12])) / 100, rss: Number(rest[21]) * 4096 });
    } catch {
      // gone
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [p, v] of procs) if (v.ppid === tree[i]) tree.push(p);
  let cpu = 0;
  let rss = 0;
  const byComm = {};
  for (const p of tree) {
    const v = procs.get(p);
    cpu += v?.cpu ?? 0;
    rss += v?.rss ?? 0;
    if (v) byComm[`${v.comm}[${p}]`] = v.cpu;
  }
  return { cpu, rss, processes: tree.length, byComm };
}

for (const capture of values.capture.split(',')) {
  const dir = mkdtempSync(join(tmpdir(), 'kw-spa-flood-'));
  const lab = await createLab('spaflood');
  let daemon;
  try {
    const keys = join(dir, 'keys');
    mkdirSync(keys, { mode: 0o700 });
    const key = randomBytes(32);
    writeFileSync(join(keys, 'alice.key'), `${key.toString('base64')}\n`, { mode: 0o600 });
    chmodSync(join(keys, 'alice.key'), 0o600);
    const config = join(dir, 'k.yaml');
    writeFileSync(config, `interface: kw0\nfirewall: nftables\ncapture: ${capture}\nusers:\n  - name: alice\n    key_file: ${join(keys, 'alice.key')}\ndoors:\n  - name: ssh\n    spa: ${SPA_PORT}/udp\n    max_age: 5s\n    open: [2222]\n    duration: 60s\n`);
    // A clean-stop state file, so this start needs no horizon (the bench is not about restarts).
    const state = join(dir, 'state');
    mkdirSync(state, { mode: 0o700 });
    const now = Date.now();
    writeFileSync(join(state, 'spa-state.json'), JSON.stringify({ version: 1, lease: now, floor: now, maxAgeMs: 5000, totp: [], replay: [] }), { mode: 0o600 });
    daemon = await startDaemonProcess(lab, { cliPath: cli, configPath: config, firewall: 'nftables', capture, logLevel: 'info', extraArgs: ['--state-dir', state] });
    await daemon.waitFor((l) => String(l.msg).startsWith('spa ready'), 'spa ready', 15_000);
    const r = await lab.run(lab.client, ['ip', 'addr', 'add', '10.199.0.50/24', 'dev', lab.client.ifname]);
    if (r.exitCode !== 0) throw new Error(r.stderr);
    for (let i = 1; i < KNOCKS; i++) await lab.run(lab.client, ['ip', 'addr', 'add', `10.199.0.${50 + i}/24`, 'dev', lab.client.ifname]);
    const before = cpuOfTree(daemon.pid);
    const flood = lab.run(lab.client, ['python3', '-c', FLOOD, lab.server.v4, String(SPA_PORT), String(RATE), String(SECONDS)]);
    const knocks = [];
    for (let i = 0; i < KNOCKS; i++) {
      await sleep(((SECONDS * 1000) / (KNOCKS + 1)) | 0);
      const from = `10.199.0.${50 + i}`;
      knocks.push(lab.run(lab.client, [process.execPath, cli, 'knock', lab.server.v4, '--door', 'ssh', '--key-file', join(keys, 'alice.key'), '--source', from]).then(() => from));
    }
    const [floodOut] = await Promise.all([flood, ...knocks]);
    await sleep(1500);
    const after = cpuOfTree(daemon.pid);
    const [sent, took] = String(floodOut.stdout).trim().split(' ').map(Number);
    const opened = [];
    for (let i = 0; i < KNOCKS; i++) if (daemon.find((l) => l.msg === 'access opened' && l.source === `10.199.0.${50 + i}`).length > 0) opened.push(i);
    const cpu = after.cpu - before.cpu;
    const split = Object.entries(after.byComm).map(([k, v]) => `${k} ${(v - (before.byComm[k] ?? 0)).toFixed(2)} s`).join(', ');
    await daemon.stop();
    const totals = daemon.find((l) => l.msg === 'spa rejections in the last minute').map((l) => l.rejected);
    const counters = daemon.find((l) => l.msg === 'knockwatch stopped')[0] ?? {};
    console.log(
      `${capture}: ${sent} junk datagrams in ${took} s (${Math.round(sent / took)}/s) + ${KNOCKS} spa knocks: ${opened.length}/${KNOCKS} opened; ` +
        `daemon CPU ${cpu.toFixed(2)} s = ${((cpu / sent) * 1e6).toFixed(2)} s per million sent; RSS ${(after.rss / 1e6).toFixed(0)} MB over ${after.processes} processes; ` +
        `per process: ${split}; packets seen ${counters.packets ?? '?'}, knocks ${counters.knocks ?? '?'}; rejections ${JSON.stringify(totals)}; load ${loadavg().map((x) => x.toFixed(1)).join(' ')}`,
    );
  } finally {
    await daemon?.stop().catch(() => undefined);
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
