// A port sweep must never open a door, whatever order it visits the ports in:
// after the first step, the very next swept port is a wrong port.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KnockEvent, Protocol } from '../../src/types.js';
import { door, knock, only, range, run, tcp } from './detect-support.js';

const S = '192.0.2.7';

function sweep(ports: readonly number[], t0 = 0, protocol: Protocol = 'tcp', source = S): KnockEvent[] {
  // 1 us apart: a fast scanner, all well inside the window.
  return ports.map((p, i) => knock(source, p, t0 + i * 0.001, protocol));
}

const doors = [door(), door({ name: 'udp', sequence: [{ port: 7000, protocol: 'udp' }, { port: 7100, protocol: 'udp' }], open: tcp(2222) })];

function expectNoOpen(events: readonly KnockEvent[]): string[] {
  const { lines } = run(doors, events);
  expect(only(lines, 'open')).toEqual([]);
  return lines;
}

describe('detector: port sweeps never open', () => {
  it('ascending 1..10000 over 1234,5678,9012: 1235 resets after 1234', () => {
    const lines = expectNoOpen(sweep(range(1, 10_000)));
    expect(only(lines, 'reset')).toEqual([`1.234 reset ssh ${S} wrong-port 1 1235/tcp`]);
  });

  it('descending 10000..1: 1233 resets after 1234', () => {
    const lines = expectNoOpen(sweep(range(10_000, 1)));
    expect(only(lines, 'reset')).toHaveLength(1);
    expect(only(lines, 'reset')[0]).toMatch(/reset ssh 192\.0\.2\.7 wrong-port 1 1233\/tcp$/);
  });

  it('the full range 1..65535, tcp and udp', () => {
    expectNoOpen(sweep(range(1, 65_535)));
    const lines = expectNoOpen(sweep(range(1, 65_535), 0, 'udp'));
    expect(only(lines, 'reset')).toHaveLength(1);
    expect(only(lines, 'reset')[0]).toMatch(/reset udp 192\.0\.2\.7 wrong-port 1 7001\/udp$/);
  });

  it('a sweep that wraps around the port space and visits the steps in order', () => {
    // 1000..65535 then 1..999: 1234, 5678, 9012 in order, 7000 before 7100.
    expectNoOpen(sweep([...range(1000, 65_535), ...range(1, 999)]));
    // 9013..65535 then 1..9012: the wrap puts 1234 < 5678 < 9012 right at the end.
    expectNoOpen(sweep([...range(9013, 65_535), ...range(1, 9012)]));
  });

  it('repeated sweeps, ascending and descending, back to back', () => {
    const ports = [...range(1, 10_000), ...range(1, 10_000), ...range(10_000, 1), ...range(1, 10_000)];
    const lines = expectNoOpen(sweep(ports));
    expect(only(lines, 'reset')).toHaveLength(4);
  });

  it('a sparse sweep whose stride lands on every step still resets in between', () => {
    // Stride 2222 from 1234: 1234, 3456, 5678, 7900, 10122 - hits 1234 and 5678 but 3456 sits between.
    const stride = [];
    for (let p = 1234; p <= 65_535; p += 2222) stride.push(p);
    expectNoOpen(sweep(stride));
    // Stride 4444 from 1234 visits 1234, 5678, then 10122: 9012 is skipped, the door stays shut.
    const wide = [];
    for (let p = 1234; p <= 65_535; p += 4444) wide.push(p);
    expectNoOpen(sweep(wide));
  });

  it('a slow sweep (one port a second) never opens either', () => {
    const events = range(1, 10_000).map((p) => knock(S, p, p * 1000));
    expectNoOpen(events);
  });

  it('sweeps from many sources interleaved never open', () => {
    const sources = ['198.51.100.1', '198.51.100.2', 'fd00:6b77::3'];
    const events: KnockEvent[] = [];
    for (let p = 1; p <= 10_000; p++) for (const [i, s] of sources.entries()) events.push(knock(s, i === 1 ? 10_001 - p : p, p));
    expectNoOpen(events);
  });

  it('property: any sweep of a contiguous range, in either direction, from any start, wrapping or not, never opens', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65_535 }), fc.integer({ min: 2, max: 65_535 }), fc.boolean(), fc.constantFrom<Protocol>('tcp', 'udp'), (start, length, down, protocol) => {
        const ports: number[] = [];
        for (let i = 0; i < length; i++) {
          const offset = down ? -i : i;
          ports.push(((((start - 1 + offset) % 65_535) + 65_535) % 65_535) + 1);
        }
        const { lines } = run(doors, sweep(ports, 0, protocol));
        return only(lines, 'open').length === 0;
      }),
      { numRuns: 60 },
    );
  });

  it('property: a shuffled scan of 1..10000 opens only if it happens to send 1234,5678,9012 back to back', () => {
    fc.assert(
      fc.property(fc.shuffledSubarray(range(1, 10_000), { minLength: 10_000, maxLength: 10_000 }), (ports) => {
        const i = ports.indexOf(1234);
        const adjacent = ports[i + 1] === 5678 && ports[i + 2] === 9012;
        const { lines } = run([door()], sweep(ports));
        return adjacent || only(lines, 'open').length === 0;
      }),
      { numRuns: 20 },
    );
  });
});
