import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import {
  MAX_DURATION_MS,
  MAX_WINDOW_MS,
  configToJSON,
  defaultConfig,
  formatConfig,
  parseConfig,
} from '../../src/config/index.js';
import type { KnockwatchConfig, PortSpec, SequenceDoor } from '../../src/types.js';
import { sequenceHazards } from '../../src/ports.js';

describe('formatConfig', () => {
  test('the defaults, in the input shape', () => {
    expect(formatConfig(defaultConfig())).toBe(
      [
        'interface: any',
        'firewall: nftables',
        'capture: pcap',
        'max_sources: 100000',
        'doors:',
        '  - name: ssh',
        '    sequence: [1234/tcp, 5678/tcp, 9012/tcp]',
        '    window: 10s',
        '    open: [2222/tcp]',
        '    duration: 20s',
        '',
      ].join('\n'),
    );
  });

  test('durations in the most readable unit; optional fields only when set; commands quoted as needed', () => {
    const text = formatConfig(
      parseConfig(
        [
          'doors:',
          '  - name: a',
          '    sequence: [1/udp]',
          '    window: 300',
          '    gap: 0.25',
          '    open: [2]',
          '    duration: 5400',
          '    start_command: [logger, "a: b", "%IP%"]',
        ].join('\n'),
        't.yaml',
      ),
    );
    expect(text).toContain('    window: 5m\n');
    expect(text).toContain('    gap: 250ms\n');
    expect(text).toContain('    duration: 90m\n');
    expect(text).toContain('    sequence: [1/udp]\n');
    expect(text).toContain('    start_command: [logger, "a: b", "%IP%"]\n');
    expect(text).not.toContain('stop_command');
  });

  test('the example file round-trips through YAML and JSON', () => {
    const text = readFileSync(new URL('../../examples/knockwatch.yaml', import.meta.url), 'utf8');
    const cfg = parseConfig(text, 'example');
    expect(parseConfig(formatConfig(cfg), 'formatted')).toEqual(cfg);
    expect(parseConfig(JSON.stringify(configToJSON(cfg)), 'json')).toEqual(cfg);
  });

  test('configToJSON uses the file keys and text forms', () => {
    const json = configToJSON(defaultConfig());
    expect(json).toEqual({
      interface: 'any',
      firewall: 'nftables',
      capture: 'pcap',
      max_sources: 100000,
      doors: [{ name: 'ssh', sequence: ['1234/tcp', '5678/tcp', '9012/tcp'], window: '10s', open: ['2222/tcp'], duration: '20s' }],
    });
  });
});

// Arbitrary valid configs: unique names and sequences, open ports disjoint
// from the door's own sequence, gap <= window, durations within limits.
const portSpec: fc.Arbitrary<PortSpec> = fc.record({
  port: fc.integer({ min: 1, max: 65535 }),
  protocol: fc.constantFrom('tcp' as const, 'udp' as const),
});
const key = (p: PortSpec): string => `${p.port}/${p.protocol}`;

const commandArg = fc
  .oneof(
    fc.string(),
    fc.string({ unit: 'grapheme' }),
    fc.string({ unit: 'binary-ascii' }),
    fc.constantFrom('%IP%', '%PORT%', '%DOOR%', 'a: b', '- x', '#c', '"q"', "'", 'null', '~', '1234', 'true', '[x]', '{y}', '*a', '&b', '!t'),
  )
  .filter((s) => !s.includes('\0') && !/%[A-Z][A-Z_]+%/.test(s.replace(/%(IP|PORT|DOOR)%/g, '')));
const command = fc
  .tuple(commandArg.filter((s) => s.trim() !== ''), fc.array(commandArg, { maxLength: 4 }))
  .map(([prog, args]) => [prog, ...args]);

const door: fc.Arbitrary<Omit<SequenceDoor, 'name'>> = fc
  .record(
    {
      sequence: fc.uniqueArray(portSpec, { minLength: 1, maxLength: 32, selector: key }),
      open: fc.uniqueArray(portSpec, { minLength: 1, maxLength: 4, selector: key }),
      windowMs: fc.integer({ min: 1, max: MAX_WINDOW_MS }),
      gapFraction: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
      durationMs: fc.integer({ min: 1, max: MAX_DURATION_MS }),
      startCommand: fc.option(command, { nil: undefined }),
      stopCommand: fc.option(command, { nil: undefined }),
    },
    { requiredKeys: ['sequence', 'open', 'windowMs', 'durationMs'] },
  )
  .filter((d) => !d.open.some((p) => d.sequence.some((q) => key(p) === key(q))))
  // Neighbouring or repeated consecutive steps are refused (src/ports.ts).
  .filter((d) => sequenceHazards(d.sequence).length === 0)
  .map(({ gapFraction, ...d }) => ({
    kind: 'sequence' as const,
    ...d,
    ...(gapFraction !== undefined ? { gapMs: Math.max(1, Math.floor(d.windowMs * gapFraction)) } : {}),
  }));

const config: fc.Arbitrary<KnockwatchConfig> = fc
  .record({
    interface: fc.constantFrom('any', 'eth0', 'wlp3s0', 'br-0a1b2c3d4e5f', 'kw0', 'veth.100'),
    firewall: fc.constantFrom('nftables' as const, 'iptables' as const, 'none' as const),
    capture: fc.constantFrom('pcap' as const, 'ebpf' as const),
    maxSources: fc.integer({ min: 1, max: 10_000_000 }),
    names: fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/), {
      minLength: 1,
      maxLength: 5,
      selector: (n) => n.toLowerCase(),
    }),
    doors: fc.array(door, { minLength: 5, maxLength: 5 }),
  })
  .filter(({ doors }) => new Set(doors.map((d) => d.sequence.map(key).join())).size === doors.length)
  .map(({ names, doors, ...rest }) => ({ ...rest, doors: names.map((name, i) => ({ name, ...doors[i] })) }));

describe('round trip', () => {
  test('formatConfig output parses back to the same config', () => {
    fc.assert(
      fc.property(config, (cfg) => {
        expect(parseConfig(formatConfig(cfg), 'formatted')).toEqual(cfg);
      }),
      { numRuns: 300 },
    );
  });

  test('configToJSON output (JSON is YAML) parses back to the same config', () => {
    fc.assert(
      fc.property(config, (cfg) => {
        expect(parseConfig(JSON.stringify(configToJSON(cfg)), 'json')).toEqual(cfg);
      }),
      { numRuns: 300 },
    );
  });
});
