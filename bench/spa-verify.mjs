#!/usr/bin/env node
// What the spa verifier costs per datagram, in this process with no capture:
// junk of the wrong length, junk of the right length (unknown hint: one Map
// lookup), forged ciphertext on a captured hint (AEAD opens, bounded by the
// failed-open budget), and an accepted datagram; plus the state file's
// durable write (lease renewal: write, fsync, rename, fsync directory).
//   npm run build && node bench/spa-verify.mjs [--users 100] [--n 2000000]
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { values } = parseArgs({ options: { users: { type: 'string', default: '100' }, n: { type: 'string', default: '2000000' }, dist: { type: 'string', default: new URL('../dist', import.meta.url).pathname } } });
const USERS = Number(values.users);
const N = Number(values.n);
const lib = (p) => import(join(values.dist, p));
const { createSpaServer } = await lib('spa/server.js');
const { verifyDatagram } = await lib('spa/verify.js');
const { deriveKeys } = await lib('spa/keys.js');
const { knockDatagram } = await lib('spa/seal.js');
const { parseAddress } = await lib('spa/address.js');
const { openSpaStateStore } = await lib('daemon/spa-state-store.js');
const { leaseRecord } = await lib('spa/strike-register.js');

const T0 = Date.now();
const users = Array.from({ length: USERS }, (_, i) => ({ name: `u${i}`, keys: [deriveKeys(Buffer.alloc(32, i + 1), `u${i}`)] }));
const door = { name: 'ssh', port: 62201, totp: false, allowIp: 'source', maxAgeMs: 30_000, durationMs: 30_000 };
const server = () => createSpaServer({ users, doors: [door] });
const SRC = '192.0.2.10';
const junk = Array.from({ length: 4096 }, () => {
  const d = randomBytes(101);
  d[0] = 1;
  return d;
});

function per(label, n, fn) {
  for (let i = 0; i < Math.min(n, 100_000); i++) fn(i); // warm-up
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const ns = Number(process.hrtime.bigint() - t) / n;
  console.log(`${label.padEnd(52)} ${ns < 1000 ? `${ns.toFixed(0)} ns` : `${(ns / 1000).toFixed(2)} us`}  (${((ns * 1e6) / 1e9).toFixed(3)} s per million)`);
}

const s1 = server();
const short = Buffer.alloc(64);
per('wrong length', N, () => verifyDatagram(s1, short, SRC, 62201, T0));
per(`right length, unknown hint (${USERS} users)`, N, (i) => verifyDatagram(s1, junk[i & 4095], SRC, 62201, T0 + i / 1000));
const key = Buffer.alloc(32, 1);
const real = knockDatagram({ key, user: 'u0', door: 'ssh', address: parseAddress(SRC), time: T0 });
const forged = Buffer.from(real);
forged[50] ^= 1;
const s2 = server();
s2.hints.advance(T0);
const entry = s2.hints.lookup(forged, 1);
per('forged on a captured hint, budget spent (no AEAD)', N / 10, () => verifyDatagram(s2, forged, SRC, 62201, T0));
per('forged on a captured hint, AEAD open that fails', 20_000, () => {
  entry.fails = undefined; // a fresh per-hint budget each time: the open itself
  s2.hints.failed = () => {};
  return verifyDatagram(s2, forged, SRC, 62201, T0);
});
const datagrams = Array.from({ length: 20_000 }, () => knockDatagram({ key, user: 'u0', door: 'ssh', address: parseAddress(SRC), time: T0 }));
const s3 = server();
s3.opens.set('u0', { tokens: 1e12, last: T0 });
per('accepted (AEAD open, parse, replay insert)', 20_000, (i) => verifyDatagram(s3, datagrams[i], SRC, 62201, T0));

const dir = mkdtempSync(join(tmpdir(), 'kw-spa-bench-'));
try {
  const store = await openSpaStateStore(dir);
  const ms = [];
  for (let i = 0; i < 200; i++) {
    const t = process.hrtime.bigint();
    await store.write(leaseRecord(Date.now(), 0, 30_000, []));
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const p = (q) => ms[Math.min(ms.length - 1, Math.ceil(q * ms.length) - 1)].toFixed(2);
  console.log(`state file durable write (lease), 200 writes: p50 ${p(0.5)} ms, p90 ${p(0.9)} ms, max ${ms.at(-1).toFixed(2)} ms (${tmpdir()})`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`load average: ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);
