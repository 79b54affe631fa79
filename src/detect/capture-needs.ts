// What the capture stages must let through, derived from the doors' matchers,
// so a new door kind states its needs once (its MatcherWatch) and no capture
// code changes. Capture sits before detect in the data flow and must not
// import this: the composition root (daemon.ts) computes the needs and hands
// them to the pcap filter / eBPF loader as plain data.
import type { Door, PortSpec, Protocol } from '../types.js';
import { formatPort } from '../types.js';
import { compileDoors } from './doors.js';

export interface CaptureNeeds {
  /** Protocols whose knocks must reach the detector on ANY port (a wrong port resets), tcp first. */
  readonly protocols: readonly Protocol[];
  /** Distinct ports on which a source with no state can start one (eBPF: makes a source active). */
  readonly firstSteps: readonly PortSpec[];
  /** Distinct ports some door's progress listens to, first steps included. */
  readonly steps: readonly PortSpec[];
  /** Distinct open ports: an active source's knocks there are delivered without ending its activity. */
  readonly openPorts: readonly PortSpec[];
}

/** Distinct ports, first occurrence first, as fresh plain objects. */
function distinct(ports: Iterable<PortSpec>): PortSpec[] {
  const seen = new Map<string, PortSpec>();
  for (const p of ports) if (!seen.has(formatPort(p))) seen.set(formatPort(p), { port: p.port, protocol: p.protocol });
  return [...seen.values()];
}

/** The union of every door's needs. Validates the doors as the detector does (throws naming door and field). */
export function captureNeeds(doors: readonly Door[]): CaptureNeeds {
  const watches = compileDoors(doors).doors.map((d) => d.matcher.watch);
  const protocols = new Set(watches.flatMap((w) => w.protocols));
  return {
    protocols: (['tcp', 'udp'] as const).filter((p) => protocols.has(p)),
    firstSteps: distinct(watches.flatMap((w) => w.firstSteps)),
    steps: distinct(watches.flatMap((w) => w.steps)),
    openPorts: distinct(watches.flatMap((w) => w.openPorts)),
  };
}
