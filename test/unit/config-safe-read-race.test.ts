// The window between readTrustedFile's lstat and its open: an entry swapped
// for a FIFO there must not hang the open (O_NONBLOCK) and must be refused on
// the descriptor (fstat). The swap is simulated deterministically: lstat
// reports a regular file for a path that is really a FIFO.
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'kw-safe-read-race-'));
const regular = join(dir, 'regular.yaml');
const fifo = join(dir, 'raced.yaml');
writeFileSync(regular, 'doors: []\n');
execFileSync('mkfifo', [fifo]);

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  // What lstat saw just before the attacker swapped the entry: a regular file.
  const lstat = (path: string, ...rest: []) => fs.lstat(path.endsWith('raced.yaml') ? path.replace(/raced\.yaml$/, 'regular.yaml') : path, ...rest);
  // A file appended to after the fstat: the descriptor's size is what it was at open.
  const open: typeof fs.open = async (path, ...rest) => {
    const fh = await fs.open(path, ...rest);
    if (String(path).endsWith('grown.yaml')) {
      const stat = fh.stat.bind(fh);
      Object.assign(fh, { stat: async () => Object.assign(await stat(), { size: 4 }) });
    }
    return fh;
  };
  return { ...fs, default: { ...fs, lstat, open }, lstat, open };
});

const { readTrustedFile, UntrustedFileError } = await import('../../src/config/safe-read.js');

afterAll(() => {
  // Should a blocking open be stuck on the FIFO, a writer releases it so the worker can exit.
  try {
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // ENXIO: no reader is waiting, which is the expected case.
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('readTrustedFile: an entry swapped for a FIFO after the lstat', () => {
  it.each([0, 1000])('uid %i: refused on the descriptor within 5 s, never a blocked open', async (uid) => {
    const read = readTrustedFile(fifo, { maxBytes: 1024, what: 'config file', why: 'test', uid }).then(
      () => 'read',
      (err: unknown) => err,
    );
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('hung'), 5000)));
    const outcome = await Promise.race([read, hung]);
    clearTimeout(timer);
    expect(outcome).toBeInstanceOf(UntrustedFileError);
    expect((outcome as InstanceType<typeof UntrustedFileError>).reason).toBe('not a regular file (a FIFO): a config file must be a plain file');
  });
});

describe('readTrustedFile: a file that changes while it is read', () => {
  it('is refused rather than half read', async () => {
    const grown = join(dir, 'grown.yaml');
    writeFileSync(grown, 'doors: []\n');
    const err: unknown = await readTrustedFile(grown, { maxBytes: 1024, what: 'config file', why: 'test', uid: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UntrustedFileError);
    expect((err as InstanceType<typeof UntrustedFileError>).reason).toBe(`${grown} changed while it was being read (4 bytes when opened, more read); try again`);
  });
});
