// What the flood benchmarks share: paths, environment settings, the C flood
// generator (bench/flood.c, compiled into bench/out/), commands in the lab and
// the way a bench script ends. One home, so the three flood benches
// (flood.mjs, flood-first-port.mjs, flood-completions.mjs) cannot drift apart.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const outDir = join(root, 'bench', 'out');
export const cli = join(root, 'dist', 'cli.js');
const floodSource = join(root, 'bench', 'flood.c');
const floodBinary = join(outDir, 'flood');

/** An integer setting from the environment, within [min, max]; a bad value is an error naming the variable. */
export function envInt(name, fallback, min, max) {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer ${min}-${max}, got '${text}'`);
  return n;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** Compiles bench/flood.c unless bench/out/flood is newer. */
export function buildFlood() {
  mkdirSync(outDir, { recursive: true });
  if (existsSync(floodBinary) && statSync(floodBinary).mtimeMs >= statSync(floodSource).mtimeMs) return;
  const r = spawnSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', floodBinary, floodSource], { encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run gcc to build ${floodSource} (Debian package gcc): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`gcc failed on ${floodSource}:\n${r.stderr}`);
}

/** A command in a lab host that must succeed; returns its stdout. */
export async function must(lab, host, argv, what, input) {
  const r = await lab.run(host, argv, input === undefined ? {} : { input });
  if (r.exitCode !== 0) throw new Error(`${what}: ${argv.join(' ')} exited ${r.exitCode}: ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * Runs bench/flood.c in the client namespace towards the server: `seconds`
 * at `pps` from random `srcNet` sources, plus `args` (--dport, --avoid, ...),
 * at nice value `nice` when given.
 * Calls onStart(startLine) once it sends; resolves with its final report.
 */
export function runFlood(lab, { serverMac, seconds, pps, threads, srcNet, args = [], nice }, onStart) {
  const argv = [
    // A nice value for the generator: the rate a flood arrives at does not depend on the host's scheduler.
    ...(nice === undefined ? [] : ['nice', '-n', String(nice)]),
    floodBinary,
    '--ifname', lab.client.ifname,
    '--dst-mac', serverMac,
    '--dst', lab.server.v4,
    '--seconds', String(seconds),
    '--rate', String(pps),
    '--threads', String(threads),
    '--src-net', srcNet,
    ...args,
  ];
  const child = lab.spawn(lab.client, argv, { buffer: false, stdin: 'ignore' });
  let out = '';
  let err = '';
  let started = false;
  child.stdout.on('data', (d) => {
    out += d.toString();
    const first = out.indexOf('\n');
    if (!started && first >= 0) {
      started = true;
      let line;
      try {
        line = JSON.parse(out.slice(0, first));
      } catch {
        line = undefined;
      }
      // A malformed start line is reported when the run ends (no start time).
      if (line?.event === 'start') onStart(line);
    }
  });
  child.stderr.on('data', (d) => (err += d.toString()));
  // Hard stop: it stops itself after `seconds` (alarm() backstop at +2 s).
  const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 5) * 1000);
  return child.then((r) => {
    clearTimeout(killer);
    const done = out.split('\n').find((l) => l.includes('"event":"done"'));
    if (r.exitCode !== 0 || !done) {
      throw new Error(`flood generator failed (exit ${r.exitCode ?? r.signal}): ${err.trim() || out.trim() || 'no output'}`);
    }
    return JSON.parse(done);
  });
}

/** Runs a bench's main(): prints the total time, exits 0, or 1 with the error on one line. */
export function runBench(label, main) {
  const t0 = performance.now();
  main().then(
    () => {
      console.log(`\ntotal ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      process.exit(0);
    },
    (err) => {
      console.error(`${label} failed: ${err.message}`);
      process.exit(1);
    },
  );
}

/**
 * Receive counters of a lab host's interface (its namespace's /sys), for
 * where a flood's frames went: rx_packets counts every frame the interface
 * took (all of which a capture sees unless its ring overflows), rx_dropped
 * what it dropped itself (libpcap's ps_ifdrop reads the same counter).
 */
export async function interfaceCounters(lab, host) {
  const dir = `/sys/class/net/${host.ifname}/statistics`;
  const out = await must(lab, host, ['cat', `${dir}/rx_packets`, `${dir}/rx_dropped`], 'interface counters');
  const [rxPackets, rxDropped] = out.trim().split('\n').map(Number);
  return { rxPackets, rxDropped };
}

/** Frames the kernel dropped before any interface saw them (per-CPU backlog full), summed over CPUs; host-wide. */
export function softnetDropped() {
  return readFileSync('/proc/net/softnet_stat', 'utf8')
    .trim()
    .split('\n')
    .reduce((sum, line) => sum + parseInt(line.trim().split(/\s+/)[1], 16), 0);
}
