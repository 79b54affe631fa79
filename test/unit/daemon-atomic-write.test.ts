// writeFileAtomic: the path holds the old or the new bytes, never a mix; mode
// and owner kept; a failure leaves the old file and no temporary file, and
// says which file and step failed.
import { execFileSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/daemon/atomic-write.js';

const dir = mkdtempSync(join(tmpdir(), 'kw-atomic-'));
afterAll(() => {
  try {
    execFileSync('chattr', ['-i', join(dir, 'frozen')], { stdio: 'ignore' });
  } catch {
    // not made, or chattr missing
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('replaces the content, keeps the mode, leaves no temporary file', () => {
    const f = join(dir, 'once.txt');
    writeFileSync(f, 'old\n');
    chmodSync(f, 0o640);
    writeFileAtomic(f, 'new\n');
    expect(readFileSync(f, 'utf8')).toBe('new\n');
    expect(statSync(f).mode & 0o7777).toBe(0o640);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('creates a missing file with mode 0600 by default', () => {
    const f = join(dir, 'new.json');
    writeFileAtomic(f, '{}');
    expect(readFileSync(f, 'utf8')).toBe('{}');
    expect(statSync(f).mode & 0o777).toBe(0o600);
  });

  it('follows a symlink once: the real file is replaced, the link stays', () => {
    const real = join(dir, 'real.txt');
    const link = join(dir, 'link.txt');
    writeFileSync(real, 'a');
    symlinkSync(real, link);
    writeFileAtomic(link, 'b');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(real, 'utf8')).toBe('b');
  });

  it('a directory that refuses new entries: an error naming the file and step, old content kept', (ctx) => {
    const sub = join(dir, 'frozen');
    mkdirSync(sub);
    const f = join(sub, 'once.txt');
    writeFileSync(f, 'old\n');
    // Root ignores permission bits; the immutable attribute stops root too (ext4, xfs, btrfs).
    try {
      execFileSync('chattr', ['+i', sub], { stdio: 'ignore' });
    } catch {
      ctx.skip('chattr +i not supported on this file system');
    }
    try {
      expect(() => writeFileAtomic(f, 'new\n')).toThrow(new RegExp(`^${f}: creating .* failed: EPERM`));
      expect(readFileSync(f, 'utf8')).toBe('old\n');
      expect(readdirSync(sub)).toEqual(['once.txt']);
    } finally {
      execFileSync('chattr', ['-i', sub]);
    }
  });

  it('refuses something that is not a regular file', () => {
    const d = join(dir, 'adir');
    mkdirSync(d);
    expect(() => writeFileAtomic(d, 'x')).toThrow(`${d}: inspecting it failed: not a regular file`);
  });
});
