// Requirement 6 (crash consistency) and 7 (clock floor): what a start takes
// from the state file.
import { describe, expect, it } from 'vitest';
import { LEASE_AHEAD_MS, cleanStopRecord, leaseDue, leaseRecord, parseStateRecord, startGuard, stateRecordText } from '../../src/spa/strike-register.js';
import { totpStep } from '../../src/spa/totp.js';
import { createTotpState } from '../../src/spa/totp.js';
import { T0 } from './spa-support.js';

describe('spa strike register', () => {
  it('no state file: every client time up to now + max_age is refused, never an empty cache', () => {
    const g = startGuard(undefined, T0, 30_000);
    expect(g).toMatchObject({ horizonMs: T0 + 30_000, why: 'no-state', totpFloorStep: totpStep(T0) + 1 });
    expect(startGuard('bad', T0, 30_000)).toMatchObject({ horizonMs: T0 + 30_000, why: 'bad-state' });
  });
  it('after a crash: the lease + max_age (the larger of then and now)', () => {
    const r = leaseRecord(T0, 0, 60_000, []);
    expect(r.lease).toBe(T0 + LEASE_AHEAD_MS);
    expect(startGuard(r, T0 + 5_000, 30_000)).toMatchObject({ horizonMs: T0 + LEASE_AHEAD_MS + 60_000, floorMs: T0, why: 'crash', totpFloorStep: totpStep(T0 + LEASE_AHEAD_MS) + 1 });
  });
  it('after a clean stop: the saved cache, no horizon', () => {
    const r = cleanStopRecord(T0, 0, 30_000, [], [{ user: 'alice', nonce: '00'.repeat(12), expiresAt: T0 + 70_000 }]);
    const g = startGuard(parseStateRecord(stateRecordText(r)) as never, T0 + 1000, 30_000);
    expect(g).toMatchObject({ horizonMs: -Infinity, why: 'clean-stop', floorMs: T0 });
    expect(g.replay).toHaveLength(1);
  });
  it('renews the lease well before it ends', () => {
    const r = leaseRecord(T0, 0, 30_000, []);
    expect(leaseDue(r.lease, T0)).toBe(false);
    expect(leaseDue(r.lease, T0 + LEASE_AHEAD_MS - 20_001)).toBe(false);
    expect(leaseDue(r.lease, T0 + LEASE_AHEAD_MS - 19_999)).toBe(true);
  });
  it('round-trips TOTP state (with infinities) and refuses corrupt text', () => {
    const s = createTotpState();
    s.check('alice', Buffer.alloc(20), 1, T0);
    const r = leaseRecord(T0, 0, 30_000, s.entries());
    expect(parseStateRecord(stateRecordText(r))).toMatchObject({ lease: r.lease, totp: [['alice', { failures: 1 }]] });
    for (const bad of ['', '{', 'null', '{"version":2}', stateRecordText(r).replace('"lease"', '"lease_"'), stateRecordText({ ...r, replay: [{ user: 'a', nonce: 'zz', expiresAt: 1 }] })]) {
      expect(parseStateRecord(bad), bad).toBe('bad');
    }
  });
});
