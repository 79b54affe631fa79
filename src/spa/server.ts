// Builds the server side of spa from the configured users and doors, and
// carries what must outlive a reload (the replay cache, TOTP state, rate
// limits, counters, the strike-register guard) into the server built for the
// next configuration. Removed users lose their hints at once (a new hint
// index) and their address holdings; their replay entries and TOTP state stay,
// so a user added back cannot replay what was spent.
import { createHintIndex } from './hint.js';
import { createReplayCache, type ReplayCache, type ReplayCacheOptions } from './replay-cache.js';
import { createTotpState } from './totp.js';
import { emptyCounts, type SpaDoorPolicy, type SpaGuard, type SpaServer, type SpaUser } from './verify.js';

export interface SpaServerConfig {
  readonly users: readonly SpaUser[];
  readonly doors: readonly SpaDoorPolicy[];
}

/** A guard that refuses nothing: `replay`, and tests. */
export function openGuard(): SpaGuard {
  return { floorMs: -Infinity, leaseUntil: Infinity, horizonMs: -Infinity };
}

export function createSpaServer(config: SpaServerConfig, carry?: SpaServer, options: { guard?: SpaGuard; replay?: ReplayCache | ReplayCacheOptions } = {}): SpaServer {
  const users = new Map(config.users.map((u) => [u.name, u]));
  const doors = new Map(config.doors.map((d) => [d.name, d]));
  const maxAgeMs = Math.max(0, ...config.doors.map((d) => d.maxAgeMs));
  const replayOption = options.replay;
  const replay = carry?.replay ?? (replayOption !== undefined && 'has' in replayOption ? replayOption : createReplayCache(replayOption));
  const holders = carry?.holders ?? new Map<string, Map<string, number>>();
  const opens = carry?.opens ?? new Map();
  for (const u of [...holders.keys()]) if (!users.has(u)) holders.delete(u);
  return {
    users,
    doors,
    // The hint window follows the widest max_age; a carried cache keeps entries at least as long as they were set to.
    hints: createHintIndex(config.users.map((u) => ({ user: u.name, keys: u.keys })), { maxAgeMs }),
    replay,
    totp: carry?.totp ?? createTotpState(),
    guard: carry?.guard ?? options.guard ?? openGuard(),
    maxAgeMs,
    opens,
    holders,
    counts: carry?.counts ?? emptyCounts(),
  };
}

/** Users whose accesses a reload must close: gone from the new config. */
export function removedUsers(before: SpaServer, after: SpaServerConfig): string[] {
  const kept = new Set(after.users.map((u) => u.name));
  return [...before.users.keys()].filter((u) => !kept.has(u));
}
