#!/usr/bin/env node
// `npm run bench:flood-first`: real knocks under a spoofed-source SYN flood
// aimed at the FIRST knock port (issue 8 item 8: hping3 --rand-source --flood
// -p 1234 at 45-60 k packets/s let only 3 of 7 pcap knocks through).
//
// Unlike bench/flood.mjs (random unwatched ports, which the eBPF program never
// passes up), every flood packet here is a valid first step of the door: no
// filter can tell it from a real user's first knock, so each one reaches the
// detector with either backend. What is measured is whether the capture path
// keeps up, and where it drops when it does not.
//
// One namespace lab. The built daemon runs in the server namespace (door
// 1234,5678,9012 -> 2222/tcp, window 5 s, nftables) while bench/flood.c sends
// SYNs from random 198.18.0.0/15 sources to port 1234. N real clients (their
// own addresses) knock `1234 5678 9012 --check 2222` spread over the flood.
// Reported per backend: flood rate, real knocks opened (log line and connect),
// the capture's own counters from the daemon's exit summary (pcap: frames
// captured, shed by the capture process, delivered; eBPF: ring drops), the
// server interface's receive counters (rx_packets, rx_dropped = ps_ifdrop),
// softnet backlog drops, and for pcap the kernel ring's drops (ps_drop),
// which cap 0.2.1 cannot read (no pcap_stats): received - captured, every
// flood frame passing the filter. The load average before and after: the
// machine may be shared.
// Goal: at least 9 of 10 real knocks open with pcap at 45-60 k packets/s.
//
// Environment: FLOOD_SECONDS (default 8), FLOOD_PPS (default 50000),
// FLOOD_KNOCKS (1-10, default 10), FLOOD_THREADS (default 1),
// FLOOD_BACKENDS (default pcap), FLOOD_NICE (the generator's nice value,
// default -15).
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, labUnavailableReason } from '../dist/lab/netns.js';
import { startDaemonProcess } from '../dist/lab/daemon-process.js';
import { startGreetingService } from '../dist/lab/connect.js';
import { ebpfUnavailableReason } from '../dist/capture/ebpf.js';
import { buildFlood, cli, envInt, interfaceCounters, loadavg, must, runBench, runFlood, sleep, softnetDropped } from './support.mjs';

const SECONDS = envInt('FLOOD_SECONDS', 8, 2, 30);
const PPS = envInt('FLOOD_PPS', 50_000, 1000, 10_000_000);
const KNOCKS = envInt('FLOOD_KNOCKS', 10, 1, 10);
const THREADS = envInt('FLOOD_THREADS', 1, 1, 16);
// The generator's own work includes the server's receive path (a veth hands
// frames over in the sender's context), so at nice 0 on a busy machine it fell
// to 13-30 k packets/s, below the issue's 45-60 k, as soon as the daemon ran at
// a higher priority (capture/priority.ts). A real flood arrives at its rate
// whatever the host's scheduler: the generator runs above the daemon.
const FLOOD_NICE = envInt('FLOOD_NICE', -15, -20, 19);
const BACKENDS = (process.env.FLOOD_BACKENDS ?? 'pcap').split(',').map((s) => s.trim());
for (const b of BACKENDS) if (b !== 'pcap' && b !== 'ebpf') throw new Error(`FLOOD_BACKENDS: unknown backend '${b}' (pcap, ebpf)`);

const SEQUENCE = [1234, 5678, 9012];
const DOOR_PORT = 2222;
const DURATION_MS = 5000;
const FLOOD_NET = '198.18.0.0/15';
const KNOCKERS = Array.from({ length: KNOCKS }, (_, i) => `10.199.0.${40 + i}`);
/** How long each client keeps trying port 2222 after its last knock. */
const CHECK_TIMEOUT_MS = 10_000;
const GOAL_OPENED = 0.9;


