// The batch queue's fair share (issue 8, item 6): opens are taken round-robin
// over source prefixes, and a full queue refuses from the prefix with the
// most waiting, so a flood of spoofed completions from a few prefixes neither
// delays nor shuts out a knock from another one.
import { describe, expect, it } from 'vitest';
import { createBatchQueue, QueueFullError, sourcePrefix, type Change } from '../../src/firewall/batch.js';
import type { Access } from '../../src/firewall/types.js';
import { sshDoor } from './firewall-support.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const access = (source: string): Access => ({ door: sshDoor.name, source, family: source.includes(':') ? 6 : 4, ports: sshDoor.open, until: 1 });
const show = (c: Change): string => `${c.kind} ${c.access.source}`;
const flood = (n: number, net = '198.18'): string[] => Array.from({ length: n }, (_, i) => `${net}.${i >> 8}.${i & 255}`);

/** Batches wait for next(); every change is applied. */
function harness(options: { maxElements?: number; maxQueuedOpens?: number }) {
  const batches: string[][] = [];
  let release: (() => void)[] = [];
  const queue = createBatchQueue({
    name: 'test',
    logger: silent,
    ...options,
    apply: async (changes) => {
      batches.push(changes.map(show));
      await new Promise<void>((r) => release.push(r));
      return changes.map(() => undefined);
    },
  });
  const tick = () => new Promise((r) => setImmediate(r));
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

describe('batch queue fair share', () => {
  it('buckets are /24 (IPv4) and /48 (IPv6), whatever the spelling', () => {
    expect(sourcePrefix('198.18.3.7', 4)).toBe('4 198.18.3');
    expect(sourcePrefix('198.18.3.200', 4)).toBe(sourcePrefix('198.18.3.7', 4));
    expect(sourcePrefix('198.18.4.7', 4)).not.toBe(sourcePrefix('198.18.3.7', 4));
    expect(sourcePrefix('2001:db8::1', 6)).toBe('6 2001:db8:0');
    expect(sourcePrefix('2001:0DB8:0000:ffff::1', 6)).toBe('6 2001:db8:0');
    expect(sourcePrefix('2001:db8:1:2:3:4:5:6', 6)).toBe('6 2001:db8:1');
    expect(sourcePrefix('::1', 6)).toBe('6 0:0:0');
    expect(sourcePrefix('::ffff:192.0.2.1', 6)).toBe('6 0:0:0');
  });

  it('a knock from another prefix goes in the next batch, not behind the whole flood', async () => {
    const h = harness({ maxElements: 4, maxQueuedOpens: 100 });
    const first = h.queue.open(access('10.0.0.1'));
    await h.tick();
    const spoofed = flood(12).map((s) => h.queue.open(access(s)));
    const real = h.queue.open(access('10.199.0.20'));
    await h.next();
    // FIFO would have put it in the fourth batch after the first.
    expect(h.batches[1]).toContain('open 10.199.0.20');
    expect(h.batches[1]).toHaveLength(4);
    for (let i = 0; i < 4; i++) await h.next();
    await Promise.all([first, ...spoofed, real]);
    expect(h.batches.flat()).toHaveLength(14);
  });

  it('prefixes take turns: each batch starts with the prefixes the last one did not reach', async () => {
    const h = harness({ maxElements: 2, maxQueuedOpens: 100 });
    const first = h.queue.open(access('10.0.0.1'));
    await h.tick();
    // Three prefixes, two opens each.
    const rest = ['10.1.0.1', '10.1.0.2', '10.2.0.1', '10.2.0.2', '10.3.0.1', '10.3.0.2'].map((s) => h.queue.open(access(s)));
    for (let i = 0; i < 4; i++) await h.next();
    await Promise.all([first, ...rest]);
    expect(h.batches.slice(1)).toEqual([
      ['open 10.1.0.1', 'open 10.2.0.1'],
      ['open 10.3.0.1', 'open 10.1.0.2'],
      ['open 10.2.0.2', 'open 10.3.0.2'],
    ]);
  });

  it('full: the newcomer is refused when its prefix has the most waiting, otherwise the oldest open of the prefix that has', async () => {
    const warnings: { refused: number; refusedTotal: number }[] = [];
    const logger = { ...silent, warn: (o: object) => warnings.push(o as { refused: number; refusedTotal: number }) };
    const batches: string[][] = [];
    let release!: () => void;
    const queue = createBatchQueue({
      name: 'test',
      logger,
      maxQueuedOpens: 4,
      apply: async (changes) => {
        batches.push(changes.map(show));
        await new Promise<void>((r) => (release = r));
        return changes.map(() => undefined);
      },
    });
    const first = queue.open(access('10.0.0.1'));
    await new Promise((r) => setImmediate(r));
    const spoofed = flood(4).map((s) => queue.open(access(s)).then(() => 'applied', (e: Error) => e));
    // Same prefix as the four waiting: refused at the door, as with a plain bound.
    await expect(queue.open(access('198.18.0.9'))).rejects.toThrow(/its prefix has the most; open of door 'ssh' for 198\.18\.0\.9 refused/);
    // Another prefix: admitted; the oldest spoofed open makes room.
    const real = queue.open(access('10.199.0.20'));
    const real6 = queue.open(access('2001:db8::20'));
    expect(queue.stats).toMatchObject({ refused: 3, queued: 4 });
    release();
    await first;
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    release();
    await Promise.all([real, real6]);
    const outcomes = await Promise.all(spoofed);
    expect(outcomes[0]).toBeInstanceOf(QueueFullError);
    expect((outcomes[0] as Error).message).toMatch(/queued open of door 'ssh' for 198\.18\.0\.0 refused to make room/);
    expect(outcomes[1]).toBeInstanceOf(QueueFullError);
    expect(outcomes.slice(2)).toEqual(['applied', 'applied']);
    expect(batches[1].sort()).toEqual(['open 10.199.0.20', 'open 198.18.0.2', 'open 198.18.0.3', 'open 2001:db8::20'].sort());
    // Counted, not one line each: the first at once, the rest a second later (or sooner, on a slow run).
    expect(warnings[0]).toMatchObject({ refused: 1, refusedTotal: 1 });
    await expect.poll(() => warnings.reduce((n, w) => n + w.refused, 0), { timeout: 3000 }).toBe(3);
    expect(warnings.length).toBeLessThanOrEqual(2);
  });

  it('stays bounded under a long flood while a batch hangs: refused opens do not pile up', async () => {
    let release!: () => void;
    const queue = createBatchQueue({
      name: 'test',
      logger: silent,
      maxQueuedOpens: 64,
      apply: async (changes) => {
        await new Promise<void>((r) => (release = r));
        return changes.map(() => undefined);
      },
    });
    // A close waiting behind an open of its pair: later opens of that prefix queue behind it.
    const pair = queue.open(access('198.19.0.1')).catch(() => undefined);
    const close = queue.close(access('198.19.0.1'));
    const settled: Promise<unknown>[] = [];
    for (let i = 2; i < 20_002; i++) settled.push(queue.open(access(`198.19.${i >> 8}.${i & 255}`)).catch(() => undefined));
    // 79 prefixes, at most 64 live opens plus the close.
    expect(queue.stats.queued).toBeLessThanOrEqual(65);
    expect(queue.stats.refused).toBeGreaterThan(19_900);
    for (let i = 0; i < 200 && queue.stats.queued > 0; i++) {
      await new Promise((r) => setImmediate(r));
      release?.();
    }
    await Promise.all([...settled, pair, close]);
    expect(queue.stats).toMatchObject({ queued: 0, failed: 0 });
  });
});
