// The door kinds a config file can use, listed once: which key selects each,
// and the one door schema that picks the kind by that key. Adding a kind is
// one door-<kind>.ts module and one line here (and its matcher in detect/kinds.ts).
import { z } from 'zod';
import type { Door } from '../types.js';
import { oneOf } from '../types.js';
import type { DoorKind } from './door-kind.js';
import { sequenceKind } from './door-sequence.js';
import { spaKind } from './door-spa.js';
import { rotatingKind } from './door-rotating.js';
import { oneTimeKind } from './door-one-time.js';
import { describeValue } from './errors.js';
import { isPlainMapping } from './values.js';

export const DOOR_KIND_SPECS: readonly DoorKind[] = [sequenceKind as DoorKind, spaKind as DoorKind, rotatingKind as DoorKind, oneTimeKind as DoorKind];

const SELECTING_KEYS = DOOR_KIND_SPECS.map((k) => k.key);

function present(door: Record<string, unknown>): DoorKind[] {
  return DOOR_KIND_SPECS.filter((k) => Object.hasOwn(door, k.key));
}

/** The keys a door may have: its kind's, or every kind's while the kind is unknown (for "did you mean"). */
export function knownDoorKeys(rawDoor: unknown): readonly string[] {
  const kinds = isPlainMapping(rawDoor) ? present(rawDoor) : [];
  const specs = kinds.length === 1 ? kinds : DOOR_KIND_SPECS;
  return [...new Set(specs.flatMap((k) => k.keys))];
}

export function doorKindSpec(door: Door): DoorKind {
  const spec = DOOR_KIND_SPECS.find((k) => k.kind === door.kind);
  if (spec === undefined) throw new Error(`door '${door.name}': unknown kind ${JSON.stringify(door.kind)}`);
  return spec;
}

/**
 * One door: a plain mapping with exactly one selecting key. A YAML mapping
 * is checked as such first: zod's object check passes any JS object, so a
 * `!!binary` value (a Buffer) would be taken apart key by key (a `!!binary`
 * document gave 102 "unknown key" messages naming Buffer methods).
 */
export const doorSchema: z.ZodType<Door, unknown> = z.unknown().transform((v, ctx): Door => {
  if (!isPlainMapping(v)) {
    const expected = `a door (a mapping with name, ${oneOf(SELECTING_KEYS)}, ...)`;
    ctx.addIssue({ code: 'custom', message: v === undefined ? 'required key is missing' : `expected ${expected}, got ${describeValue(v)}` });
    return z.NEVER;
  }
  const kinds = present(v);
  if (kinds.length !== 1) {
    const message =
      kinds.length === 0
        ? `a door needs its kind: one of the keys ${oneOf(SELECTING_KEYS)}`
        : `'${kinds[0].key}' and '${kinds[1].key}' are two door kinds: a door has exactly one`;
    ctx.addIssue({ code: 'custom', message, path: kinds.length === 0 ? [] : [kinds[1].key] });
    return z.NEVER;
  }
  const r = kinds[0].schema.safeParse(v);
  if (r.success) return r.data;
  for (const issue of r.error.issues) ctx.addIssue({ ...issue });
  return z.NEVER;
});
