// readTrustedFile (src/config/safe-read.ts): the ownership rules as root, the
// no-hang rules always. The ownership cases need root (chown to `nobody`);
// they skip elsewhere with the reason printed.
import { execFileSync } from 'node:child_process';
import { chmod, chown, lchown, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UntrustedFileError, readTrustedFile, type TrustedReadOptions } from '../../src/config/safe-read.js';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('[skipped] readTrustedFile ownership rules: need root to chown files to nobody');

const OPTS: TrustedReadOptions = { maxBytes: 1024, what: 'config file', why: 'as root, knockwatch runs commands from this file', uid: 0 };
const AS_USER: TrustedReadOptions = { ...OPTS, uid: 1000 };

let base: string;
beforeAll(async () => {
  // Under /tmp: root-owned with the sticky bit, so a trusted place to start from.
  base = await mkdtemp(join(tmpdir(), 'kw-safe-read-'));
  await chmod(base, 0o755);
});
afterAll(() => rm(base, { recursive: true, force: true }));

async function dirIn(parent: string, name: string, mode: number, uid = 0): Promise<string> {
  const d = join(parent, name);
  await mkdir(d);
  await chmod(d, mode);
  if (uid !== 0) await chown(d, uid, uid);
  return d;
}

async function fileIn(dir: string, name: string, mode = 0o644, uid = 0, text = 'doors: []\n'): Promise<string> {
  const f = join(dir, name);
  await writeFile(f, text);
  await chmod(f, mode);
  if (uid !== 0) await chown(f, uid, uid);
  return f;
}

async function reason(path: string, opts: TrustedReadOptions = OPTS): Promise<string | undefined> {
  try {
    await readTrustedFile(path, opts);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(UntrustedFileError);
    expect((err as UntrustedFileError).file).toBe(path);
    return (err as UntrustedFileError).reason;
  }
}

