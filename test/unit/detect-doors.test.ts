import { describe, expect, it } from 'vitest';
import type { KnockEvent } from '../../src/types.js';
import { createDetector } from '../../src/detect/detector.js';
import { compileDoors } from '../../src/detect/doors.js';
import { portKey } from '../../src/detect/matcher.js';
import { door, knock, tcp } from './detect-support.js';

describe('door validation', () => {
  it.each([
    [[], /at least one door/],
    [[door({ name: '' })], /door 0: name must be a non-empty string/],
    [[door(), door()], /door 1 'ssh': duplicate door name/],
    [[door({ sequence: [] })], /door 0 'ssh': sequence is empty/],
    [[door({ sequence: tcp(1234, 0, 9012) })], /door 0 'ssh' sequence\[1\]: port must be an integer 1-65535, got 0/],
    [[door({ sequence: tcp(1234, 65_536) })], /sequence\[1\]: port must be an integer 1-65535, got 65536/],
    [[door({ sequence: [{ port: 1234, protocol: 'icmp' as 'tcp' }] })], /sequence\[0\]: protocol must be 'tcp' or 'udp', got icmp/],
    [[door({ open: tcp(22.5) })], /door 0 'ssh' open\[0\]: port must be an integer/],
    [[door({ windowMs: Number.NaN })], /windowMs: must be a positive finite number of ms, got NaN/],
    [[door({ durationMs: -1 })], /durationMs: must be a positive finite number/],
    [[door({ gapMs: 0 })], /gapMs: must be a positive finite number/],
    [[door({ sequence: tcp(1234, 1235, 9012) })], /door 0 'ssh' sequence\[1\]: 1235\/tcp right after 1234\/tcp is a neighbouring port: a port sweep would open this door/],
    [[door({ sequence: tcp(9012, 9011) })], /sequence\[1\]: 9011\/tcp right after 9012\/tcp is a neighbouring port/],
    [[door({ sequence: tcp(1234, 5678, 65_535, 1) })], /sequence\[3\]: 1\/tcp right after 65535\/tcp is a neighbouring port \(sweeps wrap from 65535 to 1\)/],
    [[door({ sequence: [{ port: 7000, protocol: 'udp' }, { port: 7000, protocol: 'udp' }] })], /sequence\[1\]: 7000\/udp right after 7000\/udp repeats the same port/],
  ])('%#: refuses %j', (doors, message) => {
    expect(() => createDetector(doors)).toThrow(message);
  });

  it('neighbouring ports of different protocols are allowed', () => {
    expect(() => createDetector([door({ sequence: [{ port: 1234, protocol: 'tcp' }, { port: 1234, protocol: 'udp' }, { port: 1235, protocol: 'tcp' }] })])).not.toThrow();
  });

  it('refuses a bad maxSources', () => {
    expect(() => createDetector([door()], { maxSources: 0 })).toThrow(/maxSources must be a positive integer, got 0/);
    expect(() => createDetector([door()], { maxSources: 1.5 })).toThrow(/maxSources/);
  });

  it('marks only first steps in the first-step mask and keys tcp and udp apart', () => {
    const c = compileDoors([door(), door({ name: 'u', sequence: [{ port: 1234, protocol: 'udp' }, { port: 3000, protocol: 'udp' }] })]);
    const marked = [...c.firstStepMask.keys()].filter((k) => c.firstStepMask[k] === 1);
    expect(marked).toEqual([portKey(1234, 'tcp'), portKey(1234, 'udp')]);
    expect(c.horizonMs).toBe(10_000);
  });
});

describe('malformed events', () => {
  const detector = createDetector([door()]);
  const emit = (): void => {};
  it.each([
    [{ port: -1 }, /KnockEvent\.port must be an integer 0-65535, got -1/],
    [{ port: 65_536 }, /got 65536/],
    [{ port: 1234.5 }, /got 1234\.5/],
    [{ port: Number.NaN }, /got NaN/],
    [{ protocol: 'sctp' }, /KnockEvent\.protocol must be 'tcp' or 'udp', got sctp \(source 10\.0\.0\.1, time 5\)/],
  ])('%#: %j is refused with the field named', (patch, message) => {
    const ev = { ...knock('10.0.0.1', 1234, 5), ...patch } as KnockEvent;
    expect(() => detector.onKnock(ev, emit)).toThrow(message);
  });
});
