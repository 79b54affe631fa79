import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createDeadlineHeap } from '../../src/detect/deadline-heap.js';

describe('deadline heap', () => {
  it('pops in (deadline, seq) order whatever the push order', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 1000 })), { maxLength: 200 }), (pairs) => {
        const heap = createDeadlineHeap<number>();
        pairs.forEach(([deadline, seq], i) => heap.push({ deadline, seq, value: i }));
        const out: [number, number][] = [];
        for (let e = heap.pop(); e !== undefined; e = heap.pop()) out.push([e.deadline, e.seq]);
        expect(out).toEqual([...pairs].sort((a, b) => a[0] - b[0] || a[1] - b[1]));
        expect(heap.size).toBe(0);
      }),
    );
  });

  it('peek does not remove; clear empties', () => {
    const heap = createDeadlineHeap<string>();
    heap.push({ deadline: 5, seq: 1, value: 'b' });
    heap.push({ deadline: 3, seq: 2, value: 'a' });
    expect(heap.peek()?.value).toBe('a');
    expect(heap.size).toBe(2);
    heap.clear();
    expect(heap.peek()).toBeUndefined();
    expect(heap.pop()).toBeUndefined();
  });
});
