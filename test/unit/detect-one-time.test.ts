// The one_time door kind (issue 11 part 3) with packet time only: the first
// unused line is the valid sequence, each line opens once, the store marks a
// line used before the door opens and a failed mark keeps it shut.
import { describe, expect, it } from 'vitest';
import { parseOneTimeText } from '../../src/config/one-time-file.js';
import type { OneTimeStore } from '../../src/detect/one-time.js';
import type { KnockEvent, OneTimeDoor, OneTimeEntry } from '../../src/types.js';
import { knock, run } from './detect-support.js';

const FILE = '/etc/knockwatch/once.txt';
const { entries } = parseOneTimeText(FILE, '# used before\n#1111,2222\n1234:tcp,5678:udp,9012\n3000,4000,5000\n');
const once: OneTimeDoor = {
  kind: 'one_time',
  name: 'once',
  file: FILE,
  sequences: entries,
  windowMs: 10_000,
  open: [{ port: 2222, protocol: 'tcp' }],
  durationMs: 60_000,
};
const SRC = '198.51.100.7';
const line3: KnockEvent[] = [knock(SRC, 1234, 0), knock(SRC, 5678, 100, 'udp'), knock(SRC, 9012, 200)];
const line4 = (t: number, source = SRC): KnockEvent[] => [knock(source, 3000, t), knock(source, 4000, t + 100), knock(source, 5000, t + 200)];
const opens = (lines: string[]) => lines.filter((l) => l.includes(' open '));

function recordingStore(fail = false): OneTimeStore & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    loaded: (door, file, left) => void log.push(`loaded ${door} ${file} ${left}`),
    markUsed: (door, file, entry: OneTimeEntry, left) => {
      log.push(`mark ${door} ${file}:${entry.line} left=${left}`);
      return !fail;
    },
  };
}

describe('one_time door', () => {
  it('the first unused line opens once; then the next line is the valid one', () => {
    const r = run([once], [...line3, ...line3.map((e) => ({ ...e, time: e.time + 1000 })), ...line4(3000)]);
    expect(opens(r.lines)).toEqual(['200 open once 198.51.100.7 until=60200', '3200 open once 198.51.100.7 until=63200 refreshed']);
    // The second run of line 3 starts nothing: it is no longer the valid line.
    expect(r.lines.filter((l) => /^1[0-2]00 (progress|open|reject)/.test(l))).toEqual([]);
  });

  it('a later line is not valid before the earlier ones are used; a used line never again', () => {
    expect(opens(run([once], line4(0)).lines)).toEqual([]);
    const r = run([once], [...line3, ...line4(1000), ...line3.map((e) => ({ ...e, time: e.time + 2000 }))]);
    expect(opens(r.lines)).toHaveLength(2);
    expect(r.lines.filter((l) => l.startsWith('2'))).not.toContain('2200 open once 198.51.100.7 until=62200');
  });

  it('the store marks the line before the door opens, with the lines left; told the count at start', () => {
    const store = recordingStore();
    const decisions: string[] = [];
    const r = run([once], [...line3, ...line4(1000)], { stores: { oneTime: store } });
    decisions.push(...r.lines);
    expect(store.log).toEqual([`loaded once ${FILE} 2`, `mark once ${FILE}:3 left=1`, `mark once ${FILE}:4 left=0`]);
    expect(opens(decisions)).toHaveLength(2);
  });

  it('a store that cannot mark the line keeps the door shut and the line valid', () => {
    const store = recordingStore(true);
    const r = run([once], line3, { stores: { oneTime: store } });
    expect(opens(r.lines)).toEqual([]);
    expect(r.lines).toContain(`200 reject once ${SRC} one-time sequence of ${FILE}:3 could not be marked used: not opened`);
  });

  it('two sources part-way through the same line: the second to complete is rejected', () => {
    const a = line3;
    const b = line3.map((e) => ({ ...e, source: '203.0.113.9', time: e.time + 50 }));
    const r = run([once], [a[0], b[0], a[1], b[1], a[2], b[2]]);
    expect(opens(r.lines)).toEqual(['200 open once 198.51.100.7 until=60200']);
    expect(r.lines).toContain(`250 reject once 203.0.113.9 one-time sequence of ${FILE}:3 already used`);
  });

  it('wrong ports reset, as for sequences', () => {
    const r = run([once], [knock(SRC, 1234, 0), knock(SRC, 5679, 10, 'udp'), knock(SRC, 9012, 20)]);
    expect(r.lines).toContain(`10 reset once ${SRC} wrong-port 1 5679/udp`);
    expect(opens(r.lines)).toEqual([]);
  });

  it('no lines (file not read, or all used): nothing opens, capture needs nothing', () => {
    const r = run([{ ...once, sequences: [] }], line3);
    expect(r.lines).toEqual([]);
  });
});
