#!/usr/bin/env node
// Records the secret-sequence fixtures in fixtures/secret/ (issue 11): real
// tcpdump captures on the server side of a two-namespace lab while the client
// namespace knocks with the built `knockwatch knock`, then the expected
// decisions from `knockwatch replay --json --verbose` (open, close, reject, reset).
//
//   npm run build && node scripts/record-secret-fixtures.mjs [NAME...]
//
// Root only (network namespaces). The door config (secret.yaml), the rotating
// key (rot.key: the README's example key, bytes 0..31) and the one-time file
// (once.txt, every line unused) are written here too. Replay reads the key and
// the one-time file only when neither group nor others can read them, and git
// checks files out 0644: test/e2e/secret-fixtures.test.ts copies them 0600.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIR = `${ROOT}fixtures/secret`;
const CLI = `${ROOT}dist/cli.js`;
const LAB = `${ROOT}dist/lab/netns.js`;
const ROTATING = `${ROOT}dist/client/rotating.js`;

const SERVER4 = '10.199.0.1';
const CLIENT4 = '10.199.0.2';
const EXTRA4 = '10.199.0.3';

const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const ROT = { steps: 4, periodMs: 30_000, range: { low: 20000, high: 23999 }, protocol: 'tcp' };
const DIGESTS = [
  '862b6133b45f398cf96d13429629edfc02dbc102d8108441436ced70651c7aad', // MikroTik
  'fa51fd49abf67705d6a35d18218c115ff5633aec1f9ebfdc9d5d4956416f57f6', // is
  '705db0603fd5431451dab1171b964b4bd575e2230f40f4c300d70df6e65f5f1c', // awesome
];
const ONCE = '# one-time sequences (knockd one_time_sequences format); the first unused line is valid\n41000:tcp,42000:udp,43000\n44000,45000:udp,46000\n';

const CONFIG = `# The secret-sequence fixtures' doors (fixtures/secret/manifest.json).
doors:
  - name: spk                        # spknock's example: passphrases MikroTik, is, awesome
    sequence:
      - { port: 1234/udp, sha256: ${DIGESTS[0]} }
      - { port: 9876/udp, sha256: ${DIGESTS[1]} }
      - { port: 5555/udp, sha256: ${DIGESTS[2]} }
    window: 10s
    open: [2222]
    duration: 20s
  - name: rot
    rotating: { key_file: rot.key, steps: 4, period: 30s, ports: 20000-23999, protocol: tcp }
    window: 5s
    open: [2223]
    duration: 20s
  - name: once
    one_time: once.txt
    window: 10s
    open: [2224]
    duration: 20s
`;

/** Each scenario: what the client sends (with `k` = knockwatch knock ARGS from the client namespace) and what must open. */
const SCENARIOS = [
  {
    name: 'passphrase',
    description: "spknock's three passphrases (MikroTik, is, awesome) to 1234/udp, 9876/udp, 5555/udp: each datagram carries the digest. spk opens.",
    expectedOpens: [{ door: 'spk', source: CLIENT4 }],
    knocks: 3,
    send: (k, tmp) => k([SERVER4, '1234:udp', '9876:udp', '5555:udp', '--passphrase-file', join(tmp, 'right.txt'), '--source', CLIENT4]),
  },
  {
    name: 'passphrase-wrong',
    description: "The same, with 'IS' for 'is' on the second step: reset wrong-payload, nothing opens.",
    expectedOpens: [],
    knocks: 3,
    send: (k, tmp) => k([SERVER4, '1234:udp', '9876:udp', '5555:udp', '--passphrase-file', join(tmp, 'wrong.txt'), '--source', CLIENT4]),
  },
  {
    name: 'rotating-replayed',
    description: 'The rot door: 10.199.0.2 sends the current period\'s sequence (knock --ports --key-file): rot opens. Then 10.199.0.3 sends the same four SYNs: rejected, the period is used.',
    expectedOpens: [{ door: 'rot', source: CLIENT4 }],
    expectedRejects: [{ door: 'rot', source: EXTRA4 }],
    knocks: 8,
    send: async (k, tmp, ports) => {
      await k([SERVER4, '--ports', '20000-23999', '--key-file', join(tmp, 'rot.key'), '--source', CLIENT4]);
      await sleep(200);
      await k([SERVER4, ...ports(0), '--source', EXTRA4]);
    },
  },
  {
    name: 'rotating-previous-period',
    description: 'The rot door: 10.199.0.2 sends the PREVIOUS period\'s sequence (accepted: clock skew): rot opens. 10.199.0.3 sends the sequence of two periods back: nothing.',
    expectedOpens: [{ door: 'rot', source: CLIENT4 }],
    knocks: 8,
    send: async (k, _tmp, ports) => {
      await k([SERVER4, ...ports(-1), '--source', CLIENT4]);
      await k([SERVER4, ...ports(-2), '--source', EXTRA4]);
    },
  },
  {
    name: 'one-time-reuse',
    description: 'The once door: 10.199.0.2 sends the first unused line of its copy (knock --one-time-file): once opens. 10.199.0.3 replays that line: nothing. 10.199.0.2 sends the next line: once opens again.',
    expectedOpens: [
      { door: 'once', source: CLIENT4 },
      { door: 'once', source: CLIENT4 },
    ],
    knocks: 9,
    send: async (k, tmp) => {
      await k([SERVER4, '--one-time-file', join(tmp, 'once.txt'), '--source', CLIENT4]);
      await sleep(200);
      await k([SERVER4, '41000:tcp', '42000:udp', '43000:tcp', '--source', EXTRA4]);
      await sleep(200);
      await k([SERVER4, '--one-time-file', join(tmp, 'once.txt'), '--source', CLIENT4]);
    },
  },
];

