#!/usr/bin/env node
// Records the spa replay fixtures in fixtures/spa/: real tcpdump captures on
// the server side of a two-namespace lab while the client namespace sends spa
// datagrams, with the test keys in fixtures/keys/ (public: fixtures only).
//
//   npm run build && node scripts/record-spa-fixtures.mjs [NAME...]
//
// Root only (network namespaces). Writes fixtures/spa/<name>.pcap, its
// <name>.expected.jsonl (what `knockwatch replay --json --verbose` prints for
// it, checked here against the scenario's expected opens and rejections
// before anything is replaced), spa.yaml and manifest.json.
// A datagram sent again byte for byte is sealed here with the client's own
// code (dist/spa/seal.js) and sent with a plain UDP socket; the others are
// sent by `knockwatch knock`. Kept apart from fixtures/manifest.json: replay
// must read these keys with mode 0600, so the test runs on copies.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = `${ROOT}fixtures/spa`;
const KEYS = `${ROOT}fixtures/keys`;
const CLI = `${ROOT}dist/cli.js`;
const LAB = `${ROOT}dist/lab/netns.js`;

const SERVER4 = '10.199.0.1';
const CLIENT4 = '10.199.0.2';
const EXTRA4 = '10.199.0.3';
const SERVER6 = 'fd00:6b77::1';
const CLIENT6 = 'fd00:6b77::2';
const PORT = 62201;

const CONFIG = `# Doors for the spa fixtures (fixtures/spa/manifest.json). Key paths are
# relative to this file; replay refuses keys that group or others can read,
# so tests copy fixtures/ and chmod 600 the keys first.
users:
  - name: alice
    key_file: ../keys/alice.key
    totp_file: ../keys/alice.totp
  - name: bob
    key_file: ../keys/bob.key
doors:
  - name: ssh
    spa: ${PORT}/udp
    open: [2222]
    duration: 20s
  - name: alice-only
    spa: ${PORT}/udp
    users: [alice]
    open: [2223]
    duration: 20s
  - name: totp
    spa: ${PORT}/udp
    users: [alice]
    totp: true
    open: [2224]
    duration: 20s
`;

/** Each scenario: what the client sends, and what replay must say (opens, then rejections by reason). */
const SCENARIOS = [
  {
    name: 'spa-correct',
    description: 'alice knocks door ssh from 10.199.0.2 (knockwatch knock), then from fd00:6b77::2. The ssh door opens for both.',
    opens: [`ssh ${CLIENT4}`, `ssh ${CLIENT6}`],
    rejects: [],
    datagrams: 2,
    send: async ({ knock }) => {
      await knock([SERVER4, '--door', 'ssh', '--key-file', 'alice.key', '--source', CLIENT4]);
      await knock([SERVER6, '--door', 'ssh', '--key-file', 'alice.key', '--source', CLIENT6]);
    },
  },
  {
    name: 'spa-replayed',
    description: 'alice\'s datagram for ssh from 10.199.0.2, then the same bytes again from 10.199.0.2 and from 10.199.0.3. It opens once; both copies are rejected as replayed.',
    opens: [`ssh ${CLIENT4}`],
    rejects: [`replayed ${CLIENT4}`, `replayed ${EXTRA4}`],
    datagrams: 3,
    send: async ({ seal, raw }) => {
      const d = seal({ key: 'alice.key', user: 'alice', door: 'ssh', address: CLIENT4 });
      await raw(CLIENT4, SERVER4, d);
      await sleep(200);
      await raw(CLIENT4, SERVER4, d);
      await raw(EXTRA4, SERVER4, d);
    },
  },
  {
    name: 'spa-wrong-key',
    description: 'A datagram sealed with a key no user has (mallory.key) for door ssh. Rejected: unknown hint.',
    opens: [],
    rejects: [`unknown-hint ${CLIENT4}`],
    datagrams: 1,
    send: ({ knock }) => knock([SERVER4, '--door', 'ssh', '--key-file', 'mallory.key', '--user', 'alice', '--source', CLIENT4]),
  },
  {
    name: 'spa-stale',
    description: "alice's datagram for ssh stamped 45 s before it was sent (max_age 30 s). Rejected: stale.",
    opens: [],
    rejects: [`stale ${CLIENT4}`],
    datagrams: 1,
    send: ({ seal, raw }) => raw(CLIENT4, SERVER4, seal({ key: 'alice.key', user: 'alice', door: 'ssh', address: CLIENT4, time: Date.now() - 45_000 })),
  },
  {
    name: 'spa-wrong-door',
    description: "bob knocks door alice-only (users: [alice]). Rejected: user not allowed.",
    opens: [],
    rejects: [`user-not-allowed ${CLIENT4}`],
    datagrams: 1,
    send: ({ knock }) => knock([SERVER4, '--door', 'alice-only', '--key-file', 'bob.key', '--source', CLIENT4]),
  },
  {
    name: 'spa-totp',
    description:
      'alice knocks door totp with the right TOTP code (typed on stdin) from 10.199.0.2: it opens. Then from 10.199.0.3 with a wrong code (rejected: totp-wrong), then with the same right code again (rejected: totp-reused).',
    opens: [`totp ${CLIENT4}`],
    rejects: [`totp-wrong ${EXTRA4}`, `totp-reused ${EXTRA4}`],
    datagrams: 3,
    send: async ({ knock, code }) => {
      const right = code();
      await knock([SERVER4, '--door', 'totp', '--key-file', 'alice.key', '--totp', '--source', CLIENT4], `${right}\n`);
      const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0');
      await knock([SERVER4, '--door', 'totp', '--key-file', 'alice.key', '--totp', '--source', EXTRA4], `${wrong}\n`);
      await knock([SERVER4, '--door', 'totp', '--key-file', 'alice.key', '--totp', '--source', EXTRA4], `${right}\n`);
    },
  },
];

