// The server's verdict on a datagram (src/spa/verify.ts): requirements 1, 2,
// 4, 5, 8, 9 and 10 as the verifier sees them. Costs are printed, not asserted.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DATAGRAM_BYTES } from '../../src/spa/format.js';
import { createSpaServer } from '../../src/spa/server.js';
import { totpCode, totpStep } from '../../src/spa/totp.js';
import { MAX_ADDRESSES_PER_USER, verifyDatagram, type SpaServer } from '../../src/spa/verify.js';
import { KEY_A, KEY_B, T0, TOTP_A, datagram, door, server, user } from './spa-support.js';

const SRC = '192.0.2.10';
const PORT = 62201;
const code = (t: number): number => Number(totpCode(TOTP_A, totpStep(t)));
const v = (s: SpaServer, d: Uint8Array, src = SRC, t = T0, port = PORT) => verifyDatagram(s, d, src, port, t);

describe('spa verifier: accepting', () => {
  it('opens the sealed address for the right user and door', () => {
    const s = server();
    expect(v(s, datagram())).toEqual({ ok: true, user: 'alice', door: 'ssh', address: SRC, family: 4, clientTime: T0 });
    expect(v(s, datagram({ key: KEY_B, user: 'bob' }))).toMatchObject({ ok: true, user: 'bob' });
  });
  it('accepts client clocks up to max_age off either way', () => {
    const s = server();
    expect(v(s, datagram({ time: T0 - 30_000 })).ok).toBe(true);
    expect(v(s, datagram({ time: T0 + 30_000 })).ok).toBe(true);
  });
  it('an IPv4 source seen as IPv4-mapped IPv6 matches the sealed IPv4 address', () => {
    expect(v(server(), datagram(), '::ffff:192.0.2.10').ok).toBe(true);
  });
});

describe('spa verifier: junk and forgeries (requirements 2, 4, 9)', () => {
  it('refuses wrong lengths and versions before any lookup', () => {
    const s = server();
    expect(v(s, Buffer.alloc(0))).toMatchObject({ reason: 'bad-length' });
    expect(v(s, Buffer.alloc(DATAGRAM_BYTES - 1))).toMatchObject({ reason: 'bad-length' });
    expect(v(s, Buffer.concat([datagram(), Buffer.alloc(1)]))).toMatchObject({ reason: 'bad-length' });
    const d2 = datagram();
    d2[0] = 2;
    expect(v(s, d2)).toMatchObject({ reason: 'bad-version', detail: expect.stringMatching(/reserved/) });
  });
  it('unknown hint: random bytes of the right length', () => {
    const d = randomBytes(DATAGRAM_BYTES);
    d[0] = 1;
    expect(v(server(), d)).toMatchObject({ reason: 'unknown-hint' });
  });
  it('a tampered datagram fails authentication and names no user', () => {
    const d = datagram();
    d[50] ^= 1;
    const r = v(server(), d);
    expect(r).toEqual({ ok: false, reason: 'auth-failed' });
  });
  it('a key not in the config is an unknown hint', () => {
    expect(v(server(), datagram({ key: Buffer.alloc(32, 9) }))).toMatchObject({ reason: 'unknown-hint' });
  });
  it('a stale or skewed datagram within the grace is recognised as stale, far beyond as unknown', () => {
    const s = server();
    expect(v(s, datagram({ time: T0 - 31_000 }))).toMatchObject({ reason: 'stale', user: 'alice' });
    expect(v(s, datagram({ time: T0 + 60_000 }))).toMatchObject({ reason: 'stale', detail: expect.stringMatching(/ahead/) });
    expect(v(s, datagram({ time: T0 - 3_600_000 }))).toMatchObject({ reason: 'unknown-hint' });
  });
  it('forged ciphertext on a captured hint costs at most the failed-open budget', () => {
    const s = server();
    const hint = datagram().subarray(1, 9);
    const reasons = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const d = randomBytes(DATAGRAM_BYTES);
      d[0] = 1;
      hint.copy(d, 1);
      const r = v(s, d);
      if (!r.ok) reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
    }
    expect(reasons.get('auth-failed')).toBe(4);
    expect(reasons.get('rate-limited')).toBe(996);
    // The real datagram on that hint is still judged (a second later the budget has a token again).
    expect(v(s, datagram(), SRC, T0 + 1000).ok).toBe(true);
  });
  it('counts every rejection by reason', () => {
    const s = server();
    v(s, Buffer.alloc(3));
    v(s, Buffer.alloc(3));
    const d = datagram();
    v(s, d);
    v(s, d);
    expect(s.counts['bad-length']).toBe(2);
    expect(s.counts.replayed).toBe(1);
  });
});

