import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/types.js';
import { createDetector } from '../../src/detect/detector.js';
import { door, knock, only, run, series, show, tcp } from './detect-support.js';

const A = '10.0.0.1';
const B = '10.0.0.2';

function collector(): { emit: (d: Decision) => void; take: () => string[] } {
  let lines: string[] = [];
  return {
    emit: (d) => {
      lines.push(show(d));
    },
    take: () => {
      const out = lines;
      lines = [];
      return out;
    },
  };
}

describe('detector: refresh', () => {
  it('a second completion while open extends the deadline and yields exactly one close', () => {
    const events = [...series(A, [1234, 5678, 9012], 0, 10), ...series(A, [1234, 5678, 9012], 10_000, 10), knock(A, 80, 35_000)];
    const { lines } = run([door()], events);
    expect(only(lines, 'open')).toEqual([`20 open ssh ${A} until=30020`, `10020 open ssh ${A} until=40020 refreshed`]);
    // The knock at 35000 (after the first deadline) must not see a close.
    expect(only(lines, 'close')).toEqual([`40020 close ssh ${A} expired`]);
  });

  it('two completions at the same instant still give one close', () => {
    // The second attempt starts on the first step (not a repeat of the completing one).
    const twoStep = door({ sequence: tcp(3000, 4000) });
    const { lines } = run([twoStep], [knock(A, 3000, 0), knock(A, 4000, 5), knock(A, 3000, 5), knock(A, 4000, 5)]);
    expect(only(lines, 'open')).toEqual([`5 open ssh ${A} until=30005`, `5 open ssh ${A} until=30005 refreshed`]);
    expect(only(lines, 'close')).toEqual([`30005 close ssh ${A} expired`]);
  });

  it('refresh keeps a single close under advanceTo too', () => {
    const detector = createDetector([door()]);
    const c = collector();
    for (const ev of series(A, [1234, 5678, 9012], 0, 10)) detector.onKnock(ev, c.emit);
    for (const ev of series(A, [1234, 5678, 9012], 20_000, 10)) detector.onKnock(ev, c.emit);
    c.take();
    detector.advanceTo(30_020, c.emit);
    expect(c.take()).toEqual([]);
    expect(detector.nextDeadline()).toBe(50_020);
    detector.advanceTo(50_019, c.emit);
    expect(c.take()).toEqual([]);
    detector.advanceTo(50_020, c.emit);
    expect(c.take()).toEqual([`50020 close ssh ${A} expired`]);
    detector.finish(c.emit);
    expect(c.take()).toEqual([]);
    expect(detector.stats).toMatchObject({ opens: 2, closes: 1 });
  });
});

