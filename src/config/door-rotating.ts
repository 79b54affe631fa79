// The keys of a `rotating` door: a sequence derived every period from a key
// (detect/rotating-ports.ts has the derivation, the README documents it).
//
//   - name: rot
//     rotating:
//       key_file: /etc/knockwatch/keys/rot.key   # knockwatch keygen --user rot
//       steps: 4                # ports per sequence
//       period: 30s             # a new sequence every period
//       ports: 20000-60000      # range the ports are drawn from
//       protocol: tcp           # tcp | udp (default tcp)
//     window: 5s
//     open: [2222]
//     duration: 20s
//
// The config names the key file, never the key: config/door-files.ts reads it
// (refused when group or others can read it) once the config has parsed.
import { z } from 'zod';
import type { PathSegment } from './errors.js';
import type { Protocol, RotatingDoor } from '../types.js';
import { MAX_GAP_MS, MAX_WINDOW_MS } from '../limits.js';
import { MAX_ROTATING_STEPS, rangeProblem } from '../detect/rotating-ports.js';
import type { PathProblem } from './checks.js';
import { defineDoorKind } from './door-kind.js';
import { checkDurationMax, formatDuration, parseDuration } from './duration.js';
import { ValueError, describeValue } from './errors.js';
import { parsePortSpec } from './port.js';
import { duration, isPlainMapping, mapping, value } from './values.js';

/** Shortest and longest period: below 1 s clocks disagree more than that; above a day a sequence lives too long. */
export const MIN_PERIOD_MS = 1000;
export const MAX_PERIOD_MS = 24 * 3_600_000;

const filePath = value((v): string => {
  if (typeof v !== 'string' || v === '') throw new ValueError(`expected a file path, got ${describeValue(v)}`);
  if (v.includes('\0')) throw new ValueError('the path contains a NUL character');
  return v;
});

const steps = value((v): number => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_ROTATING_STEPS) {
    throw new ValueError(`expected the number of ports per sequence, 1-${MAX_ROTATING_STEPS}, got ${describeValue(v)}`);
  }
  return v;
});

const period = value((v): number => {
  if (typeof v !== 'string' && typeof v !== 'number') throw new ValueError(`expected a duration such as 30s or 1m, got ${describeValue(v)}`);
  const ms = checkDurationMax('period', parseDuration(v), MAX_PERIOD_MS);
  if (ms < MIN_PERIOD_MS) throw new ValueError(`period ${formatDuration(ms)} is shorter than 1s`);
  if (ms % 1000 !== 0) throw new ValueError(`period ${formatDuration(ms)} is not a whole number of seconds (clients count periods in seconds)`);
  return ms;
});

/** `20000-60000`: an inclusive range LOW-HIGH. */
const portRange = value((v): { low: number; high: number } => {
  const m = typeof v === 'string' ? /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(v) : null;
  if (m === null) throw new ValueError(`expected a port range LOW-HIGH such as 20000-60000, got ${describeValue(v)}`);
  const low = parsePortSpec(Number(m[1])).port;
  const high = parsePortSpec(Number(m[2])).port;
  if (low > high) throw new ValueError(`port range ${low}-${high} runs backwards: write LOW-HIGH`);
  return { low, high };
});

const protocol = value((v): Protocol => {
  if (v !== 'tcp' && v !== 'udp') throw new ValueError(`expected tcp or udp, got ${describeValue(v)}`);
  return v;
});

const rotatingSettings = mapping(
  { key_file: filePath, steps, period, ports: portRange, protocol: protocol.optional() },
  'the rotating settings (a mapping with key_file, steps, period, ports, protocol)',
).transform((r, ctx) => {
  const problem = rangeProblem(r.steps, r.ports);
  if (problem !== undefined) {
    ctx.addIssue({ code: 'custom', message: `${problem}: widen the range or use fewer steps`, path: ['ports'] });
    return z.NEVER;
  }
  return r;
});

export const rotatingShape = {
  rotating: rotatingSettings,
  window: duration('window', MAX_WINDOW_MS),
  gap: duration('gap', MAX_GAP_MS).optional(),
};

export const rotatingKind = defineDoorKind<typeof rotatingShape, RotatingDoor>({
  kind: 'rotating',
  key: 'rotating',
  shape: rotatingShape,
  toDoor: (d, common) => ({
    kind: 'rotating',
    ...common,
    keyFile: d.rotating.key_file,
    steps: d.rotating.steps,
    periodMs: d.rotating.period,
    portRange: { low: d.rotating.ports.low, high: d.rotating.ports.high },
    protocol: d.rotating.protocol ?? 'tcp',
    windowMs: d.window,
    ...(d.gap !== undefined ? { gapMs: d.gap } : {}),
  }),
  // The key file's path, never the key.
  toJSON: (d) => ({
    rotating: {
      key_file: d.keyFile,
      steps: d.steps,
      period: formatDuration(d.periodMs),
      ports: `${d.portRange.low}-${d.portRange.high}`,
      protocol: d.protocol,
    },
    window: formatDuration(d.windowMs),
    ...(d.gapMs !== undefined ? { gap: formatDuration(d.gapMs) } : {}),
  }),
});

const rotatingOpen = z.array(value((v) => parsePortSpec(v as string | number)));

/**
 * Rules between a rotating door's keys, on whatever parsed: an open port of
 * the door's protocol inside its range (the knocker's own connections would
 * count as knocks), a gap longer than the window.
 */
export function rotatingChecks(rawDoors: unknown): PathProblem[] {
  if (!Array.isArray(rawDoors)) return [];
  const out: PathProblem[] = [];
  rawDoors.forEach((raw: unknown, i) => {
    if (!isPlainMapping(raw) || raw['rotating'] === undefined) return;
    const at = (...rest: PathSegment[]): PathSegment[] => ['doors', i, ...rest];
    const settings = rotatingSettings.safeParse(raw['rotating']);
    const open = rotatingOpen.safeParse(raw['open']);
    if (settings.success && open.success) {
      const { low, high } = settings.data.ports;
      const proto = settings.data.protocol ?? 'tcp';
      open.data.forEach((p, j) => {
        if (p.protocol === proto && p.port >= low && p.port <= high) {
          out.push({ path: at('open', j), message: `${p.port}/${p.protocol} is inside this door's rotating range ${low}-${high}/${proto}: the knocker's own connections would count as knocks` });
        }
      });
    }
    const window = rotatingShape.window.safeParse(raw['window']);
    const gap = rotatingShape.gap.safeParse(raw['gap']);
    if (window.success && gap.success && gap.data !== undefined && gap.data > window.data) {
      out.push({ path: at('gap'), message: `gap ${formatDuration(gap.data)} is larger than window ${formatDuration(window.data)}` });
    }
  });
  return out;
}

