// What a door kind declares on the config side: the key that selects it, its
// own keys (a zod shape of value rules from values.ts), and how it turns into
// a Door and back into the file's shape. The kinds are listed in door-kinds.ts.
import { z } from 'zod';
import type { Door, DoorCommon } from '../types.js';
import { MAX_DURATION_MS } from '../limits.js';
import { command, doorName, duration, portList } from './values.js';

/** Keys every door has, whatever its kind. */
export const commonDoorShape = {
  name: doorName,
  open: portList('ports to open'),
  duration: duration('duration', MAX_DURATION_MS),
  start_command: command.optional(),
  stop_command: command.optional(),
};

export interface DoorKindSpec<S extends z.core.$ZodLooseShape, D extends Door> {
  readonly kind: D['kind'];
  /** The key whose presence in a door selects this kind (`sequence:`, `spa:`, ...). */
  readonly key: string;
  /** The kind's own keys, the selecting key included. */
  readonly shape: S;
  toDoor(parsed: z.output<z.ZodObject<S>>, common: DoorCommon): D;
  /** The kind's own keys in the file's shape (config/format.ts). */
  toJSON(door: D): Record<string, unknown>;
}

/** A kind's spec with its full door schema (common keys + its own, no others). */
export interface DoorKind<D extends Door = Door> {
  readonly kind: D['kind'];
  readonly key: string;
  readonly keys: readonly string[];
  readonly schema: z.ZodType<D, unknown>;
  toJSON(door: D): Record<string, unknown>;
}

export function defineDoorKind<S extends z.core.$ZodLooseShape, D extends Door>(spec: DoorKindSpec<S, D>): DoorKind<D> {
  // Key order as people write doors (and as "known keys" lists them): name, the kind's keys, then what it opens.
  const { name, ...rest } = commonDoorShape;
  const shape = { name, ...spec.shape, ...rest };
  const schema = z.strictObject(shape).transform((d): D => {
    const p = d as unknown as z.output<z.ZodObject<typeof commonDoorShape>>;
    const common: DoorCommon = {
      name: p.name,
      open: p.open,
      durationMs: p.duration,
      ...(p.start_command !== undefined ? { startCommand: p.start_command } : {}),
      ...(p.stop_command !== undefined ? { stopCommand: p.stop_command } : {}),
    };
    return spec.toDoor(d as z.output<z.ZodObject<S>>, common);
  });
  return { kind: spec.kind, key: spec.key, keys: Object.keys(shape), schema: schema as unknown as z.ZodType<D, unknown>, toJSON: spec.toJSON };
}
