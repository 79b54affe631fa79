// captureNeeds(): what capture must deliver, derived from the doors' matchers;
// the daemon hands it to the pcap filter and the eBPF loader as plain data.
import { describe, expect, it } from 'vitest';
import type { Door } from '../../src/types.js';
import { captureNeeds } from '../../src/detect/capture-needs.js';
import { door, tcp } from './detect-support.js';

const udp = (...ports: number[]) => ports.map((port) => ({ port, protocol: 'udp' as const }));

const doorSets: Door[][] = [
  [door()],
  [door(), door({ name: 'web', sequence: [...tcp(1234), ...udp(7000), ...tcp(8000)], open: tcp(80, 443, 22) })],
  [door({ name: 'u', sequence: udp(5000, 6000), open: udp(53) }), door({ name: 'v', sequence: udp(6000, 5000), open: tcp(22) })],
];

describe('captureNeeds', () => {
  it('gives distinct ports per class, first occurrence first, and both protocols for sequence doors', () => {
    const needs = captureNeeds(doorSets[1]);
    expect(needs).toEqual({
      protocols: ['tcp', 'udp'],
      firstSteps: tcp(1234),
      steps: [...tcp(1234, 5678, 9012), ...udp(7000), ...tcp(8000)],
      openPorts: tcp(22, 80, 443),
    });
  });

  it.each(doorSets.map((doors, i) => [i, doors] as const))(
    '%i: both protocols whatever the steps use: any SYN/UDP to a wrong port resets (issue 8 item 13)',
    (_i, doors) => {
      expect(captureNeeds(doors).protocols).toEqual(['tcp', 'udp']);
    },
  );

  it('gives first steps, steps and open ports for UDP-only doors, each port once', () => {
    expect(captureNeeds(doorSets[2])).toEqual({ protocols: ['tcp', 'udp'], firstSteps: udp(5000, 6000), steps: udp(5000, 6000), openPorts: [...udp(53), ...tcp(22)] });
  });

  it('steps are the sequence ports once each, never the opened ports; first steps are each door\'s first', () => {
    const needs = captureNeeds([door({ name: 'a', sequence: [...tcp(1234), ...udp(5678)] }), door({ name: 'b', sequence: [...udp(5678), ...tcp(5678)], open: tcp(80) })]);
    expect(needs.steps).toEqual([...tcp(1234), ...udp(5678), ...tcp(5678)]);
    expect(needs.firstSteps).toEqual([...tcp(1234), ...udp(5678)]);
    expect(needs.openPorts).toEqual(tcp(22, 80));
  });

  it('refuses doors the detector would refuse', () => {
    expect(() => captureNeeds([])).toThrow(/at least one door/);
    expect(() => captureNeeds([door({ sequence: tcp(1234, 1235) })])).toThrow(/neighbouring port/);
  });
});
