// The rotating door's port derivation against test vectors computed by an
// independent implementation: the Python reference printed in the README
// ("Rotating sequences: the derivation"), run with /usr/bin/python3. If this
// file and the README disagree, third-party clients break: change both.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MIN_PORTS_PER_STEP, periodOf, rangeProblem, rotatingPorts } from '../../src/detect/rotating-ports.js';

/** The README's example key: bytes 0x00..0x1f (base64 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=). */
const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i));

// [period number, steps, low, high, ports], from the Python reference.
const VECTORS: [number, number, number, number, number[]][] = [
  [0, 4, 20000, 60000, [54317, 21173, 45208, 36165]],
  [1, 4, 20000, 60000, [45053, 28759, 41310, 27962]],
  [59356800, 4, 20000, 60000, [55993, 35569, 44943, 43138]],
  [59356801, 4, 20000, 60000, [46407, 58786, 58088, 35627]],
  [0, 1, 1, 4, [4]],
  [7, 32, 1024, 1151, [1100, 1063, 1052, 1087, 1076, 1136, 1086, 1115, 1117, 1033, 1090, 1099, 1139, 1058, 1071, 1120, 1112, 1027, 1116, 1118, 1096, 1069, 1107, 1101, 1098, 1034, 1148, 1110, 1039, 1134, 1119, 1149]],
  [123456789, 3, 1, 65535, [3632, 4475, 45435]],
  [5, 8, 40000, 40031, [40003, 40014, 40005, 40010, 40018, 40022, 40008, 40024]],
];

describe('rotatingPorts: test vectors (README)', () => {
  it.each(VECTORS)('period %i, %i steps in %i-%i', (n, steps, low, high, want) => {
    expect(KEY.toString('base64')).toBe('AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=');
    expect(rotatingPorts(KEY, n, steps, { low, high })).toEqual(want);
  });

  it('period numbers: floor(unix ms / period ms)', () => {
    // 2026-06-06T00:00:00Z with a 30 s period is the README's period 59356800.
    expect(periodOf(Date.UTC(2026, 5, 6, 0, 0, 0), 30_000)).toBe(59356800);
    expect(periodOf(Date.UTC(2026, 5, 6, 0, 0, 29, 999), 30_000)).toBe(59356800);
    expect(periodOf(Date.UTC(2026, 5, 6, 0, 0, 30), 30_000)).toBe(59356801);
  });
});

describe('rotatingPorts: properties', () => {
  it('in range, no repeats, consecutive steps never equal or neighbouring, deterministic', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 1, max: 32 }),
        fc.integer({ min: 1, max: 65535 }),
        fc.integer({ min: 0, max: 65535 }),
        (key, n, steps, low, extra) => {
          const minSize = steps * MIN_PORTS_PER_STEP;
          fc.pre(low + minSize - 1 <= 65535);
          const high = Math.min(65535, low + minSize - 1 + extra);
          const ports = rotatingPorts(key, n, steps, { low, high });
          expect(ports).toHaveLength(steps);
          expect(new Set(ports).size).toBe(steps);
          for (let i = 0; i < ports.length; i++) {
            expect(ports[i]).toBeGreaterThanOrEqual(low);
            expect(ports[i]).toBeLessThanOrEqual(high);
            if (i > 0) expect([0, 1, 65534]).not.toContain(Math.abs(ports[i] - ports[i - 1]));
          }
          expect(rotatingPorts(key, n, steps, { low, high })).toEqual(ports);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('every port of a small range about equally likely (no modulo bias)', () => {
    // 6 ports, one step, 12,000 periods: each expected 2,000 times; a biased
    // draw (w mod 6 without rejection) would still be within 0.0001 %, so this
    // checks the rejection path does not skew it, with a 5-sigma bound.
    const counts = new Map<number, number>();
    for (let n = 0; n < 12_000; n++) {
      const [p] = rotatingPorts(KEY, n, 1, { low: 100, high: 105 });
      counts.set(p, (counts.get(p) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([100, 101, 102, 103, 104, 105]);
    const sigma = Math.sqrt(12_000 * (1 / 6) * (5 / 6));
    for (const c of counts.values()) expect(Math.abs(c - 2000)).toBeLessThan(5 * sigma);
  });

  it('other keys and periods give other sequences', () => {
    const a = rotatingPorts(KEY, 10, 4, { low: 20000, high: 60000 });
    expect(rotatingPorts(KEY, 11, 4, { low: 20000, high: 60000 })).not.toEqual(a);
    const other = Buffer.from(KEY);
    other[0] ^= 1;
    expect(rotatingPorts(other, 10, 4, { low: 20000, high: 60000 })).not.toEqual(a);
  });
});

describe('rangeProblem', () => {
  it('refuses a range too small for the steps, naming both', () => {
    expect(rangeProblem(4, { low: 20000, high: 20014 })).toBe('port range 20000-20014 holds 15 ports; 4 steps need at least 16 (4 per step)');
    expect(rangeProblem(4, { low: 20000, high: 20015 })).toBeUndefined();
    expect(rangeProblem(0, { low: 1, high: 100 })).toMatch(/steps must be 1-32/);
    expect(rangeProblem(33, { low: 1, high: 65535 })).toMatch(/steps must be 1-32/);
    expect(rangeProblem(2, { low: 600, high: 500 })).toMatch(/not within 1-65535/);
    expect(() => rotatingPorts(KEY, 0, 4, { low: 1, high: 10 })).toThrow('holds 10 ports');
  });
});
