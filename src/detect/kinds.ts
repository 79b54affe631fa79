// The door kinds, listed once: each kind's module compiles a door of that kind
// into a matcher (matcher.ts). Adding a kind is one module and one line here
// (plus its config keys in config/door-kinds.ts); no capture, firewall or
// detector code changes.
import type { Door, DoorKind } from '../types.js';
import type { Matcher } from './matcher.js';
import { sequenceMatcher } from './sequence.js';
import { spaMatcher } from './spa.js';
import { rotatingMatcher, type RotatingStore } from './rotating.js';
import { oneTimeMatcher, type OneTimeStore } from './one-time.js';
import type { SpaStore } from '../spa/store.js';

/**
 * Durable state some kinds keep outside a detector's life (used one-time
 * lines, used rotating periods, spa replay cache): the daemon passes
 * file-backed stores, replay passes none and each kind keeps its state in
 * memory. A kind that needs one adds its optional field here.
 */
export interface DoorStores {
  /** spa doors: users' keys, replay cache, TOTP state, the strike-register guard (src/spa/store.ts). */
  readonly spa?: SpaStore;
  /** rotating doors: used periods (daemon: a file in the state directory). */
  readonly rotating?: RotatingStore;
  /** one_time doors: marks a line used in its file before the door opens. */
  readonly oneTime?: OneTimeStore;
}

/** What a kind's compile function gets besides its door. */
export interface KindContext {
  readonly index: number;
  /** `door 2 'ssh'`: prefix for every error about this door. */
  readonly at: string;
  readonly stores: DoorStores;
}

type Compile<D extends Door> = (door: D, ctx: KindContext) => Matcher;

const KINDS: { readonly [K in DoorKind]: Compile<Extract<Door, { kind: K }>> } = {
  sequence: sequenceMatcher,
  spa: spaMatcher,
  rotating: rotatingMatcher,
  one_time: oneTimeMatcher,
};

/** Validates the kind's own fields and compiles its matcher; throws naming the door and field. */
export function compileMatcher(door: Door, ctx: KindContext): Matcher {
  const compile = Object.hasOwn(KINDS, door.kind) ? (KINDS[door.kind] as Compile<Door>) : undefined;
  if (compile === undefined) {
    throw new Error(`${ctx.at}: unknown door kind ${JSON.stringify(door.kind)} (known: ${Object.keys(KINDS).join(', ')})`);
  }
  return compile(door, ctx);
}
