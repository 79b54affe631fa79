#!/usr/bin/env node
// Knock-to-open latency: from sending the last knock to the first accepted
// TCP connection on the door's port, for knockwatch (the built daemon, real
// libpcap capture, real nftables or iptables) and for knockd (Debian's
// knockd, iptables via its start_command), in the same two-namespace lab.
// Each round knocks from a fresh source address (10.199.0.10 on), so every
// round starts with no sequence state and no access.
//
// The connect side retries fast: a non-blocking connect every --retry-ms,
// each abandoned after --give-up-ms, stopping at the first that is accepted;
// a plain connect would wait for SYN retransmission (1 s) after a dropped SYN.
//
// Needs root. Build first (`npm run build`), then:
//   node bench/latency.mjs [--rounds 50] [--firewall nftables|iptables] [--no-knockd] [--dist DIR]
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir, release } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '50' },
    firewall: { type: 'string', default: 'nftables' },
    'no-knockd': { type: 'boolean', default: false },
    'retry-ms': { type: 'string', default: '1' },
    'give-up-ms': { type: 'string', default: '2' },
    dist: { type: 'string', default: new URL('../dist', import.meta.url).pathname },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: node bench/latency.mjs [--rounds N] [--firewall nftables|iptables] [--no-knockd] [--retry-ms MS] [--give-up-ms MS] [--dist DIR]\n');
  process.exit(0);
}
const ROUNDS = Number(values.rounds);
const RETRY_MS = Number(values['retry-ms']);
const GIVE_UP_MS = Number(values['give-up-ms']);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 200) throw new Error(`--rounds must be 1-200, got ${values.rounds}`);
if (!(RETRY_MS >= 1) || !(GIVE_UP_MS >= 1)) throw new Error('--retry-ms and --give-up-ms must be >= 1');
if (!['nftables', 'iptables'].includes(values.firewall)) throw new Error(`--firewall must be nftables or iptables, got ${values.firewall}`);

const dist = resolve(values.dist);
const cliPath = join(dist, 'cli.js');
if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run \`npm run build\` first`);
const lib = (p) => import(pathToFileURL(join(dist, p)).href);
const { createLab, labUnavailableReason } = await lib('lab/netns.js');
const { startDaemonProcess } = await lib('lab/daemon-process.js');
const { startGreetingService } = await lib('lab/connect.js');

const reason = await labUnavailableReason();
if (reason) {
  process.stderr.write(`bench/latency.mjs ${reason}\n`);
  process.exit(1);
}

const SEQUENCE = [1234, 5678, 9012];
const PORT = 2222;
/** Time limit for one round's connect loop; a round past it counts as a failure. */
const MAX_MS = 3000;
/** Between rounds, so one round's packets are not in flight during the next. */
const PAUSE_MS = 50;

// Runs in the client namespace: per source, the three knocks with our own
// client's sendSyn, then the fast connect loop. Prints one JSON array of ms (null = failed).
const CLIENT = `
import net from 'node:net';
const { sendSyn } = await import(process.argv[2]);
const o = JSON.parse(process.argv[1]);
const target = { address: o.host, family: 4 };
function firstAccept(from, t0) {
  return new Promise((resolve) => {
    let done = false;
    const live = new Set();
    const finish = (ms) => {
      done = true;
      clearInterval(every);
      clearTimeout(limit);
      for (const s of live) s.destroy();
      resolve(ms);
    };
    const attempt = () => {
      if (done) return;
      const s = net.connect({ host: o.host, port: o.port, localAddress: from });
      live.add(s);
      const giveUp = setTimeout(() => { live.delete(s); s.destroy(); }, o.giveUpMs);
      s.once('connect', () => { clearTimeout(giveUp); if (!done) finish(performance.now() - t0); });
      s.on('error', () => { clearTimeout(giveUp); live.delete(s); });
    };
    const every = setInterval(attempt, o.retryMs);
    const limit = setTimeout(() => finish(null), o.maxMs);
    attempt();
  });
}
const results = [];
for (const from of o.sources) {
  for (const port of o.sequence) await sendSyn(target, port, from);
  const t0 = performance.now();
  results.push(await firstAccept(from, t0));
  await new Promise((r) => setTimeout(r, o.pauseMs));
}
console.log(JSON.stringify(results));
`;

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summarize(name, results) {
  const ok = results.filter((r) => r !== null).sort((a, b) => a - b);
  return { name, n: ok.length, failures: results.length - ok.length, p50: percentile(ok, 50), p90: percentile(ok, 90), min: ok[0], max: ok[ok.length - 1] };
}

