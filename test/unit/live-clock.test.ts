// The capture wall clock: anchored to the system clock, advanced monotonically.
import { describe, expect, it } from 'vitest';
import { createWallClock, wallClock } from '../../src/capture/live-clock.js';

describe('createWallClock', () => {
  it('agrees with Date.now() to well under a millisecond', () => {
    // Date.now() floors to whole ms, so t lies in [before, after + 1).
    // Under a CPU hog an anchoring can be preempted through all its edges:
    // of up to 5 clocks, one must hold for all 50 reads.
    const misses: string[] = [];
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const clock = createWallClock();
      let miss: string | undefined;
      for (let i = 0; i < 50 && miss === undefined; i += 1) {
        const before = Date.now();
        const t = clock();
        const after = Date.now();
        if (t < before - 0.05 || t >= after + 1.05) miss = `${t} outside [${before}, ${after + 1})`;
      }
      if (miss === undefined) break;
      misses.push(miss);
    }
    expect(misses.length, misses.join('; ')).toBeLessThan(5);
  });

  it('never goes backwards and has sub-millisecond resolution', () => {
    const clock = createWallClock();
    let last = clock();
    const fractions = new Set<number>();
    for (let i = 0; i < 10_000; i += 1) {
      const t = clock();
      expect(t).toBeGreaterThanOrEqual(last);
      fractions.add(Math.round((t % 1) * 1000));
      last = t;
    }
    expect(fractions.size).toBeGreaterThan(10);
  });

  it('gives the same time from two independently anchored clocks', () => {
    // Both anchors are brackets around a Date.now() step; a preempted one is
    // discarded. b is read between two reads of a, so a preemption between the
    // reads cannot pass for an offset. Under a CPU hog with 4 test workers on
    // 2 cores a pair once came out 0.88 ms apart (the thread preempted through
    // an anchoring's ~4 ms): the best of 5 pairs is what is asserted.
    let best = Infinity;
    for (let i = 0; i < 5 && best >= 0.25; i += 1) {
      const a = createWallClock();
      const b = createWallClock();
      const before = a();
      const t = b();
      const after = a();
      best = Math.min(best, Math.max(Math.abs(t - before), Math.abs(after - t)));
    }
    expect(best).toBeLessThan(0.25);
  });

  it('shares one process clock', () => {
    const t1 = wallClock();
    const t2 = wallClock();
    expect(t2).toBeGreaterThanOrEqual(t1);
    expect(Math.abs(t1 - Date.now())).toBeLessThan(2);
  });
});
