// Runs the check-config subcommand's main() in-process against temp files,
// capturing what it writes to stdout and stderr.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { main } from '../../src/cli/check-config.js';
import { defaultConfig, parseConfig } from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'kw-check-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

function write(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await main(argv);
    return { code, stdout, stderr };
  } finally {
    vi.restoreAllMocks();
  }
}

const CONFIG = [
  'firewall: iptables',
  'doors:',
  '  - name: web',
  '    sequence: [7000/udp, 8000]',
  '    window: 0.5',
  '    open: [443]',
  '    duration: 3600',
  '',
].join('\n');

describe('knockwatch check-config', () => {
  test('valid file: effective config as YAML on stdout, exit 0', async () => {
    const path = write('ok.yaml', CONFIG);
    const r = await run(path);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain(`# knockwatch effective configuration from ${JSON.stringify(path)}\n`);
    expect(r.stdout).toContain('firewall: iptables\n');
    expect(r.stdout).toContain('interface: any\n');
    expect(r.stdout).toContain('    sequence: [7000/udp, 8000/tcp]\n');
    expect(r.stdout).toContain('    window: 500ms\n');
    expect(r.stdout).toContain('    duration: 1h\n');
    // What it prints is itself a valid config, equal to the input's meaning.
    expect(parseConfig(r.stdout, 'stdout')).toEqual(parseConfig(CONFIG, 'in'));
  });

  test('--json prints JSON in the file shape', async () => {
    const r = await run(write('ok2.yaml', CONFIG), '--json');
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ firewall: 'iptables', max_sources: 100000 });
    expect(json['doors']).toEqual([{ name: 'web', sequence: ['7000/udp', '8000/tcp'], window: '500ms', open: ['443/tcp'], duration: '1h' }]);
  });

  test('no file: prints the defaults', async () => {
    const r = await run();
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('from built-in defaults');
    expect(parseConfig(r.stdout, 'stdout')).toEqual(defaultConfig());
  });

  test('no file with --json', async () => {
    const r = await run('--json');
    expect(r.code).toBe(0);
    expect(parseConfig(r.stdout, 'stdout')).toEqual(defaultConfig());
  });

  test('invalid file: every problem on stderr, nothing on stdout, exit 2', async () => {
    const path = write('bad.yaml', CONFIG.replace('8000]', '8000, 99999]').replace('window: 0.5', 'window: 2h').replace('firewall', 'firewal'));
    const r = await run(path);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(`knockwatch check-config: invalid configuration ${path} (3 problems):`);
    expect(lines.slice(1)).toEqual([
      `${path}:1:1: firewal: unknown key 'firewal' (did you mean 'firewall'?)`,
      `${path}:4:32: doors[0].sequence[2]: port 99999 is outside 1-65535`,
      `${path}:5:13: doors[0].window: window 2h is longer than the maximum 1h`,
    ]);
  });

  test('missing file: exit 2 naming the file', async () => {
    const path = join(dir, 'missing.yaml');
    const r = await run(path);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${path}: config file not found`);
    expect(r.stderr).not.toContain('ENOENT');
  });

  test('--json with an invalid file: the problems as one JSON object on stdout (file, line, field), exit 2', async () => {
    const path = write('bad-json.yaml', CONFIG.replace('8000]', '8000, 99999]').replace('firewall', 'firewal'));
    const r = await run('--json', path);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({
      valid: false,
      file: path,
      problems: [
        { file: path, line: 1, column: 1, field: 'firewal', message: "unknown key 'firewal' (did you mean 'firewall'?)" },
        { file: path, line: 4, column: 32, field: 'doors[0].sequence[2]', message: 'port 99999 is outside 1-65535' },
      ],
    });
  });

  test('--json with a missing file: JSON saying not found, exit 2', async () => {
    const path = join(dir, 'missing.yaml');
    const r = await run('--json', path);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({
      valid: false,
      file: path,
      problems: [{ file: path, line: null, column: null, field: null, message: 'config file not found' }],
    });
  });

  test('unknown option: usage on stderr, exit 2', async () => {
    const r = await run('--jsn');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('knockwatch check-config: unknown option --jsn\n');
    expect(r.stderr).not.toContain('To specify a positional argument');
    expect(r.stderr).toContain('usage: knockwatch check-config [FILE] [--json]');
  });

  test('two files: usage error', async () => {
    const r = await run('a.yaml', 'b.yaml');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('expected at most one FILE, got 2');
  });

  test('--help: usage on stdout, exit 0', async () => {
    const r = await run('--help');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain('usage: knockwatch check-config');
  });

  test('a file name with a newline cannot inject YAML into the output', async () => {
    const path = write('evil\nfirewall: none.yaml', CONFIG);
    const r = await run(path);
    expect(r.code).toBe(0);
    expect(parseConfig(r.stdout, 'stdout').firewall).toBe('iptables');
  });
});