async function measure(lab, sources) {
  const knockModule = pathToFileURL(join(dist, 'client/knock.js')).href;
  const args = { host: lab.server.v4, port: PORT, sequence: SEQUENCE, sources, retryMs: RETRY_MS, giveUpMs: GIVE_UP_MS, maxMs: MAX_MS, pauseMs: PAUSE_MS };
  const r = await lab.run(lab.client, [process.execPath, '--input-type=module', '-e', CLIENT, JSON.stringify(args), knockModule]);
  if (r.exitCode !== 0) throw new Error(`latency client failed (${r.exitCode}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function inServer(lab, argv, input) {
  const r = await lab.run(lab.server, argv, input === undefined ? {} : { input });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
  return r.stdout;
}

async function benchKnockwatch(lab, dir, sources) {
  const configPath = join(dir, 'knockwatch.yaml');
  writeFileSync(
    configPath,
    `interface: kw0\nfirewall: ${values.firewall}\ncapture: pcap\ndoors:\n  - name: ssh\n    sequence: [${SEQUENCE.join(', ')}]\n    window: 10s\n    open: [${PORT}/tcp]\n    duration: 10m\n`,
  );
  const daemon = await startDaemonProcess(lab, { cliPath, configPath, firewall: values.firewall, capture: 'pcap', logLevel: 'info' });
  try {
    await sleep(200);
    const results = await measure(lab, sources);
    const opened = daemon.find((l) => l.msg === 'access opened').length;
    if (opened !== sources.length) process.stderr.write(`warning: knockwatch logged ${opened} opens for ${sources.length} rounds\n`);
    return results;
  } finally {
    await daemon.stop();
  }
}

async function knockdUnavailable() {
  const { execa } = await import('execa');
  const r = await execa('knockd', ['-V'], { reject: false });
  return r.exitCode === 0 || /knockd/.test(String(r.stdout) + String(r.stderr)) ? undefined : 'knockd is not installed (Debian package knockd)';
}

async function benchKnockd(lab, dir, sources) {
  const conf = join(dir, 'knockd.conf');
  writeFileSync(
    conf,
    [
      '[options]',
      `    LogFile = ${join(dir, 'knockd.log')}`,
      '[door]',
      `    sequence = ${SEQUENCE.join(',')}`,
      '    seq_timeout = 10',
      '    tcpflags = syn',
      `    start_command = iptables -I INPUT -s %IP% -p tcp --dport ${PORT} -j ACCEPT`,
      '',
    ].join('\n'),
  );
  // knockd's door opens with an ACCEPT inserted above this DROP.
  await inServer(lab, ['iptables', '-A', 'INPUT', '-p', 'tcp', '--dport', String(PORT), '-j', 'DROP']);
  const child = lab.spawn(lab.server, ['knockd', '-i', lab.server.ifname, '-c', conf, '-p', join(dir, 'knockd.pid'), '-v'], { buffer: false, stdin: 'ignore' });
  try {
    await new Promise((resolveReady, reject) => {
      let out = '';
      const onData = (d) => {
        out += d.toString();
        if (/listening on/i.test(out)) resolveReady();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      void child.then(() => reject(new Error(`knockd exited: ${out.trim()}`)));
      setTimeout(() => reject(new Error(`knockd did not say it is listening within 10 s: ${out.trim()}`)), 10_000);
    });
    await sleep(200);
    return await measure(lab, sources);
  } finally {
    child.kill('SIGTERM');
    await child;
  }
}

const fmt = (ms) => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : '-');

const lab = await createLab('lat');
const dir = mkdtempSync(join(tmpdir(), 'knockwatch-latency-'));
try {
  const sources = Array.from({ length: ROUNDS }, (_, i) => `10.199.0.${10 + i}`);
  const r = await lab.run(lab.client, ['ip', '-batch', '-'], { input: sources.map((a) => `addr add ${a}/24 dev ${lab.client.ifname}\n`).join('') });
  if (r.exitCode !== 0) throw new Error(`adding source addresses failed: ${r.stderr}`);
  await startGreetingService(lab, lab.server, PORT, 'latency');

  const rows = [];
  process.stderr.write(`knockwatch (${values.firewall}): ${ROUNDS} rounds...\n`);
  rows.push(summarize(`knockwatch (${values.firewall})`, await benchKnockwatch(lab, dir, sources)));
  if (!values['no-knockd']) {
    const why = await knockdUnavailable();
    if (why) process.stderr.write(`knockd skipped: ${why}\n`);
    else {
      process.stderr.write(`knockd (iptables -I): ${ROUNDS} rounds...\n`);
      rows.push(summarize('knockd (iptables -I)', await benchKnockd(lab, dir, sources)));
    }
  }

  process.stdout.write(
    `\nknock-to-open latency: last knock sent -> first accepted connection to ${PORT}/tcp\n` +
      `${ROUNDS} rounds, one fresh source each; connect retried every ${RETRY_MS} ms, each attempt abandoned after ${GIVE_UP_MS} ms\n` +
      `node ${process.versions.node}, kernel ${release()}\n\n`,
  );
  const head = `${'daemon'.padEnd(24)}${'p50'.padStart(10)}${'p90'.padStart(10)}${'min'.padStart(10)}${'max'.padStart(10)}${'failed'.padStart(8)}`;
  process.stdout.write(`${head}\n${'-'.repeat(head.length)}\n`);
  for (const row of rows) {
    process.stdout.write(
      `${row.name.padEnd(24)}${fmt(row.p50).padStart(10)}${fmt(row.p90).padStart(10)}${fmt(row.min).padStart(10)}${fmt(row.max).padStart(10)}${String(row.failures).padStart(8)}\n`,
    );
  }
} finally {
  await lab.destroy();
  rmSync(dir, { recursive: true, force: true });
}
