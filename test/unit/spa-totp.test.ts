// Requirement 8 (TOTP): RFC 6238 vectors, +-1 step, reuse refused per user,
// failure limit with doubling lockouts.
import { describe, expect, it } from 'vitest';
import { TOTP_FIRST_LOCKOUT_MS, createTotpState, totpCode, totpStep, totpUri } from '../../src/spa/totp.js';
import { TOTP_A } from './spa-support.js';

const code = (t: number, d = 0): number => Number(totpCode(TOTP_A, totpStep(t) + d));

describe('TOTP codes', () => {
  it('match RFC 6238 appendix B (SHA-1, the last 6 of 8 digits)', () => {
    // RFC 6238 gives 8-digit codes; 6-digit codes are the same number mod 10^6.
    const vectors: Array<[number, string]> = [
      [59, '94287082'],
      [1111111109, '07081804'],
      [1111111111, '14050471'],
      [1234567890, '89005924'],
      [2000000000, '69279037'],
      [20000000000, '65353130'],
    ];
    for (const [seconds, eight] of vectors) expect(totpCode(TOTP_A, Math.floor(seconds / 30))).toBe(eight.slice(2));
  });
  it('an otpauth URI with SHA1, 6 digits, 30 s', () => {
    const uri = totpUri(TOTP_A, 'alice@host');
    expect(uri).toMatch(/^otpauth:\/\/totp\/knockwatch:alice%40host\?/);
    expect(uri).toContain('secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
    expect(uri).toContain('algorithm=SHA1');
    expect(uri).toContain('digits=6');
    expect(uri).toContain('period=30');
  });
});

describe('TOTP state', () => {
  const t = 1_800_000_000_000;
  it('accepts the current code and one step either side, not two', () => {
    for (const d of [-1, 0, 1]) expect(createTotpState().check('alice', TOTP_A, code(t, d), t).ok, `step ${d}`).toBe(true);
    for (const d of [-2, 2]) expect(createTotpState().check('alice', TOTP_A, code(t, d), t).ok, `step ${d}`).toBe(false);
  });
  it('refuses a code whose step is not later than the last accepted one (reuse), per user', () => {
    const s = createTotpState();
    expect(s.check('alice', TOTP_A, code(t), t)).toEqual({ ok: true, step: totpStep(t) });
    expect(s.check('alice', TOTP_A, code(t), t + 1000)).toMatchObject({ ok: false, reason: 'totp-reused' });
    expect(s.check('alice', TOTP_A, code(t, -1), t + 1000)).toMatchObject({ ok: false, reason: 'totp-reused' });
    // Another user with the same secret (codes collide) has its own last step.
    expect(s.check('bob', TOTP_A, code(t), t).ok).toBe(true);
    // The next step's code is fine.
    expect(s.check('alice', TOTP_A, code(t, 1), t + 30_000).ok).toBe(true);
  });
  it('locks a user out after 3 wrong codes in a step, doubling each time, and says so', () => {
    const s = createTotpState();
    const wrong = (code(t) + 1) % 1_000_000;
    expect(s.check('alice', TOTP_A, wrong, t)).toEqual({ ok: false, reason: 'totp-wrong' });
    expect(s.check('alice', TOTP_A, wrong, t + 1)).toEqual({ ok: false, reason: 'totp-wrong' });
    const third = s.check('alice', TOTP_A, wrong, t + 2);
    expect(third).toEqual({ ok: false, reason: 'totp-wrong', lockout: { until: t + 2 + TOTP_FIRST_LOCKOUT_MS, forMs: TOTP_FIRST_LOCKOUT_MS } });
    // Locked: even the right code is not looked at; bob is not locked.
    expect(s.check('alice', TOTP_A, code(t), t + 3)).toEqual({ ok: false, reason: 'totp-locked' });
    expect(s.locked('alice', t + 3)).toBe(true);
    expect(s.locked('bob', t + 3)).toBe(false);
    // After the lockout, three more wrong codes: 60 s.
    const t2 = t + 2 + TOTP_FIRST_LOCKOUT_MS;
    const w2 = (code(t2) + 1) % 1_000_000;
    s.check('alice', TOTP_A, w2, t2);
    s.check('alice', TOTP_A, w2, t2);
    expect(s.check('alice', TOTP_A, w2, t2)).toMatchObject({ lockout: { forMs: 2 * TOTP_FIRST_LOCKOUT_MS } });
    // A right code after that lockout resets the backoff.
    const t3 = t2 + 2 * TOTP_FIRST_LOCKOUT_MS;
    expect(s.check('alice', TOTP_A, code(t3), t3).ok).toBe(true);
    const w3 = (code(t3) + 1) % 1_000_000;
    s.check('alice', TOTP_A, w3, t3);
    s.check('alice', TOTP_A, w3, t3);
    expect(s.check('alice', TOTP_A, w3, t3)).toMatchObject({ lockout: { forMs: TOTP_FIRST_LOCKOUT_MS } });
  });
  it('bounds guessing: a million tries in an hour get at most a few hundred looks', () => {
    const s = createTotpState();
    let looked = 0;
    for (let i = 0; i < 1_000_000; i++) {
      const r = s.check('alice', TOTP_A, i % 1_000_000, t + i * 3.6);
      if (r.ok || r.reason !== 'totp-locked') looked++;
    }
    expect(looked).toBeLessThan(200);
  });
  it('raiseFloor makes earlier steps used (after a crash); state round-trips', () => {
    const s = createTotpState();
    s.raiseFloor(totpStep(t));
    expect(s.check('alice', TOTP_A, code(t), t)).toMatchObject({ reason: 'totp-reused' });
    expect(s.check('alice', TOTP_A, code(t, 1), t).ok).toBe(true);
    const copy = createTotpState();
    for (const [u, st] of s.entries()) copy.restore(u, st);
    expect(copy.check('alice', TOTP_A, code(t, 1), t)).toMatchObject({ reason: 'totp-reused' });
  });
});