async function prepareLab(lab) {
  // Spoofed sources have no route back: no reverse-path filtering, no conntrack entries for them.
  await must(lab, lab.server, ['sysctl', '-q', '-w', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', `net.ipv4.conf.${lab.server.ifname}.rp_filter=0`], 'rp_filter');
  await must(lab, lab.server, ['nft', '-f', '-'], 'notrack table', `table ip kwbench {\n chain pre {\n type filter hook prerouting priority raw; policy accept;\n ip saddr ${FLOOD_NET} notrack\n }\n}\n`);
  for (const a of KNOCKERS) await must(lab, lab.client, ['ip', 'addr', 'add', `${a}/24`, 'dev', lab.client.ifname], 'knocker address');
  const link = JSON.parse(await must(lab, lab.server, ['ip', '-j', 'link', 'show', lab.server.ifname], 'server link'));
  return link[0].address;
}

/** The flood: SYNs to the door's first knock port only. */
function runFirstPortFlood(lab, serverMac, onStart) {
  const settings = { serverMac, seconds: SECONDS, pps: PPS, threads: THREADS, srcNet: FLOOD_NET, nice: FLOOD_NICE };
  return runFlood(lab, { ...settings, args: ['--udp-percent', '0', '--dport', String(SEQUENCE[0])] }, onStart);
}

/** The nice value of a process (field 19 of /proc/PID/stat), or '?'. */
function niceOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  } catch {
    return '?';
  }
}