async function startCapture(lab, file) {
  const child = lab.spawn(lab.server, ['tcpdump', '-i', 'kw0', '--immediate-mode', '-U', '-Z', 'root', '-w', file, `udp dst port ${PORT}`], { buffer: false, stdin: 'ignore' });
  let err = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start capturing in 5 s: ${err}`)), 5000);
    child.stderr.on('data', (d) => {
      err += String(d);
      if (err.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.then((r) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump exited early (${r.exitCode}): ${err}`));
    });
  });
  return async () => {
    child.kill('SIGINT');
    const r = await child;
    if (r.exitCode !== 0) throw new Error(`tcpdump exited with ${r.exitCode}: ${err}`);
  };
}

const RAW = `
const dgram = require('node:dgram');
const [from, host, port, hex] = process.argv.slice(1);
const s = dgram.createSocket(from.includes(':') ? 'udp6' : 'udp4');
s.bind({ address: from, port: 0 }, () => s.send(Buffer.from(hex, 'hex'), Number(port), host, (err) => { s.close(); if (err) { console.error(err.message); process.exit(1); } }));`;

async function record(createLab, lib, keysDir, s) {
  const tmp = `${OUT}/.recording-${s.name}.pcap`;
  await rm(tmp, { force: true });
  const lab = await createLab(s.name);
  try {
    const stop = await startCapture(lab, tmp);
    const must = async (argv, input) => {
      const r = await lab.run(lab.client, argv, { cwd: keysDir, ...(input !== undefined ? { input } : {}) });
      if (r.exitCode !== 0) throw new Error(`'${argv.slice(0, 5).join(' ')} ...' exited ${r.exitCode}: ${r.stderr}`);
    };
    const keyOf = async (f) => lib.keys.parseKeyText(f, await readFile(join(keysDir, f), 'utf8'));
    const keyCache = { 'alice.key': await keyOf('alice.key'), 'bob.key': await keyOf('bob.key') };
    const totp = lib.keys.parseTotpText('alice.totp', await readFile(join(keysDir, 'alice.totp'), 'utf8'));
    await s.send({
      knock: (args, input) => must(['node', CLI, 'knock', ...args], input),
      seal: (o) =>
        lib.seal.knockDatagram({ key: keyCache[o.key], user: o.user, door: o.door, address: lib.address.parseAddress(o.address), time: o.time ?? Date.now() }),
      raw: (from, host, d) => must(['node', '-e', RAW, from, host, String(PORT), d.toString('hex')]),
      code: () => lib.totp.totpCode(totp, lib.totp.totpStep(Date.now())),
    });
    await sleep(300);
    await stop();
  } finally {
    await lab.destroy();
  }
  return tmp;
}