describe('readTrustedFile: never hangs, whoever runs it', () => {
  it('a FIFO is refused before it is opened (a blocking open would wait for a writer forever)', async () => {
    const fifo = join(base, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    const started = performance.now();
    for (const opts of [OPTS, AS_USER]) expect(await reason(fifo, opts)).toBe('not a regular file (a FIFO): a config file must be a plain file');
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('a device and a directory are refused', async () => {
    expect(await reason('/dev/null', AS_USER)).toMatch(/^not a regular file \(a character device\)/);
    expect(await reason(base, AS_USER)).toMatch(/^not a regular file \(a directory\)/);
    expect(await reason(`${base}/`, AS_USER)).toMatch(/^not a regular file/);
  });

  it('a file larger than the cap is refused', async () => {
    const big = await fileIn(base, 'big.yaml', 0o644, 0, 'x'.repeat(2000));
    expect(await reason(big, AS_USER)).toBe('file is 2000 bytes; a config file may be at most 1024');
  });

  it('a symlink loop ends with a clear error', async () => {
    await symlink('loop-b', join(base, 'loop-a'));
    await symlink('loop-a', join(base, 'loop-b'));
    expect(await reason(join(base, 'loop-a'), AS_USER)).toMatch(/more than 40 symbolic links/);
  });

  it('not root: a file and directory anyone can write are accepted (what was accepted before)', async () => {
    const open = await dirIn(base, 'open-user', 0o777);
    const f = await fileIn(open, 'k.yaml', 0o666);
    expect((await readTrustedFile(f, AS_USER)).toString()).toBe('doors: []\n');
  });
});

describe.skipIf(!isRoot)('readTrustedFile as root: only root can have chosen the contents', () => {
  it('a root-owned file in root-owned directories is read, relative paths and .. included', async () => {
    const d = await dirIn(base, 'good', 0o755);
    const f = await fileIn(d, 'k.yaml');
    expect((await readTrustedFile(f, OPTS)).toString()).toBe('doors: []\n');
    const viaDots = join(relative(process.cwd(), d), '..', 'good', 'k.yaml');
    expect((await readTrustedFile(viaDots, OPTS)).toString()).toBe('doors: []\n');
  });

  it('the file: owned by another user, or writable by its group or everyone, is refused naming the fix', async () => {
    const d = await dirIn(base, 'files', 0o755);
    expect(await reason(await fileIn(d, 'world.yaml', 0o666))).toMatch(/world\.yaml is writable by everyone \(mode 666\): .*chmod go-w/);
    expect(await reason(await fileIn(d, 'group.yaml', 0o664))).toMatch(/group\.yaml is writable by its group \(mode 664\)/);
    expect(await reason(await fileIn(d, 'nobody.yaml', 0o644, NOBODY))).toMatch(/nobody\.yaml is owned by uid 65534, not root: .*chown root/);
  });

  it('a parent directory owned by nobody is refused, naming the directory', async () => {
    const d = await dirIn(base, 'nobodys', 0o755, NOBODY);
    const f = await fileIn(d, 'k.yaml');
    expect(await reason(f)).toBe(
      `directory ${d} is owned by uid 65534, not root: whoever can write it can replace ${f} (${OPTS.why}); chown root ${d}`,
    );
  });

  it('a group-writable or world-writable parent without the sticky bit is refused', async () => {
    const g = await dirIn(base, 'groupw', 0o775);
    expect(await reason(await fileIn(g, 'k.yaml'))).toMatch(new RegExp(`^directory ${g} is writable by its group \\(mode 775\\) and has no sticky bit`));
    const w = await dirIn(base, 'worldw', 0o777);
    expect(await reason(await fileIn(w, 'k.yaml'))).toMatch(/is writable by everyone \(mode 777\) and has no sticky bit/);
  });

  it('a root-owned sticky directory like /tmp is fine; one owned by nobody is not', async () => {
    const sticky = await dirIn(base, 'sticky', 0o1777);
    expect((await readTrustedFile(await fileIn(sticky, 'k.yaml'), OPTS)).toString()).toBe('doors: []\n');
    const nobodySticky = await dirIn(base, 'nobody-sticky', 0o1777, NOBODY);
    expect(await reason(await fileIn(nobodySticky, 'k.yaml'))).toMatch(/is owned by uid 65534, not root/);
  });

  it('a symlink in a directory nobody can write is refused although its target is trusted (it could be flipped)', async () => {
    const good = await fileIn(await dirIn(base, 'target', 0o755), 'k.yaml');
    const evil = await dirIn(base, 'evil', 0o755, NOBODY);
    await symlink(good, join(evil, 'knock.yaml'));
    expect(await reason(join(evil, 'knock.yaml'))).toMatch(new RegExp(`^directory ${evil} is owned by uid 65534`));
  });

  it('a symlink owned by nobody in a sticky directory is refused (its owner can repoint it)', async () => {
    const good = await fileIn(await dirIn(base, 'target2', 0o755), 'k.yaml');
    const sticky = await dirIn(base, 'sticky2', 0o1777);
    const link = join(sticky, 'knock.yaml');
    await symlink(good, link);
    await lchown(link, NOBODY, NOBODY);
    expect(await reason(link)).toMatch(/^symbolic link .*knock\.yaml is owned by uid 65534, not root/);
  });

  it('ownershipRules: false (replay, which acts on nothing): a file nobody owns is read; a FIFO is still refused', async () => {
    const d = await dirIn(base, 'replay-nobody', 0o777, NOBODY);
    const f = await fileIn(d, 'k.yaml', 0o666, NOBODY);
    expect((await readTrustedFile(f, { ...OPTS, ownershipRules: false })).toString()).toBe('doors: []\n');
    const fifo = join(d, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    expect(await reason(fifo, { ...OPTS, ownershipRules: false })).toMatch(/^not a regular file \(a FIFO\)/);
  });

  it('a root symlink in a trusted directory is followed, and its target directories are checked too', async () => {
    const good = await fileIn(await dirIn(base, 'target3', 0o755), 'k.yaml');
    const links = await dirIn(base, 'links', 0o755);
    await symlink(relative(links, good), join(links, 'ok.yaml'));
    expect((await readTrustedFile(join(links, 'ok.yaml'), OPTS)).toString()).toBe('doors: []\n');
    const bad = await fileIn(await dirIn(base, 'untrusted-target', 0o777), 'k.yaml');
    await symlink(bad, join(links, 'bad.yaml'));
    expect(await reason(join(links, 'bad.yaml'))).toMatch(/untrusted-target is writable by everyone/);
  });
});
