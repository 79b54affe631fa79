// Requirement 5 (replay cache): keyed on (user, nonce), expiry, bounded by a
// per-user quota and a global cap, never evicting an unexpired entry.
import { describe, expect, it } from 'vitest';
import { createReplayCache } from '../../src/spa/replay-cache.js';

const n = (i: number): string => Buffer.alloc(12, i).toString('latin1');

describe('spa replay cache', () => {
  it('remembers (user, nonce) until its expiry', () => {
    const c = createReplayCache();
    expect(c.add('alice', n(1), 1000, 0)).toBe('added');
    expect(c.has('alice', n(1), 999)).toBe(true);
    expect(c.has('bob', n(1), 999)).toBe(false);
    expect(c.has('alice', n(2), 999)).toBe(false);
    expect(c.has('alice', n(1), 1000)).toBe(false);
    c.expire(1000);
    expect(c.size).toBe(0);
  });
  it('refuses when a user quota or the global cap is full, and evicts nothing unexpired', () => {
    const c = createReplayCache({ perUser: 3, global: 5 });
    for (let i = 0; i < 3; i++) expect(c.add('alice', n(i), 10_000, 0)).toBe('added');
    expect(c.add('alice', n(9), 10_000, 0)).toBe('user-full');
    expect(c.add('bob', n(1), 10_000, 0)).toBe('added');
    expect(c.add('carol', n(1), 10_000, 0)).toBe('added');
    expect(c.add('dave', n(1), 10_000, 0)).toBe('full');
    for (let i = 0; i < 3; i++) expect(c.has('alice', n(i), 9_999)).toBe(true);
    // Once entries expire, room comes back.
    expect(c.add('dave', n(1), 30_000, 10_000)).toBe('added');
    expect(c.size).toBe(1);
  });
  it('expires in expiry order whatever the insertion order; an extended expiry is kept', () => {
    const c = createReplayCache();
    const at = [500, 100, 900, 300, 700];
    at.forEach((e, i) => c.add('u', n(i), e, 0));
    c.add('u', n(1), 2000, 0); // extended
    c.expire(600);
    expect([0, 1, 2, 3, 4].map((i) => c.has('u', n(i), 600))).toEqual([false, true, true, false, true]);
    c.expire(2000);
    expect(c.size).toBe(0);
  });
  it('exports entries with hex nonces', () => {
    const c = createReplayCache();
    c.add('alice', n(0xab), 5, 0);
    expect(c.entries()).toEqual([{ user: 'alice', nonce: 'ab'.repeat(12), expiresAt: 5 }]);
  });
});
