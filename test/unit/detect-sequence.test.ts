import { describe, expect, it } from 'vitest';
import type { Door } from '../../src/types.js';
import { REPEAT_MS } from '../../src/detect/index.js';
import { door, knock, only, run, series, tcp } from './detect-support.js';

const A = '10.0.0.1';
const B = '10.0.0.2';

describe('detector: a correct sequence', () => {
  it('reports knock and progress per step, opens on the last and closes durationMs later', () => {
    const { lines, detector } = run([door()], series(A, [1234, 5678, 9012], 1000, 100));
    expect(lines).toEqual([
      `1000 knock ssh ${A} 1234/tcp`,
      `1000 progress ssh ${A} 1/3`,
      `1100 knock ssh ${A} 5678/tcp`,
      `1100 progress ssh ${A} 2/3`,
      `1200 knock ssh ${A} 9012/tcp`,
      `1200 progress ssh ${A} 3/3`,
      `1200 open ssh ${A} until=31200`,
      `31200 close ssh ${A} expired`,
    ]);
    expect(detector.stats).toMatchObject({ opens: 1, closes: 1, resets: 0 });
  });

  it('carries the door open ports on open and close', () => {
    const { decisions } = run([door({ open: [{ port: 22, protocol: 'tcp' }, { port: 53, protocol: 'udp' }] })], series(A, [1234, 5678, 9012], 0, 10));
    const open = decisions.find((d) => d.type === 'open');
    const close = decisions.find((d) => d.type === 'close');
    expect(open?.type === 'open' && open.ports).toEqual([{ port: 22, protocol: 'tcp' }, { port: 53, protocol: 'udp' }]);
    expect(close?.type === 'close' && close.ports).toEqual([{ port: 22, protocol: 'tcp' }, { port: 53, protocol: 'udp' }]);
  });

  it('lets the same source open again after the access closed', () => {
    const events = [...series(A, [1234, 5678, 9012], 0, 10), ...series(A, [1234, 5678, 9012], 40_000, 10)];
    const { lines } = run([door()], events);
    expect(only(lines, 'open')).toEqual([`20 open ssh ${A} until=30020`, `40020 open ssh ${A} until=70020`]);
    expect(only(lines, 'close')).toEqual([`30020 close ssh ${A} expired`, `70020 close ssh ${A} expired`]);
  });

  it('works for IPv6 sources', () => {
    const { lines } = run([door()], series('fd00:6b77::2', [1234, 5678, 9012], 0, 10));
    expect(only(lines, 'open')).toEqual(['20 open ssh fd00:6b77::2 until=30020']);
  });
});

