// The one interface every door kind implements. A kind decides what a knock
// means for one source's progress on one door; everything else (which sources
// have state, when state goes stale, who holds access until when) is shared
// by every kind: source-table.ts and access-ledger.ts.
//
// The matcher reports through a sink instead of returning outcome objects: a
// source part-way through a door pays for every knock it sends, and an object
// per knock and door would put the garbage collector on that path.
import type { KnockEvent, PortSpec, Protocol, ResetReason } from '../types.js';

/** Number of distinct keys: 65536 TCP ports followed by 65536 UDP ports. */
export const KEY_SPACE = 131072;

/** (port, protocol) as one integer: TCP ports keep their number, UDP ports add 65536. */
export function portKey(port: number, protocol: Protocol): number {
  return protocol === 'udp' ? port + 65536 : port;
}

/** What capture must deliver for a door (and, merged, for all of them: capture-needs.ts). */
export interface MatcherWatch {
  /**
   * Protocols whose knocks must all be delivered, on any port: a knock on a
   * port no door uses still resets a source part-way through.
   */
  readonly protocols: readonly Protocol[];
  /** Knocks that create state for a source that has none: the only ones a stranger's packet can matter on. */
  readonly firstSteps: readonly PortSpec[];
  /** Every port the door's progress listens to, first steps included. */
  readonly steps: readonly PortSpec[];
  /** Ports the door opens: knocks there never reset the door. */
  readonly openPorts: readonly PortSpec[];
}

/** Where a matcher's reports go; the detector fills in door, source and time. */
export interface MatchSink {
  /** The knock touched this door (logged as a 'knock' decision). */
  knock(): void;
  /** A step was accepted: `step` of `of` done. Also marks the source active. */
  progress(step: number, of: number): void;
  /** The attempt ended after `step` steps; `key` is the knock's portKey, or -1 when no knock caused it. */
  reset(reason: ResetReason, step: number, key: number): void;
  /**
   * The door is open (right after the last progress) for `address`: by
   * default the knocking source; a single-packet kind may name the address
   * its authenticated payload binds (spa `allow_ip: any`).
   */
  complete(address?: string): void;
  /** A single-packet kind refused the packet, for `reason` (counted, logged at debug; never answered). */
  reject(reason: string): void;
}

interface MatcherBase {
  readonly index: number;
  readonly name: string;
  /**
   * Keys (portKey) this door acts on for a source that has no state: where a
   * source matcher may create state, or what a packet matcher judges.
   */
  readonly startKeys: readonly number[];
  readonly watch: MatcherWatch;
}

/**
 * A door kind that follows each source through several knocks (sequence).
 * `S` is the kind's per-source state: created by consume() on a knock in
 * startKeys, kept by the source table, never shared between doors or sources.
 */
export interface SourceMatcher<S> extends MatcherBase {
  /** Longest time (ms since the source's last progress) state of this door can still matter. */
  readonly horizonMs: number;
  /**
   * One knock (`key` = portKey) at packet time `t` from a source with state
   * `state` (undefined if this door has none for it yet); returns the state
   * to keep. Must create nothing for a key outside startKeys when state is undefined.
   */
  consume(state: S | undefined, key: number, ev: KnockEvent, t: number, sink: MatchSink): S | undefined;
  /** Steps done in a part-way attempt; 0 when there is none. */
  pending(state: S): number;
  /** Why a part-way attempt found stale is reset: whichever deadline passed first. */
  expiryReason(state: S): ResetReason;
  /** Forgets the part-way attempt (its reset has been reported). */
  abandon(state: S): void;
  /** Whether the state must outlive this knock (part-way, or a completion still shielded from a repeat). */
  live(state: S, t: number): boolean;
}

/**
 * A door kind that judges each packet on its own (spa). judge() sees every
 * knock on startKeys BEFORE the per-source table is consulted, and the kind
 * keeps no per-source state, so a flood of such packets never creates or
 * pushes out another door's progress. It reports knock/complete/reject only.
 */
export interface PacketMatcher extends MatcherBase {
  judge(ev: KnockEvent, key: number, t: number, sink: MatchSink): void;
}

/** One door of one kind, compiled. */
export type Matcher<S = unknown> = SourceMatcher<S> | PacketMatcher;

export function isPacketMatcher(m: Matcher): m is PacketMatcher {
  return 'judge' in m;
}
