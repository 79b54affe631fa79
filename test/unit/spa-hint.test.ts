// Requirement 4 (key hints): 64-bit hints on their own 10 s step, a Map
// covering +-(max_age + grace), at most two candidates, failed-open budgets.
import { describe, expect, it } from 'vitest';
import { GLOBAL_FAIL_RULE, HINT_GRACE_MS, HINT_STEP_MS, MAX_CANDIDATES, computeHint, createHintIndex, hintStep } from '../../src/spa/hint.js';
import { deriveKeys } from '../../src/spa/keys.js';
import { KEY_A, KEY_B, T0 } from './spa-support.js';

const a = deriveKeys(KEY_A, 'alice');
const b = deriveKeys(KEY_B, 'bob');
const hintAt = (keys: typeof a, t: number): Buffer => computeHint(keys.hintKey, hintStep(t));
const cands = (idx: ReturnType<typeof createHintIndex>, h: Buffer) => {
  const e = idx.lookup(h, 0);
  return e === undefined ? undefined : idx.candidates(e);
};

describe('spa hints', () => {
  it('are 8 bytes from the hint key and a 10 s step', () => {
    expect(computeHint(a.hintKey, 1).length).toBe(8);
    expect(hintAt(a, T0)).toEqual(hintAt(a, T0 + HINT_STEP_MS - 1 - (T0 % HINT_STEP_MS)));
    expect(hintAt(a, T0)).not.toEqual(hintAt(a, T0 + HINT_STEP_MS));
    expect(hintAt(a, T0)).not.toEqual(hintAt(b, T0));
  });
  it('the Map covers every step within +-(max_age + grace), and not beyond', () => {
    const maxAgeMs = 30_000;
    const idx = createHintIndex([{ user: 'alice', keys: [a] }], { maxAgeMs });
    idx.advance(T0);
    const reach = maxAgeMs + HINT_GRACE_MS;
    for (const off of [-reach, -maxAgeMs, 0, maxAgeMs, reach]) expect(cands(idx, hintAt(a, T0 + off)), `offset ${off}`).toBeDefined();
    for (const off of [-reach - 2 * HINT_STEP_MS, reach + 2 * HINT_STEP_MS]) expect(cands(idx, hintAt(a, T0 + off)), `offset ${off}`).toBeUndefined();
    expect(cands(idx, Buffer.alloc(8))).toBeUndefined();
  });
  it('moves with time: new steps come in, old ones leave; a far jump rebuilds', () => {
    const idx = createHintIndex([{ user: 'alice', keys: [a] }], { maxAgeMs: 30_000 });
    idx.advance(T0);
    const size = idx.size;
    idx.advance(T0 + 200_000);
    expect(cands(idx, hintAt(a, T0 + 200_000 + 80_000))).toBeDefined();
    expect(cands(idx, hintAt(a, T0 - 80_000))).toBeUndefined();
    expect(idx.size).toBe(size);
    idx.advance(T0 + 86_400_000);
    expect(cands(idx, hintAt(a, T0 + 86_400_000))).toBeDefined();
    expect(idx.size).toBe(size);
  });
  it('holds both keys of a user in rotation; a user removed loses its hints at once', () => {
    const old = deriveKeys(KEY_B, 'alice');
    const idx = createHintIndex([{ user: 'alice', keys: [a, old] }], { maxAgeMs: 30_000 });
    idx.advance(T0);
    expect(cands(idx, hintAt(a, T0))?.[0].keyIndex).toBe(0);
    expect(cands(idx, hintAt(old, T0))?.[0].keyIndex).toBe(1);
    idx.setUsers([{ user: 'bob', keys: [b] }]);
    expect(cands(idx, hintAt(a, T0))).toBeUndefined();
    expect(cands(idx, hintAt(b, T0))).toBeDefined();
  });
  it(`returns at most ${MAX_CANDIDATES} candidates even when more keys share a hint`, () => {
    // The same key under one name three times is refused by the config; here it forces a shared hint.
    const idx = createHintIndex([{ user: 'alice', keys: [a, a, a] }], { maxAgeMs: 30_000 });
    idx.advance(T0);
    expect(cands(idx, hintAt(a, T0))?.length).toBe(MAX_CANDIDATES);
  });
  it('budgets failed opens per hint and overall', () => {
    const idx = createHintIndex([{ user: 'alice', keys: [a] }, { user: 'bob', keys: [b] }], { maxAgeMs: 30_000 });
    idx.advance(T0);
    const h = idx.lookup(hintAt(a, T0), 0)!;
    let tries = 0;
    for (let i = 0; i < 100; i++) {
      if (!idx.mayTry(h, T0)) break;
      idx.failed(h, T0);
      tries++;
    }
    expect(tries).toBe(4);
    // Another hint is unaffected; a second later one more try.
    expect(idx.mayTry(idx.lookup(hintAt(b, T0), 0)!, T0)).toBe(true);
    expect(idx.mayTry(h, T0 + 1000)).toBe(true);
    // Overall: spread over many hints, the global bucket ends it.
    const big = createHintIndex(Array.from({ length: 300 }, (_, i) => ({ user: `u${i}`, keys: [deriveKeys(Buffer.alloc(32, i + 1), `u${i}`)] })), { maxAgeMs: 30_000 });
    big.advance(T0);
    const hints = Array.from({ length: 300 }, (_, i) => big.lookup(computeHint(deriveKeys(Buffer.alloc(32, i + 1), `u${i}`).hintKey, hintStep(T0)), 0)!);
    let total = 0;
    for (let round = 0; round < 4; round++) {
      for (const x of hints) {
        if (big.mayTry(x, T0)) {
          big.failed(x, T0);
          total++;
        }
      }
    }
    expect(total).toBe(GLOBAL_FAIL_RULE.burst);
  });
});
