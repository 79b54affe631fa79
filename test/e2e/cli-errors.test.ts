// Issue 9 item 5, with the built CLI as a user runs it: usage mistakes and
// fatal start-up errors behave like a Linux daemon's. Usage on stderr (stdout
// stays empty), one readable line `knockwatch run: <what went wrong>` on
// stderr plus the fatal JSON line on stdout when the log is JSON, a missing
// config file said as "not found", distinct exit codes (2 usage/config,
// 1 start-up failure). Nothing here needs root or touches a firewall: each
// case fails before any firewall command.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuiltCli } from './support/daemon.js';

const BOUND_MS = 20_000;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kw-cli-errors-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  return execa(process.execPath, [requireBuiltCli(), ...args], { reject: false, stdin: 'ignore', timeout: BOUND_MS, killSignal: 'SIGKILL' });
}

describe('usage mistakes', () => {
  it('no command: usage on stderr, nothing on stdout, exit 2', async () => {
    const r = await cli();
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('usage: knockwatch <command>');
  });

  it('an unknown option of run: our words, usage on stderr, exit 2', async () => {
    const r = await cli('run', '--interfce', 'eth0');
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toBe('knockwatch run: unknown option --interfce');
    expect(r.stderr).toContain('usage: knockwatch run');
  });

  it('run --help lists the exit codes, on stdout', async () => {
    const r = await cli('run', '--help');
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/Exit status: 0 clean stop; 1 start-up failure .* 2 bad arguments or config .* 3 another knockwatch/s);
  });

  it('knock --help lists the --check words and exit codes', async () => {
    const r = await cli('knock', '--help');
    expect(r.stdout).toMatch(/open \(connected\), refused .* filtered/s);
    expect(r.stdout).toMatch(/--check 3 refused,\s+4 filtered/);
  });
});

describe('fatal start-up errors: one line on stderr, JSON when asked', () => {
  it('run --config missing: "not found", exit 2; JSON log: plus the fatal line on stdout', async () => {
    const missing = join(dir, 'missing.yaml');
    const r = await cli('run', '--config', missing, '--firewall', 'none', '--log-format', 'json');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(`knockwatch run: ${missing}: config file not found`);
    const fatal = JSON.parse(r.stdout) as { level: number; msg: string };
    expect(fatal).toMatchObject({ level: 60, msg: 'configuration refused' });
  });

  it('the same with a pretty log: the stderr line alone', async () => {
    const missing = join(dir, 'missing.yaml');
    const r = await cli('run', '--config', missing, '--firewall', 'none', '--log-format', 'pretty');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(`knockwatch run: ${missing}: config file not found`);
    expect(r.stdout).toBe('');
  });

  it('an invalid config: every problem on the one line', async () => {
    const { writeFile } = await import('node:fs/promises');
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'firewal: none\ndoors: []\n');
    const r = await cli('run', '--config', bad, '--firewall', 'none', '--log-format', 'pretty', '--config-owner', 'any');
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`^knockwatch run: ${bad}:1:1: firewal: unknown key`));
  });

  it('a start-up failure (network namespace that does not exist): one line, exit 1', async () => {
    const r = await cli('run', '--firewall', 'nftables', '--netns', 'kwnosuchns', '--run-dir', dir, '--interface', 'kw0', '--log-format', 'json');
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^knockwatch run: cannot take the instance lock: .*kwnosuchns/);
    expect(JSON.parse(r.stdout)).toMatchObject({ level: 60 });
  });

  it('replay --config missing: "not found", exit 2', async () => {
    const missing = join(dir, 'missing.yaml');
    const r = await cli('replay', '--config', missing, join(dir, 'x.pcap'));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`${missing}: config file not found`);
    expect(r.stderr).not.toContain('ENOENT');
  });
});
