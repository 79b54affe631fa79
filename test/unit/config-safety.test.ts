import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFileUnsafeReason } from '../../src/config/safety.js';

describe('configFileUnsafeReason', () => {
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kw-safety-'));
    file = join(dir, 'k.yaml');
    await writeFile(file, 'doors: []\n');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('accepts anything when not running as root', async () => {
    await chmod(file, 0o666);
    expect(await configFileUnsafeReason(file, 1000)).toBeUndefined();
  });

  it('as root: refuses a file writable by everyone or by its group, naming the fix', async () => {
    const rootOwned = process.getuid?.() === 0;
    if (rootOwned) await chown(file, 0, 0);
    await chmod(file, 0o666);
    const world = await configFileUnsafeReason(file, 0);
    await chmod(file, 0o664);
    const group = await configFileUnsafeReason(file, 0);
    await chmod(file, 0o644);
    const fine = await configFileUnsafeReason(file, 0);
    if (rootOwned) {
      expect(world).toMatch(/writable by everyone \(mode 666\).*chmod go-w/);
      expect(group).toMatch(/writable by its group \(mode 664\)/);
      expect(fine).toBeUndefined();
    } else {
      // Not root: the file is ours, so ownership is what it reports.
      expect(fine).toMatch(/is owned by uid \d+, not root/);
    }
  });

  it('as root: refuses a file owned by another user', async () => {
    if (process.getuid?.() !== 0) {
      console.warn('[skipped assertion] chown to another user needs root');
      expect(await configFileUnsafeReason(file, 0)).toMatch(/not root/);
      return;
    }
    await chown(file, 1000, 1000);
    await chmod(file, 0o644);
    expect(await configFileUnsafeReason(file, 0)).toMatch(/owned by uid 1000, not root.*chown root/);
    await chown(file, 0, 0);
  });
});
