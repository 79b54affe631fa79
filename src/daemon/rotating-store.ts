// Used periods of rotating doors, kept in `<state dir>/rotating-used.json`
// so that a restart does not make a used sequence valid again
// (detect/rotating.ts RotatingStore). Per door: the fingerprint of its
// derivation (periods recorded under another key or settings do not apply)
// and the used periods still within reach (n-2 and later: older ones can
// never be accepted again). A mark is written (daemon/atomic-write.ts: temp
// file, fsync, rename, fsync directory) BEFORE the door opens; if it cannot
// be, the door does not open and the error is logged.
//
// A record that cannot be read as ours (corrupt, or not a file) refuses the
// start (or reload) rather than forget what was used: fail closed. It names
// the file; removing it is safe once three periods have passed.
import { closeSync, constants, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { RotatingStore } from '../detect/rotating.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from './atomic-write.js';

export const ROTATING_STATE_FILE = 'rotating-used.json';
const MAX_BYTES = 1024 * 1024;

interface Record {
  version: 1;
  doors: { [door: string]: { fingerprint: string; periods: number[] } };
}

function readRecord(file: string): Record {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, doors: {} };
    throw new Error(`${file}: cannot read the used rotating periods: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_BYTES) throw new Error(`${file}: not a plain file of at most ${MAX_BYTES} bytes`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    const r = JSON.parse(buf.subarray(0, off).toString('utf8')) as Record;
    const ok =
      r !== null &&
      typeof r === 'object' &&
      r.version === 1 &&
      typeof r.doors === 'object' &&
      r.doors !== null &&
      Object.values(r.doors).every((d) => typeof d?.fingerprint === 'string' && Array.isArray(d.periods) && d.periods.every((p) => Number.isSafeInteger(p)));
    if (!ok) throw new Error('not a record of used periods');
    return r;
  } catch (err) {
    throw new Error(
      `${file}: the used rotating periods cannot be read (${(err as Error).message}); refusing to forget them: ` +
        'fix or remove the file (removing is safe once three periods have passed)',
    );
  } finally {
    closeSync(fd);
  }
}

/** The daemon's RotatingStore over `dir` (created 0700 on first use). */
export function openRotatingStore(dir: string, log: Logger): RotatingStore & { readonly file: string } {
  const file = join(dir, ROTATING_STATE_FILE);
  let record: Record | undefined;
  const load = (): Record => {
    if (record === undefined) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      record = readRecord(file);
    }
    return record;
  };
  return {
    file,
    used(door, fingerprint) {
      const d = load().doors[door];
      return d !== undefined && d.fingerprint === fingerprint ? [...d.periods] : [];
    },
    markUsed(door, fingerprint, period) {
      let r: Record;
      try {
        r = load();
      } catch (err) {
        log.error({ door, period, file, err: (err as Error).message }, 'rotating period could not be recorded as used: door not opened');
        return false;
      }
      const prev = r.doors[door];
      const periods = (prev !== undefined && prev.fingerprint === fingerprint ? prev.periods : []).filter((p) => p >= period - 2 && p !== period);
      const next: Record = { version: 1, doors: { ...r.doors, [door]: { fingerprint, periods: [...periods, period].sort((a, b) => a - b) } } };
      try {
        writeFileAtomic(file, `${JSON.stringify(next)}\n`, { mode: 0o600 });
      } catch (err) {
        log.error({ door, period, file, err: (err as Error).message }, 'rotating period could not be recorded as used: door not opened');
        return false;
      }
      record = next;
      return true;
    },
  };
}
