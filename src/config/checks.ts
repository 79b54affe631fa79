// Rules that relate several values: within a door (gap vs window, open ports
// vs knock ports, neighbouring or repeated steps) and between doors (names,
// sequences). They run on every field that parsed on its own, so they report
// alongside shape errors instead of waiting for those to be fixed first.
import type { z } from 'zod';
import type { PortSpec } from '../types.js';
import { formatPort } from '../types.js';
import { sequenceHazards } from '../ports.js';
import { formatDuration } from './duration.js';
import { formatPath, type PathSegment } from './errors.js';
import { samePort } from './port.js';
import { commonDoorShape } from './door-kind.js';
import { sequenceShape } from './door-sequence.js';

export interface PathProblem {
  readonly path: readonly PathSegment[];
  readonly message: string;
}

/** The fields of one door that parsed; absent when missing or invalid. */
interface PartialDoor {
  readonly index: number;
  readonly name?: string;
  readonly sequence?: readonly PortSpec[];
  readonly windowMs?: number;
  readonly gapMs?: number;
  readonly open?: readonly PortSpec[];
}

const doorShape = { ...commonDoorShape, ...sequenceShape };

function field<K extends keyof typeof doorShape>(
  raw: Record<string, unknown>,
  key: K,
): z.output<(typeof doorShape)[K]> | undefined {
  const r = doorShape[key].safeParse(raw[key]);
  return r.success ? (r.data as z.output<(typeof doorShape)[K]>) : undefined;
}

function partialDoor(raw: unknown, index: number): PartialDoor | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const r = raw as Record<string, unknown>;
  return {
    index,
    name: field(r, 'name'),
    sequence: field(r, 'sequence'),
    windowMs: field(r, 'window'),
    gapMs: field(r, 'gap'),
    open: field(r, 'open'),
  };
}

function checkDoor(d: PartialDoor): PathProblem[] {
  const out: PathProblem[] = [];
  const at = (...rest: PathSegment[]): PathSegment[] => ['doors', d.index, ...rest];
  if (d.gapMs !== undefined && d.windowMs !== undefined && d.gapMs > d.windowMs) {
    out.push({
      path: at('gap'),
      message: `gap ${formatDuration(d.gapMs)} is larger than window ${formatDuration(d.windowMs)}`,
    });
  }
  if (d.sequence !== undefined) {
    // The detector refuses these doors at start; report them here instead, so
    // check-config catches them. One rule and wording for both (src/ports.ts).
    for (const h of sequenceHazards(d.sequence)) out.push({ path: at('sequence', h.index), message: h.message });
  }
  if (d.open !== undefined) {
    d.open.forEach((p, i) => {
      const first = d.open?.findIndex((q) => samePort(p, q)) ?? i;
      if (first < i) {
        out.push({ path: at('open', i), message: `${formatPort(p)} is listed twice (also open[${first}])` });
      }
      const step = d.sequence?.findIndex((q) => samePort(p, q)) ?? -1;
      if (step >= 0) {
        // The knocker's own connections to an open port would count as knocks.
        out.push({
          path: at('open', i),
          message: `${formatPort(p)} is also a knock port of this door (sequence[${step}])`,
        });
      }
    });
  }
  return out;
}

function sequenceKey(seq: readonly PortSpec[]): string {
  return seq.map(formatPort).join(',');
}

function checkBetweenDoors(doors: readonly PartialDoor[]): PathProblem[] {
  const out: PathProblem[] = [];
  const names = new Map<string, PartialDoor>();
  const sequences = new Map<string, PartialDoor>();
  for (const d of doors) {
    if (d.name !== undefined) {
      // Case-insensitive: names that differ only in case are too easy to
      // confuse in logs and firewall listings.
      const prev = names.get(d.name.toLowerCase());
      if (prev) {
        out.push({
          path: ['doors', d.index, 'name'],
          message: `duplicate door name '${d.name}' (also ${formatPath(['doors', prev.index])})`,
        });
      } else {
        names.set(d.name.toLowerCase(), d);
      }
    }
    if (d.sequence !== undefined) {
      const key = sequenceKey(d.sequence);
      const prev = sequences.get(key);
      if (prev) {
        const which = prev.name !== undefined ? `door '${prev.name}' (${formatPath(['doors', prev.index])})` : formatPath(['doors', prev.index]);
        out.push({ path: ['doors', d.index, 'sequence'], message: `same sequence as ${which}` });
      } else {
        sequences.set(key, d);
      }
    }
  }
  return out;
}

/** Cross-field problems of the raw (parsed YAML) doors list. */
export function crossChecks(rawDoors: unknown): PathProblem[] {
  if (!Array.isArray(rawDoors)) return [];
  const doors = rawDoors
    .map((raw: unknown, i) => partialDoor(raw, i))
    .filter((d): d is PartialDoor => d !== undefined);
  return [...doors.flatMap(checkDoor), ...checkBetweenDoors(doors)];
}