describe('detector: closes', () => {
  it('closes due before a knock come first, stamped with their deadline', () => {
    const d = door({ durationMs: 1000 });
    const { lines } = run([d], [...series(A, [1234, 5678, 9012], 0, 10), knock(B, 1234, 5000)], { finish: false });
    expect(lines.slice(-3)).toEqual([`1020 close ssh ${A} expired`, `5000 knock ssh ${B} 1234/tcp`, `5000 progress ssh ${B} 1/3`]);
  });

  it('an access closes at its deadline, before a knock at that very time', () => {
    const d = door({ durationMs: 1000 });
    const { lines } = run([d], [...series(A, [1234, 5678, 9012], 0, 10), ...series(A, [1234, 5678, 9012], 1000, 10)], { finish: false });
    expect(lines.filter((l) => /open|close/.test(l))).toEqual([
      `20 open ssh ${A} until=1020`,
      `1020 close ssh ${A} expired`,
      `1020 open ssh ${A} until=2020`,
    ]);
  });

  it('finish() emits pending closes at their own deadlines in deadline order', () => {
    const doors = [door({ name: 'long', durationMs: 60_000 }), door({ name: 'short', sequence: tcp(2000, 3000), durationMs: 5_000 })];
    const events = [...series(A, [1234, 5678, 9012], 0, 10), ...series(B, [2000, 3000], 100, 10), ...series(B, [1234, 5678, 9012], 200, 10)];
    const { lines, detector } = run(doors, events);
    expect(only(lines, 'close')).toEqual([
      `5110 close short ${B} expired`,
      `60020 close long ${A} expired`,
      `60220 close long ${B} expired`,
    ]);
    expect(detector.openAccesses()).toEqual([]);
    expect(detector.nextDeadline()).toBeUndefined();
  });

  it('equal deadlines close in the order they were set', () => {
    const doors = [door({ name: 'x', sequence: tcp(2000, 3000) }), door({ name: 'y', sequence: tcp(4000, 5000) })];
    const events = [knock(B, 4000, 0), knock(A, 2000, 0), knock(B, 5000, 10), knock(A, 3000, 10)];
    const { lines } = run(doors, events);
    expect(only(lines, 'close')).toEqual([`30010 close y ${B} expired`, `30010 close x ${A} expired`]);
  });

  it('equal deadlines: a refreshed access counts from its refresh', () => {
    const doors = [door({ name: 'x', sequence: tcp(2000, 3000), durationMs: 20_000 }), door({ name: 'y', sequence: tcp(4000, 5000), durationMs: 20_000 })];
    // A opens x (until 20000); B opens y at 10000 (until 30000); then A refreshes x to 30000.
    const events = [knock(A, 2000, -10), knock(A, 3000, 0), knock(B, 4000, 9990), knock(A, 2000, 9995), knock(B, 5000, 10_000), knock(A, 3000, 10_000)];
    const { lines } = run(doors, events);
    expect(only(lines, 'open')).toEqual([`0 open x ${A} until=20000`, `10000 open y ${B} until=30000`, `10000 open x ${A} until=30000 refreshed`]);
    expect(only(lines, 'close')).toEqual([`30000 close y ${B} expired`, `30000 close x ${A} expired`]);
  });

  it('advanceTo emits closes due by then, nothing early, and drives nextDeadline', () => {
    const detector = createDetector([door({ durationMs: 1000 })]);
    const c = collector();
    expect(detector.nextDeadline()).toBeUndefined();
    for (const ev of series(A, [1234, 5678, 9012], 0, 10)) detector.onKnock(ev, c.emit);
    for (const ev of series(B, [1234, 5678, 9012], 500, 10)) detector.onKnock(ev, c.emit);
    c.take();
    expect(detector.nextDeadline()).toBe(1020);
    expect(detector.openAccesses()).toEqual([
      { door: 'ssh', source: A, until: 1020, ports: tcp(22) },
      { door: 'ssh', source: B, until: 1520, ports: tcp(22) },
    ]);
    detector.advanceTo(1019.999, c.emit);
    expect(c.take()).toEqual([]);
    detector.advanceTo(1600, c.emit);
    expect(c.take()).toEqual([`1020 close ssh ${A} expired`, `1520 close ssh ${B} expired`]);
    expect(detector.nextDeadline()).toBeUndefined();
    expect(detector.openAccesses()).toEqual([]);
  });

  it('advanceTo moves packet time: a later knock cannot reopen the past', () => {
    const detector = createDetector([door()]);
    const c = collector();
    detector.advanceTo(100_000, c.emit);
    // A knock stamped earlier than the clock is treated as happening now.
    for (const ev of series(A, [1234, 5678, 9012], 0, 10)) detector.onKnock(ev, c.emit);
    expect(only(c.take(), 'open')).toEqual([`100000 open ssh ${A} until=130000`]);
  });

  it('packet times that go backwards are clamped, so windows never run backwards', () => {
    const { lines } = run([door({ windowMs: 5000 })], [knock(A, 1234, 10_000), knock(A, 5678, 2000), knock(A, 9012, 16_000)]);
    expect(lines[2]).toBe(`10000 knock ssh ${A} 5678/tcp`);
    expect(only(lines, 'reset')).toEqual([`16000 reset ssh ${A} window 2`]);
    const times = lines.map((l) => Number(l.split(' ')[0]));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it('decision times never decrease across knocks, closes and finish', () => {
    const events = [];
    for (let i = 0; i < 200; i++) events.push(...series(`10.1.0.${i}`, [1234, 5678, 9012], i * 997, 10));
    const { decisions } = run([door({ durationMs: 3000 })], events);
    for (let i = 1; i < decisions.length; i++) expect(decisions[i].time).toBeGreaterThanOrEqual(decisions[i - 1].time);
    expect(decisions.filter((d) => d.type === 'close')).toHaveLength(200);
  });
});

describe('detector: shutdown', () => {
  it('closes accesses already due as expired, the rest as shutdown at the given time, and drops state', () => {
    const detector = createDetector([door({ durationMs: 1000 }), door({ name: 'web', sequence: tcp(2000, 3000), durationMs: 60_000 })]);
    const c = collector();
    for (const ev of [...series(A, [1234, 5678, 9012], 0, 10), ...series(B, [2000, 3000], 50, 10), knock('10.0.0.3', 1234, 60)]) {
      detector.onKnock(ev, c.emit);
    }
    c.take();
    expect(detector.stats.sources).toBeGreaterThan(0);
    detector.shutdown(5000, c.emit);
    expect(c.take()).toEqual([`1020 close ssh ${A} expired`, `5000 close web ${B} shutdown`]);
    expect(detector.openAccesses()).toEqual([]);
    expect(detector.nextDeadline()).toBeUndefined();
    expect(detector.stats).toMatchObject({ sources: 0, closes: 2 });
    detector.finish(c.emit);
    expect(c.take()).toEqual([]);
  });
});

describe('detector: restore (config reload)', () => {
  const doors = [door({ open: [{ port: 22, protocol: 'tcp' }, { port: 2222, protocol: 'tcp' }] })];

  it('tracks a carried access and closes it at its deadline with the ports it holds', () => {
    const detector = createDetector(doors);
    const c = collector();
    detector.restore({ door: 'ssh', source: A, until: 5000, ports: tcp(2222) });
    expect(detector.openAccesses()).toEqual([{ door: 'ssh', source: A, until: 5000, ports: tcp(2222) }]);
    expect(detector.nextDeadline()).toBe(5000);
    detector.advanceTo(4999, c.emit);
    expect(c.take()).toEqual([]);
    detector.advanceTo(5000, c.emit);
    expect(c.take()).toEqual([`5000 close ssh ${A} expired`]);
    expect(detector.stats.closes).toBe(1);
  });

  it('a completed sequence refreshes a restored access: all door ports, never a shorter deadline', () => {
    const detector = createDetector(doors);
    const got: Decision[] = [];
    detector.restore({ door: 'ssh', source: A, until: 100_000, ports: tcp(2222) });
    for (const ev of series(A, [1234, 5678, 9012], 0, 10)) detector.onKnock(ev, (d) => got.push(d));
    expect(got.filter((d) => d.type === 'open')).toMatchObject([{ refreshed: true, until: 100_000 }]);
    for (const ev of series(A, [1234, 5678, 9012], 90_000, 10)) detector.onKnock(ev, (d) => got.push(d));
    detector.finish((d) => got.push(d));
    const closes = got.filter((d) => d.type === 'close');
    expect(closes).toMatchObject([{ time: 120_020, ports: tcp(22, 2222) }]);
  });

  it('refuses an unknown door, a port the door does not open and a bad deadline', () => {
    const detector = createDetector(doors);
    expect(() => detector.restore({ door: 'web', source: A, until: 1, ports: tcp(22) })).toThrow(/no door named 'web' \(source 10\.0\.0\.1\)/);
    expect(() => detector.restore({ door: 'ssh', source: A, until: 1, ports: tcp(80) })).toThrow(/ports\[0\] 80\/tcp is not an open port of door 'ssh'/);
    expect(() => detector.restore({ door: 'ssh', source: A, until: Number.NaN, ports: tcp(22) })).toThrow(/until must be a finite packet time, got NaN/);
    expect(detector.openAccesses()).toEqual([]);
  });

  it('shutdown closes restored accesses too', () => {
    const detector = createDetector(doors);
    const c = collector();
    detector.restore({ door: 'ssh', source: B, until: 50_000, ports: tcp(22) });
    detector.shutdown(1000, c.emit);
    expect(c.take()).toEqual([`1000 close ssh ${B} shutdown`]);
  });
});

describe('detector: closeForReload', () => {
  it('expires what is due, closes the selected accesses with reason reload, and keeps the rest on time', () => {
    const detector = createDetector([door({ durationMs: 1000 }), door({ name: 'web', sequence: tcp(2000, 3000), durationMs: 60_000 })]);
    const c = collector();
    for (const ev of [...series(B, [2000, 3000], 0, 10), ...series(B, [1234, 5678, 9012], 50, 10), ...series(A, [1234, 5678, 9012], 100, 10)]) {
      detector.onKnock(ev, c.emit);
    }
    c.take();
    detector.closeForReload((a) => a.door === 'web', 1100, c.emit);
    expect(c.take()).toEqual([`1070 close ssh ${B} expired`, `1100 close web ${B} reload`]);
    expect(detector.openAccesses()).toEqual([{ door: 'ssh', source: A, until: 1120, ports: tcp(22) }]);
    expect(detector.nextDeadline()).toBe(1120);
    expect(detector.stats.closes).toBe(2);
    detector.finish(c.emit);
    expect(c.take()).toEqual([`1120 close ssh ${A} expired`]);
  });
});
