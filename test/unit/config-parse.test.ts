import { readFileSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ConfigError, defaultConfig, parseConfig, type ConfigProblem } from '../../src/config/index.js';
import { compileDoors } from '../../src/detect/doors.js';
import type { Door, SequenceDoor } from '../../src/types.js';

/** A parsed door that must be a sequence door. */
function seq(d: Door): SequenceDoor {
  if (d.kind !== 'sequence') throw new Error(`door ${d.name} is a ${d.kind} door`);
  return d;
}

const FILE = 'k.yaml';

/** Lines joined into a file; line N of the YAML is lines[N-1]. */
function yaml(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

/** A valid one-door config; `extra` lines are appended to the door (4-space indent). */
function oneDoor(...extra: string[]): string {
  return yaml(
    'doors:', // 1
    '  - name: ssh', // 2
    '    sequence: [1234, 5678, 9012]', // 3
    '    window: 10s', // 4
    '    open: [2222]', // 5
    '    duration: 20s', // 6
    ...extra, // 7...
  );
}

function problemsOf(text: string): ConfigProblem[] {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}

/** Exactly one problem, at `path` on `line`, with a message matching `re`. */
function expectOnly(text: string, path: string, line: number | undefined, re: RegExp): ConfigProblem {
  const problems = problemsOf(text);
  expect(problems).toHaveLength(1);
  expect(problems[0]).toMatchObject({ path, line });
  expect(problems[0].message).toMatch(re);
  return problems[0];
}

describe('parseConfig: accepted configs', () => {
  test('a minimal door gets every top-level default', () => {
    const cfg = parseConfig(oneDoor(), FILE);
    expect(cfg).toEqual(defaultConfig());
  });

  test('all options, mixed protocols, fractional-second durations and commands', () => {
    const cfg = parseConfig(
      yaml(
        'interface: eth0',
        'firewall: iptables',
        'capture: ebpf',
        'max_sources: 5000',
        'doors:',
        '  - name: web_1',
        '    sequence: [1000/udp, "2000:udp", 3000:tcp, 4000]',
        '    window: 0.5',
        '    gap: 200ms',
        '    open: [443, 53/udp]',
        '    duration: 2h',
        '    start_command: [/usr/bin/logger, "opened %PORT% for %IP% on %DOOR%", "+%Y%m%d"]',
        '    stop_command: [logger, closed]',
      ),
      FILE,
    );
    expect(cfg).toEqual({
      interface: 'eth0',
      firewall: 'iptables',
      capture: 'ebpf',
      maxSources: 5000,
      doors: [
        {
          kind: 'sequence',
          name: 'web_1',
          sequence: [
            { port: 1000, protocol: 'udp' },
            { port: 2000, protocol: 'udp' },
            { port: 3000, protocol: 'tcp' },
            { port: 4000, protocol: 'tcp' },
          ],
          windowMs: 500,
          gapMs: 200,
          open: [
            { port: 443, protocol: 'tcp' },
            { port: 53, protocol: 'udp' },
          ],
          durationMs: 7_200_000,
          startCommand: ['/usr/bin/logger', 'opened %PORT% for %IP% on %DOOR%', '+%Y%m%d'],
          stopCommand: ['logger', 'closed'],
        },
      ],
    });
  });

  test('the result is frozen: callers cannot change the effective config', () => {
    const cfg = parseConfig(oneDoor(), FILE);
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(Object.isFrozen(seq(cfg.doors[0]).sequence[0])).toBe(true);
  });

  test('gap equal to window is allowed; the same port with another protocol is a different port', () => {
    const cfg = parseConfig(
      yaml(
        'doors:',
        '  - name: a',
        '    sequence: [1234/tcp, 1234/udp]',
        '    window: 5s',
        '    gap: 5s',
        '    open: [2222]',
        '    duration: 1m',
        '  - name: b',
        '    sequence: [1234/udp, 1234/tcp]',
        '    window: 1h',
        '    open: [9999]',
        '    duration: 168h',
      ),
      FILE,
    );
    expect(cfg.doors.map((d) => d.name)).toEqual(['a', 'b']);
    expect(cfg.doors[1].durationMs).toBe(7 * 24 * 3_600_000);
  });

  test('an open port that is a knock port of the door only under the other protocol is accepted', () => {
    const cfg = parseConfig(oneDoor().replace('open: [2222]', 'open: [1234/udp]'), FILE);
    expect(cfg.doors[0].open).toEqual([{ port: 1234, protocol: 'udp' }]);
  });

  test('a 32-step sequence (knockd limit) is accepted', () => {
    const steps = Array.from({ length: 32 }, (_, i) => 10_000 + 2 * i).join(', ');
    const cfg = parseConfig(oneDoor().replace('[1234, 5678, 9012]', `[${steps}]`), FILE);
    expect(seq(cfg.doors[0]).sequence).toHaveLength(32);
  });

  test('anchors and aliases resolve', () => {
    const cfg = parseConfig(
      yaml(
        'doors:',
        '  - name: a',
        '    sequence: [1, 3]',
        '    window: &w 10s',
        '    open: &o [2222]',
        '    duration: 20s',
        '  - name: b',
        '    sequence: [4, 6]',
        '    window: *w',
        '    open: *o',
        '    duration: 20s',
      ),
      FILE,
    );
    expect(cfg.doors[1]).toMatchObject({ windowMs: 10_000, open: [{ port: 2222, protocol: 'tcp' }] });
  });

  test('examples/knockwatch.yaml parses and shows every option', () => {
    const path = new URL('../../examples/knockwatch.yaml', import.meta.url);
    const text = readFileSync(path, 'utf8');
    const cfg = parseConfig(text, 'examples/knockwatch.yaml');
    expect(cfg.doors.map((d) => d.name)).toEqual(['ssh', 'admin-web']);
    const web = seq(cfg.doors[1]);
    expect(web.gapMs).toBe(2000);
    expect(web.startCommand?.[0]).toBe('logger');
    expect(web.stopCommand?.[0]).toBe('logger');
    expect(web.sequence.map((p) => p.protocol)).toEqual(['udp', 'tcp', 'udp']);
    for (const key of ['interface', 'firewall', 'capture', 'max_sources', 'gap', 'start_command', 'stop_command']) {
      expect(text).toMatch(new RegExp(`^\\s*(- )?${key}:`, 'm'));
    }
  });
});

describe('parseConfig: ports', () => {
  test('port out of range, with path and line', () => {
    const p = expectOnly(oneDoor().replace('9012', '70000'), 'doors[0].sequence[2]', 3, /port 70000 is outside 1-65535/);
    expect(p.column).toBe(28);
  });

  test('port zero in open', () => {
    expectOnly(oneDoor().replace('[2222]', '[2222, 0]'), 'doors[0].open[1]', 5, /port 0 is outside 1-65535/);
  });

  test('non-integer port', () => {
    expectOnly(oneDoor().replace('5678', '56.5'), 'doors[0].sequence[1]', 3, /port 56.5 is not an integer/);
  });

  test('unknown protocol', () => {
    expectOnly(oneDoor().replace('5678', '5678/sctp'), 'doors[0].sequence[1]', 3, /unknown protocol 'sctp'/);
  });

  test('a port that is not a number or string', () => {
    expectOnly(oneDoor().replace('5678', '{port: 5678}'), 'doors[0].sequence[1]', 3, /expected a port .* got a mapping/);
  });

  test('empty sequence', () => {
    expectOnly(oneDoor().replace('[1234, 5678, 9012]', '[]'), 'doors[0].sequence', 3, /must not be empty/);
  });

  test('sequence longer than 32 steps', () => {
    const steps = Array.from({ length: 33 }, (_, i) => 10_000 + 2 * i).join(', ');
    expectOnly(
      oneDoor().replace('[1234, 5678, 9012]', `[${steps}]`),
      'doors[0].sequence',
      3,
      /has 33 steps; at most 32 are allowed \(knockd's limit\)/,
    );
  });

  test('sequence that is not a list', () => {
    expectOnly(oneDoor().replace('[1234, 5678, 9012]', '"1234,5678"'), 'doors[0].sequence', 3, /expected a list of knock ports .* got '1234,5678'/);
  });

  test('missing open: reported at the door', () => {
    const text = oneDoor().replace('    open: [2222]\n', '');
    const p = expectOnly(text, 'doors[0].open', 2, /required key is missing/);
    expect(p.column).toBe(5);
  });

  test('empty open', () => {
    expectOnly(oneDoor().replace('[2222]', '[]'), 'doors[0].open', 5, /must not be empty/);
  });

  test('open: with no value', () => {
    expectOnly(oneDoor().replace('open: [2222]', 'open:'), 'doors[0].open', 5, /got an empty value \(null\)/);
  });

  test("an open port that is one of the door's own knock ports", () => {
    expectOnly(
      oneDoor().replace('[2222]', '[2222, 5678/tcp]'),
      'doors[0].open[1]',
      5,
      /5678\/tcp is also a knock port of this door \(sequence\[1\]\)/,
    );
  });

  test('the same open port twice', () => {
    expectOnly(oneDoor().replace('[2222]', '[2222, 2222/tcp]'), 'doors[0].open[1]', 5, /2222\/tcp is listed twice/);
  });
});

describe('parseConfig: doors', () => {
  const twoDoors = (name2: string, seq2: string): string =>
    yaml(
      'doors:',
      '  - name: ssh',
      '    sequence: [1234, 5678/udp]',
      '    window: 10s',
      '    open: [22]',
      '    duration: 20s',
      `  - name: ${name2}`, // 7
      `    sequence: ${seq2}`, // 8
      '    window: 10s',
      '    open: [80]',
      '    duration: 20s',
    );

  test('duplicate door names', () => {
    expectOnly(twoDoors('ssh', '[1, 3]'), 'doors[1].name', 7, /duplicate door name 'ssh' \(also doors\[0\]\)/);
  });

  test('door names that differ only in case are duplicates', () => {
    expectOnly(twoDoors('SSH', '[1, 3]'), 'doors[1].name', 7, /duplicate door name 'SSH'/);
  });

  test('two doors with the same sequence (protocol defaults count as written)', () => {
    expectOnly(twoDoors('web', '[1234/tcp, "5678:udp"]'), 'doors[1].sequence', 8, /same sequence as door 'ssh' \(doors\[0\]\)/);
  });

  test('sequences differing only in a protocol are distinct', () => {
    expect(parseConfig(twoDoors('web', '[1234, 5678/tcp]'), FILE).doors).toHaveLength(2);
  });

  test.each([
    ['"bad name"', 'bad name'],
    ['"a.b"', 'a.b'],
    ['"a/b"', 'a/b'],
    [`"${'a'.repeat(33)}"`, 'a'.repeat(33)],
    ['"ü"', 'ü'],
    ['""', ''],
  ])('door name %s is rejected', (written, name) => {
    expectOnly(oneDoor().replace('name: ssh', `name: ${written}`), 'doors[0].name', 2, new RegExp(`invalid door name '${name.replace('.', '\\.')}'`));
  });

  test('a door name of 32 characters is accepted', () => {
    expect(parseConfig(oneDoor().replace('name: ssh', `name: ${'A-_9'.repeat(8)}`), FILE).doors[0].name).toHaveLength(32);
  });

  test('a non-string door name', () => {
    expectOnly(oneDoor().replace('name: ssh', 'name: 42'), 'doors[0].name', 2, /expected a door name, got 42/);
  });

  test('missing doors in a file', () => {
    expectOnly(yaml('interface: eth0'), 'doors', 1, /required key is missing/);
  });

  test('empty doors list', () => {
    expectOnly(yaml('interface: eth0', 'doors: []'), 'doors', 2, /must define at least one door/);
  });

  test('doors that is not a list', () => {
    expectOnly(yaml('doors:', '  name: ssh'), 'doors', 2, /expected a list of doors, got a mapping/);
  });

  test('a door that is not a mapping', () => {
    expectOnly(yaml('doors:', '  - ssh'), 'doors[0]', 2, /expected a door .* got 'ssh'/);
  });

  test('a door without a kind key says which keys select a kind', () => {
    expectOnly(yaml('doors:', '  - name: ssh', '    window: 10s', '    open: [22]', '    duration: 1m'), 'doors[0]', 2, /a door needs its kind: one of the keys sequence/);
  });

  test('an unknown key in a door lists that kind\'s keys only', () => {
    const p = expectOnly(oneDoor().replace('window: 10s', 'window: 10s\n    zzzzzzzzzzzz: 1'), 'doors[0].zzzzzzzzzzzz', 5, /unknown key 'zzzzzzzzzzzz'/);
    expect(p.message).toContain('known keys: name, sequence, window, gap, open, duration, start_command, stop_command');
  });
});

describe('parseConfig: durations', () => {
  test('invalid duration text is quoted', () => {
    const p = expectOnly(oneDoor().replace('window: 10s', 'window: 10 sec'), 'doors[0].window', 4, /invalid duration '10 sec'/);
    expect(p.column).toBe(13);
  });

  test.each([
    ['window: 0', 'doors[0].window', 4, /must be greater than 0/],
    ['window: -1s', 'doors[0].window', 4, /invalid duration '-1s'/],
    ['window: .inf', 'doors[0].window', 4, /must be finite/],
    ['window: 61m', 'doors[0].window', 4, /window 61m is longer than the maximum 1h/],
    ['window: true', 'doors[0].window', 4, /expected a duration .* got true/],
    ['duration: 169h', 'doors[0].duration', 6, /duration 169h is longer than the maximum 168h/],
    ['duration: 31536000', 'doors[0].duration', 6, /duration 8760h is longer than the maximum 168h/],
    ['duration: 1y', 'doors[0].duration', 6, /invalid duration '1y'/],
  ])('%s', (line, path, lineNo, re) => {
    const [key] = line.split(':');
    const text = oneDoor().replace(new RegExp(`${key}: \\S+`), line);
    expectOnly(text, path, lineNo, re);
  });

  test('gap longer than 1h', () => {
    const text = oneDoor('    gap: 2h').replace('window: 10s', 'window: 1h');
    const problems = problemsOf(text);
    expect(problems).toEqual([expect.objectContaining({ path: 'doors[0].gap', line: 7, message: 'gap 2h is longer than the maximum 1h' })]);
  });

  test('gap larger than window', () => {
    expectOnly(oneDoor('    gap: 11s'), 'doors[0].gap', 7, /gap 11s is larger than window 10s/);
  });
});

describe('parseConfig: commands', () => {
  test.each([
    ['start_command: "logger hi"', /expected an argument list .* got 'logger hi' \(commands are argument arrays, run without a shell\)/, 'doors[0].start_command'],
    ['start_command: []', /must not be empty/, 'doors[0].start_command'],
    ['stop_command: {a: 1}', /expected an argument list .* got a mapping/, 'doors[0].stop_command'],
    ['stop_command: [logger, 5]', /expected a string, got 5/, 'doors[0].stop_command[1]'],
    ['stop_command: [logger, [a]]', /expected a string, got a list/, 'doors[0].stop_command[1]'],
    ['stop_command: ["", x]', /program name must not be empty/, 'doors[0].stop_command[0]'],
    ['stop_command: [logger, "a\\0b"]', /NUL/, 'doors[0].stop_command[1]'],
    ['start_command: [logger, "%IPP%"]', /unknown placeholder '%IPP%' \(known: %IP%, %PORT%, %PROTO%, %DOOR%\)/, 'doors[0].start_command[1]'],
  ])('%s', (line, re, path) => {
    expectOnly(oneDoor(`    ${line}`), path, 7, re);
  });
});

describe('parseConfig: top-level settings', () => {
  test.each([
    ['max_sources: 0', /expected a positive integer, got 0/],
    ['max_sources: -5', /expected a positive integer, got -5/],
    ['max_sources: 1.5', /expected a positive integer, got 1.5/],
    ['max_sources: "100"', /expected a positive integer, got '100'/],
    ['max_sources: 1e12', /1000000000000 is above the limit 10000000/],
  ])('%s', (line, re) => {
    expectOnly(line + '\n' + oneDoor(), 'max_sources', 1, re);
  });

  test.each([
    ['firewall: nft', 'firewall', /expected nftables, iptables or none, got 'nft'/],
    ['capture: xdp', 'capture', /expected pcap or ebpf, got 'xdp'/],
    ['interface: ""', 'interface', /invalid interface name ''/],
    ['interface: "eth0 eth1"', 'interface', /invalid interface name 'eth0 eth1'/],
    ['interface: abcdefghijklmnop', 'interface', /invalid interface name/],
    ['interface: 0', 'interface', /expected an interface name .* got 0/],
  ])('%s', (line, path, re) => {
    expectOnly(line + '\n' + oneDoor(), path, 1, re);
  });

  test('unknown top-level key, with a suggestion, at the key', () => {
    const p = expectOnly(yaml('intreface: eth0', ...oneDoor().trimEnd().split('\n')), 'intreface', 1, /unknown key 'intreface' \(did you mean 'interface'\?\)/);
    expect(p.column).toBe(1);
  });

  test('unknown door key, camelCase spelling suggested', () => {
    const p = expectOnly(oneDoor('    startCommand: [logger]'), 'doors[0].startCommand', 7, /did you mean 'start_command'/);
    expect(p.column).toBe(5);
  });

  test('unknown key without a close match lists the known keys', () => {
    expectOnly(oneDoor('    seq_timeout: 5'), 'doors[0].seq_timeout', 7, /unknown key 'seq_timeout' \(known keys: name, sequence, window, gap, open, duration, start_command, stop_command\)/);
  });
});

describe('parseConfig: files that are not a config', () => {
  test.each([[''], ['\n\n'], ['# only a comment\n'], ['---\n']])('empty file %j', (text) => {
    expectOnly(text, '', 1, /the file is empty/);
  });

  test('YAML syntax error with line and column', () => {
    const text = yaml('doors:', '  - name: ssh', '    sequence: [1234, 5678', '    window: 10s');
    const problems = problemsOf(text);
    expect(problems.length).toBeGreaterThanOrEqual(1);
    expect(problems[0]).toMatchObject({ path: '', line: 4, column: expect.any(Number) });
    expect(problems[0].message).toMatch(/^YAML: /);
  });

  test('tab indentation is a syntax error', () => {
    const problems = problemsOf('doors:\n\t- name: ssh\n');
    expect(problems[0]).toMatchObject({ path: '', line: 2 });
  });

  test('duplicate YAML keys are rejected, not silently overridden', () => {
    expectOnly(oneDoor('    window: 1h'), '', 7, /duplicate key 'window'/);
  });

  test('an unknown tag is rejected', () => {
    expectOnly(oneDoor().replace('window: 10s', 'window: !secs 10'), '', 4, /Unresolved tag: !secs/);
  });

  test('an alias without an anchor is located', () => {
    expectOnly(oneDoor().replace('window: 10s', 'window: *nope'), '', 4, /cannot resolve the YAML document: .*nope/);
  });

  test('an alias bomb is refused instead of expanded', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 10; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    const problems = problemsOf(yaml(...lines, ...oneDoor().trimEnd().split('\n')));
    expect(problems[0].message).toMatch(/cannot resolve the YAML document: .*alias/i);
  });

  test('a top-level list', () => {
    expectOnly(yaml('- 1', '- 2'), '', 1, /expected a mapping of settings, got a list/);
  });

  // Issue 8 item 12: a `!!binary` document gave 102 "unknown key" messages naming Buffer methods.
  test.each([
    ['!!binary aGVsbG8gd29ybGQ=', /expected a mapping of settings, got binary data \(!!binary\)/],
    ['!!set {a, b}', /expected a mapping of settings, got a set \(!!set\)/],
    ['!!omap [a: 1]', /expected a mapping of settings, got an ordered mapping \(!!omap\)/],
    ['just a string', /expected a mapping of settings, got 'just a string'/],
    ['42', /expected a mapping of settings, got 42/],
    ['null', /expected a mapping of settings, got an empty value \(null\)/],
    ['~', /expected a mapping of settings, got an empty value \(null\)/],
  ])('a top-level %s document is one problem at its line', (doc, re) => {
    expectOnly(`# a comment\n${doc}\n`, '', 2, re);
  });

  test('a door that is !!binary is one problem at its line', () => {
    expectOnly(yaml('doors:', '  - !!binary aGVsbG8='), 'doors[0]', 2, /expected a door \(a mapping with name, sequence.*, \.\.\.\), got binary data/);
  });

  test('YAML merge keys (<<: *door) share settings between doors; the merging door overrides them', () => {
    const cfg = parseConfig(
      yaml(
        'doors:',
        '  - &ssh',
        '    name: ssh',
        '    sequence: [1234, 5678, 9012]',
        '    window: 10s',
        '    open: [2222]',
        '    duration: 20s',
        '  - <<: *ssh',
        '    name: web',
        '    sequence: [4000, 5000]',
        '    open: [443]',
      ),
      FILE,
    );
    expect(cfg.doors[1]).toMatchObject({ name: 'web', windowMs: 10_000, durationMs: 20_000, open: [{ port: 443, protocol: 'tcp' }] });
    expect(seq(cfg.doors[1]).sequence).toHaveLength(2);
  });

  test('a merged value that is wrong is reported at the merging door', () => {
    const problems = problemsOf(yaml('doors:', '  - &ssh', '    name: ssh', '    sequence: [1234, 5678]', '    window: 10s', '    open: [2222]', '    duration: 20s', '    gap: 1h', '  - <<: *ssh', '    name: web', '    sequence: [4000, 5000]'));
    // gap > window in both doors: the first at its own line, the merged copy at the merging door's.
    expect(problems.map((p) => [p.path, p.line])).toEqual([
      ['doors[0].gap', 8],
      ['doors[1].gap', 9],
    ]);
  });

  test('several documents in one file', () => {
    const problems = problemsOf(`${oneDoor()}---\n${oneDoor()}`);
    expect(problems[0]).toMatchObject({ path: '', line: 7 });
    expect(problems[0].message).toMatch(/multiple documents/);
  });
});

describe('parseConfig: all problems at once', () => {
  const text = yaml(
    'firewal: iptables', // 1
    'max_sources: 0', // 2
    'doors:', // 3
    '  - name: ssh', // 4
    '    sequence: [1234, 70000, 9012/sctp]', // 5
    '    window: 10s', // 6
    '    gap: 20s', // 7
    '    open: []', // 8
    '    duration: 8d', // 9
    '  - name: ssh', // 10
    '    sequence: [1, 3]', // 11
    '    window: 5s', // 12
    '    open: [3, 4]', // 13
    '    duration: 1m', // 14
    '    stop_command: logger', // 15
    '  - name: web', // 16
    '    sequence: [1, 3]', // 17
    '    windw: 5s', // 18
    '    open: [80]', // 19
    '    duration: 1m', // 20
  );

  test('every problem, in file order, each with path and line', () => {
    const problems = problemsOf(text);
    expect(problems.map((p) => [p.line, p.path])).toEqual([
      [1, 'firewal'],
      [2, 'max_sources'],
      [5, 'doors[0].sequence[1]'],
      [5, 'doors[0].sequence[2]'],
      [7, 'doors[0].gap'],
      [8, 'doors[0].open'],
      [9, 'doors[0].duration'],
      [10, 'doors[1].name'],
      [13, 'doors[1].open[0]'],
      [15, 'doors[1].stop_command'],
      [16, 'doors[2].window'],
      [17, 'doors[2].sequence'],
      [18, 'doors[2].windw'],
    ]);
  });

  test('the error message lists them all as file:line:col: path: message', () => {
    let err: unknown;
    try {
      parseConfig(text, '/etc/knockwatch.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.fileName).toBe('/etc/knockwatch.yaml');
    const lines = e.message.split('\n');
    expect(lines[0]).toBe('invalid configuration /etc/knockwatch.yaml (13 problems):');
    expect(lines).toContain("/etc/knockwatch.yaml:1:1: firewal: unknown key 'firewal' (did you mean 'firewall'?)");
    expect(lines).toContain('/etc/knockwatch.yaml:5:22: doors[0].sequence[1]: port 70000 is outside 1-65535');
    expect(lines).toContain("/etc/knockwatch.yaml:17:15: doors[2].sequence: same sequence as door 'ssh' (doors[1])");
    expect(lines).toContain('/etc/knockwatch.yaml:16:5: doors[2].window: required key is missing');
    expect(lines).toHaveLength(14);
  });
});

describe('parseConfig: sequences a sweep or a retransmission could complete', () => {
  test('a neighbouring port right after a step: path, line, column and the exact message', () => {
    const p = expectOnly(
      oneDoor().replace('[1234, 5678, 9012]', '[1234, 1235, 9012]'),
      'doors[0].sequence[1]',
      3,
      /^1235\/tcp right after 1234\/tcp is a neighbouring port: a port sweep would open this door$/,
    );
    // Line 3 is `    sequence: [1234, 1235, 9012]`: the column is the offending item's.
    expect(p.column).toBe(22);
  });

  test('a descending neighbour, and udp neighbours', () => {
    expectOnly(oneDoor().replace('[1234, 5678, 9012]', '[1234, 9012, 9011]'), 'doors[0].sequence[2]', 3, /^9011\/tcp right after 9012\/tcp is a neighbouring port/);
    expectOnly(oneDoor().replace('[1234, 5678, 9012]', '[7000/udp, 7001/udp]'), 'doors[0].sequence[1]', 3, /^7001\/udp right after 7000\/udp is a neighbouring port/);
  });

  test('65535 then 1 are neighbours for a sweep that wraps around', () => {
    expectOnly(
      oneDoor().replace('[1234, 5678, 9012]', '[1234, 65535, 1]'),
      'doors[0].sequence[2]',
      3,
      /^1\/tcp right after 65535\/tcp is a neighbouring port \(sweeps wrap from 65535 to 1\): a port sweep would open this door$/,
    );
    expectOnly(oneDoor().replace('[1234, 5678, 9012]', '[1, 65535]'), 'doors[0].sequence[1]', 3, /^65535\/tcp right after 1\/tcp is a neighbouring port/);
  });

  test('the same port twice in a row (knockd spelling of the protocol too)', () => {
    expectOnly(
      oneDoor().replace('[1234, 5678, 9012]', '[1234, 5678/udp, "5678:udp"]'),
      'doors[0].sequence[2]',
      3,
      /^5678\/udp right after 5678\/udp repeats the same port: a retransmitted knock would count as the next step$/,
    );
  });

  test('every offending step is reported, in a block list on its own line', () => {
    const text = oneDoor().replace(
      '    sequence: [1234, 5678, 9012]',
      ['    sequence:', '      - 2000', '      - 2001', '      - 2002', '      - 5000'].join('\n'),
    );
    const problems = problemsOf(text);
    expect(problems.map((p) => [p.line, p.column, p.path])).toEqual([
      [5, 9, 'doors[0].sequence[1]'],
      [6, 9, 'doors[0].sequence[2]'],
    ]);
    expect(problems[1].message).toMatch(/^2002\/tcp right after 2001\/tcp/);
  });

  test('reported alongside other problems of the same file', () => {
    const text = oneDoor('    gap: 20s').replace('[1234, 5678, 9012]', '[1234, 1233, 9012]');
    expect(problemsOf(text).map((p) => [p.line, p.path])).toEqual([
      [3, 'doors[0].sequence[1]'],
      [7, 'doors[0].gap'],
    ]);
  });

  test('accepted: neighbours of different protocols, and neighbours that are not consecutive steps', () => {
    const cfg = parseConfig(oneDoor().replace('[1234, 5678, 9012]', '[1234/tcp, 1235/udp, 1236/tcp, 1234/tcp, 5678, 1235]'), FILE);
    expect(seq(cfg.doors[0]).sequence.map((s) => `${s.port}/${s.protocol}`)).toEqual(['1234/tcp', '1235/udp', '1236/tcp', '1234/tcp', '5678/tcp', '1235/tcp']);
  });

  test('property: the config loader accepts a sequence exactly when the detector does', () => {
    // Ports clustered so neighbours, repeats and the 65535/1 wrap come up often.
    const step = fc.record({
      port: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 65532, max: 65535 }), fc.integer({ min: 1230, max: 1236 })),
      protocol: fc.constantFrom('tcp' as const, 'udp' as const),
    });
    let refused = 0;
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 6 }), (sequence) => {
        const written = sequence.map((s) => `${s.port}/${s.protocol}`);
        // Keep the open port clear of the sequence so only the step rule decides.
        const text = oneDoor().replace('[1234, 5678, 9012]', `[${written.join(', ')}]`).replace('[2222]', '[40000]');
        const configProblems = tryProblems(text);
        let detectorError: string | undefined;
        try {
          compileDoors([{ kind: 'sequence', name: 'ssh', sequence, windowMs: 10_000, open: [{ port: 40000, protocol: 'tcp' }], durationMs: 20_000 }]);
        } catch (err) {
          detectorError = err instanceof Error ? err.message : String(err);
        }
        expect(configProblems.length > 0).toBe(detectorError !== undefined);
        if (detectorError !== undefined) {
          refused++;
          // Same step and the same words: the detector names the first one.
          const first = configProblems[0];
          expect(detectorError).toBe(`door 0 'ssh' ${first.path.replace('doors[0].', '')}: ${first.message}`);
        }
      }),
      { numRuns: 500 },
    );
    expect(refused).toBeGreaterThan(50);
  });

  test('the example and every fixture config pass', () => {
    const files = [
      new URL('../../examples/knockwatch.yaml', import.meta.url),
      ...readdirSync(new URL('../../fixtures/', import.meta.url))
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => new URL(`../../fixtures/${f}`, import.meta.url)),
    ];
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const file of files) expect(() => parseConfig(readFileSync(file, 'utf8'), file.pathname)).not.toThrow();
  });
});

/** Problems of `text`, or [] when it parses. */
function tryProblems(text: string): ConfigProblem[] {
  try {
    parseConfig(text, FILE);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
}
