// Doors compiled for the detector: what every kind shares (name, open ports,
// duration: the access ledger's business) is checked here; the kind's own
// rule is compiled by its module into a matcher (kinds.ts, matcher.ts).
import type { Door, PortSpec } from '../types.js';
import { checkDuration, checkPort } from './checks.js';
import { compileMatcher, type DoorStores } from './kinds.js';
import { KEY_SPACE, isPacketMatcher, type Matcher } from './matcher.js';

export interface CompiledDoor {
  readonly index: number;
  readonly name: string;
  readonly durationMs: number;
  /** The door's open ports, shared by every open/close decision of this door. */
  readonly ports: readonly PortSpec[];
  readonly matcher: Matcher;
}

export interface CompiledDoors {
  readonly doors: readonly CompiledDoor[];
  /** 1 at portKey of any source matcher's start key: the only knocks that create per-source state. */
  readonly firstStepMask: Uint8Array;
  /** 1 at portKey of any packet matcher's start key: knocks judged before the source table. */
  readonly packetMask: Uint8Array;
  /** State older than this (ms since the source's last progress) is dead for every door. */
  readonly horizonMs: number;
}

/** Validates doors and compiles them; throws naming the door and field. */
export function compileDoors(doors: readonly Door[], stores: DoorStores = {}): CompiledDoors {
  if (doors.length === 0) throw new Error('detector: at least one door is required');
  const names = new Set<string>();
  const firstStepMask = new Uint8Array(KEY_SPACE);
  const packetMask = new Uint8Array(KEY_SPACE);
  let horizonMs = 0;
  const compiled = doors.map((door, index): CompiledDoor => {
    const at = `door ${index} '${door.name}'`;
    if (typeof door.name !== 'string' || door.name === '') throw new Error(`door ${index}: name must be a non-empty string`);
    if (names.has(door.name)) throw new Error(`${at}: duplicate door name`);
    names.add(door.name);
    door.open.forEach((s, i) => checkPort(s, `${at} open[${i}]`));
    checkDuration(door.durationMs, `${at} durationMs`);
    const matcher = compileMatcher(door, { index, at, stores });
    const mask = isPacketMatcher(matcher) ? packetMask : firstStepMask;
    for (const key of matcher.startKeys) mask[key] = 1;
    if (!isPacketMatcher(matcher)) horizonMs = Math.max(horizonMs, matcher.horizonMs);
    return {
      index,
      name: door.name,
      durationMs: door.durationMs,
      ports: Object.freeze(door.open.map((s) => Object.freeze({ port: s.port, protocol: s.protocol }))),
      matcher,
    };
  });
  return { doors: compiled, firstStepMask, packetMask, horizonMs };
}
