// spa in the daemon without a network (src/daemon/spa-runtime.ts and
// spa-daemon.ts): the state file across clean stops and crashes
// (requirement 6), the clock floor (requirement 7), log lines, and a reload
// that removes a user (requirement 10). Real files in a temp dir; the system
// clock is injected.
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSpaDaemon } from '../../src/daemon/spa-daemon.js';
import { startSpaRuntime } from '../../src/daemon/spa-runtime.js';
import { STATE_FILE } from '../../src/daemon/spa-state-store.js';
import { LEASE_AHEAD_MS } from '../../src/spa/strike-register.js';
import { verifyDatagram } from '../../src/spa/verify.js';
import type { KnockwatchConfig, SpaDoor } from '../../src/types.js';
import { KEY_A, KEY_B, T0, datagram, user } from './spa-support.js';

const door: SpaDoor = { kind: 'spa', name: 'ssh', port: 62201, totp: false, allowIp: 'source', maxAgeMs: 30_000, open: [{ port: 22, protocol: 'tcp' }], durationMs: 60_000 };
const config: KnockwatchConfig = { interface: 'kw0', firewall: 'none', capture: 'pcap', maxSources: 100, doors: [door] };
const SRC = '192.0.2.10';

function logger() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

describe('spa runtime: state file, lease, floor', () => {
  let dir: string;
  let now = T0;
  const clock = () => now;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kw-spa-rt-'));
    now = T0;
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const start = (l = logger()) => startSpaRuntime(config, [user('alice', KEY_A)], { logger: l.log, stateDir: join(dir, 'state'), captureClock: clock, systemClock: clock });
  const v = (rt: Awaited<ReturnType<typeof start>>, d: Buffer, t = now) => verifyDatagram(rt.store.server, d, SRC, 62201, t);

  it('no state file: refuses client times up to now + max_age, writes a lease ahead (0600 in a 0700 dir)', async () => {
    const l = logger();
    const rt = await start(l);
    expect(rt.store.server.guard).toMatchObject({ horizonMs: T0 + 30_000, leaseUntil: T0 + LEASE_AHEAD_MS });
    expect(v(rt, datagram({ address: SRC, time: T0 }))).toMatchObject({ reason: 'before-restart' });
    now = T0 + 30_001;
    await rt.tick();
    expect(v(rt, datagram({ address: SRC, time: now })).ok).toBe(true);
    expect(((await stat(join(dir, 'state', STATE_FILE))).mode & 0o777).toString(8)).toBe('600');
    expect(((await stat(join(dir, 'state'))).mode & 0o777).toString(8)).toBe('700');
    expect(l.lines.find((x) => String(x.msg).startsWith('spa ready'))).toMatchObject({ state: 'no-state' });
    await rt.stop();
  });

  it('a clean stop saves the replay cache: after the restart the same datagram is a replay, and no horizon', async () => {
    now = T0;
    const rt = await start();
    now = T0 + 40_000;
    await rt.tick();
    const d = datagram({ address: SRC, time: now });
    expect(v(rt, d).ok).toBe(true);
    await rt.stop();
    expect(v(rt, datagram({ address: SRC, time: now }))).toMatchObject({ reason: 'no-lease' });
    now += 1000;
    const again = await start();
    expect(again.store.server.guard.horizonMs).toBe(-Infinity);
    expect(v(again, d)).toMatchObject({ reason: 'replayed' });
    expect(v(again, datagram({ address: SRC, time: now })).ok).toBe(true);
    await again.stop();
  });

  it('after a crash (no stop): datagrams up to lease + max_age are refused, later ones pass', async () => {
    const rt = await start();
    now = T0 + 40_000;
    await rt.tick();
    const d = datagram({ address: SRC, time: now });
    expect(v(rt, d).ok).toBe(true);
    const lease = rt.store.server.guard.leaseUntil;
    // No stop(): the process died. A new run reads the lease.
    now += 2000;
    const l = logger();
    const again = await start(l);
    expect(again.store.server.guard.horizonMs).toBe(lease + 30_000);
    expect(v(again, d)).toMatchObject({ reason: 'before-restart' });
    now = lease + 30_001;
    await again.tick();
    expect(v(again, datagram({ address: SRC, time: now })).ok).toBe(true);
    expect(l.lines.find((x) => String(x.msg).startsWith('spa ready'))).toMatchObject({ state: 'crash' });
    await rt.stop().catch(() => undefined);
    await again.stop();
  });

  it('a corrupt state file is a horizon from now, never an empty cache', async () => {
    const rt = await start();
    await rt.stop();
    await writeFile(join(dir, 'state', STATE_FILE), '{"version":1,"lea');
    now = T0 + 5000;
    const again = await start();
    expect(again.store.server.guard.horizonMs).toBe(now + 30_000);
    await again.stop();
  });

  it('a system clock below the persisted floor refuses spa, loudly', async () => {
    now = T0 + 3_600_000;
    const rt = await start();
    await rt.stop();
    now = T0; // an hour back
    const l = logger();
    const again = await start(l);
    expect(v(again, datagram({ address: SRC, time: now }))).toMatchObject({ reason: 'clock-below-floor' });
    expect(l.lines.some((x) => x.level === 50 && /system clock is below/.test(String(x.msg)))).toBe(true);
    await again.stop();
  });

  it('refused authenticated datagrams are logged within a budget; junk only counted', async () => {
    const l = logger();
    const rt = await start(l);
    now = T0 + 40_000;
    await rt.tick();
    const d = datagram({ address: SRC, time: now });
    for (let i = 0; i < 50; i++) {
      const verdict = v(rt, d);
      if (!verdict.ok && verdict.user !== undefined) rt.store.onRefused?.(verdict, SRC);
    }
    expect(l.lines.filter((x) => x.msg === 'spa datagram refused')).toHaveLength(20);
    await rt.stop();
  });
});

