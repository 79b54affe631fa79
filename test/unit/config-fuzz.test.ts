// Property test of the config loader: random and mutated YAML around the
// hostile shapes of issue 8 (a `!!binary` document, merge keys, alias bombs,
// non-mapping documents, tags, deep nesting, bad UTF-8) never makes it throw
// anything but a ConfigError whose every problem has a location, and no input
// takes long. Bounded (interruptAfterTimeLimit + numRuns) so CI stays fast:
// about 25 s in all on a busy machine.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { ConfigError, decodeConfigText, loadConfig, parseConfig } from '../../src/config/index.js';

/** Budget of the main property; KW_FUZZ_MS=120000 for a longer hunt by hand. */
const BUDGET_MS = Number(process.env['KW_FUZZ_MS'] ?? 15_000);

/**
 * A hang bound, not a speed test: the slowest seeds (1,000 nesting levels)
 * take ~0.5 s alone and a few seconds on a loaded 2-core machine.
 */
const PER_INPUT_MS = 10_000;

const DOOR = [
  'doors:',
  '  - &ssh',
  '    name: ssh',
  '    sequence: [1234, 5678/udp, 9012]',
  '    window: 10s',
  '    gap: 2s',
  '    open: [2222]',
  '    duration: 20s',
  '    start_command: [logger, "open %IP% %PORT%"]',
  '  - <<: *ssh',
  '    name: web',
  '    sequence: [4000, 5000]',
  '',
].join('\n');

function aliasBomb(): string {
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 9; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
  return `${lines.join('\n')}\n${DOOR}`;
}

/** The hostile shapes the issue found, and a few more of their kind. */
const SEEDS: readonly string[] = [
  DOOR,
  '!!binary aGVsbG8gd29ybGQ=\n',
  `!!binary |\n  ${Buffer.alloc(300, 7).toString('base64')}\n`,
  'doors:\n  - !!binary aGVsbG8=\n',
  'doors: !!binary aGVsbG8=\n',
  '!!set {a, b}\n',
  '!!omap [a: 1, b: 2]\n',
  'doors: !!pairs [a: 1]\n',
  'doors:\n  - name: !!timestamp 2001-12-14\n',
  'null\n',
  '~\n',
  '- 1\n- 2\n',
  '42\n',
  '"just text"\n',
  '',
  '---\n',
  `${DOOR}---\n${DOOR}`,
  'doors: &d [*d]\n',
  'doors:\n  - <<: 5\n    name: x\n',
  'doors:\n  - <<: [*nope]\n',
  'x: &a {window: 1s}\ndoors:\n  - <<: [*a, *a]\n    name: d\n',
  '__proto__: {polluted: true}\ndoors: []\n',
  'doors:\n  - __proto__: {name: ssh}\n    constructor: 1\n',
  'doors:\n  - name: a\n    sequence: [.nan, .inf, -.inf, 0x10, 0o7, 1e400, 99999999999999999999]\n',
  'max_sources: 1e400\ndoors: []\n',
  'window: !!float 1\ndoors: [!!int 1]\n',
  `doors: ${'['.repeat(1000)}${']'.repeat(1000)}\n`,
  `doors:\n${'  '.repeat(1)}${'- '.repeat(500)}x\n`,
  `doors: ${'{a: '.repeat(1000)}1${'}'.repeat(1000)}\n`,
  'doors:\n  - name: ssh\n    name: ssh\n',
  'doors:\n\t- name: x\n',
  '\uFEFFdoors: []\n',
  'doors: [\u0000]\n',
  'doors:\n  - name: "\\u0000"\n',
  '%YAML 1.1\n---\ndoors: []\n',
  '%TAG ! tag:evil,2000:\n---\n!x {a: 1}\n',
  'doors: *\n',
  '? [a, b]\n: c\n',
  '? {a: 1}\n: 2\ndoors: []\n',
  aliasBomb(),
];

/** YAML-significant fragments the mutator splices in. */
const TOKENS: readonly string[] = [
  '!!binary ', '!!set ', '!!omap ', '!!map ', '!!seq ', '!!str ', '!!int ', '!!float ', '!!null ', '!!bool ', '!!timestamp ',
  '!local ', '&a ', '*a', '<<: ', '<<: *ssh\n', '- ', ': ', '? ', '---\n', '...\n', '[', ']', '{', '}', ',', '"', "'", '|', '>',
  '#', '\n', '\n  ', '\t', ' ', '%YAML 1.2\n', '\u0000', '\uFEFF', '\u2028', '\uD800', 'null', '~', '1e999', '-0', '0x', '.nan',
  '65536', '0', '1234/udp', '1234/icmp', 'doors', 'name', 'sequence', 'window', 'gap', 'open', 'duration', 'start_command',
  'interface', 'firewall', 'capture', 'max_sources', 'ebpf', 'pcap', 'nftables', '%IP%', '%NOPE%', '__proto__', 'constructor',
];