describe('spa verifier: replay (requirement 5)', () => {
  it('the same datagram never opens twice: same source, another source, later', () => {
    const s = server();
    const d = datagram();
    expect(v(s, d).ok).toBe(true);
    expect(v(s, d)).toMatchObject({ reason: 'replayed', user: 'alice' });
    expect(v(s, d, '198.51.100.7')).toMatchObject({ reason: 'replayed' });
    expect(v(s, d, SRC, T0 + 29_000)).toMatchObject({ reason: 'replayed' });
    // Past max_age the datagram is stale; the entry itself lasts 10 s longer (slack for a clock step back).
    expect(v(s, d, SRC, T0 + 39_000)).toMatchObject({ reason: 'replayed' });
    expect(v(s, d, SRC, T0 + 41_000)).toMatchObject({ reason: 'stale' });
  });
  it('a client clock ahead: the entry lives until the datagram can no longer be fresh', () => {
    const s = server();
    const d = datagram({ time: T0 + 30_000 });
    expect(v(s, d).ok).toBe(true);
    // Fresh until server time T0 + 60 s: still refused as a replay at T0 + 59 s.
    expect(v(s, d, SRC, T0 + 59_000)).toMatchObject({ reason: 'replayed' });
  });
  it('a datagram refused after authentication (wrong door, address, TOTP) is spent too', () => {
    const s = server();
    const other = datagram({ key: KEY_B, user: 'bob', door: 'alice-only' });
    expect(v(s, other)).toMatchObject({ reason: 'user-not-allowed', user: 'bob' });
    expect(v(s, other)).toMatchObject({ reason: 'replayed' });
    const moved = datagram({ address: '198.51.100.7' });
    expect(v(s, moved)).toMatchObject({ reason: 'address-mismatch' });
    expect(v(s, moved, '198.51.100.7')).toMatchObject({ reason: 'replayed' });
    const wrongCode = datagram({ door: 'totp', totp: (code(T0) + 1) % 1_000_000 });
    expect(v(s, wrongCode)).toMatchObject({ reason: 'totp-wrong' });
    expect(v(s, wrongCode)).toMatchObject({ reason: 'replayed' });
    const nowhere = datagram({ door: 'nosuchdoor' });
    expect(v(s, nowhere)).toMatchObject({ reason: 'unknown-door' });
    expect(v(s, nowhere)).toMatchObject({ reason: 'replayed' });
  });
  it('a full user quota refuses (and keeps refusing the cached ones as replays)', () => {
    const s = createSpaServer({ users: [user('alice', KEY_A)], doors: [door('ssh')] }, undefined, { replay: { perUser: 2 } });
    const ds = [datagram(), datagram(), datagram()];
    expect(v(s, ds[0]).ok).toBe(true);
    expect(v(s, ds[1]).ok).toBe(true);
    expect(v(s, ds[2])).toMatchObject({ reason: 'replay-cache-full' });
    expect(v(s, ds[0])).toMatchObject({ reason: 'replayed' });
  });
  it('the restart horizon refuses client times at or before it', () => {
    const s = server();
    s.guard.horizonMs = T0 + 10_000;
    expect(v(s, datagram({ time: T0 + 10_000 }), SRC, T0 + 10_000)).toMatchObject({ reason: 'before-restart' });
    expect(v(s, datagram({ time: T0 + 10_001 }), SRC, T0 + 10_000).ok).toBe(true);
  });
  it('no lease on disk, or a clock below the floor: refused (after the hint, so junk stays quiet)', () => {
    const s = server();
    s.guard.leaseUntil = T0;
    expect(v(s, datagram())).toMatchObject({ reason: 'no-lease' });
    s.guard.leaseUntil = Infinity;
    s.guard.floorMs = T0 + 1;
    expect(v(s, datagram())).toMatchObject({ reason: 'clock-below-floor' });
    expect(v(s, Buffer.alloc(DATAGRAM_BYTES, 1))).toMatchObject({ reason: 'unknown-hint' });
  });
});

