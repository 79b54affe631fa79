// A binary min-heap of (deadline, seq) pairs carrying a value. Ties on the
// deadline are broken by seq so the pop order is fully determined by the input,
// whatever order entries were pushed in.

export interface HeapEntry<T> {
  readonly deadline: number;
  readonly seq: number;
  readonly value: T;
}

export interface DeadlineHeap<T> {
  readonly size: number;
  push(entry: HeapEntry<T>): void;
  peek(): HeapEntry<T> | undefined;
  pop(): HeapEntry<T> | undefined;
  clear(): void;
}

function before<T>(a: HeapEntry<T>, b: HeapEntry<T>): boolean {
  return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
}

export function createDeadlineHeap<T>(): DeadlineHeap<T> {
  const items: HeapEntry<T>[] = [];

  function siftUp(i: number): void {
    const item = items[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(item, items[parent])) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = item;
  }

  function siftDown(i: number): void {
    const n = items.length;
    const item = items[i];
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(items[right], items[left]) ? right : left;
      if (!before(items[child], item)) break;
      items[i] = items[child];
      i = child;
    }
    items[i] = item;
  }

  return {
    get size(): number {
      return items.length;
    },
    push(entry: HeapEntry<T>): void {
      items.push(entry);
      siftUp(items.length - 1);
    },
    peek(): HeapEntry<T> | undefined {
      return items[0];
    },
    pop(): HeapEntry<T> | undefined {
      const top = items[0];
      const last = items.pop();
      if (top !== undefined && last !== undefined && items.length > 0) {
        items[0] = last;
        siftDown(0);
      }
      return top;
    },
    clear(): void {
      items.length = 0;
    },
  };
}
