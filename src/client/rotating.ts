// The rotating door's client side: the sequence of the current period,
// computed from the door's key and settings exactly as the server does
// (detect/rotating-ports.ts; README "Rotating sequences"). The server accepts
// periods n-1..n+1 and each period once, so knocking twice within one period
// fails the second time: the caller can ask for the next period instead.
import { periodOf, rangeProblem, rotatingPorts, type PortRange } from '../detect/rotating-ports.js';
import type { PortSpec, Protocol } from '../types.js';

export interface RotatingSettings {
  readonly steps: number;
  readonly periodMs: number;
  readonly range: PortRange;
  readonly protocol: Protocol;
}

export interface RotatingKnock {
  readonly period: number;
  readonly steps: PortSpec[];
  /** When the period ends (ms since the epoch). */
  readonly endsAt: number;
}

/** The knock for the period of `nowMs` (plus `ahead` periods, 0 or 1). Throws on settings the server would refuse. */
export function rotatingKnock(key: Uint8Array, s: RotatingSettings, nowMs: number, ahead = 0): RotatingKnock {
  const problem = rangeProblem(s.steps, s.range);
  if (problem !== undefined) throw new Error(problem);
  const period = periodOf(nowMs, s.periodMs) + ahead;
  const ports = rotatingPorts(key, period, s.steps, s.range);
  return { period, steps: ports.map((port) => ({ port, protocol: s.protocol })), endsAt: (period + 1) * s.periodMs };
}

/** `20000-60000` -> { low, high }; throws naming the text. */
export function parsePortRange(text: string): PortRange {
  const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(text);
  const low = m ? Number(m[1]) : NaN;
  const high = m ? Number(m[2]) : NaN;
  if (!m || low < 1 || high > 65535 || low > high) throw new Error(`invalid --ports '${text}': expected LOW-HIGH within 1-65535, such as 20000-60000`);
  return { low, high };
}
