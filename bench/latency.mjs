#!/usr/bin/env node
// Knock-to-open latency: from sending the knock (the last SYN of a sequence,
// the single spa datagram, or the fwknop client's exit) to the first accepted
// TCP connection on the door's port, side by side for
//   - knockwatch sequence doors (the built daemon, real libpcap capture, real
//     nftables or iptables),
//   - knockwatch spa doors (one ChaCha20-Poly1305 datagram to 62201/udp),
//   - knockd (Debian's knockd, iptables via its start_command),
//   - fwknopd (Debian's fwknop-server 2.6.10: libpcap, iptables, SPA with
//     Rijndael + HMAC-SHA256), as shipped (PCAP_LOOP_SLEEP 100 ms) and with a
//     1 ms loop sleep, to show how much of its time is that sleep.
// Every row runs in a fresh two-namespace lab (src/lab/netns.ts), so no row
// sees another's rules. Each round knocks from a fresh source address
// (10.199.0.10 on), so every round starts with no knock state and no access.
// fwknopd runs in the lab's server namespace only, in the foreground, with its
// config, access, pid and digest files in a temp dir; its iptables commands
// run inside that namespace (the host's firewall is never touched).
//
// The connect side retries fast: a non-blocking connect every --retry-ms,
// each abandoned after --give-up-ms, stopping at the first that is accepted;
// a plain connect would wait for SYN retransmission (1 s) after a dropped SYN.
//
// Needs root. `npm run bench:latency` installs what is missing and builds; or
//   node bench/latency.mjs [--rounds 100] [--firewall nftables,iptables]
//        [--only sequence,spa,knockd,fwknopd] [--no-knockd] [--no-fwknopd] [--dist DIR]
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir, release } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

const KINDS = ['sequence', 'spa', 'knockd', 'fwknopd'];
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '100' },
    firewall: { type: 'string', default: 'nftables,iptables' },
    only: { type: 'string', default: KINDS.join(',') },
    'no-knockd': { type: 'boolean', default: false },
    'no-fwknopd': { type: 'boolean', default: false },
    'retry-ms': { type: 'string', default: '1' },
    'give-up-ms': { type: 'string', default: '2' },
    dist: { type: 'string', default: new URL('../dist', import.meta.url).pathname },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: node bench/latency.mjs [--rounds N] [--firewall nftables,iptables] [--only sequence,spa,knockd,fwknopd]\n' +
      '                              [--no-knockd] [--no-fwknopd] [--retry-ms MS] [--give-up-ms MS] [--dist DIR]\n',
  );
  process.exit(0);
}
const ROUNDS = Number(values.rounds);
const RETRY_MS = Number(values['retry-ms']);
const GIVE_UP_MS = Number(values['give-up-ms']);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 200) throw new Error(`--rounds must be 1-200, got ${values.rounds}`);
if (!(RETRY_MS >= 1) || !(GIVE_UP_MS >= 1)) throw new Error('--retry-ms and --give-up-ms must be >= 1');
const FIREWALLS = values.firewall.split(',').map((s) => s.trim());
for (const f of FIREWALLS) if (!['nftables', 'iptables'].includes(f)) throw new Error(`--firewall: unknown firewall '${f}' (nftables, iptables)`);
const ONLY = values.only
  .split(',')
  .map((s) => s.trim())
  .filter((k) => !(values['no-knockd'] && k === 'knockd') && !(values['no-fwknopd'] && k === 'fwknopd'));
for (const k of ONLY) if (!KINDS.includes(k)) throw new Error(`--only: unknown daemon '${k}' (${KINDS.join(', ')})`);

const dist = resolve(values.dist);
const cliPath = join(dist, 'cli.js');
if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run \`npm run build\` first`);
const lib = (p) => import(pathToFileURL(join(dist, p)).href);
const { createLab, labUnavailableReason } = await lib('lab/netns.js');
const { startDaemonProcess } = await lib('lab/daemon-process.js');
const { startGreetingService } = await lib('lab/connect.js');
const { execa } = await import('execa');

const reason = await labUnavailableReason();
if (reason) {
  process.stderr.write(`bench/latency.mjs ${reason}\n`);
  process.exit(1);
}

