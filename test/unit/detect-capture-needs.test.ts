// captureNeeds(): what capture must deliver, derived from the doors' matchers.
// It must equal what the capture stages derive today on their own (pcap
// filter protocols, eBPF port classes), so switching them to it changes nothing.
import { describe, expect, it } from 'vitest';
import type { Door } from '../../src/types.js';
import { captureNeeds } from '../../src/detect/capture-needs.js';
import { captureProtocols } from '../../src/capture/filter.js';
import { watchedPorts } from '../../src/capture/ebpf.js';
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

  it.each(doorSets.map((doors, i) => [i, doors] as const))('%i: equals what the capture stages derive today', (_i, doors) => {
    const needs = captureNeeds(doors);
    expect(needs.protocols).toEqual(captureProtocols(doors));
    expect(watchedPorts(doors)).toMatchObject({ steps: needs.steps, firstSteps: needs.firstSteps, openPorts: needs.openPorts });
  });

  it('refuses doors the detector would refuse', () => {
    expect(() => captureNeeds([])).toThrow(/at least one door/);
    expect(() => captureNeeds([door({ sequence: tcp(1234, 1235) })])).toThrow(/neighbouring port/);
  });
});
