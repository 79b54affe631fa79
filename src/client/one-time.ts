// The one_time door's client side: the client keeps its own copy of the
// door's file (knockd's one_time_sequences format) and sends its first unused
// line, which it marks used ('#' in front) BEFORE sending, written atomically
// and durably: a crash after sending must not offer the same line again (the
// server would refuse it anyway; the next knock would fail). The copy holds
// secrets: refused when group or others can read it.
import { readFileSync, statSync } from 'node:fs';
import { describeLeft, markUsedText, parseOneTimeText, MAX_ONE_TIME_FILE_BYTES } from '../config/one-time-file.js';
import { writeFileAtomic } from '../daemon/atomic-write.js';
import type { OneTimeEntry } from '../types.js';

export interface OneTimeKnock {
  readonly entry: OneTimeEntry;
  /** Unused lines left after this one. */
  readonly left: number;
  readonly leftText: string;
}

/** Takes the first unused line of `file` and marks it used there. Throws naming the file (and line). */
export function takeOneTimeSequence(file: string): OneTimeKnock {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    throw new Error(`cannot read one-time file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!st.isFile()) throw new Error(`${file}: not a plain file`);
  if ((st.mode & 0o077) !== 0) {
    throw new Error(`${file}: one-time file is accessible by ${(st.mode & 0o007) !== 0 ? 'others' : 'its group'} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): it holds the door's sequences; chmod 600 ${file}`);
  }
  if (st.size > MAX_ONE_TIME_FILE_BYTES) throw new Error(`${file}: larger than ${MAX_ONE_TIME_FILE_BYTES} bytes`);
  const text = readFileSync(file, 'utf8');
  const { entries } = parseOneTimeText(file, text);
  const entry = entries[0];
  if (entry === undefined) throw new Error(`${file}: no unused sequence left (every line starts with '#')`);
  writeFileAtomic(file, markUsedText(file, text, entry));
  const left = entries.length - 1;
  return { entry, left, leftText: describeLeft(left) };
}
