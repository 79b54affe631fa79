// The access ledger on its own: one close per access at its final deadline,
// refresh never shortens, restore, shutdown, reload closes, and the shared
// packet clock moving with closes.
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/types.js';
import { createAccessLedger, type LedgerDoor } from '../../src/detect/access-ledger.js';
import { show, tcp } from './detect-support.js';

const ssh: LedgerDoor = { index: 0, name: 'ssh', durationMs: 100, ports: tcp(22) };
const web: LedgerDoor = { index: 1, name: 'web', durationMs: 50, ports: tcp(80, 443) };

function ledger() {
  const clock = new Float64Array([-Infinity]);
  const l = createAccessLedger([ssh, web], clock);
  const lines: string[] = [];
  const emit = (d: Decision): void => {
    lines.push(show(d));
  };
  return { l, lines, emit, clock };
}

describe('access ledger', () => {
  it('opens until t + duration and closes once, at the deadline, stamped with it', () => {
    const { l, lines, emit } = ledger();
    l.open(ssh, 'a', 10, emit);
    expect(l.due(109)).toBe(false);
    expect(l.due(110)).toBe(true);
    l.closeDue(109, emit);
    l.closeDue(500, emit);
    l.closeDue(500, emit);
    expect(lines).toEqual(['10 open ssh a until=110', '110 close ssh a expired']);
    expect(l).toMatchObject({ opens: 1, closes: 1 });
    expect(l.openAccesses()).toEqual([]);
  });

  it('a refresh extends the deadline without a second close', () => {
    const { l, lines, emit } = ledger();
    l.open(ssh, 'a', 0, emit);
    l.open(ssh, 'a', 60, emit);
    expect(l.nextDeadline()).toBe(160);
    l.closeDue(1000, emit);
    expect(lines).toEqual(['0 open ssh a until=100', '60 open ssh a until=160 refreshed', '160 close ssh a expired']);
  });

  it('closes in (deadline, order set) order, across doors and refreshes', () => {
    const { l, lines, emit } = ledger();
    l.open(ssh, 'a', 0, emit); // 100
    l.open(web, 'b', 50, emit); // 100, set later
    l.open(web, 'c', 10, emit); // 60
    l.open(web, 'c', 50, emit); // refreshed to 100, set last
    lines.length = 0;
    l.closeDue(Infinity, emit);
    expect(lines).toEqual(['100 close ssh a expired', '100 close web b expired', '100 close web c expired']);
  });

  it('nextClose[0] is never later than the next deadline, and exact once settled', () => {
    const { l, emit } = ledger();
    expect(l.nextClose[0]).toBe(Infinity);
    l.open(ssh, 'a', 0, emit);
    expect(l.nextClose[0]).toBe(100);
    l.open(ssh, 'a', 50, emit); // refreshed to 150: the cached value may stay early, never late
    expect(l.nextClose[0]).toBeLessThanOrEqual(150);
    expect(l.nextDeadline()).toBe(150);
    expect(l.nextClose[0]).toBe(150);
    l.closeDue(150, emit);
    expect(l.nextClose[0]).toBe(Infinity);
  });

  it('closes advance the shared packet clock', () => {
    const { l, emit, clock } = ledger();
    clock[0] = 5;
    l.open(ssh, 'a', 5, emit);
    l.closeDue(Infinity, emit);
    expect(clock[0]).toBe(105);
  });

  it('restore tracks an earlier access with its ports; a later open grants every port, never shortening', () => {
    const { l, lines, emit } = ledger();
    l.restore({ door: 'web', source: 'a', until: 500, ports: tcp(443) });
    l.restore({ door: 'web', source: 'a', until: 400, ports: tcp(443) }); // earlier: ignored
    expect(lines).toEqual([]);
    expect(l.openAccesses()).toEqual([{ door: 'web', source: 'a', until: 500, ports: tcp(443) }]);
    l.open(web, 'a', 100, emit);
    expect(lines).toEqual(['100 open web a until=500 refreshed']);
    expect(l.openAccesses()[0].ports).toEqual(tcp(80, 443));
    expect(l.nextDeadline()).toBe(500);
  });

  it('restore refuses what it cannot enforce, naming door, source and field', () => {
    const { l } = ledger();
    expect(() => l.restore({ door: 'ftp', source: 'a', until: 1, ports: [] })).toThrow(/no door named 'ftp' \(source a\)/);
    expect(() => l.restore({ door: 'ssh', source: 'a', until: Number.NaN, ports: [] })).toThrow(/until must be a finite packet time, got NaN/);
    expect(() => l.restore({ door: 'ssh', source: 'a', until: 1, ports: tcp(23) })).toThrow(/ports\[0\] 23\/tcp is not an open port of door 'ssh'/);
    expect(l.openAccesses()).toEqual([]);
  });

  it('shutdown expires what is due and closes the rest at t, then holds nothing', () => {
    const { l, lines, emit } = ledger();
    l.open(web, 'a', 0, emit); // 50
    l.open(ssh, 'b', 0, emit); // 100
    l.open(web, 'c', 20, emit); // 70
    lines.length = 0;
    l.shutdown(60, emit);
    expect(lines).toEqual(['50 close web a expired', '60 close web c shutdown', '60 close ssh b shutdown']);
    expect(l.openAccesses()).toEqual([]);
    expect(l.nextDeadline()).toBeUndefined();
    expect(l.due(1e12)).toBe(false);
  });

  it('closeWhere closes the selected accesses with reason reload and keeps the others on time', () => {
    const { l, lines, emit } = ledger();
    l.open(ssh, 'a', 0, emit); // 100
    l.open(web, 'b', 10, emit); // 60
    l.open(web, 'c', 0, emit); // 50
    l.open(ssh, 'd', 5, emit); // 105
    lines.length = 0;
    l.closeWhere((a) => a.door === 'web' || a.source === 'd', 20, emit);
    expect(lines).toEqual(['20 close web c reload', '20 close web b reload', '20 close ssh d reload']);
    expect(l.openAccesses().map((a) => `${a.door} ${a.source}`)).toEqual(['ssh a']);
    expect(l.nextDeadline()).toBe(100);
    lines.length = 0;
    l.closeDue(Infinity, emit);
    expect(lines).toEqual(['100 close ssh a expired']);
    expect(l.closes).toBe(4);
  });

  it('closeWhere selecting nothing emits nothing', () => {
    const { l, lines, emit } = ledger();
    l.open(ssh, 'a', 0, emit);
    lines.length = 0;
    l.closeWhere(() => false, 20, emit);
    expect(lines).toEqual([]);
    expect(l.nextDeadline()).toBe(100);
  });
});
