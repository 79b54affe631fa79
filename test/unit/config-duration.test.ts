import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { formatDuration, parseDuration } from '../../src/config/index.js';

describe('parseDuration', () => {
  test.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1.5s', 1_500],
    ['0.7s', 700],
    ['.25s', 250],
    ['10', 10_000],
    ['  10s  ', 10_000],
    ['10 s', 10_000],
    ['1ms', 1],
  ])('%j -> %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test.each([
    [10, 10_000],
    [0.5, 500],
    [0.001, 1],
    [3600, 3_600_000],
  ])('number %d (seconds) -> %d ms', (n, ms) => {
    expect(parseDuration(n)).toBe(ms);
  });

  test.each([
    ['10y', /invalid duration '10y': expected e\.g\. 500ms/],
    ['9d', /invalid duration '9d'/],
    ['-5s', /invalid duration '-5s'/],
    ['', /invalid duration ''/],
    ['s', /invalid duration 's'/],
    ['10S', /invalid duration '10S'/],
    ['1e3s', /invalid duration '1e3s'/],
    ['0s', /'0s': must be greater than 0/],
    ['0', /'0': must be greater than 0/],
    ['1.5ms', /'1.5ms': not a whole number of milliseconds/],
    ['0.0001s', /not a whole number of milliseconds/],
  ])('rejects %j', (text, re) => {
    expect(() => parseDuration(text)).toThrow(re);
  });

  test.each([
    [0, /0: must be greater than 0/],
    [-1, /-1: must be greater than 0/],
    [Infinity, /Infinity: must be finite/],
    [Number.NaN, /NaN: must be finite/],
    [0.0004, /not a whole number of milliseconds/],
  ])('rejects number %d', (n, re) => {
    expect(() => parseDuration(n)).toThrow(re);
  });
});

describe('formatDuration', () => {
  test.each([
    [1, '1ms'],
    [500, '500ms'],
    [1500, '1500ms'],
    [20_000, '20s'],
    [90_000, '90s'],
    [300_000, '5m'],
    [5_400_000, '90m'],
    [3_600_000, '1h'],
    [604_800_000, '168h'],
  ])('%d ms -> %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  test('every whole number of ms formats to text that parses back to it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 7 * 24 * 3_600_000 }), (ms) => parseDuration(formatDuration(ms)) === ms),
    );
  });
});
