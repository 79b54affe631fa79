// The eBPF loader's port arguments: runs of neighbouring ports of one class
// and protocol become one LOW-HIGH argument (a rotating door's range), lists
// without neighbours come out exactly as listed.
import { describe, expect, it } from 'vitest';
import { loaderPortArgs } from '../../src/port-runs.js';
import { captureNeeds } from '../../src/detect/index.js';
import { exceededBackendLimits } from '../../src/config/index.js';
import { secretBytes } from '../../src/config/door-files.js';
import type { PortSpec, RotatingDoor, SequenceDoor } from '../../src/types.js';

const tcp = (...ports: number[]): PortSpec[] => ports.map((port) => ({ port, protocol: 'tcp' }));

describe('loaderPortArgs', () => {
  it('a sequence door: as listed, first step first, open ports last', () => {
    expect(loaderPortArgs(tcp(1234, 5678, 9012), tcp(1234), tcp(22, 1234))).toEqual([
      ['--first', '1234/tcp'],
      ['--port', '5678/tcp'],
      ['--port', '9012/tcp'],
      ['--open', '22/tcp'],
    ]);
  });

  it('neighbours of one class and protocol are one run; other classes or protocols split it', () => {
    const steps = [...tcp(100, 101, 102, 103), { port: 104, protocol: 'udp' as const }, ...tcp(105, 106)];
    expect(loaderPortArgs(steps, tcp(102), tcp(107, 108))).toEqual([
      ['--port', '100-101/tcp'],
      ['--first', '102/tcp'],
      ['--port', '103/tcp'],
      ['--port', '104/udp'],
      ['--port', '105-106/tcp'],
      ['--open', '107-108/tcp'],
    ]);
  });

  it('without a first-step list every step is --port (the loader then takes all as first steps)', () => {
    expect(loaderPortArgs(tcp(1, 2, 3, 65535), undefined, [])).toEqual([
      ['--port', '1-3/tcp'],
      ['--port', '65535/tcp'],
    ]);
  });

  it("a rotating door over 20000-60000: one argument, within the loader's 4,096", () => {
    const rot: RotatingDoor = {
      kind: 'rotating',
      name: 'rot',
      keyFile: '/k',
      key: secretBytes(new Uint8Array(32)),
      steps: 4,
      periodMs: 30_000,
      portRange: { low: 20000, high: 60000 },
      protocol: 'tcp',
      windowMs: 5000,
      open: tcp(2222),
      durationMs: 20_000,
    };
    const ssh: SequenceDoor = { kind: 'sequence', name: 'ssh', sequence: tcp(1234, 5678, 9012), windowMs: 10_000, open: tcp(2222), durationMs: 20_000 };
    const needs = captureNeeds([rot, ssh]);
    expect(loaderPortArgs(needs.steps, needs.firstSteps, needs.openPorts)).toEqual([
      ['--first', '20000-60000/tcp'],
      ['--first', '1234/tcp'],
      ['--port', '5678/tcp'],
      ['--port', '9012/tcp'],
      ['--open', '2222/tcp'],
    ]);
    expect(exceededBackendLimits([rot, ssh])).toEqual([]);
  });
});
