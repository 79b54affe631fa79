// The sequence matcher on its own, through the matcher interface: what it
// reports to the sink for one source's knocks, what it watches, and when its
// state must be kept. (Whole-detector behaviour: detect-sequence.test.ts.)
import { describe, expect, it } from 'vitest';
import type { ResetReason, SequenceDoor } from '../../src/types.js';
import { portKey, type MatchSink } from '../../src/detect/matcher.js';
import { REPEAT_MS, sequenceMatcher, type Progress } from '../../src/detect/sequence.js';
import { door, knockAt, tcp } from './detect-support.js';

function matcher(overrides: Partial<Omit<SequenceDoor, 'kind'>> = {}) {
  const m = sequenceMatcher(door(overrides), { index: 0, at: "door 0 'ssh'" });
  const log: string[] = [];
  const sink: MatchSink = {
    knock: () => log.push('knock'),
    progress: (step, of) => log.push(`progress ${step}/${of}`),
    reset: (reason: ResetReason, step, key) => log.push(`reset ${reason} ${step} ${key}`),
    complete: () => log.push('complete'),
    reject: (reason) => log.push(`reject ${reason}`),
  };
  let state: Progress | undefined;
  /** Feeds knocks as [port, time] (tcp unless protocol given) and returns the reports of this call. */
  const feed = (...knocks: [number, number, ('tcp' | 'udp')?][]): string[] => {
    log.length = 0;
    for (const [port, t, protocol] of knocks) state = m.consume(state, portKey(port, protocol ?? 'tcp'), knockAt(port, t, protocol ?? 'tcp'), t, sink);
    return [...log];
  };
  return { m, feed, state: () => state };
}

describe('sequence rule', () => {
  it('creates state only on the first step', () => {
    const { m, feed, state } = matcher();
    expect(feed([5678, 0], [80, 1])).toEqual([]);
    expect(state()).toBeUndefined();
    expect(m.startKeys).toEqual([portKey(1234, 'tcp')]);
  });

  it('progresses in order and completes on the last step', () => {
    const { m, feed, state } = matcher();
    expect(feed([1234, 0], [5678, 10], [9012, 20])).toEqual(['knock', 'progress 1/3', 'knock', 'progress 2/3', 'knock', 'progress 3/3', 'complete']);
    expect(m.pending(state()!)).toBe(0);
  });

  it('a wrong port resets with its key; a wrong protocol says so; the first step restarts', () => {
    const { feed } = matcher();
    feed([1234, 0]);
    expect(feed([80, 1])).toEqual(['knock', `reset wrong-port 1 ${portKey(80, 'tcp')}`]);
    feed([1234, 2]);
    expect(feed([5678, 3, 'udp'])).toEqual(['knock', `reset wrong-protocol 1 ${portKey(5678, 'udp')}`]);
    feed([1234, 4], [5678, 5]);
    expect(feed([1234, 6])).toEqual(['knock', `reset wrong-port 2 ${portKey(1234, 'tcp')}`, 'progress 1/3']);
  });

  it(`an exact repeat within REPEAT_MS (${REPEAT_MS} ms, inclusive) and a knock on an open port change nothing`, () => {
    const { feed, m, state } = matcher();
    feed([1234, 0]);
    expect(feed([1234, REPEAT_MS], [22, REPEAT_MS + 1])).toEqual(['knock', 'knock']);
    expect(m.pending(state()!)).toBe(1);
    expect(feed([1234, REPEAT_MS + 2])).toEqual(['knock', `reset wrong-port 1 ${portKey(1234, 'tcp')}`, 'progress 1/3']);
  });

  it('a doubled completing knock within REPEAT_MS does not complete twice', () => {
    const { feed } = matcher({ sequence: tcp(1234) });
    expect(feed([1234, 0])).toEqual(['knock', 'progress 1/1', 'complete']);
    expect(feed([1234, REPEAT_MS])).toEqual(['knock']);
    expect(feed([1234, 2 * REPEAT_MS + 1])).toEqual(['knock', 'progress 1/1', 'complete']);
  });

  it('a stale attempt resets with whichever deadline passed first, before the knock counts', () => {
    const w = matcher({ windowMs: 1000 });
    w.feed([1234, 0], [5678, 900]);
    expect(w.feed([9012, 1001])).toEqual(['reset window 2 -1']);
    const g = matcher({ windowMs: 10_000, gapMs: 500 });
    g.feed([1234, 0]);
    expect(g.feed([1234, 501], [5678, 600])).toEqual(['reset gap 1 -1', 'knock', 'progress 1/3', 'knock', 'progress 2/3']);
    g.feed([9012, 1101]);
    expect(g.m.expiryReason(g.state()!)).toBe('gap');
  });

  it('live(): part-way, or completed within REPEAT_MS; abandon() ends the attempt', () => {
    const { feed, m, state } = matcher({ sequence: tcp(1234, 5678) });
    feed([1234, 0]);
    expect(m.live(state()!, 1e9)).toBe(true);
    m.abandon(state()!);
    expect(m.pending(state()!)).toBe(0);
    feed([1234, 10], [5678, 20]);
    expect(m.live(state()!, 20 + REPEAT_MS)).toBe(true);
    expect(m.live(state()!, 21 + REPEAT_MS)).toBe(false);
  });

  it('watches both protocols on any port, its steps, first step and open ports; horizon at least REPEAT_MS', () => {
    const { m } = matcher({ windowMs: 100 });
    expect(m.watch).toEqual({ protocols: ['tcp', 'udp'], firstSteps: tcp(1234), steps: tcp(1234, 5678, 9012), openPorts: tcp(22) });
    expect(m.horizonMs).toBe(REPEAT_MS);
    expect(matcher({ windowMs: 20_000 }).m.horizonMs).toBe(20_000);
  });

  it('refuses a sequence it cannot enforce, naming door and field', () => {
    expect(() => matcher({ sequence: [] })).toThrow(/door 0 'ssh': sequence is empty/);
    expect(() => matcher({ sequence: tcp(1234, 1235) })).toThrow(/door 0 'ssh' sequence\[1\]: 1235\/tcp right after 1234\/tcp is a neighbouring port/);
    expect(() => matcher({ gapMs: -5 })).toThrow(/door 0 'ssh' gapMs: must be a positive finite number of ms, got -5/);
  });
});