async function knockPackets(file) {
  const filter = `not src host ${SERVER4} and (udp or (tcp and tcp[13] & 0x12 == 0x02))`;
  const { stdout } = await run('tcpdump', ['-r', file, '-n', '-q', filter]);
  return stdout.split('\n').filter((l) => l.trim() !== '').length;
}

async function startCapture(lab, file) {
  const child = lab.spawn(lab.server, ['tcpdump', '-i', 'kw0', '--immediate-mode', '-U', '-Z', 'root', '-w', file], { buffer: false, stdin: 'ignore' });
  let err = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start in 5 s: ${err}`)), 5000);
    child.stderr.on('data', (d) => {
      err += String(d);
      if (err.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return async () => {
    child.kill('SIGINT');
    await child;
  };
}

/** Copies of the key and one-time file, 0600 (replay and the client refuse others-readable secrets). */
async function secretCopies() {
  const tmp = await mkdtemp(join(tmpdir(), 'kw-secret-fix-'));
  await writeFile(join(tmp, 'rot.key'), `${KEY.toString('base64')}\n`, { mode: 0o600 });
  await writeFile(join(tmp, 'once.txt'), ONCE, { mode: 0o600 });
  await writeFile(join(tmp, 'secret.yaml'), CONFIG, { mode: 0o600 });
  await writeFile(join(tmp, 'right.txt'), 'MikroTik\nis\nawesome\n', { mode: 0o600 });
  await writeFile(join(tmp, 'wrong.txt'), 'MikroTik\nIS\nawesome\n', { mode: 0o600 });
  return tmp;
}

async function record(createLab, rotatingKnock, s) {
  const tmp = await secretCopies();
  const file = `${DIR}/${s.name}.pcap`;
  const rec = `${DIR}/.recording-${s.name}.pcap`;
  const lab = await createLab(`sf${s.name.slice(0, 6)}`);
  try {
    // Not within 4 s of a period's end: the sequences sent must keep their offset to the packet times.
    const left = ROT.periodMs - (Date.now() % ROT.periodMs);
    if (left < 4000) await sleep(left + 100);
    const now = Date.now();
    const ports = (offset) => rotatingKnock(KEY, ROT, now + offset * ROT.periodMs).steps.map((p) => String(p.port));
    const stop = await startCapture(lab, rec);
    const k = async (args) => {
      const r = await lab.run(lab.client, ['node', CLI, 'knock', ...args]);
      if (r.exitCode !== 0) throw new Error(`knock ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr}`);
    };
    await s.send(k, tmp, ports);
    await sleep(300);
    await stop();
  } finally {
    await lab.destroy();
    await rm(tmp, { recursive: true, force: true });
  }
  const n = await knockPackets(rec);
  if (n !== s.knocks) throw new Error(`${s.name}: captured ${n} knock packets, sent ${s.knocks}`);
  await chmod(rec, 0o644);
  await rename(rec, file);
}

/** replay --json --verbose, keeping open, close, reject and reset: the expected decisions. */
async function expected(s) {
  const tmp = await secretCopies();
  try {
    const { stdout } = await run('node', [CLI, 'replay', `${DIR}/${s.name}.pcap`, '--config', join(tmp, 'secret.yaml'), '--json', '--verbose', '--quiet']);
    const lines = stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .filter((l) => ['open', 'close', 'reject', 'reset'].includes(JSON.parse(l).type));
    const got = lines.map((l) => JSON.parse(l)).filter((d) => d.type === 'open').map((d) => `${d.door} ${d.source}`);
    const want = s.expectedOpens.map((o) => `${o.door} ${o.source}`);
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${s.name}: replay opened [${got.join('; ')}], expected [${want.join('; ')}]`);
    await writeFile(`${DIR}/${s.name}.expected.jsonl`, lines.map((l) => `${l}\n`).join(''));
    return lines.length;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('must run as root (it builds network namespaces)');
  for (const f of [CLI, LAB, ROTATING]) if (!existsSync(f)) throw new Error(`${f} is missing: run 'npm run build' first`);
  const wanted = process.argv.slice(2);
  const { createLab } = await import(LAB);
  const { rotatingKnock } = await import(ROTATING);
  await mkdir(DIR, { recursive: true });
  await writeFile(`${DIR}/secret.yaml`, CONFIG);
  await writeFile(`${DIR}/rot.key`, `${KEY.toString('base64')}\n`);
  await writeFile(`${DIR}/once.txt`, ONCE);
  const manifest = SCENARIOS.map((s) => ({
    file: `${s.name}.pcap`,
    config: 'secret.yaml',
    expected: `${s.name}.expected.jsonl`,
    knockPackets: s.knocks,
    description: s.description,
    expectedOpens: s.expectedOpens,
    ...(s.expectedRejects ? { expectedRejects: s.expectedRejects } : {}),
  }));
  await writeFile(`${DIR}/manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`);
  for (const s of SCENARIOS) {
    if (wanted.length > 0 && !wanted.includes(s.name)) continue;
    await record(createLab, rotatingKnock, s);
    const n = await expected(s);
    console.log(`${s.name.padEnd(26)} recorded, ${n} expected decision(s)`);
  }
}

main().catch((err) => {
  console.error(`record-secret-fixtures: ${err.message}`);
  process.exitCode = 1;
});
