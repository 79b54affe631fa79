// The daemon's OneTimeStore (detect/one-time.ts): a used line of a one_time
// door's file gets a '#' in front of it, on disk, before the door opens. The
// file is read again at that moment and must still hold the line as it was
// read at start or reload (an edit in between refuses the mark: reload with
// SIGHUP); the new text replaces it atomically and durably
// (daemon/atomic-write.ts). A failure is logged and the door stays shut. When
// no unused line is left a warning says so, at start (and reload) and at the
// use that took the last one.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { MAX_ONE_TIME_FILE_BYTES, describeLeft, markUsedText } from '../config/one-time-file.js';
import type { OneTimeStore } from '../detect/one-time.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from './atomic-write.js';

function readText(file: string): string {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error('not a plain file');
    if (st.size > MAX_ONE_TIME_FILE_BYTES) throw new Error(`larger than ${MAX_ONE_TIME_FILE_BYTES} bytes`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

const NONE_LEFT = 'one-time door has no unused sequence left: it cannot open until sequences are added to its file (then reload with SIGHUP)';

export function createOneTimeStore(log: Logger): OneTimeStore {
  return {
    loaded(door, file, left) {
      if (left === 0) log.warn({ door, file }, NONE_LEFT);
      else log.debug({ door, file, left }, `one-time door: ${describeLeft(left)}`);
    },
    markUsed(door, file, entry, left) {
      try {
        writeFileAtomic(file, markUsedText(file, readText(file), entry));
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        log.error({ door, file, line: entry.line, err: e.code !== undefined && !e.message.includes(file) ? `${file}: ${e.code}` : e.message }, 'one-time sequence could not be marked used: door not opened');
        return false;
      }
      log.info({ door, file, line: entry.line, left }, `one-time sequence used (${describeLeft(left)})`);
      if (left === 0) log.warn({ door, file }, NONE_LEFT);
      return true;
    },
  };
}
