// `run --config-owner any` (issue 9 item 2): a container gets its config
// through a read-only bind mount that keeps the host file's owner, so the root
// daemon inside refused it ("owned by uid 1000, not root"). With fileOwner
// 'any' the file's owner is not checked; everything else still is: group- or
// world-writable files and untrusted directories are refused, and the no-hang
// rules hold. Needs root to chown; skips elsewhere with the reason printed.
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { UntrustedFileError, readTrustedFile, type TrustedReadOptions } from '../../src/config/safe-read.js';

const HOST_USER = 1000;
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('[skipped] --config-owner any: needs root to chown files to another user');

const OPTS: TrustedReadOptions = { maxBytes: 4096, what: 'config file', why: 'as root, knockwatch runs commands from this file', uid: 0 };
const CONFIG = 'doors:\n  - name: ssh\n    sequence: [1234, 5678, 9012]\n    window: 10s\n    open: [2222]\n    duration: 20s\n';

let base: string;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'kw-config-owner-'));
  await chmod(base, 0o755);
});
afterAll(() => rm(base, { recursive: true, force: true }));

/** A file owned by the host user, like a bind-mounted checkout file. */
async function hostFile(name: string, mode: number, dir = base): Promise<string> {
  const f = join(dir, name);
  await writeFile(f, CONFIG);
  await chmod(f, mode);
  await chown(f, HOST_USER, HOST_USER);
  return f;
}

describe.skipIf(!isRoot)('config file owner: root (default) or any', () => {
  it('by default, as root, a file owned by another user is refused', async () => {
    const f = await hostFile('default.yaml', 0o644);
    await expect(readTrustedFile(f, OPTS)).rejects.toThrow(/owned by uid 1000, not root/);
  });

  it("fileOwner 'any' accepts it when neither group nor others can write it", async () => {
    const f = await hostFile('any.yaml', 0o644);
    expect((await readTrustedFile(f, { ...OPTS, fileOwner: 'any' })).toString()).toBe(CONFIG);
    const config = await loadConfig(f, { uid: 0, fileOwner: 'any' });
    expect(config.doors.map((d) => d.name)).toEqual(['ssh']);
  });

  it("fileOwner 'any' still refuses a group- or world-writable file", async () => {
    for (const mode of [0o664, 0o646]) {
      const f = await hostFile(`writable-${mode.toString(8)}.yaml`, mode);
      const err = await readTrustedFile(f, { ...OPTS, fileOwner: 'any' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UntrustedFileError);
      expect((err as UntrustedFileError).reason).toMatch(/writable by (its group|everyone)/);
    }
  });

  it("fileOwner 'any' still refuses a file in a directory another user owns", async () => {
    const dir = join(base, 'userdir');
    await mkdir(dir);
    await chmod(dir, 0o755);
    await chown(dir, HOST_USER, HOST_USER);
    const f = await hostFile('in-user-dir.yaml', 0o644, dir);
    await expect(readTrustedFile(f, { ...OPTS, fileOwner: 'any' })).rejects.toThrow(/directory .* is owned by uid 1000, not root/);
  });
});
