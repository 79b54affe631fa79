// spa in the live daemon: what the pure verifier (src/spa/verify.ts) needs
// from the world, kept here so detection never reads a clock or a file.
//
//  - Keys: read at start and on every reload (config/users.ts); a reload that
//    fails to read them is refused as a whole.
//  - Clock: server time = packet time + offset, where offset = system clock -
//    capture clock, re-measured every CLOCK_TICK_MS (the capture clock is
//    anchored once and never steps; the system clock follows NTP). The highest
//    system time seen is the floor, persisted: a system clock more than
//    FLOOR_SLACK_MS below it refuses spa (a datagram from an hour ago would be
//    fresh again after the clock stepped back an hour, and its replay entry
//    long gone), with an error logged at most once a minute.
//  - Strike register: the lease on disk is renewed ahead of time; spa is
//    refused until the first lease is written; after a crash, datagrams from
//    before the lease horizon are refused (src/spa/strike-register.ts).
//  - Logs: under junk, no line per datagram at info. Every minute, one line
//    with the rejections of that minute by reason (when there were any);
//    refusals of authenticated datagrams (they name a user: a stale clock, a
//    replay, a wrong TOTP code) get a line each, up to REFUSED_LOG_BUDGET a
//    minute in all, the rest counted in the next total. A TOTP lockout is an
//    error line, always.
import type { Logger } from '../log.js';
import type { KnockwatchConfig, SpaDoor } from '../types.js';
import { createMemorySpaStore, type SpaStore } from '../spa/store.js';
import { cleanStopRecord, leaseDue, leaseRecord, startGuard, type StartGuard } from '../spa/strike-register.js';
import { emptyCounts, type SpaRejectReason, type SpaUser } from '../spa/verify.js';
import { openSpaStateStore, type SpaStateStore } from './spa-state-store.js';

/** How often the clock offset is re-measured, the floor checked and the lease looked at. */
export const CLOCK_TICK_MS = 5_000;
/** A system clock this far below the floor still runs spa (small NTP slews). */
export const FLOOR_SLACK_MS = 10_000;
/** Lines for refused authenticated datagrams per minute, all users together. */
export const REFUSED_LOG_BUDGET = 20;
const MINUTE_MS = 60_000;

export interface SpaRuntimeOptions {
  readonly logger: Logger;
  readonly stateDir: string;
  /** The capture clock (packet times): daemon's wallClock. */
  readonly captureClock: () => number;
  /** The system clock (Date.now); tests pass their own. */
  readonly systemClock?: () => number;
}

export interface SpaRuntime {
  /** The store for the current config's detector. */
  readonly store: SpaStore;
  /** A store for the next config (keys already read); state carried over. Returns users whose accesses must close. */
  /**
   * A store for the next config (keys already read), the replay cache, TOTP
   * state, rate limits and guard carried over. `closeAddresses`: addresses
   * that users removed by this reload hold open and no remaining user does;
   * their spa accesses must close.
   */
  reload(next: KnockwatchConfig, users: readonly SpaUser[]): { store: SpaStore; removedUsers: string[]; closeAddresses: Set<string> };
  /** Clean stop: writes the replay cache and TOTP state, so the next start needs no horizon. */
  stop(): Promise<void>;
  readonly stateFile: string;
  /** What the timer does every CLOCK_TICK_MS: re-anchor the clock, check the floor, renew the lease when due (tests call it). */
  tick(): Promise<void>;
}

export function spaDoors(config: KnockwatchConfig): SpaDoor[] {
  return config.doors.filter((d): d is SpaDoor => d.kind === 'spa');
}

function maxAgeOf(config: KnockwatchConfig): number {
  return Math.max(0, ...spaDoors(config).map((d) => d.maxAgeMs));
}