const SEQUENCE = [1234, 5678, 9012];
const SPA_PORT = 62201;
const PORT = 2222;
/** Time limit for one round's connect loop; a round past it counts as a failure. */
const MAX_MS = 3000;
/** Between rounds, so one round's packets are not in flight during the next. */
const PAUSE_MS = 50;
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

// Runs in the client namespace: per source, the knock (o.mode), then the fast
// connect loop. Prints one JSON array of ms (null = failed).
//   sequence: the three SYNs with our own client's sendSyn (t0 after the last);
//   spa:      one datagram from our spa client (t0 once it is sent);
//   fwknop:   the fwknop client asking for the source (-a), t0 at its exit.
const CLIENT = `
import net from 'node:net';
import { spawn } from 'node:child_process';
const o = JSON.parse(process.argv[1]);
const knockMod = await import(o.knockModule);
const spaMod = o.spa ? await import(o.spa.clientModule) : undefined;
const spaKeys = o.spa ? await import(o.spa.keysModule) : undefined;
const { readFileSync } = await import('node:fs');
const spaUsers = (o.spa?.users ?? []).map((u) => ({ user: u.user, key: spaKeys.parseKeyText(u.keyFile, readFileSync(u.keyFile, 'utf8')) }));
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
function runFwknop(from) {
  return new Promise((resolve, reject) => {
    const argv = [...o.fwknop.args, '-a', from];
    const c = spawn('fwknop', argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HOME: o.fwknop.home } });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error('fwknop exited ' + code + ': ' + err.trim()))));
  });
}
const results = [];
for (const [i, from] of o.sources.entries()) {
  if (o.mode === 'sequence') {
    for (const port of o.sequence) await knockMod.sendSyn(target, port, from);
  } else if (o.mode === 'spa') {
    const u = spaUsers[Math.floor(i / o.spa.roundsPerUser)];
    await spaMod.sendSpaKnock({ host: o.host, port: o.spa.port, key: u.key, user: u.user, door: o.spa.door, sourceAddress: from });
  } else {
    await runFwknop(from);
  }
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

function summarize(name, results, load) {
  const ok = results.filter((r) => r !== null).sort((a, b) => a - b);
  return { name, n: ok.length, failures: results.length - ok.length, p50: percentile(ok, 50), p90: percentile(ok, 90), p99: percentile(ok, 99), min: ok[0], max: ok[ok.length - 1], load };
}

async function measure(lab, sources, mode, extra = {}) {
  const knockModule = pathToFileURL(join(dist, 'client/knock.js')).href;
  const args = { mode, host: lab.server.v4, port: PORT, sequence: SEQUENCE, sources, retryMs: RETRY_MS, giveUpMs: GIVE_UP_MS, maxMs: MAX_MS, pauseMs: PAUSE_MS, knockModule, ...extra };
  const r = await lab.run(lab.client, [process.execPath, '--input-type=module', '-e', CLIENT, JSON.stringify(args)]);
  if (r.exitCode !== 0) throw new Error(`latency client (${mode}) failed (${r.exitCode}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function inServer(lab, argv, input) {
  const r = await lab.run(lab.server, argv, input === undefined ? {} : { input });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
  return r.stdout;
}

/** The built daemon with `configYaml` in the lab's server namespace; `mode` knocks. */
async function benchKnockwatch(lab, dir, sources, firewall, configYaml, mode, extra, extraArgs = []) {
  const configPath = join(dir, `knockwatch-${mode}-${firewall}.yaml`);
  writeFileSync(configPath, configYaml);
  if (mode === 'spa') {
    // A first start without a state file refuses spa datagrams for max_age
    // (the run before may have accepted anything up to now: the strike
    // register, src/spa/strike-register.ts). A deployed daemon restarts from a
    // clean stop's record, which has no such horizon: start and stop once.
    const first = await startDaemonProcess(lab, { cliPath, configPath, firewall, capture: 'pcap', logLevel: 'info', extraArgs });
    await first.stop();
  }
  const daemon = await startDaemonProcess(lab, { cliPath, configPath, firewall, capture: 'pcap', logLevel: 'info', extraArgs });
  try {
    await sleep(200);
    const results = await measure(lab, sources, mode, extra);
    const ready = daemon.find((l) => l.msg.startsWith('spa ready'))[0];
    if (ready) notes.push(`knockwatch spa (${firewall}): state ${ready.state}; the strike register's lease write (fsync) took ${ready.firstLeaseMs} ms at start, renewed every 10 s off the knock path`);
    const opened = daemon.find((l) => l.msg === 'access opened').length;
    if (opened !== sources.length) {
      const refused = daemon.find((l) => l.msg === 'spa datagram refused').map((l) => `${l.source} ${l.user ?? '?'}: ${l.reason}${l.detail ? ` (${l.detail})` : ''}`);
      process.stderr.write(`warning: knockwatch (${mode}, ${firewall}) logged ${opened} opens for ${sources.length} rounds${refused.length ? `; refused: ${refused.slice(0, 10).join(', ')}` : ''}\n`);
    }
    return results;
  } finally {
    await daemon.stop();
  }
}

function sequenceConfig(firewall) {
  return `interface: kw0\nfirewall: ${firewall}\ncapture: pcap\ndoors:\n  - name: ssh\n    sequence: [${SEQUENCE.join(', ')}]\n    window: 10s\n    open: [${PORT}/tcp]\n    duration: 10m\n`;
}

// ---- knockwatch spa -----------------------------------------------------------

/** Why spa doors cannot be measured with this build, or undefined. */
function spaUnavailableReason() {
  if (!existsSync(join(dist, 'client/spa.js'))) return `${join(dist, 'client/spa.js')} is missing (spa client not built yet)`;
  return undefined;
}

/**
 * Accepted opens per spa user: the verifier allows 5 at once, then one every
 * 6 s, and 8 addresses held open per user (src/spa/verify.ts USER_OPEN_RULE,
 * MAX_ADDRESSES_PER_USER). A round a second would be refused, so every
 * 5 rounds use the next user (one key each, from `knockwatch keygen`).
 */
const SPA_ROUNDS_PER_USER = 5;

async function benchSpa(lab, dir, sources, firewall) {
  const keys = join(dir, 'keys');
  mkdirSync(keys, { mode: 0o700 });
  const users = [];
  for (let u = 0; u < Math.ceil(sources.length / SPA_ROUNDS_PER_USER); u++) {
    const user = `bench${u}`;
    const r = await execa(process.execPath, [cliPath, 'keygen', '--user', user, '--dir', keys], { reject: false });
    if (r.exitCode !== 0) throw new Error(`knockwatch keygen --user ${user} failed (${r.exitCode}): ${r.stderr}`);
    users.push({ user, keyFile: join(keys, `${user}.key`) });
  }
  const state = join(dir, `state-${firewall}`);
  mkdirSync(state, { mode: 0o700 });
  const yaml = [
    'interface: kw0',
    `firewall: ${firewall}`,
    'capture: pcap',
    'users:',
    ...users.flatMap((u) => [`  - name: ${u.user}`, `    key_file: ${u.keyFile}`]),
    'doors:',
    '  - name: ssh',
    `    spa: ${SPA_PORT}/udp`,
    `    open: [${PORT}/tcp]`,
    '    duration: 10m',
    '',
  ].join('\n');
  const spa = {
    clientModule: pathToFileURL(join(dist, 'client/spa.js')).href,
    keysModule: pathToFileURL(join(dist, 'spa/keys.js')).href,
    port: SPA_PORT,
    door: 'ssh',
    users,
    roundsPerUser: SPA_ROUNDS_PER_USER,
  };
  return benchKnockwatch(lab, dir, sources, firewall, yaml, 'spa', { spa }, ['--state-dir', state]);
}

// ---- knockd -------------------------------------------------------------------

async function knockdUnavailable() {
  const r = await execa('knockd', ['-V'], { reject: false });
  return r.exitCode === 0 || /knockd/.test(String(r.stdout) + String(r.stderr)) ? undefined : 'knockd is not installed (Debian package knockd)';
}

/** Waits for `pattern` on a child's stdout/stderr; rejects if it exits first or after `ms`. */
function waitOutput(child, pattern, what, ms = 10_000) {
  return new Promise((resolveReady, reject) => {
    let out = '';
    const onData = (d) => {
      out += d.toString();
      if (pattern.test(out)) {
        clearTimeout(timer);
        resolveReady();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void child.then(
      () => reject(new Error(`${what} exited: ${out.trim().slice(-2000)}`)),
      () => reject(new Error(`${what} exited: ${out.trim().slice(-2000)}`)),
    );
    const timer = setTimeout(() => reject(new Error(`${what} did not print ${pattern} within ${ms} ms: ${out.trim().slice(-2000)}`)), ms);
  });
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
    await waitOutput(child, /listening on/i, 'knockd');
    await sleep(200);
    return await measure(lab, sources, 'sequence');
  } finally {
    child.kill('SIGTERM');
    await child.catch(() => undefined);
  }
}

// ---- fwknopd ------------------------------------------------------------------

async function fwknopUnavailable() {
  // The client writes ~/.fwknoprc and ~/.fwknop.run even for --version unless told not to.
  for (const [argv, pkg] of [[['fwknopd', '--version'], 'fwknop-server'], [['fwknop', '--no-rc-file', '--no-save-args', '--version'], 'fwknop-client']]) {
    const r = await execa(argv[0], argv.slice(1), { reject: false });
    if (r.exitCode !== 0) return `${argv[0]} is not installed (Debian package ${pkg})`;
  }
  return undefined;
}

/**
 * fwknopd in the server namespace: one access stanza (Rijndael + HMAC-SHA256
 * keys, random per run), libpcap on kw0 with its default filter
 * `udp port 62201`, iptables (its FWKNOP_INPUT chain jumped to from INPUT
 * position 1, above our DROP). Every file it reads or writes is in `fdir`.
 * `loopSleepUs`: PCAP_LOOP_SLEEP (its default 100000: it polls libpcap, then sleeps).
 */
async function benchFwknopd(lab, dir, sources, loopSleepUs) {
  const fdir = join(dir, `fwknopd-${loopSleepUs}`);
  mkdirSync(fdir, { mode: 0o700 });
  const key = randomBytes(32).toString('base64');
  const hmac = randomBytes(64).toString('base64');
  const conf = join(fdir, 'fwknopd.conf');
  const access = join(fdir, 'access.conf');
  writeFileSync(
    conf,
    [
      `PCAP_INTF ${lab.server.ifname};`,
      `PCAP_LOOP_SLEEP ${loopSleepUs};`,
      `FWKNOP_RUN_DIR ${fdir};`,
      `FWKNOP_PID_FILE ${join(fdir, 'fwknopd.pid')};`,
      `DIGEST_FILE ${join(fdir, 'digest.cache')};`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  // 600 s: longer than the run, so no rule expires (and is removed) mid-run.
  writeFileSync(access, ['SOURCE ANY', `KEY_BASE64 ${key}`, `HMAC_KEY_BASE64 ${hmac}`, 'FW_ACCESS_TIMEOUT 600', 'MAX_FW_TIMEOUT 600', ''].join('\n'), { mode: 0o600 });
  await inServer(lab, ['iptables', '-A', 'INPUT', '-p', 'tcp', '--dport', String(PORT), '-j', 'DROP']);
  const child = lab.spawn(lab.server, ['fwknopd', '-c', conf, '-a', access, '-i', lab.server.ifname, '-f'], { buffer: false, stdin: 'ignore' });
  try {
    await waitOutput(child, /Starting fwknopd main event loop/, 'fwknopd');
    await sleep(200);
    // The client's own files (~/.fwknop.run, ~/.fwknoprc) go nowhere: no rc file, no saved args, HOME in the temp dir.
    const args = ['--no-rc-file', '--no-save-args', '-A', `tcp/${PORT}`, '-D', lab.server.v4, '--use-hmac', '--key-base64-rijndael', key, '--key-base64-hmac', hmac];
    return await measure(lab, sources, 'fwknop', { fwknop: { args, home: fdir } });
  } finally {
    child.kill('SIGTERM');
    await child.catch(() => undefined);
  }
}

// ---- main ---------------------------------------------------------------------

const fmt = (ms) => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : '-');

/** One row: a fresh lab with the greeting service on 2222 and the round's source addresses. */
async function row(name, sources, fn) {
  process.stderr.write(`${name}: ${sources.length} rounds...\n`);
  const lab = await createLab('lat');
  const dir = mkdtempSync(join(tmpdir(), 'knockwatch-latency-'));
  const loadBefore = loadavg();
  try {
    const r = await lab.run(lab.client, ['ip', '-batch', '-'], { input: sources.map((a) => `addr add ${a}/24 dev ${lab.client.ifname}\n`).join('') });
    if (r.exitCode !== 0) throw new Error(`adding source addresses failed: ${r.stderr}`);
    await startGreetingService(lab, lab.server, PORT, 'latency');
    return summarize(name, await fn(lab, dir), `${loadBefore} / ${loadavg()}`);
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

const sources = Array.from({ length: ROUNDS }, (_, i) => `10.199.0.${10 + i}`);
const rows = [];
const skipped = [];
const notes = [];
if (ONLY.includes('sequence')) {
  for (const fw of FIREWALLS) rows.push(await row(`knockwatch sequence (${fw})`, sources, (lab, dir) => benchKnockwatch(lab, dir, sources, fw, sequenceConfig(fw), 'sequence')));
}
if (ONLY.includes('spa')) {
  const why = spaUnavailableReason();
  if (why) skipped.push(`knockwatch spa: ${why}`);
  else for (const fw of FIREWALLS) rows.push(await row(`knockwatch spa (${fw})`, sources, (lab, dir) => benchSpa(lab, dir, sources, fw)));
}
if (ONLY.includes('knockd')) {
  const why = await knockdUnavailable();
  if (why) skipped.push(`knockd: ${why}`);
  else rows.push(await row('knockd (iptables -I)', sources, (lab, dir) => benchKnockd(lab, dir, sources)));
}
if (ONLY.includes('fwknopd')) {
  const why = await fwknopUnavailable();
  if (why) skipped.push(`fwknopd: ${why}`);
  else {
    rows.push(await row('fwknopd (iptables)', sources, (lab, dir) => benchFwknopd(lab, dir, sources, 100_000)));
    rows.push(await row('fwknopd (iptables, 1 ms loop)', sources, (lab, dir) => benchFwknopd(lab, dir, sources, 1000)));
  }
}

process.stdout.write(
  `\nknock-to-open latency: knock sent (last SYN / spa datagram / fwknop client exit) -> first accepted connection to ${PORT}/tcp\n` +
    `${ROUNDS} rounds per row, one fresh source each, a fresh lab per row; connect retried every ${RETRY_MS} ms, each attempt abandoned after ${GIVE_UP_MS} ms\n` +
    `node ${process.versions.node}, kernel ${release()}; load average (1/5/15 min) before / after each row shown\n\n`,
);
const head = `${'daemon'.padEnd(32)}${'p50'.padStart(10)}${'p90'.padStart(10)}${'p99'.padStart(10)}${'max'.padStart(10)}${'failed'.padStart(8)}   load`;
process.stdout.write(`${head}\n${'-'.repeat(head.length + 20)}\n`);
for (const r of rows) {
  process.stdout.write(
    `${r.name.padEnd(32)}${fmt(r.p50).padStart(10)}${fmt(r.p90).padStart(10)}${fmt(r.p99).padStart(10)}${fmt(r.max).padStart(10)}${String(r.failures).padStart(8)}   ${r.load}\n`,
  );
}
for (const s of skipped) process.stdout.write(`skipped: ${s}\n`);
for (const n of notes) process.stdout.write(`note: ${n}\n`);
const spaNft = rows.find((r) => r.name === 'knockwatch spa (nftables)');
if (spaNft) process.stdout.write(`\nspa knock-to-open p50 <= 3 ms with nftables: ${spaNft.p50.toFixed(2)} ms -> ${spaNft.p50 <= 3 && spaNft.failures === 0 ? 'goal met' : 'goal NOT met'}\n`);
const out = new URL('./out/', import.meta.url).pathname;
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'latency-last.json'), JSON.stringify({ at: new Date().toISOString(), rounds: ROUNDS, rows, skipped }, null, 2));