type Edit = { at: number; kind: 'insert' | 'delete' | 'duplicate' | 'replace'; token: string; len: number };

const edit: fc.Arbitrary<Edit> = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom('insert', 'delete', 'duplicate', 'replace'),
  token: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...TOKENS) }, { weight: 1, arbitrary: fc.string({ maxLength: 8, unit: 'binary' }) }),
  len: fc.integer({ min: 1, max: 40 }),
});

function mutate(seed: string, edits: readonly Edit[]): string {
  let s = seed;
  for (const e of edits) {
    const at = s.length === 0 ? 0 : e.at % (s.length + 1);
    if (e.kind === 'insert') s = s.slice(0, at) + e.token + s.slice(at);
    else if (e.kind === 'delete') s = s.slice(0, at) + s.slice(at + e.len);
    else if (e.kind === 'duplicate') s = s.slice(0, at + e.len) + s.slice(at, at + e.len) + s.slice(at + e.len);
    else s = s.slice(0, at) + e.token + s.slice(at + e.token.length);
  }
  return s;
}

const yamlText: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...SEEDS), fc.array(edit, { maxLength: 6 })).map(([seed, edits]) => mutate(seed, edits)) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(...TOKENS), { maxLength: 40 }).map((t) => t.join('')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200, unit: 'binary' }) },
);

/** The loader either accepts the text or throws a ConfigError whose problems all name a place. */
function checkOutcome(run: () => unknown): void {
  const started = performance.now();
  try {
    run();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw new Error(`threw ${String(err)} instead of a ConfigError`, { cause: err });
    expect(err.problems.length).toBeGreaterThan(0);
    for (const p of err.problems) {
      expect(p.message).not.toBe('');
      const located = (p.line !== undefined && p.line >= 1) || /byte offset \d+/.test(p.message);
      if (!located) throw new Error(`problem without a location: ${JSON.stringify(p)}`);
    }
    expect(err.message.length).toBeLessThan(200_000);
  }
  expect(performance.now() - started).toBeLessThan(PER_INPUT_MS);
}

describe('config loader fuzz (fast-check, bounded)', () => {
  test('every hostile seed, as is', () => {
    for (const seed of SEEDS) checkOutcome(() => parseConfig(seed, 'seed.yaml'));
  });

  test('random and mutated YAML: a config or a located ConfigError, never anything else, never slow', () => {
    const result = fc.check(fc.property(yamlText, (text) => checkOutcome(() => parseConfig(text, 'fuzz.yaml'))), {
      numRuns: Math.ceil(BUDGET_MS / 4),
      interruptAfterTimeLimit: BUDGET_MS,
    });
    if (process.env['KW_FUZZ_MS'] !== undefined) console.info(`config fuzz: ${result.numRuns} inputs in the budget of ${BUDGET_MS} ms`);
    if (result.failed) throw new Error(fc.defaultReportMessage(result) ?? 'config fuzz failed');
  }, BUDGET_MS + 30_000);

  test('random bytes through UTF-8 decoding and parsing', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.tuple(fc.constantFrom(...SEEDS), fc.uint8Array({ maxLength: 8 }), fc.nat()).map(([seed, junk, at]) => {
        const b = Buffer.from(seed);
        const i = b.length === 0 ? 0 : at % b.length;
        return Buffer.concat([b.subarray(0, i), junk, b.subarray(i)]);
      }),
    );
    fc.assert(
      fc.property(bytes, (b) => checkOutcome(() => parseConfig(decodeConfigText(b, 'bytes.yaml'), 'bytes.yaml'))),
      { numRuns: 2000, interruptAfterTimeLimit: 5_000 },
    );
  });

  describe('through real files (the safe reader included)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kw-config-fuzz-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    test('loadConfig on mutated files', async () => {
      let n = 0;
      await fc.assert(
        fc.asyncProperty(yamlText, async (text) => {
          const path = join(dir, `f${n++}.yaml`);
          writeFileSync(path, text, { mode: 0o644 });
          const started = performance.now();
          const err = await loadConfig(path).then(
            () => undefined,
            (e: unknown) => e,
          );
          if (err !== undefined) checkOutcome(() => {
            throw err;
          });
          expect(performance.now() - started).toBeLessThan(PER_INPUT_MS);
        }),
        { numRuns: 150, interruptAfterTimeLimit: 4_000 },
      );
    });
  });
});