describe('detector: wrong knocks reset', () => {
  it('wrong order never opens', () => {
    const { lines } = run([door()], series(A, [5678, 1234, 9012, 5678], 0, 10));
    expect(only(lines, 'open')).toEqual([]);
    // 5678 from a stranger touches nothing; 1234 starts; 9012 is not step 2.
    expect(lines).toEqual([
      `10 knock ssh ${A} 1234/tcp`,
      `10 progress ssh ${A} 1/3`,
      `20 knock ssh ${A} 9012/tcp`,
      `20 reset ssh ${A} wrong-port 1 9012/tcp`,
    ]);
  });

  it('a wrong middle port resets, and the remaining steps do not open', () => {
    const { lines } = run([door()], series(A, [1234, 80, 5678, 9012], 0, 10));
    expect(only(lines, 'reset')).toEqual([`10 reset ssh ${A} wrong-port 1 80/tcp`]);
    expect(only(lines, 'open')).toEqual([]);
    expect(only(lines, 'progress')).toEqual([`0 progress ssh ${A} 1/3`]);
  });

  it('a wrong port after step 2 resets with step 2 and a retry from the start opens', () => {
    const { lines } = run([door()], series(A, [1234, 5678, 4444, 1234, 5678, 9012], 0, 10));
    expect(only(lines, 'reset')).toEqual([`20 reset ssh ${A} wrong-port 2 4444/tcp`]);
    expect(only(lines, 'open')).toEqual([`50 open ssh ${A} until=30050`]);
  });

  it('the first step as the offending knock resets and starts a new attempt', () => {
    const { lines } = run([door()], series(A, [1234, 5678, 1234, 5678, 9012], 0, 2000));
    expect(lines.slice(4, 8)).toEqual([
      `4000 knock ssh ${A} 1234/tcp`,
      `4000 reset ssh ${A} wrong-port 2 1234/tcp`,
      `4000 progress ssh ${A} 1/3`,
      `6000 knock ssh ${A} 5678/tcp`,
    ]);
    expect(only(lines, 'open')).toEqual([`8000 open ssh ${A} until=38000`]);
  });

  it('the right port with the wrong protocol resets as wrong-protocol', () => {
    const { lines } = run([door()], [knock(A, 1234, 0), knock(A, 5678, 10, 'udp'), knock(A, 9012, 20)]);
    expect(only(lines, 'reset')).toEqual([`10 reset ssh ${A} wrong-protocol 1 5678/udp`]);
    expect(only(lines, 'open')).toEqual([]);
  });

  it('a first step with the wrong protocol does not start an attempt', () => {
    const { lines } = run([door()], [knock(A, 1234, 0, 'udp'), knock(A, 5678, 10), knock(A, 9012, 20)]);
    expect(lines).toEqual([]);
  });

  it('a mixed tcp/udp door needs each protocol as configured', () => {
    const mixed = door({ sequence: [{ port: 7000, protocol: 'udp' }, { port: 8000, protocol: 'tcp' }, { port: 9000, protocol: 'udp' }] });
    const good = run([mixed], [knock(A, 7000, 0, 'udp'), knock(A, 8000, 10, 'tcp'), knock(A, 9000, 20, 'udp')]);
    expect(only(good.lines, 'open')).toEqual([`20 open ssh ${A} until=30020`]);
    const allTcp = run([mixed], series(A, [7000, 8000, 9000], 0, 10));
    expect(allTcp.lines).toEqual([]);
    const lastWrong = run([mixed], [knock(A, 7000, 0, 'udp'), knock(A, 8000, 10, 'tcp'), knock(A, 9000, 20, 'tcp')]);
    expect(only(lastWrong.lines, 'reset')).toEqual([`20 reset ssh ${A} wrong-protocol 2 9000/tcp`]);
    expect(only(lastWrong.lines, 'open')).toEqual([]);
  });
});

describe('detector: window and gap', () => {
  it('a sequence slower than the window resets with window and the late knock counts fresh', () => {
    const { lines } = run([door({ windowMs: 5000 })], [knock(A, 1234, 0), knock(A, 5678, 3000), knock(A, 9012, 5001)]);
    expect(lines.slice(4)).toEqual([`5001 reset ssh ${A} window 2`]);
    expect(only(lines, 'open')).toEqual([]);
  });

  it('the window is inclusive: the last step exactly windowMs after the first opens', () => {
    const { lines } = run([door({ windowMs: 5000 })], [knock(A, 1234, 0), knock(A, 5678, 3000), knock(A, 9012, 5000)]);
    expect(only(lines, 'open')).toEqual([`5000 open ssh ${A} until=35000`]);
  });

  it('a first step arriving after the window restarts the attempt', () => {
    const { lines } = run([door({ windowMs: 5000 })], [knock(A, 1234, 0), knock(A, 5678, 1000), knock(A, 1234, 6000), knock(A, 5678, 7000), knock(A, 9012, 8000)]);
    expect(lines.slice(4, 7)).toEqual([`6000 reset ssh ${A} window 2`, `6000 knock ssh ${A} 1234/tcp`, `6000 progress ssh ${A} 1/3`]);
    expect(only(lines, 'open')).toEqual([`8000 open ssh ${A} until=38000`]);
  });

  it('a gap longer than gapMs resets with gap; gaps up to gapMs (inclusive) are fine', () => {
    const gapped = door({ windowMs: 10_000, gapMs: 2000 });
    const slow = run([gapped], [knock(A, 1234, 0), knock(A, 5678, 2000), knock(A, 9012, 4001)]);
    expect(only(slow.lines, 'reset')).toEqual([`4001 reset ssh ${A} gap 2`]);
    expect(only(slow.lines, 'open')).toEqual([]);
    const ok = run([gapped], [knock(A, 1234, 0), knock(A, 5678, 2000), knock(A, 9012, 4000)]);
    expect(only(ok.lines, 'open')).toEqual([`4000 open ssh ${A} until=34000`]);
  });

  it('when both deadlines passed, the reason is the one that passed first', () => {
    const gapped = door({ windowMs: 5000, gapMs: 3000 });
    // Gap deadline 1000+3000=4000 before window deadline 5000: gap.
    const g = run([gapped], [knock(A, 1234, 0), knock(A, 5678, 1000), knock(A, 9012, 6000)]);
    expect(only(g.lines, 'reset')).toEqual([`6000 reset ssh ${A} gap 2`]);
    // Gap deadline 4000+3000=7000 after window deadline 5000: window.
    const w = run([gapped], [knock(A, 1234, 0), knock(A, 5678, 2000), knock(A, 9012, 4000 + 2000 + 1)]);
    expect(only(w.lines, 'reset')).toEqual([`6001 reset ssh ${A} window 2`]);
  });
});

