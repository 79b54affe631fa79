// Memory must stay flat under floods: state exists only for sources that hit a
// first step, goes away when stale, and is capped at maxSources.
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/types.js';
import { createDetector } from '../../src/detect/detector.js';
import { REPEAT_MS } from '../../src/detect/index.js';
import { door, knock, only, run, series, show } from './detect-support.js';

const A = '10.0.0.1';

describe('detector: source table', () => {
  it('keeps no state for sources that never hit a first step', () => {
    const detector = createDetector([door()]);
    const emit = (): void => {
      throw new Error('no decision expected');
    };
    for (let i = 0; i < 10_000; i++) detector.onKnock(knock(`10.2.${i >> 8}.${i & 255}`, 5678 + (i % 3) * 3334, i), emit);
    expect(detector.stats.sources).toBe(0);
  });

  it('drops a source as soon as nothing is left to remember', () => {
    const detector = createDetector([door()]);
    const lines: string[] = [];
    const emit = (d: Decision): void => {
      lines.push(show(d));
    };
    detector.onKnock(knock(A, 1234, 0), emit);
    expect(detector.stats.sources).toBe(1);
    detector.onKnock(knock(A, 80, 10), emit);
    expect(detector.stats.sources).toBe(0);
    // After completion the source is kept only for the REPEAT_MS repeat rule.
    for (const ev of series(A, [1234, 5678, 9012], 100, 10)) detector.onKnock(ev, emit);
    expect(detector.stats.sources).toBe(1);
    detector.advanceTo(120 + 10_001, emit);
    expect(detector.stats).toMatchObject({ sources: 0, expired: 1 });
  });

  it('evicts the oldest source beyond maxSources, with reset evicted, and counts it', () => {
    const events = [
      knock('10.0.0.1', 1234, 0),
      knock('10.0.0.2', 1234, 1),
      knock('10.0.0.1', 5678, 2), // 10.0.0.1 becomes the most recent
      knock('10.0.0.3', 1234, 3), // table full: 10.0.0.2 (oldest activity) goes
      knock('10.0.0.2', 5678, 4), // no state any more: nothing
      knock('10.0.0.1', 9012, 5),
    ];
    const { lines, detector } = run([door()], events, { maxSources: 2, finish: false });
    expect(only(lines, 'reset')).toEqual(['3 reset ssh 10.0.0.2 evicted 1']);
    expect(lines.filter((l) => l.includes('10.0.0.2 ') && l.startsWith('4 '))).toEqual([]);
    expect(only(lines, 'open')).toEqual(['5 open ssh 10.0.0.1 until=30005']);
    expect(detector.stats).toMatchObject({ sources: 2, evictions: 1, resets: 1 });
    // The eviction reset comes before the new source's own decisions.
    expect(lines.slice(lines.indexOf('3 reset ssh 10.0.0.2 evicted 1'), lines.indexOf('3 reset ssh 10.0.0.2 evicted 1') + 2)).toEqual([
      '3 reset ssh 10.0.0.2 evicted 1',
      '3 knock ssh 10.0.0.3 1234/tcp',
    ]);
  });

  it('stale state is dropped by packet time with one reset per abandoned attempt', () => {
    const events = [knock('10.0.0.1', 1234, 0), knock('10.0.0.2', 1234, 1500), knock('10.0.0.2', 5678, 2000), knock('10.0.0.9', 80, 5001)];
    const { lines, detector } = run([door({ windowMs: 5000 })], events, { finish: false });
    // 10.0.0.1 never knocks again: gone once packet time passes its window.
    expect(only(lines, 'reset')).toEqual(['5001 reset ssh 10.0.0.1 window 1']);
    expect(detector.stats).toMatchObject({ sources: 1, expired: 1 });
    const later: string[] = [];
    detector.advanceTo(7001, (d) => later.push(show(d)));
    expect(later).toEqual(['7001 reset ssh 10.0.0.2 window 2']);
    expect(detector.stats).toMatchObject({ sources: 0, expired: 2, resets: 2 });
  });

  it('stale state names the deadline that passed first (gap before window)', () => {
    const { lines, detector } = run([door({ windowMs: 5000, gapMs: 1000 })], [knock('10.0.0.2', 1234, 100), knock('10.0.0.2', 5678, 900), knock('10.0.0.9', 80, 6000)], { finish: false });
    expect(only(lines, 'reset')).toEqual(['6000 reset ssh 10.0.0.2 gap 2']);
    expect(detector.stats.sources).toBe(0);
  });

  it('2 M spoofed sources on the first step with maxSources 10,000: the table never exceeds the cap and a real knock opens', () => {
    const cap = 10_000;
    const detector = createDetector([door()], { maxSources: cap });
    let opened = 0;
    let maxSeen = 0;
    const emit = (d: Decision): void => {
      if (d.type === 'open' && d.source === A) opened++;
    };
    const gc = (globalThis as { gc?: () => void }).gc;
    let heapAfterFirst = 0;
    let seed = 12345;
    for (let i = 0; i < 2_000_000; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const src = `${(seed >>> 24) | 1}.${(seed >>> 16) & 255}.${(seed >>> 8) & 255}.${seed & 255}`;
      const t = i * 0.01; // 100 k packets/s: all inside one 10 s window
      detector.onKnock(knock(src, 1234, t), emit);
      // The real client knocks in the middle of the flood, 50 flood packets per step apart.
      if (i >= 1_000_000 && i < 1_000_150 && i % 50 === 0) detector.onKnock(knock(A, [1234, 5678, 9012][(i - 1_000_000) / 50], t), emit);
      if ((i & 1023) === 0) maxSeen = Math.max(maxSeen, detector.stats.sources);
      if (i === 200_000 && gc) {
        gc();
        heapAfterFirst = process.memoryUsage().heapUsed;
      }
    }
    maxSeen = Math.max(maxSeen, detector.stats.sources);
    expect(maxSeen).toBe(cap);
    expect(detector.stats.evictions).toBeGreaterThan(1_900_000);
    expect(opened).toBe(1);
    if (gc) {
      gc();
      // Flat: 1.8 M more spoofed sources did not grow the retained heap by more than a few MB.
      expect(process.memoryUsage().heapUsed - heapAfterFirst).toBeLessThan(8 * 1024 * 1024);
    }
  });

  it('a flood spread over time is bounded by the window, not by the cap', () => {
    const windowMs = 1000;
    // State lives for the horizon: the longest window, but at least REPEAT_MS.
    const horizonMs = Math.max(windowMs, REPEAT_MS);
    const detector = createDetector([door({ windowMs })], { maxSources: 100_000 });
    const emit = (): void => {};
    let maxSeen = 0;
    const total = 300_000;
    for (let i = 0; i < total; i++) {
      // 10 new sources per ms of packet time: at most ~10 * horizonMs alive at once.
      detector.onKnock(knock(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 1234, i * 0.1), emit);
      if ((i & 255) === 0) maxSeen = Math.max(maxSeen, detector.stats.sources);
    }
    const bound = 10 * horizonMs + 2;
    expect(maxSeen).toBeLessThanOrEqual(bound);
    expect(maxSeen).toBeLessThan(100_000);
    expect(detector.stats.evictions).toBe(0);
    expect(detector.stats.expired).toBeGreaterThanOrEqual(total - bound);
  });
});