/** Replays a capture against spa.yaml in `workDir` (keys 0600 there) and returns the JSON lines. */
async function replay(workDir, pcap) {
  const { stdout } = await run('node', [CLI, 'replay', pcap, '--config', join(workDir, 'spa', 'spa.yaml'), '--json', '--verbose', '--quiet']);
  return stdout;
}

function check(s, jsonl) {
  const lines = jsonl.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
  const opens = lines.filter((d) => d.type === 'open').map((d) => `${d.door} ${d.source}`);
  const rejects = lines.filter((d) => d.type === 'reject').map((d) => `${d.reason} ${d.source}`);
  const same = (a, b) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
  if (!same(opens, s.opens)) throw new Error(`${s.name}: replay opened [${opens}], expected [${s.opens}]`);
  if (!same(rejects, s.rejects)) throw new Error(`${s.name}: replay rejected [${rejects}], expected [${s.rejects}]`);
}

/** A copy of fixtures/keys and fixtures/spa/spa.yaml with the keys at mode 0600. */
export async function privateCopy() {
  const work = await mkdtemp(join(tmpdir(), 'kw-spa-fixtures-'));
  await mkdir(join(work, 'keys'), { mode: 0o700 });
  await mkdir(join(work, 'spa'));
  for (const f of ['alice.key', 'bob.key', 'mallory.key', 'alice.totp']) {
    await copyFile(join(KEYS, f), join(work, 'keys', f));
    await chmod(join(work, 'keys', f), 0o600);
  }
  await writeFile(join(work, 'spa', 'spa.yaml'), CONFIG);
  return work;
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('must run as root (it builds network namespaces)');
  for (const f of [CLI, LAB]) if (!existsSync(f)) throw new Error(`${f} is missing: run 'npm run build' first`);
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown fixture(s): ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const { createLab } = await import(LAB);
  const lib = {
    seal: await import(`${ROOT}dist/spa/seal.js`),
    keys: await import(`${ROOT}dist/spa/keys.js`),
    address: await import(`${ROOT}dist/spa/address.js`),
    totp: await import(`${ROOT}dist/spa/totp.js`),
  };
  await mkdir(OUT, { recursive: true });
  await writeFile(`${OUT}/spa.yaml`, CONFIG);
  const manifest = SCENARIOS.map((s) => ({ file: `${s.name}.pcap`, config: 'spa.yaml', expected: `${s.name}.expected.jsonl`, datagrams: s.datagrams, description: s.description, expectedOpens: s.opens, expectedRejects: s.rejects }));
  await writeFile(`${OUT}/manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`);
  const work = await privateCopy();
  try {
    for (const s of SCENARIOS) {
      if (wanted.length > 0 && !wanted.includes(s.name)) continue;
      const t = performance.now();
      const tmp = await record(createLab, lib, join(work, 'keys'), s);
      const { stdout: count } = await run('tcpdump', ['-r', tmp, '-n', '-q'], { maxBuffer: 1 << 20 });
      const n = count.split('\n').filter((l) => l.trim() !== '').length;
      if (n !== s.datagrams) throw new Error(`${s.name}: captured ${n} datagrams, sent ${s.datagrams}`);
      const jsonl = await replay(work, tmp);
      check(s, jsonl);
      await chmod(tmp, 0o644);
      await rename(tmp, `${OUT}/${s.name}.pcap`);
      await writeFile(`${OUT}/${s.name}.expected.jsonl`, jsonl);
      console.log(`${s.name.padEnd(16)} ${String(n).padStart(3)} datagrams  ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`record-spa-fixtures: ${err.message}`);
  process.exitCode = 1;
});
