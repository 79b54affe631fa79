// What an spa door's matcher needs besides its door (detect/kinds.ts
// DoorStores.spa): the server state shared by every spa door of a config,
// the live clock's correction, and where loud events go. The daemon makes one
// with file-backed durability around it (daemon/spa-runtime.ts); `replay` and
// tests make one in memory with createMemorySpaStore().
import type { SpaDoor } from '../types.js';
import { createSpaServer } from './server.js';
import { DATAGRAM_BYTES } from './format.js';
import type { SpaServer, SpaUser, SpaVerdict } from './verify.js';

export interface SpaStore {
  readonly server: SpaServer;
  /**
   * Server time = packet time + offsetMs. Live: the system clock's distance
   * from the capture clock, re-measured at least every minute (so NTP
   * corrections apply); replay: 0, packet time is the time.
   */
  offsetMs: number;
  /** A loud event (a TOTP lockout: a key has leaked). */
  onAlert?: (verdict: SpaVerdict & { ok: false }) => void;
  /** A datagram that authenticated and was refused all the same (it names its user): for a budgeted log. */
  onRefused?: (verdict: SpaVerdict & { ok: false }, source: string) => void;
  /** The verdict on the last datagram, so spa doors sharing a port verify it once. */
  last: { ev: unknown; verdict: SpaVerdict | undefined };
}

/** The server policy of one spa door. */
export function doorPolicy(d: SpaDoor) {
  return {
    name: d.name,
    port: d.port,
    ...(d.users !== undefined ? { users: new Set(d.users) } : {}),
    totp: d.totp,
    allowIp: d.allowIp,
    maxAgeMs: d.maxAgeMs,
    durationMs: d.durationMs,
  };
}

/** An in-memory store: no lease, no horizon, no floor (replay, tests). */
export function createMemorySpaStore(users: readonly SpaUser[], doors: readonly SpaDoor[], carry?: SpaStore): SpaStore {
  return {
    server: createSpaServer({ users, doors: doors.map(doorPolicy) }, carry?.server),
    offsetMs: carry?.offsetMs ?? 0,
    ...(carry?.onAlert ? { onAlert: carry.onAlert } : {}),
    ...(carry?.onRefused ? { onRefused: carry.onRefused } : {}),
    last: { ev: undefined, verdict: undefined },
  };
}

export { DATAGRAM_BYTES };