async function knockOnce(lab, from) {
  const r = await lab.run(lab.client, [
    process.execPath, cli, 'knock', lab.server.v4, ...SEQUENCE.map(String), '--source', from, '--check', String(DOOR_PORT), '--timeout', String(CHECK_TIMEOUT_MS),
  ]);
  // --check exits 0 open, 3 refused, 4 filtered (no answer); anything else is the client failing.
  if (![0, 3, 4].includes(r.exitCode)) throw new Error(`knock client from ${from} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  return { from, connected: r.exitCode === 0 };
}

async function runBackend(lab, capture, configPath, serverMac) {
  const daemon = await startDaemonProcess(lab, { cliPath: cli, configPath, firewall: 'nftables', capture, logLevel: 'info' }, 30_000);
  const knocks = [];
  let stopped = false;
  try {
    const mark = daemon.lines.length;
    const before = { ...(await interfaceCounters(lab, lab.server)), softnet: softnetDropped(), load: loadavg() };
    const flood = await runFirstPortFlood(lab, serverMac, () => {
      // Spread through the flood, leaving the last ~1.5 s for the clients' start-up.
      KNOCKERS.forEach((from, i) => knocks.push(sleep((SECONDS * 1000 * (i + 0.5)) / (KNOCKERS.length + 1)).then(() => knockOnce(lab, from))));
    });
    const results = await Promise.all(knocks);
    const daemonNice = niceOf(daemon.pid);
    const after = { ...(await interfaceCounters(lab, lab.server)), softnet: softnetDropped(), load: loadavg() };
    const kernel = { rxPackets: after.rxPackets - before.rxPackets, rxDropped: after.rxDropped - before.rxDropped, softnetDropped: after.softnet - before.softnet, loadBefore: before.load, loadAfter: after.load };
    const stopMark = daemon.lines.length;
    await daemon.stop(15_000);
    stopped = true;
    const fatal = daemon.find((l) => l.level >= 60);
    if (fatal.length > 0) throw new Error(`daemon (${capture}) failed: ${fatal.map((l) => JSON.stringify(l)).join('\n')}`);
    const opened = new Set(daemon.find((l) => l.msg === 'access opened', mark).map((l) => l.source));
    const summary = daemon.find((l) => /capture (stopped|detached)/.test(l.msg) || l.msg === 'eBPF capture detached', stopMark).at(-1);
    const restarts = daemon.find((l) => l.msg === 'reopening live capture', mark).length;
    const priority = { nice: daemonNice, refused: daemon.find((l) => l.msg.startsWith('capture priority not raised'))[0]?.err };
    return { capture, flood, kernel, priority, results: results.map((k) => ({ ...k, opened: opened.has(k.from) })), summary, restarts, final: daemon.find((l) => l.msg === 'knockwatch stopped', stopMark).at(-1) };
  } finally {
    if (!stopped) {
      daemon.signal('SIGKILL');
      await daemon.exited;
    }
    await Promise.allSettled(knocks);
  }
}

async function main() {
  const reason = await labUnavailableReason();
  if (reason) throw new Error(`the bench ${reason}`);
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build`);
  if (BACKENDS.includes('ebpf')) {
    const why = await ebpfUnavailableReason(undefined, 'tc');
    if (why) throw new Error(why);
  }
  buildFlood();
  console.log(`flood at the first knock port: ${SECONDS} s at ${PPS} SYN/s to port ${SEQUENCE[0]} from ${FLOOD_NET}, ${KNOCKS} real knocks, backends ${BACKENDS.join(', ')}; load ${loadavg()}`);
  const dir = await mkdtemp(join(tmpdir(), 'knockwatch-flood1-'));
  const lab = await createLab('flood1');
  let failed = false;
  try {
    const serverMac = await prepareLab(lab);
    await startGreetingService(lab, lab.server, DOOR_PORT, 'door');
    const configPath = join(dir, 'knockwatch.yaml');
    await writeFile(configPath, ['interface: kw0', 'firewall: nftables', 'doors:', '  - name: ssh', `    sequence: [${SEQUENCE.join(', ')}]`, '    window: 5s', `    open: [${DOOR_PORT}]`, `    duration: ${DURATION_MS}ms`, ''].join('\n'));
    for (const capture of BACKENDS) {
      const r = await runBackend(lab, capture, configPath, serverMac);
      const ok = r.results.filter((k) => k.opened && k.connected).length;
      const missing = r.results.filter((k) => !(k.opened && k.connected)).map((k) => `${k.from}${k.opened ? ' (logged, no connect)' : ''}`);
      // The goal counts a knock that opened (log) and let the client in (connect).
      console.log(`\n${capture}: flood ${r.flood.sent} packets at ${Math.round(r.flood.pps)}/s`);
      console.log(`  real knocks opened: ${ok}/${r.results.length}${missing.length ? ` (missing: ${missing.join(', ')})` : ''} -> ${ok >= GOAL_OPENED * r.results.length ? 'goal met' : 'goal NOT met'}`);
      console.log(`  opened by the log: ${r.results.filter((k) => k.opened).length}/${r.results.length}; connected within ${CHECK_TIMEOUT_MS / 1000} s: ${r.results.filter((k) => k.connected).length}`);
      console.log(`  capture reopened during the run: ${r.restarts}`);
      console.log(`  daemon nice value: ${r.priority.nice}${r.priority.refused ? ` (not raised: ${r.priority.refused})` : ''}; flood generator's: ${FLOOD_NICE}`);
      console.log(`  frames decoded by the daemon: ${r.final?.packets ?? '?'}`);
      if (r.summary) {
        const { level, time, pid, hostname, ...fields } = r.summary;
        console.log(`  capture summary: ${JSON.stringify(fields)}`);
      } else console.log('  capture summary: none logged');
      const k = r.kernel;
      console.log(`  kernel: the server interface received ${k.rxPackets} frames, dropped ${k.rxDropped} (ps_ifdrop); softnet backlog drops ${k.softnetDropped} (host-wide)`);
      if (capture === 'pcap' && r.summary && typeof r.summary.captured === 'number') {
        // cap 0.2.1 has no pcap_stats(): ps_drop (the ring's drops) is what the
        // interface received and the filter admitted but the capture process never got.
        // Every flood frame passes the filter, so received - captured is ps_drop within
        // the few frames the filter refuses (ARP, the clients' ACKs).
        console.log(`  capture ring drops (ps_drop, = received - captured): ~${Math.max(0, k.rxPackets - r.summary.captured)} (${((100 * Math.max(0, k.rxPackets - r.summary.captured)) / Math.max(1, k.rxPackets)).toFixed(1)} %)`);
      }
      console.log(`  load average: ${k.loadBefore} before the flood, ${k.loadAfter} after (a shared 2-core machine)`);
      if (ok < GOAL_OPENED * r.results.length) failed = true;
    }
  } finally {
    await lab.destroy();
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`\nload after: ${loadavg()}${failed ? '; goal NOT met' : ''}`);
}

runBench('bench:flood-first', main);
