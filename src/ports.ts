// Rules about knock sequences that both the config loader (src/config/) and
// the detector (src/detect/) enforce. They live here, beside types.ts, because
// config/ must not import from detect/: one predicate, one wording, so
// `check-config` refuses exactly what the daemon would refuse at start.
import { formatPort, type PortSpec } from './types.js';

/**
 * Why one step may not directly follow another:
 * - 'repeat': the same port and protocol twice; a retransmitted or doubled
 *   SYN of the first knock could stand in for the second.
 * - 'neighbour': ports next to each other (65535 and 1 too, for a sweep that
 *   wraps around); a sequential port sweep would knock both in order.
 */
export type StepHazard = 'repeat' | 'neighbour';

/** The hazard of knocking `next` right after `prev`, or undefined when the pair is safe. */
export function stepHazard(prev: PortSpec, next: PortSpec): StepHazard | undefined {
  // A sweep of one protocol never touches the other, so mixed pairs are safe.
  if (prev.protocol !== next.protocol) return undefined;
  const distance = Math.abs(prev.port - next.port);
  if (distance === 0) return 'repeat';
  if (distance === 1 || distance === 65534) return 'neighbour';
  return undefined;
}

/** One hazardous step of a sequence: `index` is the later of the two steps. */
export interface SequenceHazard {
  readonly index: number;
  readonly hazard: StepHazard;
  /** Why the step is refused, e.g. `1235/tcp right after 1234/tcp is a neighbouring port: ...`. */
  readonly message: string;
}

function hazardMessage(prev: PortSpec, next: PortSpec, hazard: StepHazard): string {
  const pair = `${formatPort(next)} right after ${formatPort(prev)}`;
  if (hazard === 'repeat') return `${pair} repeats the same port: a retransmitted knock would count as the next step`;
  const wraps = Math.abs(prev.port - next.port) === 65534 ? ' (sweeps wrap from 65535 to 1)' : '';
  return `${pair} is a neighbouring port${wraps}: a port sweep would open this door`;
}

/** Every step of `sequence` that must not follow the step before it, in order. */
export function sequenceHazards(sequence: readonly PortSpec[]): SequenceHazard[] {
  const out: SequenceHazard[] = [];
  for (let i = 1; i < sequence.length; i++) {
    const hazard = stepHazard(sequence[i - 1], sequence[i]);
    if (hazard !== undefined) out.push({ index: i, hazard, message: hazardMessage(sequence[i - 1], sequence[i], hazard) });
  }
  return out;
}
