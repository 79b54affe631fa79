// Doors compiled into the lookup form the detector's hot path needs: every
// (port, protocol) pair becomes one integer key, so a knock is matched against
// a step with one integer comparison and a first step with one typed-array read.
import type { Door, PortSpec, Protocol } from '../types.js';
import { sequenceHazards } from '../ports.js';

/** Number of distinct keys: 65536 TCP ports followed by 65536 UDP ports. */
export const KEY_SPACE = 131072;

/**
 * An exact repeat of the step just accepted within this many ms (inclusive) is
 * a retransmission or a doubled knock, and neither resets nor progresses.
 * Linux retransmits an unanswered SYN after its initial RTO of 1 s (recorded:
 * 1.006-1.032 s, fixtures/retransmitted.pcap); 1.5 s covers that first
 * retransmission with margin and stays well below the second (3 s after the
 * original). The tolerance counts from the accepted step, never from a
 * repeat, so a stream of retransmissions cannot stretch it.
 */
export const REPEAT_MS = 1500;

/** (port, protocol) as one integer: TCP ports keep their number, UDP ports add 65536. */
export function portKey(port: number, protocol: Protocol): number {
  return protocol === 'udp' ? port + 65536 : port;
}

export interface CompiledDoor {
  readonly index: number;
  readonly name: string;
  readonly length: number;
  /** portKey of each step, in order. */
  readonly stepKeys: Int32Array;
  readonly firstKey: number;
  readonly lastKey: number;
  /** portKeys of the door's open ports: knocks there never reset progress. */
  readonly openKeys: ReadonlySet<number>;
  readonly windowMs: number;
  /** Infinity when the door sets no gap. */
  readonly gapMs: number;
  readonly durationMs: number;
  /** The door's open ports, shared by every open/close decision of this door. */
  readonly ports: readonly PortSpec[];
}

export interface CompiledDoors {
  readonly doors: readonly CompiledDoor[];
  /** 1 at portKey of any door's first step: the only knocks that create state. */
  readonly firstStepMask: Uint8Array;
  /** State older than this (ms since the source's last accepted step) is dead for every door. */
  readonly horizonMs: number;
}

function checkPort(spec: PortSpec, where: string): void {
  if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) {
    throw new Error(`${where}: port must be an integer 1-65535, got ${String(spec.port)}`);
  }
  if (spec.protocol !== 'tcp' && spec.protocol !== 'udp') {
    throw new Error(`${where}: protocol must be 'tcp' or 'udp', got ${String(spec.protocol)}`);
  }
}

function checkDuration(value: number | undefined, where: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new Error(`${where}: must be a positive finite number of ms, got ${String(value)}`);
  }
}

/**
 * Two consecutive steps on neighbouring ports (or the same port twice) of one
 * protocol would let a port sweep or a retransmitted SYN open the door. Such a
 * door cannot keep the detector's promise, so it is refused; the config
 * loader applies the same rule (src/ports.ts) so check-config reports it first.
 */
function checkSweepSafe(sequence: readonly PortSpec[], where: string): void {
  const first = sequenceHazards(sequence)[0];
  if (first !== undefined) throw new Error(`${where} sequence[${first.index}]: ${first.message}`);
}

/**
 * Validates doors and builds their lookup tables. The config loader validates
 * too, but the detector is a module edge of a security daemon: a door it cannot
 * enforce exactly is refused here with the door and field named.
 */
export function compileDoors(doors: readonly Door[]): CompiledDoors {
  if (doors.length === 0) throw new Error('detector: at least one door is required');
  const names = new Set<string>();
  const firstStepMask = new Uint8Array(KEY_SPACE);
  let horizonMs = REPEAT_MS;
  const compiled = doors.map((door, index): CompiledDoor => {
    const at = `door ${index} '${door.name}'`;
    if (typeof door.name !== 'string' || door.name === '') throw new Error(`door ${index}: name must be a non-empty string`);
    if (names.has(door.name)) throw new Error(`${at}: duplicate door name`);
    names.add(door.name);
    if (door.sequence.length === 0) throw new Error(`${at}: sequence is empty`);
    door.sequence.forEach((s, i) => checkPort(s, `${at} sequence[${i}]`));
    door.open.forEach((s, i) => checkPort(s, `${at} open[${i}]`));
    checkDuration(door.windowMs, `${at} windowMs`);
    checkDuration(door.durationMs, `${at} durationMs`);
    if (door.gapMs !== undefined) checkDuration(door.gapMs, `${at} gapMs`);
    const stepKeys = Int32Array.from(door.sequence, (s) => portKey(s.port, s.protocol));
    checkSweepSafe(door.sequence, at);
    firstStepMask[stepKeys[0]] = 1;
    horizonMs = Math.max(horizonMs, door.windowMs);
    return {
      index,
      name: door.name,
      length: stepKeys.length,
      stepKeys,
      firstKey: stepKeys[0],
      lastKey: stepKeys[stepKeys.length - 1],
      openKeys: new Set(door.open.map((s) => portKey(s.port, s.protocol))),
      windowMs: door.windowMs,
      gapMs: door.gapMs ?? Infinity,
      durationMs: door.durationMs,
      ports: Object.freeze(door.open.map((s) => Object.freeze({ port: s.port, protocol: s.protocol }))),
    };
  });
  return { doors: compiled, firstStepMask, horizonMs };
}
