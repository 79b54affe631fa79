#!/usr/bin/env node
// `npm run bench`: replay throughput against tcpdump on the same capture.
// Generates (once, cached in bench/out/) a capture of 1,000,000 spoofed-source
// TCP SYN / UDP packets with one real knock inside, replays it through the CLI
// (read + decode + detect, exactly the replay command), and in the same run
// times `tcpdump -r FILE -w /dev/null` with an equivalent filter.
// Goal: >= 3 M packets/s end to end and >= 0.25 of tcpdump's rate, knock found.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writePcap } from '../dist/capture/write.js';
import { ethernet, tcpSyn, udp } from '../dist/lab/packets.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'bench', 'out');
const PACKETS = Number(process.env.BENCH_PACKETS ?? 1_000_000);
const file = join(outDir, `flood-${PACKETS}.pcap`);
const KNOCKER = '192.0.2.77';
const SERVER = '198.51.100.1';
const START_MS = Date.UTC(2026, 0, 1);
const RUNS = 3;

// Deterministic PRNG (mulberry32): the same capture on every machine.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function* frames() {
  const rnd = prng(0x6b6e6f63);
  // The real knock's three steps sit at 30 %, 50 % and 70 % of the flood.
  const knockAt = new Map([
    [Math.floor(PACKETS * 0.3), 1234],
    [Math.floor(PACKETS * 0.5), 5678],
    [Math.floor(PACKETS * 0.7), 9012],
  ]);
  for (let i = 0; i < PACKETS; i++) {
    const time = START_MS + i * 0.001; // 1 M packets/s on the wire: one second of capture
    const knock = knockAt.get(i);
    if (knock !== undefined) {
      yield { time, data: ethernet(tcpSyn({ src: KNOCKER, dst: SERVER, sport: 40000 + i % 1000, dport: knock })) };
      continue;
    }
    const r = (rnd() * 0xffffffff) >>> 0;
    let src = `${(r >>> 24) & 255}.${(r >>> 16) & 255}.${(r >>> 8) & 255}.${r & 255}`;
    if (src === KNOCKER) src = '203.0.113.9';
    const dport = 1 + Math.floor(rnd() * 65535);
    const sport = 1024 + Math.floor(rnd() * 60000);
    const packet = rnd() < 0.7 ? tcpSyn({ src, dst: SERVER, sport, dport }) : udp({ src, dst: SERVER, sport, dport, payload: 'flood' });
    yield { time, data: ethernet(packet) };
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeRun(cmd, args, opts = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { seconds, stdout: r.stdout, stderr: r.stderr };
}

mkdirSync(outDir, { recursive: true });
if (!existsSync(file)) {
  const t0 = performance.now();
  await writePcap(file, frames(), { linkType: 1 });
  console.log(`generated ${file}: ${PACKETS} packets, ${(statSync(file).size / 1048576).toFixed(1)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

const cli = join(root, 'dist', 'cli.js');
const ours = [];
const pipeline = [];
let opens = [];
let summary = '';
for (let i = 0; i < RUNS; i++) {
  const r = timeRun(process.execPath, [cli, 'replay', file, '--json']);
  ours.push(r.seconds);
  opens = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((d) => d.type === 'open');
  summary = r.stderr.trim();
  const elapsed = /elapsed ([\d.]+) s/.exec(summary);
  if (!elapsed) throw new Error(`replay printed no summary: ${summary}`);
  pipeline.push(Number(elapsed[1]));
}

let tcpdump;
try {
  execFileSync('tcpdump', ['--version'], { stdio: 'ignore' });
  tcpdump = [];
  for (let i = 0; i < RUNS; i++) {
    tcpdump.push(timeRun('tcpdump', ['-r', file, '-w', '/dev/null', '(tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn) or udp']).seconds);
  }
} catch {
  tcpdump = undefined;
}

// Two figures for knockwatch: the pipeline (first byte read to last decision,
// as the replay command's own summary reports it) and the whole process,
// which adds Node's start-up and module loading (~0.2-0.3 s here, paid once
// per run whatever the file size). tcpdump's start-up is a few ms.
const pipelineSeconds = median(pipeline);
const oursRate = PACKETS / pipelineSeconds;
const wholeRate = PACKETS / median(ours);
const found = opens.some((o) => o.source === KNOCKER && o.door === 'ssh');
console.log(`\nreplay of ${PACKETS} packets, median of ${RUNS} runs`);
console.log(`  knockwatch replay, pipeline (read+decode+detect+output): ${pipelineSeconds.toFixed(3)} s  ${(oursRate / 1e6).toFixed(2)} M packets/s`);
console.log(`  knockwatch replay, whole process incl. Node start-up  : ${median(ours).toFixed(3)} s  ${(wholeRate / 1e6).toFixed(2)} M packets/s`);
console.log(`  last summary: ${summary}`);
if (tcpdump) {
  const tdRate = PACKETS / median(tcpdump);
  console.log(`  tcpdump -r FILE -w /dev/null (whole process)          : ${median(tcpdump).toFixed(3)} s  ${(tdRate / 1e6).toFixed(2)} M packets/s`);
  console.log(`  ratio to tcpdump: pipeline ${(oursRate / tdRate).toFixed(3)}, whole process ${(wholeRate / tdRate).toFixed(3)} (goal >= 0.25)`);
} else {
  console.log('  tcpdump not installed: comparison skipped (apt-get install tcpdump)');
}
console.log(`  real knock from ${KNOCKER}: ${found ? 'detected' : 'NOT DETECTED'}; opens in total: ${opens.length}`);
console.log(`  goal >= 3 M packets/s end to end (pipeline): ${oursRate >= 3e6 ? 'met' : 'not met'}`);
if (!found) process.exitCode = 1;