export async function startSpaRuntime(config: KnockwatchConfig, users: readonly SpaUser[], options: SpaRuntimeOptions): Promise<SpaRuntime> {
  const log = options.logger;
  const now = options.systemClock ?? Date.now;
  const state: SpaStateStore = await openSpaStateStore(options.stateDir);
  const record = await state.read();
  const startedAt = now();
  let maxAgeMs = maxAgeOf(config);
  const guard: StartGuard = startGuard(record, startedAt, maxAgeMs);

  let store = createMemorySpaStore(users, spaDoors(config));
  const server = (): SpaStore['server'] => store.server;
  store.server.guard.horizonMs = guard.horizonMs;
  store.server.guard.floorMs = guard.floorMs - FLOOR_SLACK_MS;
  store.server.guard.leaseUntil = -Infinity;
  for (const e of guard.replay) store.server.replay.add(e.user, Buffer.from(e.nonce, 'hex').toString('latin1'), e.expiresAt, startedAt);
  for (const [u, s] of guard.totp) store.server.totp.restore(u, s);
  store.server.totp.raiseFloor(guard.totpFloorStep);
  let floor = Math.max(guard.floorMs, startedAt);

  // Logging: totals a minute, a budget for per-datagram lines.
  let lastTotals = emptyCounts();
  let budget = REFUSED_LOG_BUDGET;
  let suppressed = 0;
  let lastFloorComplaint = -Infinity;
  const attach = (s: SpaStore): void => {
    s.onAlert = (v) => log.error({ user: v.user, door: v.door }, v.alert ?? 'spa alert');
    s.onRefused = (v, source) => {
      if (budget > 0) {
        budget--;
        log.info({ door: v.door, user: v.user, source, reason: v.reason, ...(v.detail !== undefined ? { detail: v.detail } : {}) }, 'spa datagram refused');
      } else {
        suppressed++;
      }
    };
  };
  attach(store);

  const reanchor = (): void => {
    const sys = now();
    store.offsetMs = sys - options.captureClock();
    if (sys > floor) floor = sys;
    if (sys < store.server.guard.floorMs && sys - lastFloorComplaint >= MINUTE_MS) {
      lastFloorComplaint = sys;
      log.error(
        { systemTime: new Date(sys).toISOString(), floor: new Date(store.server.guard.floorMs + FLOOR_SLACK_MS).toISOString(), stateFile: state.file },
        'system clock is below the latest time knockwatch has seen: spa doors refuse every datagram until the clock catches up (check NTP and the RTC)',
      );
    }
  };
  reanchor();
  // Every user's hints for the whole window, now rather than on the first datagram.
  store.server.hints.advance(now());

  let writing = false;
  const renew = async (): Promise<void> => {
    if (writing) return;
    writing = true;
    try {
      const t0 = process.hrtime.bigint();
      const r = leaseRecord(now(), floor, maxAgeMs, server().totp.entries());
      await state.write(r);
      store.server.guard.leaseUntil = r.lease;
      log.debug({ lease: new Date(r.lease).toISOString(), ms: Number(process.hrtime.bigint() - t0) / 1e6 }, 'spa lease written');
    } catch (err) {
      // Without a lease on disk spa refuses (no-lease) rather than risk a replay after a crash.
      log.error({ err: (err as Error).message }, 'spa: cannot renew the lease; spa datagrams are refused until it is written');
    } finally {
      writing = false;
    }
  };
  const t0 = process.hrtime.bigint();
  await renew();
  if (store.server.guard.leaseUntil === -Infinity) throw new Error(`cannot write the spa state file ${state.file}`);
  log.info(
    {
      stateFile: state.file,
      state: guard.why,
      users: users.map((u) => u.name),
      ...(guard.horizonMs > -Infinity ? { refusedUpTo: new Date(guard.horizonMs).toISOString() } : {}),
      firstLeaseMs: Math.round(Number(process.hrtime.bigint() - t0) / 1e4) / 100,
    },
    guard.why === 'clean-stop'
      ? 'spa ready: replay cache restored from the last clean stop'
      : 'spa ready: datagrams with a client time up to the restart horizon are refused (the last run may have accepted them)',
  );

  const step = async (): Promise<void> => {
    reanchor();
    // The hints of the next 10 s step are computed here, one tick early, not by
    // the first datagram after the step changes (one HMAC per user key: ~2 ms
    // for 1,000 keys on a knock's path otherwise).
    store.server.hints.advance(now() + CLOCK_TICK_MS);
    if (leaseDue(store.server.guard.leaseUntil, now())) await renew();
  };
  const tick = setInterval(() => void step(), CLOCK_TICK_MS);
  tick.unref();
  const minute = setInterval(() => {
    const counts = store.server.counts;
    const delta: Partial<Record<SpaRejectReason, number>> = {};
    let any = false;
    for (const k of Object.keys(counts) as SpaRejectReason[]) {
      const d = counts[k] - lastTotals[k];
      if (d > 0) {
        delta[k] = d;
        any = true;
      }
    }
    lastTotals = { ...counts };
    if (any || suppressed > 0) log.info({ rejected: delta, linesSuppressed: suppressed, replayCache: store.server.replay.size }, 'spa rejections in the last minute');
    budget = REFUSED_LOG_BUDGET;
    suppressed = 0;
    store.server.replay.expire(now());
  }, MINUTE_MS);
  minute.unref();

  return {
    get store() {
      return store;
    },
    stateFile: state.file,
    tick: step,
    reload(next, nextUsers) {
      const removed = [...store.server.users.keys()].filter((u) => !nextUsers.some((n) => n.name === u));
      const t = now();
      const live = (u: string): string[] => [...(store.server.holders.get(u) ?? new Map<string, number>())].filter(([, until]) => until > t).map(([a]) => a);
      const kept = new Set(nextUsers.flatMap((u) => live(u.name)));
      const closeAddresses = new Set(removed.flatMap(live).filter((a) => !kept.has(a)));
      const carried = store;
      store = createMemorySpaStore(nextUsers, spaDoors(next), carried);
      store.server.hints.advance(t);
      attach(store);
      maxAgeMs = Math.max(maxAgeMs, maxAgeOf(next));
      return { store, removedUsers: removed, closeAddresses };
    },
    async stop() {
      clearInterval(tick);
      clearInterval(minute);
      const t = now();
      // Nothing is accepted from here on.
      store.server.guard.leaseUntil = -Infinity;
      try {
        store.server.replay.expire(t);
        await state.write(cleanStopRecord(t, floor, maxAgeMs, store.server.totp.entries(), store.server.replay.entries()));
      } catch (err) {
        log.error({ err: (err as Error).message }, 'spa: cannot write the replay cache at stop; the next start refuses datagrams up to its lease horizon');
      }
    },
  };
}