describe('spa verifier: address binding (requirement 1)', () => {
  it('allow_ip source: the sealed address must be the source', () => {
    expect(v(server(), datagram({ address: '192.0.2.11' }))).toMatchObject({ reason: 'address-mismatch', detail: 'sealed 192.0.2.11, sent from 192.0.2.10' });
    expect(v(server(), datagram({ address: '2001:db8::1' }), '2001:db8::1').ok).toBe(true);
  });
  it('allow_ip any: opens exactly the sealed address, from any source', () => {
    expect(v(server(), datagram({ door: 'any', address: '203.0.113.9' }))).toMatchObject({ ok: true, address: '203.0.113.9' });
    expect(v(server(), datagram({ door: 'any', address: '2001:db8::9' }))).toMatchObject({ ok: true, address: '2001:db8::9', family: 6 });
  });
  it.each(['0.0.0.0', '127.0.0.1', '224.0.0.5', '255.255.255.255', '::', '::1', 'ff02::1'])('allow_ip any refuses %s', (a) => {
    expect(v(server(), datagram({ door: 'any', address: a }))).toMatchObject({ reason: 'address-refused' });
  });
});

describe('spa verifier: users, doors, limits (requirement 10)', () => {
  it("another user's door stays closed", () => {
    expect(v(server(), datagram({ key: KEY_B, user: 'bob', door: 'alice-only' }))).toMatchObject({ reason: 'user-not-allowed' });
  });
  it('a door on another port is not opened from this one', () => {
    const s = createSpaServer({ users: [user('alice', KEY_A)], doors: [door('ssh'), door('web', { port: 62202 })] });
    expect(v(s, datagram({ door: 'web' }))).toMatchObject({ reason: 'unknown-door' });
    expect(v(s, datagram({ door: 'web' }), SRC, T0, 62202).ok).toBe(true);
  });
  it('either of two keys of a user opens during a rotation', () => {
    const s = createSpaServer({ users: [user('alice', KEY_A, undefined, KEY_B)], doors: [door('ssh')] });
    expect(v(s, datagram()).ok).toBe(true);
    expect(v(s, datagram({ key: KEY_B })).ok).toBe(true);
  });
  it('rate-limits accepted opens per user', () => {
    const s = server();
    const results = Array.from({ length: 7 }, () => v(s, datagram()));
    expect(results.filter((r) => r.ok)).toHaveLength(5);
    expect(results[6]).toMatchObject({ reason: 'rate-limited', user: 'alice' });
    expect(v(s, datagram({ key: KEY_B, user: 'bob' })).ok).toBe(true);
    expect(v(s, datagram(), SRC, T0 + 6_000).ok).toBe(true);
  });
  it(`caps the addresses one user holds open at ${MAX_ADDRESSES_PER_USER}`, () => {
    const s = createSpaServer({ users: [user('alice', KEY_A)], doors: [door('any', { allowIp: 'any', durationMs: 120_000 })] });
    let t = T0;
    const results = [];
    for (let i = 1; i <= MAX_ADDRESSES_PER_USER + 1; i++) {
      t += 6_000; // stay inside the open rate
      results.push(v(s, datagram({ door: 'any', address: `203.0.113.${i}`, time: t }), SRC, t));
    }
    expect(results.slice(0, -1).every((r) => r.ok)).toBe(true);
    expect(results.at(-1)).toMatchObject({ reason: 'too-many-addresses' });
    // Once the first accesses end (120 s door duration), room again.
    t += 80_000;
    expect(v(s, datagram({ door: 'any', address: '203.0.113.99', time: t }), SRC, t).ok).toBe(true);
  });
  it('a reload keeps the replay cache and TOTP state; a removed user has no hints', () => {
    const s = server();
    const d = datagram();
    expect(v(s, d).ok).toBe(true);
    const c = datagram({ door: 'totp', totp: code(T0) });
    expect(v(s, c).ok).toBe(true);
    const next = createSpaServer({ users: [user('alice', KEY_A, TOTP_A)], doors: [door('ssh'), door('totp', { totp: true })] }, s);
    expect(v(next, d)).toMatchObject({ reason: 'replayed' });
    expect(v(next, datagram({ door: 'totp', totp: code(T0) }))).toMatchObject({ reason: 'totp-reused' });
    expect(v(next, datagram({ key: KEY_B, user: 'bob' }))).toMatchObject({ reason: 'unknown-hint' });
  });
});

