// The batch queue between open()/close() and the kernel (issue 8, item 6),
// with a fake `apply` that records each batch and answers from a script.
import { describe, expect, it } from 'vitest';
import { createBatchQueue, QueueFullError, type Change, type Outcome } from '../../src/firewall/batch.js';
import type { Access } from '../../src/firewall/types.js';
import { sshDoor, webDoor } from './firewall-support.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const access = (source: string, door = sshDoor): Access => ({ door: door.name, source, family: 4, ports: door.open, until: 1 });
const show = (c: Change): string => `${c.kind} ${c.access.source}`;

/** A queue whose batches wait for `next()`; `answer` says what happened to each change. */
function harness(options: { maxElements?: number; maxQueuedOpens?: number } = {}, answer: (c: Change, attempt: number) => Outcome = () => undefined) {
  const batches: string[][] = [];
  const seen = new Map<string, number>();
  let release: (() => void)[] = [];
  const queue = createBatchQueue({
    name: 'test',
    logger: silent,
    ...options,
    apply: async (changes) => {
      batches.push(changes.map(show));
      await new Promise<void>((r) => release.push(r));
      return changes.map((c) => {
        const n = seen.get(show(c)) ?? 0;
        seen.set(show(c), n + 1);
        return answer(c, n);
      });
    },
  });
  const tick = () => new Promise((r) => setImmediate(r));
  /** Let the batch in flight finish and the next one start. */
  const next = async () => {
    await tick();
    const r = release;
    release = [];
    for (const f of r) f();
    await tick();
    await tick();
  };
  return { queue, batches, next, tick };
}

describe('batch queue', () => {
  it('one batch in flight; everything that came meanwhile goes in the next one, closes first', async () => {
    const h = harness();
    const done = [h.queue.open(access('10.0.0.1'))];
    await h.tick();
    done.push(h.queue.open(access('10.0.0.2')), h.queue.open(access('10.0.0.3')), h.queue.close(access('10.0.0.4')));
    await h.next();
    await h.next();
    await Promise.all(done);
    expect(h.batches).toEqual([['open 10.0.0.1'], ['close 10.0.0.4', 'open 10.0.0.2', 'open 10.0.0.3']]);
    expect(h.queue.stats).toMatchObject({ batches: 2, applied: 4, queued: 0 });
  });

  it('counts elements (ports), not accesses, against the batch size', async () => {
    const h = harness({ maxElements: 4 });
    const done = [h.queue.open(access('10.0.0.1'))];
    await h.tick();
    // webDoor opens 3 ports: one of them per batch, plus one single-port access.
    done.push(...['10.0.0.2', '10.0.0.3'].map((s) => h.queue.open(access(s, webDoor))), h.queue.open(access('10.0.0.4')));
    for (let i = 0; i < 4; i++) await h.next();
    await Promise.all(done);
    expect(h.batches).toEqual([['open 10.0.0.1'], ['open 10.0.0.2'], ['open 10.0.0.3', 'open 10.0.0.4']]);
    expect(h.queue.stats.largestBatch).toBe(4);
  });

  it('keeps call order per door and source: a close waits behind a queued open of its pair, never in the same batch', async () => {
    const h = harness();
    const done = [h.queue.open(access('10.0.0.1'))];
    await h.tick();
    done.push(h.queue.open(access('10.0.0.2')), h.queue.close(access('10.0.0.2')), h.queue.close(access('10.0.0.3')));
    for (let i = 0; i < 3; i++) await h.next();
    await Promise.all(done);
    expect(h.batches).toEqual([['open 10.0.0.1'], ['close 10.0.0.3', 'open 10.0.0.2'], ['close 10.0.0.2']]);
  });

  it('refuses opens beyond the bound at once (QueueFullError, counted); closes still queue', async () => {
    const h = harness({ maxQueuedOpens: 2 });
    const first = h.queue.open(access('10.0.0.1'));
    await h.tick();
    const queued = [h.queue.open(access('10.0.0.2')), h.queue.open(access('10.0.0.3'))];
    await expect(h.queue.open(access('10.0.0.4'))).rejects.toBeInstanceOf(QueueFullError);
    await expect(h.queue.open(access('10.0.0.5'))).rejects.toThrow(/2 opens already waiting \(limit 2\)/);
    const close = h.queue.close(access('10.0.0.6'));
    expect(h.queue.stats).toMatchObject({ refused: 2, queued: 3 });
    await h.next();
    await h.next();
    await Promise.all([first, ...queued, close]);
  });

  it('a change the backend is unsure about is retried once, then rejected; an error rejects only its own change', async () => {
    const err = new Error('boom');
    const h = harness({}, (c, attempt) => (c.access.source === '10.0.0.2' ? { again: err } : c.access.source === '10.0.0.3' && attempt === 0 ? err : undefined));
    const first = h.queue.open(access('10.0.0.1'));
    await h.tick();
    const results = Promise.allSettled(['10.0.0.2', '10.0.0.3', '10.0.0.4'].map((s) => h.queue.open(access(s))));
    for (let i = 0; i < 4; i++) await h.next();
    await first;
    expect((await results).map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    expect(h.batches).toEqual([['open 10.0.0.1'], ['open 10.0.0.2', 'open 10.0.0.3', 'open 10.0.0.4'], ['open 10.0.0.2']]);
  });

  it('a batch whose apply throws rejects all of its changes, and the queue goes on', async () => {
    let calls = 0;
    const queue = createBatchQueue({
      name: 'test',
      logger: silent,
      apply: async (changes) => {
        calls += 1;
        if (calls === 1) throw new Error('nft died');
        return changes.map(() => undefined);
      },
    });
    const r = await Promise.allSettled([queue.open(access('10.0.0.1')), queue.open(access('10.0.0.2'))]);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'rejected']);
    await queue.open(access('10.0.0.3'));
  });

  it('dropOpens (stop): queued opens are rejected at once, queued closes still go, idle() waits for them', async () => {
    const h = harness();
    const first = h.queue.open(access('10.0.0.1'));
    await h.tick();
    const opens = Promise.allSettled([h.queue.open(access('10.0.0.2')), h.queue.open(access('10.0.0.3'))]);
    const close = h.queue.close(access('10.0.0.4'));
    expect(h.queue.dropOpens('stopping')).toBe(2);
    expect((await opens).map((x) => x.status)).toEqual(['rejected', 'rejected']);
    let idle = false;
    const waiting = h.queue.idle().then(() => (idle = true));
    await h.next();
    expect(idle).toBe(false);
    await h.next();
    await Promise.all([first, close, waiting]);
    expect(h.batches).toEqual([['open 10.0.0.1'], ['close 10.0.0.4']]);
    expect(h.queue.stats).toMatchObject({ dropped: 2, queued: 0 });
  });
});
