// Issue 9 item 5: option errors in our own words, for every command, from one
// helper (src/cli/args.ts): `knockwatch CMD: unknown option --x`, `option --x
// needs a value`, usage on stderr (stdout only for --help), exit 2. Before it,
// each command printed parseArgs's own text ("Unknown option '--x'. To specify
// a positional argument starting with a '-', place it at the end ...").
import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkArgs, parseCommandArgs, UsageError } from '../../src/cli/args.js';

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

describe('parseCommandArgs', () => {
  it.each([
    [['--bogus'], 'unknown option --bogus'],
    [['-x'], 'unknown option -x'],
    [['--config'], 'option --config needs a value'],
    [['-c'], 'option -c (--config) needs a value'],
    [['--config', '--json'], 'option --config needs a value'],
    [['--json=yes'], 'option --json takes no value'],
  ])('%j: %s', (argv, message) => {
    expect(() => parseCommandArgs(argv, OPTIONS, true)).toThrow(new UsageError(message));
  });

  it('a positional where none is taken', () => {
    expect(() => parseCommandArgs(['file.yaml'], OPTIONS)).toThrow(new UsageError("unexpected argument 'file.yaml'"));
  });

  it('parses what is right, with the typed values of parseArgs', () => {
    const r = parseCommandArgs(['-c', 'a.yaml', '--json', 'x', '--config=--odd'], OPTIONS, true);
    expect(r.values).toEqual({ config: '--odd', json: true });
    expect(r.positionals).toEqual(['x']);
    expect(() => checkArgs(['--', '--not-an-option'], OPTIONS, true)).not.toThrow();
  });
});

describe('every command reports option errors in our words, usage on stderr, exit 2', () => {
  let out = '';
  let err = '';
  afterEach(() => {
    vi.restoreAllMocks();
    out = '';
    err = '';
  });
  function capture(): void {
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  }
  const COMMANDS: [string, () => Promise<{ main: (argv: string[]) => Promise<number> }>, string][] = [
    ['run', () => import('../../src/cli/run.js'), '--config'],
    ['replay', () => import('../../src/cli/replay.js'), '--config'],
    ['check-config', () => import('../../src/cli/check-config.js'), ''],
    ['knock', () => import('../../src/cli/knock.js'), '--check'],
    ['remove-rules', () => import('../../src/cli/remove-rules.js'), '--table'],
    ['demo', () => import('../../src/cli/demo.js'), ''],
    ['setup-ebpf', () => import('../../src/cli/setup-ebpf.js'), ''],
  ];

  for (const [name, load, valued] of COMMANDS) {
    it(`${name}: unknown option`, async () => {
      const { main } = await load();
      capture();
      expect(await main(['--no-such-option'])).toBe(2);
      expect(out).toBe('');
      expect(err.split('\n')[0]).toBe(`knockwatch ${name}: unknown option --no-such-option`);
      expect(err).toContain(`usage: knockwatch ${name}`);
      expect(err).not.toContain('To specify a positional argument');
    });

    if (valued !== '') {
      it(`${name}: ${valued} without its value`, async () => {
        const { main } = await load();
        capture();
        expect(await main([valued])).toBe(2);
        expect(out).toBe('');
        expect(err.split('\n')[0]).toBe(`knockwatch ${name}: option ${valued} needs a value`);
      });
    }

    it(`${name}: --help on stdout, exit 0`, async () => {
      const { main } = await load();
      capture();
      expect(await main(['--help'])).toBe(0);
      expect(out).toContain(`usage: knockwatch ${name}`);
      expect(err).toBe('');
    });
  }
});