describe('spa in the daemon: keys and reload', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kw-spa-dmn-'));
    await writeFile(join(dir, 'alice.key'), `${KEY_A.toString('base64')}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'bob.key'), `${KEY_B.toString('base64')}\n`, { mode: 0o600 });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const withUsers = (...names: string[]): KnockwatchConfig => ({ ...config, users: names.map((n) => ({ name: n, keyFiles: [`${n}.key`] })) });

  it('a reload that removes a user drops their hints and closes their accesses; the replay cache survives', async () => {
    const l = logger();
    const configPath = join(dir, 'knockwatch.yaml');
    const spa = await startSpaDaemon(withUsers('alice', 'bob'), { logger: l.log, configPath, stateDir: join(dir, 'state'), captureClock: Date.now });
    const store = spa.store!;
    store.server.guard.horizonMs = -Infinity; // past the first-start horizon
    const now = Date.now();
    const aliceD = datagram({ address: SRC, time: now });
    expect(verifyDatagram(store.server, aliceD, SRC, 62201, now).ok).toBe(true);
    expect(verifyDatagram(store.server, datagram({ key: KEY_B, user: 'bob', address: '192.0.2.20', time: now }), '192.0.2.20', 62201, now).ok).toBe(true);
    const next = await spa.prepare(withUsers('bob'));
    expect(next.ends({ door: 'ssh', source: SRC, until: now + 60_000, ports: door.open } as never)).toBe(true);
    expect(next.ends({ door: 'ssh', source: '192.0.2.20', until: now + 60_000, ports: door.open } as never)).toBe(false);
    await next.apply();
    const after = spa.store!;
    expect(verifyDatagram(after.server, datagram({ address: SRC, time: now }), SRC, 62201, now)).toMatchObject({ reason: 'unknown-hint' });
    expect(after.server.replay.size).toBe(2);
    expect(l.lines.some((x) => x.msg === 'spa users removed: their hints are gone and their accesses closed')).toBe(true);
    await spa.stop();
  });

  it('a key file others can read refuses the start (and a reload), naming the file', async () => {
    await chmod(join(dir, 'bob.key'), 0o644);
    const err = await startSpaDaemon(withUsers('alice', 'bob'), { logger: logger().log, configPath: join(dir, 'k.yaml'), stateDir: join(dir, 'state'), captureClock: Date.now }).catch((e: unknown) => e as Error);
    expect(String((err as Error).message)).toMatch(/bob\.key: key file is accessible by others \(mode 0644\)/);
    const spa = await startSpaDaemon(withUsers('alice'), { logger: logger().log, configPath: join(dir, 'k.yaml'), stateDir: join(dir, 'state'), captureClock: Date.now });
    await expect(spa.prepare(withUsers('alice', 'bob'))).rejects.toThrow(/bob\.key/);
    await spa.stop();
    expect(JSON.parse(await readFile(join(dir, 'state', STATE_FILE), 'utf8'))).toMatchObject({ version: 1, replay: [] });
  });
});
