import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Door } from '../../src/types.js';
import { FirewallError } from '../../src/firewall/types.js';
import { checkAccess, checkDoorName, checkSource, indexDoors, remainingMs } from '../../src/firewall/validate.js';
import { accessFromDecision, accessKeyFromDecision } from '../../src/firewall/access.js';

const ssh: Door = {
  kind: 'sequence',
  name: 'ssh',
  sequence: [{ port: 1111, protocol: 'tcp' }],
  windowMs: 5000,
  open: [
    { port: 2222, protocol: 'tcp' },
    { port: 53, protocol: 'udp' },
  ],
  durationMs: 20_000,
};
const doors = indexDoors([ssh]);

describe('door names', () => {
  it.each(['ssh', 'my-door', '1door', '-x', '_', 'a'.repeat(32)])('accepts %j', (name) => {
    expect(checkDoorName(name)).toBe(name);
  });
  it.each(['', 'a'.repeat(33), 'ssh; flush ruleset', 'a b', 'x}', 'x{', '"x"', 'a.b', '../x', 'ssh\n', 'é', 'a/b', 'a@b'])(
    'rejects %j',
    (name) => {
      expect(() => checkDoorName(name)).toThrow(FirewallError);
    },
  );
  it('rejects duplicate doors and doors without ports', () => {
    expect(() => indexDoors([ssh, ssh])).toThrow(/defined twice/);
    expect(() => indexDoors([{ ...ssh, open: [] }])).toThrow(/no ports/);
    expect(() => indexDoors([{ ...ssh, open: [{ port: 0, protocol: 'tcp' }] }])).toThrow(/open\[0\]: invalid port 0/);
  });
});

describe('addresses', () => {
  it.each([
    ['10.0.0.2', 4],
    ['fd00:6b77::2', 6],
    ['::ffff:1.2.3.4', 6],
    ['FD00::1', 6],
  ] as const)('accepts %s as IPv%d', (a, f) => {
    expect(checkSource(a, f)).toBe(a);
  });
  it.each([
    ['10.0.0.2 } ; flush ruleset', 4],
    ['10.0.0.2,tcp:22', 4],
    ['fe80::1%eth0', 6],
    ['10.0.0.0/8', 4],
    ['010.0.0.1', 4],
    ['10.0.0.2', 6],
    ['fd00::2', 4],
    ['', 4],
    ['localhost', 4],
    ['10.0.0.2\n', 4],
  ] as const)('rejects %j as IPv%d', (a, f) => {
    expect(() => checkSource(a, f)).toThrow(FirewallError);
  });
  it('rejects a family that is not 4 or 6', () => {
    expect(() => checkSource('10.0.0.2', 5)).toThrow(/address family/);
  });
  it('never lets a character outside an address alphabet through (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.constantFrom(4 as const, 6 as const), (s, f) => {
        try {
          checkSource(s, f);
        } catch (err) {
          return err instanceof FirewallError;
        }
        return /^[0-9A-Fa-f:.]+$/.test(s);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('accesses', () => {
  const base = { door: 'ssh', source: '10.0.0.2', family: 4 as const, ports: [{ port: 2222, protocol: 'tcp' as const }] };
  it('accepts a subset of the door ports', () => {
    expect(checkAccess(base, doors)).toBe(ssh);
  });
  it('rejects unknown doors, foreign ports, duplicates and empty port lists', () => {
    expect(() => checkAccess({ ...base, door: 'web' }, doors)).toThrow(/unknown door 'web'/);
    expect(() => checkAccess({ ...base, ports: [{ port: 22, protocol: 'tcp' }] }, doors)).toThrow(/22\/tcp is not one of the door's open ports/);
    expect(() => checkAccess({ ...base, ports: [{ port: 2222, protocol: 'udp' }] }, doors)).toThrow(/2222\/udp/);
    expect(() => checkAccess({ ...base, ports: [base.ports[0], base.ports[0]] }, doors)).toThrow(/listed twice/);
    expect(() => checkAccess({ ...base, ports: [] }, doors)).toThrow(/no ports/);
    expect(() => checkAccess({ ...base, ports: [{ port: 2222.5, protocol: 'tcp' }] }, doors)).toThrow(/invalid port 2222.5/);
    expect(() => checkAccess({ ...base, ports: [{ port: 2222, protocol: 'icmp' as 'tcp' }] }, doors)).toThrow(/invalid protocol/);
  });
  it('computes the remaining time and refuses ended or absurd accesses', () => {
    expect(remainingMs({ ...base, until: 10_500.2 }, 10_000)).toBe(501);
    expect(() => remainingMs({ ...base, until: 10_000 }, 10_000)).toThrow(/already ended 0 ms ago/);
    expect(() => remainingMs({ ...base, until: 9_000 }, 10_000)).toThrow(/already ended 1000 ms ago/);
    expect(() => remainingMs({ ...base, until: Number.NaN }, 10_000)).toThrow(/invalid end time/);
    expect(() => remainingMs({ ...base, until: 10_000 + 30 * 86_400_000 }, 10_000)).toThrow(/longer than the maximum/);
  });
});

describe('decisions to accesses', () => {
  it('keeps the decision duration but counts it from the wall clock', () => {
    const a = accessFromDecision(
      { type: 'open', time: 1_000, door: 'ssh', source: 'fd00::2', ports: ssh.open, until: 21_000, refreshed: false },
      5_000_000,
    );
    expect(a).toEqual({ door: 'ssh', source: 'fd00::2', family: 6, ports: ssh.open, until: 5_020_000 });
    expect(accessKeyFromDecision({ type: 'close', time: 0, door: 'ssh', source: '10.0.0.9', ports: ssh.open, reason: 'expired' })).toEqual({
      door: 'ssh',
      source: '10.0.0.9',
      family: 4,
      ports: ssh.open,
    });
    expect(() => accessKeyFromDecision({ type: 'close', time: 0, door: 'ssh', source: 'nope', ports: [], reason: 'expired' })).toThrow(
      /invalid source address/,
    );
  });
});
