// The sequence door kind: ordered knocks on ports within a window.
//
// Per source:
// - A knock on the first step starts an attempt (progress 1).
// - While part-way, the next knock must be the next step (port and protocol).
//   Anything else resets ('wrong-protocol' when only the protocol differs,
//   else 'wrong-port'), and if that knock is itself the first step, a new
//   attempt starts. Two exceptions neither reset nor progress: an exact repeat
//   of the step just accepted within REPEAT_MS (retransmitted or doubled SYNs),
//   and a knock on one of the door's own open ports (the client trying the
//   service early).
// - So a port sweep never opens a door: every port between two steps resets
//   the attempt, and doors whose consecutive steps are neighbouring ports are
//   refused (the rule in src/ports.ts, which the config loader applies too).
// - The attempt must complete within windowMs of its first step and, when
//   gapMs is set, each step within gapMs of the previous one (both
//   inclusive). A knock arriving later first resets the stale attempt
//   ('window' or 'gap', whichever deadline passed first), then counts fresh.
// - The repeat rule also covers the completing step, so a doubled final (or
//   single-step) knock does not open twice.
// - A passphrase step (`sha256`, UDP only) also needs its datagram to carry
//   the digest (payload-digest.ts): on that port anything else is a wrong
//   knock ('wrong-payload'), starts nothing as a first step, and is no repeat.
//   The payload is read only when the port already matched such a step.
import type { KnockEvent, ResetReason, SequenceDoor } from '../types.js';
import { sequenceHazards } from '../ports.js';
import { checkDuration, checkPort } from './checks.js';
import { digestBytes, payloadMatchesDigest } from './payload-digest.js';
import type { KindContext } from './kinds.js';
import { portKey, type MatchSink, type SourceMatcher } from './matcher.js';

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

/** One source's progress on one sequence door. */
export interface Progress {
  /** Steps accepted in the current attempt; 0 when not part-way through. */
  step: number;
  /** Packet time of the attempt's first step. */
  start: number;
  /** Packet time of the step accepted last (also of the completing step). */
  last: number;
  /** The step accepted last completed the sequence (for the repeat rule). */
  completed: boolean;
}

export type SequenceMatcher = SourceMatcher<Progress>;

/** Validates the sequence part of a door (`ctx.at` names it in errors) and compiles its matcher. */
export function sequenceMatcher(door: SequenceDoor, ctx: Pick<KindContext, 'index' | 'at'>): SequenceMatcher {
  const { index, at } = ctx;
  if (door.sequence.length === 0) throw new Error(`${at}: sequence is empty`);
  door.sequence.forEach((s, i) => checkPort(s, `${at} sequence[${i}]`));
  checkDuration(door.windowMs, `${at} windowMs`);
  if (door.gapMs !== undefined) checkDuration(door.gapMs, `${at} gapMs`);
  // A door a sweep or a retransmission could open cannot keep the promise above.
  const hazard = sequenceHazards(door.sequence)[0];
  if (hazard !== undefined) throw new Error(`${at} sequence[${hazard.index}]: ${hazard.message}`);

  // Hot path: a knock is matched against a step with one integer comparison.
  const steps = Int32Array.from(door.sequence, (s) => portKey(s.port, s.protocol));
  const length = steps.length;
  const firstKey = steps[0];
  const lastKey = steps[length - 1];
  const openKeys = new Set(door.open.map((s) => portKey(s.port, s.protocol)));
  // Per step: the digest its datagram must spell (passphrase steps), else undefined.
  const digests = door.sequence.map((s, i) => {
    if (s.sha256 === undefined) return undefined;
    if (s.protocol !== 'udp') throw new Error(`${at} sequence[${i}]: sha256 on a TCP step (UDP is a requirement when using a passphrase)`);
    return digestBytes(s.sha256, `${at} sequence[${i}]`);
  });
  /** Whether the knock's payload is what step `i` requires (always, for a plain step). */
  const payloadOk = (i: number, ev: KnockEvent): boolean => {
    const d = digests[i];
    return d === undefined || payloadMatchesDigest(ev.payload, d);
  };
  const windowMs = door.windowMs;
  const gapMs = door.gapMs ?? Infinity;

  function expiryReason(p: Progress): ResetReason {
    return p.last + gapMs < p.start + windowMs ? 'gap' : 'window';
  }

  function accept(p: Progress, t: number, sink: MatchSink): void {
    if (p.step === 0) p.start = t;
    p.step++;
    p.last = t;
    sink.progress(p.step, length);
    p.completed = p.step === length;
    if (p.completed) {
      p.step = 0;
      sink.complete();
    }
  }

  function consume(p: Progress | undefined, key: number, ev: KnockEvent, t: number, sink: MatchSink): Progress | undefined {
    if (p !== undefined && p.step > 0 && (t - p.start > windowMs || t - p.last > gapMs)) {
      // No port: the reset is about the stale attempt, whichever knock finds it.
      sink.reset(expiryReason(p), p.step, -1);
      p.step = 0;
      p.completed = false;
    }
    if (p !== undefined && p.step > 0) {
      sink.knock();
      if (key === steps[p.step] && payloadOk(p.step, ev)) {
        accept(p, t, sink);
      } else if ((key === steps[p.step - 1] && t - p.last <= REPEAT_MS && payloadOk(p.step - 1, ev)) || openKeys.has(key)) {
        // Retransmitted step, or the client trying the service early: no change.
      } else {
        const next = steps[p.step];
        sink.reset(key === next ? 'wrong-payload' : (key & 0xffff) === (next & 0xffff) ? 'wrong-protocol' : 'wrong-port', p.step, key);
        p.step = 0;
        p.completed = false;
        if (key === firstKey && payloadOk(0, ev)) accept(p, t, sink);
      }
    } else if (key === firstKey) {
      sink.knock();
      // A first passphrase step with the wrong datagram starts nothing.
      if (!payloadOk(0, ev)) return p;
      if (p === undefined) {
        p = { step: 0, start: t, last: t, completed: false };
        accept(p, t, sink);
      } else if (!(p.completed && key === lastKey && t - p.last <= REPEAT_MS)) {
        accept(p, t, sink);
      }
    }
    return p;
  }

  return {
    index,
    name: door.name,
    startKeys: [firstKey],
    // State lives at least REPEAT_MS so a doubled completing knock still finds it.
    horizonMs: Math.max(windowMs, REPEAT_MS),
    watch: {
      // Any SYN or UDP datagram resets a source part-way through, whatever the steps' protocols.
      protocols: ['tcp', 'udp'],
      firstSteps: [door.sequence[0]],
      steps: door.sequence,
      openPorts: door.open,
    },
    consume,
    pending: (p) => p.step,
    expiryReason,
    abandon: (p) => {
      p.step = 0;
    },
    live: (p, t) => p.step > 0 || (p.completed && t - p.last <= REPEAT_MS),
  };
}
