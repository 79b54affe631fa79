// The single-instance guard: one flock per network namespace. Two takers in
// one process still conflict (flock locks belong to open file descriptions),
// so the guard is testable here without starting daemons.
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireInstanceLock, InstanceLockedError, netnsInode, type InstanceLock } from '../../src/firewall/instance-lock.js';

describe('instance lock', () => {
  const held: InstanceLock[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const l of held.splice(0)) l.release();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  const runDir = async (): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), 'kw-lock-'));
    dirs.push(d);
    return join(d, 'run');
  };

  it('refuses a second taker for the same namespace, naming the holder, and frees on release', async () => {
    const dir = await runDir();
    const first = await acquireInstanceLock({ runDir: dir });
    held.push(first);
    expect(first.path).toBe(join(dir, `netns-${netnsInode()}.lock`));
    expect(await readFile(first.path, 'utf8')).toBe(`${process.pid}\n`);
    const second = acquireInstanceLock({ runDir: dir });
    await expect(second).rejects.toBeInstanceOf(InstanceLockedError);
    await expect(second).rejects.toThrow(`another knockwatch (pid ${process.pid}) already manages the firewall of this network namespace`);
    first.release();
    // Released: the file is gone (the run directory does not fill up), and the lock is free.
    expect(existsSync(first.path)).toBe(false);
    const third = await acquireInstanceLock({ runDir: dir });
    held.push(third);
  });

  it('a lock file left by a holder that died is taken over', async () => {
    const dir = await runDir();
    const first = await acquireInstanceLock({ runDir: dir });
    // What a SIGKILLed daemon leaves: the file, with no lock on it.
    const stale = await readFile(first.path, 'utf8');
    first.release();
    await writeFile(first.path, stale);
    const next = await acquireInstanceLock({ runDir: dir });
    held.push(next);
    expect(await readFile(next.path, 'utf8')).toBe(`${process.pid}\n`);
  });

  it('refuses a run directory others can write', async () => {
    const dir = await runDir();
    held.push(await acquireInstanceLock({ runDir: dir }));
    await chmod(dir, 0o777);
    await expect(acquireInstanceLock({ runDir: dir })).rejects.toThrow(/not writable by group or others/);
  });

  it('keys on the namespace, not on the process: another process in this namespace sees the same inode', async () => {
    const { execa } = await import('execa');
    const other = await execa('stat', ['-L', '-c', '%i', '/proc/self/ns/net']);
    expect(netnsInode()).toBe(Number(other.stdout.trim()));
  });

  it('rejects a bad namespace name before it becomes a path', () => {
    expect(() => netnsInode('../etc')).toThrow(/invalid network namespace name/);
  });
});
