// The per-source table on its own: LRU order by progress, the maxSources
// bound, expiry by packet time and the counting fold filter that lets
// strangers skip the Map.
import { describe, expect, it } from 'vitest';
import { createSourceTable, type DropReason, type SourceEntry } from '../../src/detect/source-table.js';

function table(maxSources = 3, horizonMs = 100) {
  const drops: string[] = [];
  const t = createSourceTable<string>({
    maxSources,
    horizonMs,
    slots: 2,
    onDrop: (e: SourceEntry, why: DropReason, at: number, ctx: string) => drops.push(`${at} ${why} ${e.source} ${ctx}`),
  });
  return { t, drops };
}

describe('source table', () => {
  it('creates entries with one state slot per door and finds them by source', () => {
    const { t } = table();
    const e = t.add('10.0.0.1', 7, 0, 'x');
    expect(e.states).toEqual([undefined, undefined]);
    expect(t.find('10.0.0.1', 7)).toBe(e);
    expect(t.find('10.0.0.2', 7)).toBeUndefined();
    expect(t.size).toBe(1);
  });

  it('skips the Map for a fold no entry has, unless some entry was made without a fold', () => {
    const { t } = table();
    t.add('10.0.0.1', 7, 0, 'x');
    // Same address, different fold: the filter proves absence without a lookup (folds come from the address).
    expect(t.find('10.0.0.1', 8)).toBeUndefined();
    expect(t.find('10.0.0.1', undefined)).toBeDefined();
    t.add('10.0.0.2', undefined, 0, 'x');
    expect(t.find('10.0.0.1', 8)).toBeDefined();
  });

  it('keeps fold counts exact across removal, eviction and expiry', () => {
    const { t } = table(2, 100);
    const a = t.add('a', 1, 0, 'x');
    t.add('b', 1, 10, 'x');
    t.remove(a);
    expect(t.find('b', 1)).toBeDefined();
    t.add('c', 2, 20, 'x');
    t.add('d', 3, 30, 'x'); // evicts b
    expect(t.find('b', 1)).toBeUndefined();
    t.expire(1000, 'x');
    expect(t.size).toBe(0);
    t.add('e', 4, 1000, 'x');
    // All other folds are back to zero: only fold 4 reaches the Map.
    for (const f of [1, 2, 3]) expect(t.find('e', f)).toBeUndefined();
    expect(t.find('e', 4)).toBeDefined();
  });

  it('evicts the entry with the oldest progress, not the oldest creation, and reports it before the new one exists', () => {
    const { t, drops } = table(2);
    const a = t.add('a', 1, 0, 'x');
    t.add('b', 2, 1, 'x');
    t.touch(a, 2);
    t.add('c', 3, 3, 'ctx');
    expect(drops).toEqual(['3 evicted b ctx']);
    expect(t.size).toBe(2);
    expect(t.evictions).toBe(1);
    expect(t.find('a', 1)).toBe(a);
  });

  it('expires by packet time only, oldest first, strictly after the horizon', () => {
    const { t, drops } = table(10, 100);
    t.add('a', 1, 0, 'x');
    const b = t.add('b', 2, 10, 'x');
    t.add('c', 3, 20, 'x');
    t.touch(b, 50);
    expect(t.hasStale(100)).toBe(false);
    expect(t.hasStale(101)).toBe(true);
    t.expire(121, 'y');
    expect(drops).toEqual(['121 expired a y', '121 expired c y']);
    expect(t.expired).toBe(2);
    expect(t.hasStale(150)).toBe(false);
    expect(t.hasStale(151)).toBe(true);
  });

  it('oldestActivity follows the oldest entry, even a lone entry touched in place', () => {
    const { t } = table(10, 100);
    expect(t.oldestActivity[0]).toBe(Infinity);
    const a = t.add('a', 1, 5, 'x');
    expect(t.oldestActivity[0]).toBe(5);
    t.touch(a, 50);
    expect(t.oldestActivity[0]).toBe(50);
    expect(t.hasStale(140)).toBe(false);
    const b = t.add('b', 2, 60, 'x');
    t.touch(a, 70);
    expect(t.oldestActivity[0]).toBe(60);
    t.remove(b);
    expect(t.oldestActivity[0]).toBe(70);
    t.clear();
    expect(t.oldestActivity[0]).toBe(Infinity);
  });

  it('remove() forgets an entry without reporting it', () => {
    const { t, drops } = table();
    t.remove(t.add('a', 1, 0, 'x'));
    expect(t.size).toBe(0);
    expect(t.hasStale(1e9)).toBe(false);
    expect(drops).toEqual([]);
  });

  it('clear() empties the table, the list and the fold counts', () => {
    const { t } = table();
    t.add('a', 1, 0, 'x');
    t.add('b', undefined, 0, 'x');
    t.clear();
    expect(t.size).toBe(0);
    expect(t.hasStale(1e9)).toBe(false);
    t.add('c', 5, 0, 'x');
    expect(t.find('c', 6)).toBeUndefined();
  });

  it('never holds more than maxSources, whatever arrives', () => {
    const { t } = table(50);
    for (let i = 0; i < 5000; i++) t.add(`s${i}`, i & 0xffff, i, 'x');
    expect(t.size).toBe(50);
    expect(t.evictions).toBe(4950);
  });

  it('refuses a bad maxSources', () => {
    expect(() => createSourceTable({ maxSources: 0, horizonMs: 1, slots: 1, onDrop: () => {} })).toThrow(/maxSources must be a positive integer, got 0/);
    expect(() => createSourceTable({ maxSources: 2.5, horizonMs: 1, slots: 1, onDrop: () => {} })).toThrow(/got 2\.5/);
  });
});
