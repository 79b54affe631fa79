// Durations: `500ms`, `10s`, `5m`, `1h`, or a bare number of seconds (may be
// fractional). Results are whole milliseconds, so a parsed duration always
// formats back exactly.
import { ValueError } from './errors.js';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
type Unit = keyof typeof UNIT_MS;

const DURATION_RE = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?$/;

const HINT = 'expected e.g. 500ms, 10s, 5m, 1h, or a number of seconds';

/** Parse a duration into milliseconds; throws ValueError quoting the input. */
export function parseDuration(text: string | number): number {
  let ms: number;
  let shown: string;
  if (typeof text === 'number') {
    shown = String(text);
    if (!Number.isFinite(text)) throw new ValueError(`invalid duration ${shown}: must be finite`);
    ms = text * 1000;
  } else if (typeof text === 'string') {
    shown = `'${text}'`;
    const m = DURATION_RE.exec(text.trim());
    if (!m) throw new ValueError(`invalid duration ${shown}: ${HINT}`);
    const unit: Unit = (m[2] as Unit | undefined) ?? 's';
    ms = Number(m[1]) * UNIT_MS[unit];
    if (!Number.isFinite(ms)) throw new ValueError(`invalid duration ${shown}: must be finite`);
  } else {
    throw new ValueError(`invalid duration: ${HINT}`);
  }
  if (!(ms > 0)) throw new ValueError(`invalid duration ${shown}: must be greater than 0`);
  // Decimal fractions are not exact in binary (0.7 * 1000 = 700.0000000000001):
  // accept anything within rounding error of a whole millisecond.
  const whole = Math.round(ms);
  if (Math.abs(ms - whole) > 1e-6 * Math.max(1, ms)) {
    throw new ValueError(`invalid duration ${shown}: not a whole number of milliseconds`);
  }
  if (whole === 0) throw new ValueError(`invalid duration ${shown}: must be at least 1ms`);
  return whole;
}

/** Milliseconds in the largest unit that represents them exactly: 20000 -> `20s`. */
export function formatDuration(ms: number): string {
  for (const unit of ['h', 'm', 's'] as const) {
    if (ms >= UNIT_MS[unit] && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}

/** Reject a parsed duration above `maxMs`, naming the field and the limit. */
export function checkDurationMax(field: string, ms: number, maxMs: number): number {
  if (ms > maxMs) {
    throw new ValueError(`${field} ${formatDuration(ms)} is longer than the maximum ${formatDuration(maxMs)}`);
  }
  return ms;
}
