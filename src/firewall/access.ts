// From detection decisions (packet time) to firewall accesses (wall clock).
import { isIP } from 'node:net';
import type { CloseDecision, OpenDecision } from '../types.js';
import { FirewallError, type Access, type AccessKey } from './types.js';

function familyOf(source: string): 4 | 6 {
  const f = isIP(source);
  if (f !== 4 && f !== 6) throw new FirewallError(`decision for door has an invalid source address ${JSON.stringify(source)}`);
  return f;
}

/**
 * The access an open decision grants. The decision's deadline is in packet
 * time; the kernel counts from now, so the access keeps the decision's
 * remaining duration (until - time) measured from `nowMs` (wall clock),
 * whatever the offset between packet timestamps and this host's clock.
 */
export function accessFromDecision(decision: OpenDecision, nowMs: number): Access {
  return {
    door: decision.door,
    source: decision.source,
    family: familyOf(decision.source),
    ports: decision.ports,
    until: nowMs + (decision.until - decision.time),
  };
}

export function accessKeyFromDecision(decision: OpenDecision | CloseDecision): AccessKey {
  return { door: decision.door, source: decision.source, family: familyOf(decision.source), ports: decision.ports };
}