describe('spa verifier: TOTP doors (requirement 8)', () => {
  it('needs the current code; refuses none, wrong and reused codes; locks out loudly', () => {
    const s = server();
    expect(v(s, datagram({ door: 'totp' }))).toMatchObject({ reason: 'totp-missing' });
    expect(v(s, datagram({ door: 'totp', totp: code(T0) })).ok).toBe(true);
    expect(v(s, datagram({ door: 'totp', totp: code(T0) }))).toMatchObject({ reason: 'totp-reused' });
    const wrong = (code(T0 + 30_000) + 1) % 1_000_000;
    const t = T0 + 30_000;
    expect(v(s, datagram({ door: 'totp', totp: wrong, time: t }), SRC, t)).toMatchObject({ reason: 'totp-wrong' });
    expect(v(s, datagram({ door: 'totp', totp: wrong, time: t }), SRC, t)).toMatchObject({ reason: 'totp-wrong' });
    expect(v(s, datagram({ door: 'totp', totp: wrong, time: t }), SRC, t)).toMatchObject({ reason: 'totp-wrong', alert: expect.stringMatching(/lockout of user alice .* someone holds this user's key file/) });
    expect(v(s, datagram({ door: 'totp', totp: code(t), time: t }), SRC, t)).toMatchObject({ reason: 'totp-locked' });
  });
});

describe('spa verifier: cost (printed)', () => {
  it('junk datagrams of the right length cost one Map lookup each', () => {
    const users = Array.from({ length: 100 }, (_, i) => user(`u${i}`, Buffer.alloc(32, i + 1)));
    const s = createSpaServer({ users, doors: [door('ssh')] });
    const junk = Array.from({ length: 1000 }, () => {
      const d = randomBytes(DATAGRAM_BYTES);
      d[0] = 1;
      return d;
    });
    verifyDatagram(s, junk[0], SRC, PORT, T0);
    const n = 200_000;
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) verifyDatagram(s, junk[i % 1000], SRC, PORT, T0 + i / 100);
    const ns = Number(process.hrtime.bigint() - start) / n;
    const wrongLength = Buffer.alloc(64);
    const s2 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) verifyDatagram(s, wrongLength, SRC, PORT, T0);
    const nsLen = Number(process.hrtime.bigint() - s2) / n;
    const d = datagram();
    const forged = Buffer.from(d);
    forged[60] ^= 1;
    const s3 = process.hrtime.bigint();
    for (let i = 0; i < 2000; i++) verifyDatagram(createSpaServer({ users: [user('alice', KEY_A)], doors: [door('ssh')] }, undefined), forged, SRC, PORT, T0);
    const nsForgedWithSetup = Number(process.hrtime.bigint() - s3) / 2000;
    const s4 = process.hrtime.bigint();
    let ok = 0;
    for (let i = 0; i < 2000; i++) {
      const srv = createSpaServer({ users: [user('alice', KEY_A)], doors: [door('ssh')] });
      if (verifyDatagram(srv, d, SRC, PORT, T0).ok) ok++;
    }
    const nsAccept = Number(process.hrtime.bigint() - s4) / 2000;
    process.stdout.write(`[spa cost] junk of the right length: ${ns.toFixed(0)} ns/datagram (100 users; ${(ns * 1e6 / 1e9).toFixed(3)} s per million); wrong length: ${nsLen.toFixed(0)} ns; forged on a known hint incl. server setup: ${(nsForgedWithSetup / 1000).toFixed(1)} us; accept incl. setup: ${(nsAccept / 1000).toFixed(1)} us\n`);
    expect(ok).toBe(2000);
    expect(s.counts['unknown-hint']).toBeGreaterThan(n / 2);
  });
});
