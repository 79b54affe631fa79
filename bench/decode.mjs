// Decoder throughput: frames/s of decodeFrame() over pre-built frames, per
// traffic kind, plus the RxJS operator on the Ethernet/IPv4 SYN set.
//   npm run build && node bench/decode.mjs [--frames N]
// KNOCKWATCH_DIST=dir points at another build output (default ../dist).
// Frames are subarrays of one buffer, as a capture-file reader hands them out,
// and every frame has its own spoofed source address.
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const dist = process.env.KNOCKWATCH_DIST ? pathToFileURL(`${process.env.KNOCKWATCH_DIST.replace(/\/$/, '')}/`) : new URL('../dist/', import.meta.url);
const { decodeFrame, createDecodeStats } = await import(new URL('decode/decode.js', dist).href);
const { decodeFrames } = await import(new URL('decode/operator.js', dist).href);
const P = await import(new URL('lab/packets.js', dist).href);
const { from } = await import('rxjs');

const { values } = parseArgs({ options: { frames: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '5' } } });
const total = Number(values.frames);
// The machine is shared and has 2 cores: report the best and the median round.
const rounds = Number(values.rounds);
const DISTINCT = 65536;

function frames(build, linkType) {
  const packets = [];
  let size = 0;
  for (let i = 0; i < DISTINCT; i++) {
    const p = build(i);
    packets.push(p);
    size += p.length;
  }
  const buf = new Uint8Array(size);
  const out = [];
  let at = 0;
  for (const p of packets) {
    buf.set(p, at);
    const data = buf.subarray(at, at + p.length);
    out.push({ time: 1.7e12 + out.length, linkType, data, origLength: data.length, offset: at });
    at += p.length;
  }
  return out;
}

const v4 = (i) => `10.${(i >> 8) & 255}.${i & 255}.${(i * 7) & 255}`;
const v6 = (i) => `2001:db8:${(i >> 8).toString(16)}::${(i & 255).toString(16)}:1`;
const sets = {
  'ethernet/ipv4 tcp syn': frames((i) => P.ethernet(P.tcpSyn({ src: v4(i), dst: '10.199.0.1', sport: 40000 + (i & 1023), dport: 1234 + (i % 3) })), 1),
  'ethernet/ipv4 udp 16B': frames((i) => P.ethernet(P.udp({ src: v4(i), dst: '10.199.0.1', sport: 40000, dport: 5678, payload: 'knock-knock-1234' })), 1),
  'ethernet/ipv4 tcp ack (ignored)': frames((i) => P.ethernet(P.tcp({ src: v4(i), dst: '10.199.0.1', sport: 40000, dport: 22, flags: P.TcpFlag.ACK })), 1),
  'ethernet/ipv6 tcp syn': frames((i) => P.ethernet(P.tcpSyn({ src: v6(i), dst: 'fd00:6b77::1', sport: 40000, dport: 1234 })), 1),
  'sll2/ipv4 tcp syn': frames((i) => P.sll2(P.tcpSyn({ src: v4(i), dst: '10.199.0.1', sport: 40000, dport: 1234 })), 276),
};

// Rates by wall time and by process CPU time (user+system, all threads, so GC
// helpers count): on a busy shared machine the CPU figure is the steadier one.
function summary(name, rates, cpuRates, note) {
  const best = (xs) => Math.max(...xs);
  const median = (xs) => [...xs].sort((a, b) => b - a)[xs.length >> 1];
  const fmt = (r) => (r / 1e6).toFixed(2).padStart(6);
  console.log(
    `${name.padEnd(32)} wall best ${fmt(best(rates))} median ${fmt(median(rates))} | cpu best ${fmt(best(cpuRates))} median ${fmt(median(cpuRates))} M frames/s  (${rounds} x ${total}${note})`,
  );
}

function timed(fn) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return [total / wall, total / ((c.user + c.system) / 1e6)];
}

function run(name, set) {
  const stats = createDecodeStats();
  let sink = 0;
  // Warm-up so the timed loops measure optimized code.
  for (let i = 0; i < 200_000; i++) sink += decodeFrame(set[i % DISTINCT], stats)?.port ?? 0;
  const rates = [];
  const cpuRates = [];
  for (let r = 0; r < rounds; r++) {
    const [wall, cpu] = timed(() => {
      for (let i = 0; i < total; i++) sink += decodeFrame(set[i % DISTINCT], stats)?.port ?? 0;
    });
    rates.push(wall);
    cpuRates.push(cpu);
  }
  summary(name, rates, cpuRates, sink < 0 ? '' : `, ${stats.knocks} knocks`);
}

for (const [name, set] of Object.entries(sets)) run(name, set);

{
  const set = sets['ethernet/ipv4 tcp syn'];
  const all = Array.from({ length: total }, (_, i) => set[i % DISTINCT]);
  const rates = [];
  const cpuRates = [];
  let n = 0;
  for (let r = 0; r < rounds; r++) {
    const [wall, cpu] = timed(() => from(all).pipe(decodeFrames(createDecodeStats())).subscribe(() => n++));
    rates.push(wall);
    cpuRates.push(cpu);
  }
  summary('rxjs from(array)+decodeFrames', rates, cpuRates, `, ${n} knocks`);
}
