// The file of a `one_time` door, in knockd's one_time_sequences format: one
// sequence per line, `1234:tcp,5678:udp,9012` (the protocol defaults to tcp;
// `1234/udp` is accepted too), spaces around the commas allowed. A line that
// starts with '#' is a used sequence or a comment; blank lines are skipped.
// The first unused line is the door's valid sequence; once it completes,
// knockwatch marks it used by putting '#' in front of it (knockd overwrites the
// line's first character instead; both leave a '#' line that is skipped).
//
// Refused, with file:line:column: a step that is not a port spec, more than
// MAX_SEQUENCE_STEPS steps, two consecutive steps on the same or neighbouring
// ports (a sweep would open the door, as for sequence doors), and an unused
// line equal to another line, used or not (whoever recorded the earlier use
// could replay it once that line is the valid one).
import { MAX_SEQUENCE_STEPS } from '../limits.js';
import { sequenceHazards } from '../ports.js';
import { formatPort, type OneTimeEntry, type PortSpec } from '../types.js';

export type { OneTimeEntry };
import { parsePortSpec } from './port.js';

/** A one-time file larger than this is refused (about 40,000 lines of 4 steps). */
export const MAX_ONE_TIME_FILE_BYTES = 1 << 20;

export interface OneTimeSequences {
  readonly file: string;
  /** Unused sequences in file order: the first is the valid one. */
  readonly entries: readonly OneTimeEntry[];
  /** Lines starting with '#' (used sequences and comments). */
  readonly usedOrComment: number;
}

/** A problem in a one-time file; `line` 0 is the file as a whole. */
export class OneTimeFileError extends Error {
  override readonly name = 'OneTimeFileError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number | undefined,
    readonly reason: string,
  ) {
    super(`${file}${line > 0 ? `:${line}${column !== undefined ? `:${column}` : ''}` : ''}: ${reason}`);
  }
}

/** The lines of a text and where each ends (its line ending kept apart, so a rewrite keeps it). */
function splitLines(text: string): { body: string; ending: string }[] {
  const out: { body: string; ending: string }[] = [];
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    if (nl === -1) {
      out.push({ body: text.slice(start), ending: '' });
      break;
    }
    const crlf = nl > start && text[nl - 1] === '\r';
    out.push({ body: text.slice(start, crlf ? nl - 1 : nl), ending: crlf ? '\r\n' : '\n' });
    start = nl + 1;
  }
  return out;
}

/** The steps of one sequence line; throws OneTimeFileError at the offending step. */
export function parseSequenceLine(file: string, lineNo: number, body: string): PortSpec[] {
  const steps: PortSpec[] = [];
  let col = 0;
  for (const part of body.split(',')) {
    const lead = part.length - part.trimStart().length;
    const column = col + lead + 1;
    const t = part.trim();
    if (t === '') throw new OneTimeFileError(file, lineNo, column, 'empty step (two commas in a row, or a comma at an end)');
    // knockd writes PORT:proto; port.ts reads both separators.
    try {
      steps.push(parsePortSpec(t));
    } catch (err) {
      throw new OneTimeFileError(file, lineNo, column, `${(err as Error).message} (a line is PORT[:tcp|:udp],PORT...)`);
    }
    col += part.length + 1;
  }
  if (steps.length > MAX_SEQUENCE_STEPS) {
    throw new OneTimeFileError(file, lineNo, undefined, `${steps.length} steps; at most ${MAX_SEQUENCE_STEPS} are allowed (knockd's limit)`);
  }
  const hazard = sequenceHazards(steps)[0];
  if (hazard !== undefined) throw new OneTimeFileError(file, lineNo, undefined, `step ${hazard.index + 1}: ${hazard.message}`);
  return steps;
}

function sequenceKey(seq: readonly PortSpec[]): string {
  return seq.map(formatPort).join(',');
}

/** Parses a one-time file's text; throws OneTimeFileError naming file:line:column. */
export function parseOneTimeText(file: string, text: string): OneTimeSequences {
  if (text.includes('\0')) throw new OneTimeFileError(file, 0, undefined, 'contains a NUL byte: not a text file');
  const entries: OneTimeEntry[] = [];
  let usedOrComment = 0;
  // Sequences already seen (used ones too, when a '#' line parses as one) -> their line.
  const seen = new Map<string, number>();
  splitLines(text).forEach(({ body }, i) => {
    const lineNo = i + 1;
    const t = body.trim();
    if (t === '') return;
    if (t.startsWith('#')) {
      usedOrComment++;
      const rest = t.replace(/^#+/, '').trim();
      if (/^\d/.test(rest)) {
        try {
          const key = sequenceKey(parseSequenceLine(file, lineNo, rest));
          if (!seen.has(key)) seen.set(key, lineNo);
        } catch {
          // A comment that merely starts with a digit.
        }
      }
      return;
    }
    const sequence = parseSequenceLine(file, lineNo, body);
    const key = sequenceKey(sequence);
    const prev = seen.get(key);
    if (prev !== undefined) {
      throw new OneTimeFileError(
        file,
        lineNo,
        undefined,
        `same sequence as line ${prev}: a one-time sequence must not come back (whoever saw it used could replay it)`,
      );
    }
    seen.set(key, lineNo);
    entries.push({ line: lineNo, text: t, sequence });
  });
  return { file, entries, usedOrComment };
}

/**
 * The file's text with `entry` marked used ('#' in front of its line; the rest
 * of the file byte for byte as it was). Throws OneTimeFileError when that line
 * no longer holds the entry (the file was edited since it was read: reload).
 */
export function markUsedText(file: string, text: string, entry: OneTimeEntry): string {
  const lines = splitLines(text);
  const at = lines[entry.line - 1];
  if (at === undefined || at.body.trim() !== entry.text) {
    throw new OneTimeFileError(file, entry.line, undefined, 'no longer holds the sequence read at start or reload (the file was edited: reload with SIGHUP)');
  }
  at.body = `#${at.body}`;
  return lines.map((l) => l.body + l.ending).join('');
}

/** "3 unused sequences left" style count, for the warning when none is left. */
export function describeLeft(n: number): string {
  return n === 0 ? 'no unused sequence left' : n === 1 ? '1 unused sequence left' : `${n} unused sequences left`;
}
