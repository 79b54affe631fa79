// The rotating door kind (issue 11 part 2) with packet time only: periods
// n-1..n+1 accepted, used on completion (not on the first step), a used
// period rejected, wrong ports reset, a sweep of the range never opens, the
// store's record survives a new detector, a store that fails keeps it shut.
import { describe, expect, it } from 'vitest';
import { secretBytes } from '../../src/config/door-files.js';
import { rotatingPorts } from '../../src/detect/rotating-ports.js';
import type { RotatingStore } from '../../src/detect/rotating.js';
import type { KnockEvent, RotatingDoor } from '../../src/types.js';
import { knock, run } from './detect-support.js';

const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const PERIOD = 30_000;
const T0 = 59356800 * PERIOD; // start of period 59356800 (2026-06-06T00:00:00Z)
const SRC = '198.51.100.7';

const rot: RotatingDoor = {
  kind: 'rotating',
  name: 'rot',
  keyFile: '/k',
  key: secretBytes(KEY),
  steps: 4,
  periodMs: PERIOD,
  portRange: { low: 20000, high: 60000 },
  protocol: 'tcp',
  windowMs: 5000,
  open: [{ port: 2222, protocol: 'tcp' }],
  durationMs: 20_000,
};

function portsOf(n: number): number[] {
  return rotatingPorts(KEY, n, 4, { low: 20000, high: 60000 });
}

function knocks(ports: number[], t: number, source = SRC, step = 100): KnockEvent[] {
  return ports.map((p, i) => knock(source, p, t + i * step));
}

const opens = (lines: string[]) => lines.filter((l) => l.includes(' open '));
const rejects = (lines: string[]) => lines.filter((l) => l.includes(' reject '));

function memoryStore(): RotatingStore & { marks: number[] } {
  const marks: number[] = [];
  return {
    marks,
    used: () => marks,
    markUsed: (_d, _f, p) => {
      marks.push(p);
      return true;
    },
  };
}

describe('rotating door', () => {
  it('the current period opens, matching the README vector', () => {
    expect(portsOf(59356800)).toEqual([55993, 35569, 44943, 43138]);
    const r = run([rot], knocks(portsOf(59356800), T0 + 1000));
    expect(opens(r.lines)).toEqual([`${T0 + 1300} open rot ${SRC} until=${T0 + 21_300}`]);
  });

  it('the previous and the next period open (clock skew); two periods back does not', () => {
    expect(opens(run([rot], knocks(portsOf(59356799), T0 + 1000)).lines)).toHaveLength(1);
    expect(opens(run([rot], knocks(portsOf(59356801), T0 + 1000)).lines)).toHaveLength(1);
    const old = run([rot], knocks(portsOf(59356798), T0 + 1000));
    expect(old.lines).toEqual([]);
    expect(old.detector.stats.sources).toBe(0);
  });

  it('a period works once: the replay of a used sequence is rejected, from anyone', () => {
    const seq = portsOf(59356800);
    const r = run([rot], [...knocks(seq, T0 + 1000), ...knocks(seq, T0 + 9000, '203.0.113.9')]);
    expect(opens(r.lines)).toHaveLength(1);
    expect(rejects(r.lines)).toEqual([`${T0 + 9300} reject rot 203.0.113.9 rotating sequence of period 59356800 already used`]);
  });

  it('marks used on completion, not on the first step: a copied first knock burns nothing', () => {
    const seq = portsOf(59356800);
    const r = run([rot], [knock('203.0.113.9', seq[0], T0 + 500), ...knocks(seq, T0 + 1000)]);
    expect(opens(r.lines)).toEqual([`${T0 + 1300} open rot ${SRC} until=${T0 + 21_300}`]);
  });

  it('a wrong port resets; the whole range swept in order never opens', () => {
    const seq = portsOf(59356800);
    const wrong = run([rot], [knock(SRC, seq[0], T0), knock(SRC, seq[1] + 7, T0 + 10), ...knocks(seq.slice(1), T0 + 20)]);
    expect(wrong.lines).toContain(`${T0 + 10} reset rot ${SRC} wrong-port 1 ${seq[1] + 7}/tcp`);
    expect(opens(wrong.lines)).toEqual([]);
    const sweep: KnockEvent[] = [];
    for (let p = 20000, t = T0; p <= 60000; p++, t += 0.1) sweep.push(knock(SRC, p, t));
    expect(opens(run([rot], sweep).lines)).toEqual([]);
  });

  it('the used period is read from the store by a new detector (a restart), and recorded there', () => {
    const store = memoryStore();
    const seq = portsOf(59356800);
    expect(opens(run([rot], knocks(seq, T0 + 1000), { stores: { rotating: store } }).lines)).toHaveLength(1);
    expect(store.marks).toEqual([59356800]);
    const again = run([rot], knocks(seq, T0 + 2000), { stores: { rotating: store } });
    expect(opens(again.lines)).toEqual([]);
    expect(rejects(again.lines)).toHaveLength(1);
  });

  it('a store that cannot record the period keeps the door shut (reject), and the period stays valid', () => {
    let ok = false;
    const store: RotatingStore = { used: () => [], markUsed: () => ok };
    const seq = portsOf(59356800);
    const r = run([rot], [...knocks(seq, T0 + 1000), ...knocks(seq, T0 + 3000)], { stores: { rotating: store } });
    expect(opens(r.lines)).toEqual([]);
    expect(rejects(r.lines)[0]).toMatch(/could not be recorded as used: not opened/);
    ok = true;
    const r2 = run([rot], knocks(seq, T0 + 5000), { stores: { rotating: store } });
    expect(opens(r2.lines)).toHaveLength(1);
  });

  it('without a key nothing opens and nothing is kept', () => {
    const noKey: RotatingDoor = { ...rot, key: undefined };
    const r = run([noKey], knocks(portsOf(59356800), T0));
    expect(r.lines).toEqual([]);
  });

  it('watches the whole range for capture; refuses an open port inside the range', () => {
    expect(() => run([{ ...rot, open: [{ port: 30000, protocol: 'tcp' }] }], [])).toThrow("door 0 'rot' open[0]: 30000/tcp is inside the rotating range 20000-60000/tcp");
    expect(() => run([{ ...rot, portRange: { low: 20000, high: 20010 } }], [])).toThrow('holds 11 ports; 4 steps need at least 16');
  });

  it('the key never shows in JSON', () => {
    expect(JSON.stringify(rot)).not.toContain('"bytes"');
    expect(JSON.stringify(rot)).toContain('"key":"[secret]"');
  });
});
