import { firstValueFrom, from, lastValueFrom, Subject, toArray } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Decision, KnockEvent } from '../../src/types.js';
import { createDetector } from '../../src/detect/detector.js';
import { detectKnocks, runDetector } from '../../src/detect/operator.js';
import { liveTicks } from '../../src/detect/clock.js';
import { door, knock, run, series, show } from './detect-support.js';

const A = '10.0.0.1';
const B = '10.0.0.2';

describe('detectKnocks operator', () => {
  const events: KnockEvent[] = [...series(B, [1234, 80, 5678], 0, 5), ...series(A, [1234, 5678, 9012], 100, 10), knock(B, 1234, 200)];

  it('gives the same decisions as the detector, ending with finish()', async () => {
    const decisions = await lastValueFrom(from(events).pipe(detectKnocks([door()]), toArray()));
    expect(decisions.map(show)).toEqual(run([door()], events).lines);
    expect(decisions.at(-1)).toMatchObject({ type: 'close', time: 30_120, source: A, reason: 'expired' });
  });

  it('is cold: each subscription gets its own detector', async () => {
    const op$ = from(events).pipe(detectKnocks([door()]), toArray());
    const first = await lastValueFrom(op$);
    const second = await lastValueFrom(op$);
    expect(second).toEqual(first);
  });

  it('refuses invalid doors when the pipeline is built', () => {
    expect(() => detectKnocks([door({ windowMs: 0 })])).toThrow(/door 0 'ssh' windowMs/);
  });

  it('ticks call advanceTo: closes are emitted without traffic', () => {
    const input = new Subject<KnockEvent>();
    const ticks = new Subject<number>();
    const seen: string[] = [];
    let completed = false;
    input.pipe(detectKnocks([door({ durationMs: 1000 })], { ticks })).subscribe({ next: (d) => seen.push(show(d)), complete: () => (completed = true) });
    for (const ev of series(A, [1234, 5678, 9012], 0, 10)) input.next(ev);
    ticks.next(500);
    expect(seen.filter((l) => l.includes('close'))).toEqual([]);
    ticks.next(1020);
    expect(seen.at(-1)).toBe(`1020 close ssh ${A} expired`);
    input.complete();
    expect(completed).toBe(true);
    // Ticks after completion are ignored.
    ticks.next(99_999);
    expect(seen.filter((l) => l.includes('close'))).toHaveLength(1);
    expect(ticks.observed).toBe(false);
  });

  it('a bad event errors the stream with a message naming the field', async () => {
    const bad = { ...knock(A, 1234, 0), port: 70_000 };
    await expect(lastValueFrom(from([bad]).pipe(detectKnocks([door()])))).rejects.toThrow(/KnockEvent\.port must be an integer 0-65535, got 70000 \(source 10\.0\.0\.1, time 0\)/);
  });

  it('source errors pass through and unsubscribe the ticks', async () => {
    const ticks = new Subject<number>();
    const input = new Subject<KnockEvent>();
    const result = firstValueFrom(input.pipe(detectKnocks([door()], { ticks })));
    input.error(new Error('capture failed'));
    await expect(result).rejects.toThrow('capture failed');
    expect(ticks.observed).toBe(false);
  });

  it('runDetector shares a detector with the caller for stats and shutdown', () => {
    const detector = createDetector([door()]);
    const input = new Subject<KnockEvent>();
    const seen: Decision[] = [];
    const sub = input.pipe(runDetector(detector)).subscribe((d) => seen.push(d));
    for (const ev of series(A, [1234, 5678, 9012], 0, 10)) input.next(ev);
    expect(detector.openAccesses()).toHaveLength(1);
    sub.unsubscribe();
    detector.shutdown(100, (d) => seen.push(d));
    expect(seen.map(show).at(-1)).toBe(`100 close ssh ${A} shutdown`);
    expect(detector.stats.opens).toBe(1);
  });
});

describe('liveTicks', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ticks at the next deadline, at least every maxIntervalMs, with now() values', () => {
    vi.useFakeTimers();
    const start = Date.now();
    const now = (): number => 1_000_000 + (Date.now() - start);
    let deadline: number | undefined = 1_000_250;
    const got: number[] = [];
    const sub = liveTicks({ now, nextDeadline: () => deadline, maxIntervalMs: 1000 }).subscribe((t) => {
      got.push(t);
      deadline = undefined;
    });
    vi.advanceTimersByTime(249);
    expect(got).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(got).toEqual([1_000_250]);
    vi.advanceTimersByTime(1000);
    expect(got).toEqual([1_000_250, 1_001_250]);
    sub.unsubscribe();
    vi.advanceTimersByTime(5000);
    expect(got).toHaveLength(2);
  });

  it('a deadline already due does not spin: at least 1 ms between ticks', () => {
    vi.useFakeTimers();
    let ticks = 0;
    const sub = liveTicks({ now: () => 5000, nextDeadline: () => 0 }).subscribe(() => ticks++);
    vi.advanceTimersByTime(10);
    expect(ticks).toBe(10);
    sub.unsubscribe();
  });

  it('drives a detector so an access closes at its deadline without traffic', () => {
    vi.useFakeTimers();
    const base = Date.now();
    const now = (): number => Date.now() - base;
    const detector = createDetector([door({ durationMs: 3000 })]);
    const input = new Subject<KnockEvent>();
    const seen: string[] = [];
    const ticks = liveTicks({ now, nextDeadline: () => detector.nextDeadline(), maxIntervalMs: 1000 });
    input.pipe(runDetector(detector, { ticks })).subscribe((d) => seen.push(show(d)));
    vi.advanceTimersByTime(400);
    // Opened at 400 (until 3400), after the tick timer was set: durationMs >= maxIntervalMs,
    // so the pending tick fires first and re-arms for the exact deadline.
    for (const ev of series(A, [1234, 5678, 9012], now(), 0)) input.next(ev);
    vi.advanceTimersByTime(2999);
    expect(seen.filter((l) => l.includes('close'))).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(seen.at(-1)).toBe(`3400 close ssh ${A} expired`);
    input.complete();
  });

  it('rejects a bad maxIntervalMs', () => {
    expect(() => liveTicks({ now: () => 0, nextDeadline: () => undefined, maxIntervalMs: 0 })).toThrow(/maxIntervalMs/);
  });
});