describe('detector: repeats and retransmissions', () => {
  // REPEAT_MS is the tolerance for an exact repeat of the step just accepted.
  const R = REPEAT_MS;

  it('doubled knocks within REPEAT_MS (boundary inclusive) are ignored and the knock still opens', () => {
    const events = [knock(A, 1234, 0), knock(A, 1234, 3), knock(A, 5678, 100), knock(A, 5678, 100 + R), knock(A, 9012, 200 + R)];
    const { lines } = run([door()], events);
    expect(only(lines, 'reset')).toEqual([]);
    expect(only(lines, 'progress')).toEqual([`0 progress ssh ${A} 1/3`, `100 progress ssh ${A} 2/3`, `${200 + R} progress ssh ${A} 3/3`]);
    expect(only(lines, 'knock')).toHaveLength(5);
    expect(only(lines, 'open')).toEqual([`${200 + R} open ssh ${A} until=${30_200 + R}`]);
  });

  it('a repeat just later than REPEAT_MS is a wrong port', () => {
    const { lines } = run([door()], [knock(A, 1234, 0), knock(A, 5678, 100), knock(A, 5678, 101 + R), knock(A, 9012, 200 + R)]);
    expect(only(lines, 'reset')).toEqual([`${101 + R} reset ssh ${A} wrong-port 2 5678/tcp`]);
    expect(only(lines, 'open')).toEqual([]);
  });

  it('a repeated first step just later than REPEAT_MS resets and restarts', () => {
    const { lines } = run([door()], [knock(A, 1234, 0), knock(A, 1234, 1 + R), knock(A, 5678, 100 + R), knock(A, 9012, 200 + R)]);
    expect(lines.slice(2, 5)).toEqual([`${1 + R} knock ssh ${A} 1234/tcp`, `${1 + R} reset ssh ${A} wrong-port 1 1234/tcp`, `${1 + R} progress ssh ${A} 1/3`]);
    expect(only(lines, 'open')).toEqual([`${200 + R} open ssh ${A} until=${30_200 + R}`]);
  });

  it('covers the first Linux SYN retransmission (about 1.03 s after the original)', () => {
    const { lines } = run([door()], [knock(A, 1234, 0), knock(A, 5678, 100), knock(A, 5678, 1132), knock(A, 9012, 1200)]);
    expect(only(lines, 'reset')).toEqual([]);
    expect(only(lines, 'open')).toEqual([`1200 open ssh ${A} until=31200`]);
  });

  it('a repeat of an earlier (not the last accepted) step resets', () => {
    const { lines } = run([door()], [knock(A, 1234, 0), knock(A, 5678, 10), knock(A, 1234, 20)]);
    expect(only(lines, 'reset')).toEqual([`20 reset ssh ${A} wrong-port 2 1234/tcp`]);
  });

  it('a doubled final knock, up to REPEAT_MS later, does not open twice', () => {
    const { lines } = run([door()], [...series(A, [1234, 5678, 9012], 0, 10), knock(A, 9012, 500), knock(A, 9012, 20 + R)]);
    expect(only(lines, 'open')).toEqual([`20 open ssh ${A} until=30020`]);
  });

  it('a doubled single-step UDP knock opens once, also at the boundary; one just later refreshes', () => {
    const single = door({ name: 'udp1', sequence: [{ port: 7000, protocol: 'udp' }] });
    const { lines } = run([single], [knock(A, 7000, 0, 'udp'), knock(A, 7000, 1, 'udp'), knock(A, 7000, R, 'udp'), knock(A, 7000, R + 1, 'udp')]);
    expect(only(lines, 'open')).toEqual([`0 open udp1 ${A} until=30000`, `${R + 1} open udp1 ${A} until=${30_001 + R} refreshed`]);
    expect(only(lines, 'close')).toEqual([`${30_001 + R} close udp1 ${A} expired`]);
  });
});

