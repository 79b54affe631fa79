// The detector against a plain reference model of the contract, on random
// knock streams, plus determinism. The model keeps every (source, door) state
// forever and scans accesses linearly: slow but obviously right. Resets for
// window/gap are left out of the comparison because the detector may report a
// stale attempt when it drops the source instead of at its next knock.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KnockEvent, Protocol, SequenceDoor } from '../../src/types.js';
import { REPEAT_MS } from '../../src/detect/index.js';
import { door, knock, run } from './detect-support.js';

const doors: SequenceDoor[] = [
  door({ name: 'ssh', sequence: [1234, 5678, 9012].map((port) => ({ port, protocol: 'tcp' as const })), windowMs: 10_000, gapMs: 4_000, durationMs: 20_000 }),
  door({ name: 'web', sequence: [{ port: 2000, protocol: 'udp' }, { port: 3000, protocol: 'tcp' }], open: [{ port: 443, protocol: 'tcp' }], windowMs: 5_000, durationMs: 3_000 }),
  door({ name: 'one', sequence: [{ port: 80, protocol: 'udp' }], open: [], windowMs: 1_000, durationMs: 5_000 }),
];

function model(events: readonly KnockEvent[]): string[] {
  const out: string[] = [];
  const st = new Map<string, { step: number; start: number; last: number; completed: boolean }>();
  const access = new Map<string, { until: number; seq: number; door: string; source: string }>();
  let seq = 0;
  let clock = -Infinity;
  const closeDue = (t: number): void => {
    const due = [...access.entries()].filter(([, a]) => a.until <= t).sort(([, a], [, b]) => a.until - b.until || a.seq - b.seq);
    for (const [k, a] of due) {
      access.delete(k);
      out.push(`${a.until} close ${a.door} ${a.source} expired`);
    }
  };
  const eq = (ev: KnockEvent, s: { port: number; protocol: Protocol } | undefined): boolean => s !== undefined && s.port === ev.port && s.protocol === ev.protocol;
  for (const ev of events) {
    const t = Math.max(clock, ev.time);
    clock = t;
    closeDue(t);
    for (const d of doors) {
      const key = `${ev.source}|${d.name}`;
      const p = st.get(key) ?? { step: 0, start: 0, last: -Infinity, completed: false };
      st.set(key, p);
      const head = `${t} `;
      const accept = (): void => {
        if (p.step === 0) p.start = t;
        p.step++;
        p.last = t;
        p.completed = false;
        out.push(`${head}progress ${d.name} ${ev.source} ${p.step}/${d.sequence.length}`);
        if (p.step === d.sequence.length) {
          p.step = 0;
          p.completed = true;
          const until = t + d.durationMs;
          const a = access.get(key);
          seq++;
          if (a) {
            a.until = until;
            a.seq = seq;
          } else access.set(key, { until, seq, door: d.name, source: ev.source });
          out.push(`${head}open ${d.name} ${ev.source} until=${until}${a ? ' refreshed' : ''}`);
        }
      };
      if (p.step > 0 && (t - p.start > d.windowMs || t - p.last > (d.gapMs ?? Infinity))) p.step = 0;
      const knockLine = `${head}knock ${d.name} ${ev.source} ${ev.port}/${ev.protocol}`;
      if (p.step > 0) {
        out.push(knockLine);
        const next = d.sequence[p.step];
        if (eq(ev, next)) accept();
        else if ((eq(ev, d.sequence[p.step - 1]) && t - p.last <= REPEAT_MS) || d.open.some((o) => eq(ev, o))) {
          // ignored
        } else {
          out.push(`${head}reset ${d.name} ${ev.source} ${next.port === ev.port ? 'wrong-protocol' : 'wrong-port'} ${p.step} ${ev.port}/${ev.protocol}`);
          p.step = 0;
          if (eq(ev, d.sequence[0])) accept();
        }
      } else if (eq(ev, d.sequence[0])) {
        out.push(knockLine);
        const repeat = p.completed && eq(ev, d.sequence[d.sequence.length - 1]) && t - p.last <= REPEAT_MS;
        if (!repeat) accept();
      }
    }
  }
  closeDue(Infinity);
  return out;
}

const portChoices: [number, Protocol][] = [
  [1234, 'tcp'], [5678, 'tcp'], [9012, 'tcp'], [5678, 'udp'], [22, 'tcp'], [2000, 'udp'], [2000, 'tcp'], [3000, 'tcp'], [443, 'tcp'], [80, 'udp'], [81, 'tcp'],
];

const streams = fc
  .array(
    fc.record({
      source: fc.constantFrom('10.0.0.1', '10.0.0.2', 'fd00:6b77::3'),
      choice: fc.integer({ min: 0, max: portChoices.length - 1 }),
      // Boundaries: the 'one' door's 1 s window and the repeat tolerance, each +-1 ms.
      dt: fc.constantFrom(0, 1, 10, 500, 999, 1000, 1001, REPEAT_MS - 1, REPEAT_MS, REPEAT_MS + 1, 2500, 4000, 4001, 6000, 25_000),
    }),
    { maxLength: 120 },
  )
  .map((steps) => {
    let t = 1_700_000_000_000;
    return steps.map((s) => {
      t += s.dt;
      const [port, protocol] = portChoices[s.choice];
      return knock(s.source, port, t, protocol);
    });
  });

function comparable(lines: readonly string[]): string[] {
  return lines.filter((l) => !/ reset \S+ \S+ (window|gap) /.test(l));
}

describe('detector: reference model', () => {
  it('random knock streams give the decisions the contract describes', () => {
    fc.assert(
      fc.property(streams, (events) => {
        expect(comparable(run(doors, events).lines)).toEqual(model(events));
      }),
      { numRuns: 1500 },
    );
  });

  it('the generator reaches opens, refreshes and every reset reason', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(streams, (events) => {
        for (const l of run(doors, events).lines) {
          const m = / (open|reset \S+ \S+ \S+|close)/.exec(l);
          if (m) seen.add(m[1].startsWith('reset') ? m[1].split(' ')[3] : m[1]);
          if (l.endsWith('refreshed')) seen.add('refreshed');
        }
      }),
      { numRuns: 1500, seed: 42 },
    );
    expect([...seen].sort()).toEqual(['close', 'gap', 'open', 'refreshed', 'window', 'wrong-port', 'wrong-protocol']);
  });
});

describe('detector: determinism', () => {
  it('the same input twice gives identical output, evictions and expiry included', () => {
    const events: KnockEvent[] = [];
    let seed = 7;
    const ports = [1234, 5678, 9012, 2000, 3000, 80, 22, 443, 4444];
    for (let i = 0; i < 50_000; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const port = ports[(seed >>> 8) % ports.length];
      events.push(knock(`10.3.${(seed >>> 20) & 7}.${(seed >>> 12) & 63}`, port, i * 3, (seed & 1) === 1 && port !== 9012 ? 'udp' : 'tcp'));
    }
    const a = run(doors, events, { maxSources: 100 });
    const b = run(doors, events, { maxSources: 100 });
    expect(a.decisions.length).toBeGreaterThan(10_000);
    expect(b.decisions).toEqual(a.decisions);
    expect(b.detector.stats).toEqual(a.detector.stats);
    expect(a.detector.stats.evictions).toBeGreaterThan(0);
    expect(a.detector.stats.opens).toBeGreaterThan(0);
  });
});
