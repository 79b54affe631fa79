// The spa state file (src/spa/strike-register.ts says what it holds and
// why): `<state dir>/spa-state.json`, mode 0600 in a 0700 directory.
// Written so that the path always holds a whole old or a whole new record:
// a temporary file beside it, fsync, rename over it, fsync the directory.
// Asynchronous, unlike daemon/atomic-write.ts: a lease renewal must not stall
// the packet path for the 1-19 ms a flush takes on this kind of disk.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { parseStateRecord, stateRecordText, type SpaStateRecord } from '../spa/strike-register.js';

export const DEFAULT_STATE_DIR = '/var/lib/knockwatch';
export const STATE_FILE = 'spa-state.json';
/** A record holds at most the replay cache's global cap of entries (~90 bytes each). */
const MAX_STATE_BYTES = 16 * 1024 * 1024;

export interface SpaStateStore {
  readonly file: string;
  /** The record on disk: undefined when there is none, 'bad' when it cannot be trusted. */
  read(): Promise<SpaStateRecord | undefined | 'bad'>;
  /** Replaces the record durably; resolves once it is on disk (fsync of file and directory). */
  write(record: SpaStateRecord): Promise<void>;
}

export async function openSpaStateStore(dir: string): Promise<SpaStateStore> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  if (!st.isDirectory()) throw new Error(`state directory ${dir} is not a directory`);
  if ((st.mode & 0o022) !== 0) throw new Error(`state directory ${dir} is writable by group or others (mode ${(st.mode & 0o777).toString(8)}): chmod go-w ${dir}`);
  const file = join(dir, STATE_FILE);
  // Writes are queued: two renewals never interleave.
  let chain: Promise<void> = Promise.resolve();
  return {
    file,
    async read() {
      let fh;
      try {
        fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        return 'bad';
      }
      try {
        const fst = await fh.stat();
        if (!fst.isFile() || fst.size > MAX_STATE_BYTES) return 'bad';
        return parseStateRecord((await fh.readFile()).toString('utf8'));
      } catch {
        return 'bad';
      } finally {
        await fh.close();
      }
    },
    write(record) {
      const next = chain.then(() => writeDurably(dir, file, stateRecordText(record)));
      chain = next.catch(() => undefined);
      return next;
    },
  };
}

async function writeDurably(dir: string, file: string, text: string): Promise<void> {
  const tmp = join(dir, `.${STATE_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  let renamed = false;
  try {
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    renamed = true;
    const dh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (err) {
    if (!renamed) await unlink(tmp).catch(() => undefined);
    throw new Error(`cannot write the spa state file ${file}: ${(err as Error).message}`);
  }
}