describe('detector: open ports and several doors', () => {
  it('knocks on the door own open ports do not reset it', () => {
    const { lines } = run([door()], series(A, [1234, 22, 5678, 22, 9012], 0, 10));
    expect(only(lines, 'reset')).toEqual([]);
    expect(only(lines, 'open')).toEqual([`40 open ssh ${A} until=30040`]);
  });

  it('the open port with the other protocol is a wrong port', () => {
    const { lines } = run([door()], [knock(A, 1234, 0), knock(A, 22, 10, 'udp'), knock(A, 5678, 20), knock(A, 9012, 30)]);
    expect(only(lines, 'reset')).toEqual([`10 reset ssh ${A} wrong-port 1 22/udp`]);
    expect(only(lines, 'open')).toEqual([]);
  });

  const two: Door[] = [
    door({ name: 'ssh', sequence: tcp(1234, 5678, 9012), open: tcp(22) }),
    door({ name: 'web', sequence: tcp(2000, 3000), open: tcp(443), durationMs: 5000 }),
  ];

  it('a knock on another door port resets this door and advances that one', () => {
    const { lines } = run(two, series(A, [1234, 2000, 5678, 3000], 0, 10));
    expect(lines).toEqual([
      `0 knock ssh ${A} 1234/tcp`,
      `0 progress ssh ${A} 1/3`,
      `10 knock ssh ${A} 2000/tcp`,
      `10 reset ssh ${A} wrong-port 1 2000/tcp`,
      `10 knock web ${A} 2000/tcp`,
      `10 progress web ${A} 1/2`,
      `20 knock web ${A} 5678/tcp`,
      `20 reset web ${A} wrong-port 1 5678/tcp`,
    ]);
  });

  it('another door open port resets this door', () => {
    const { lines } = run(two, series(A, [1234, 443, 5678, 9012], 0, 10));
    expect(only(lines, 'reset')).toEqual([`10 reset ssh ${A} wrong-port 1 443/tcp`]);
    expect(only(lines, 'open')).toEqual([]);
  });

  it('each door opens on its own sequence and closes on its own duration', () => {
    const { lines } = run(two, [...series(A, [1234, 5678, 9012], 0, 10), ...series(A, [2000, 3000], 100, 10)]);
    expect(only(lines, 'open')).toEqual([`20 open ssh ${A} until=30020`, `110 open web ${A} until=5110`]);
    expect(only(lines, 'close')).toEqual([`5110 close web ${A} expired`, `30020 close ssh ${A} expired`]);
  });

  it('doors sharing a first step both progress; the next knock opens one and resets the other', () => {
    const shared: Door[] = [door({ name: 'a', sequence: tcp(1000, 2000) }), door({ name: 'b', sequence: tcp(1000, 3000) })];
    const { lines } = run(shared, series(A, [1000, 2000], 0, 10), { finish: false });
    expect(lines).toEqual([
      `0 knock a ${A} 1000/tcp`,
      `0 progress a ${A} 1/2`,
      `0 knock b ${A} 1000/tcp`,
      `0 progress b ${A} 1/2`,
      `10 knock a ${A} 2000/tcp`,
      `10 progress a ${A} 2/2`,
      `10 open a ${A} until=30010`,
      `10 knock b ${A} 2000/tcp`,
      `10 reset b ${A} wrong-port 1 2000/tcp`,
    ]);
  });

  it('a step that is also the door own open port still counts as the step', () => {
    const { lines } = run([door({ sequence: tcp(1234, 22, 9012), open: tcp(22) })], series(A, [1234, 22, 9012], 0, 10));
    expect(only(lines, 'open')).toEqual([`20 open ssh ${A} until=30020`]);
  });
});

describe('detector: sources are independent', () => {
  it('a sweeping source interleaved with a knocking source: only the knocker opens', () => {
    const events = [];
    const knocks = [1234, 5678, 9012];
    for (let p = 1; p <= 10_000; p++) {
      events.push(knock(B, p, p));
      // The knocker's steps land in the middle of the sweep.
      if (p % 3000 === 0) events.push(knock(A, knocks[p / 3000 - 1], p));
    }
    const { lines } = run([door()], events);
    expect(only(lines, 'open')).toEqual([`9000 open ssh ${A} until=39000`]);
    expect(only(lines, 'reset').every((l) => l.includes(B))).toBe(true);
    expect(only(lines, 'reset').length).toBeGreaterThan(0);
  });

  it('one source progress does not count for another', () => {
    const { lines } = run([door()], [knock(A, 1234, 0), knock(B, 5678, 10), knock(A, 9012, 20), knock(B, 9012, 30)]);
    expect(only(lines, 'open')).toEqual([]);
    expect(only(lines, 'reset')).toEqual([`20 reset ssh ${A} wrong-port 1 9012/tcp`]);
  });
});
