// The detector's ledger of open accesses, seen from the daemon: what the
// kernel must hold (reinstall after our rules were lost) and what a config
// reload carries over or ends. Packet time is wall-clock time in live
// operation, so the ledger's deadlines compare with the wall clock.
import type { OpenAccess } from '../detect/index.js';
import { accessFromDecision, type Access } from '../firewall/index.js';
import type { Door, OpenDecision } from '../types.js';

function asOpen(a: OpenAccess, now: number): OpenDecision {
  return { type: 'open', door: a.door, source: a.source, time: now, until: a.until, ports: a.ports, refreshed: true };
}

/** The firewall access for a ledger entry (deadline unchanged). */
export function ledgerAccess(a: OpenAccess, now: number): Access {
  return accessFromDecision(asOpen(a, now), now);
}

const sameCommand = (x: readonly string[] | undefined, y: readonly string[] | undefined): boolean =>
  x === y || (x !== undefined && y !== undefined && x.length === y.length && x.every((arg, i) => arg === y[i]));

/**
 * Whether a reload to `doors` ends an access (for Detector.closeForReload).
 * An access is carried (same deadline, no start command again) when its door
 * still exists, still opens every port it holds and has the same start/stop
 * commands: its stop command, run at the close, then balances the start
 * command that ran at the open. Otherwise it ends now, reason 'reload', with
 * the old door's stop command. A changed sequence, window or duration does
 * not end it.
 */
export function endsOnReload(before: readonly Door[], doors: readonly Door[]): (access: OpenAccess) => boolean {
  return (a) => {
    const old = before.find((d) => d.name === a.door);
    const door = doors.find((d) => d.name === a.door);
    const keeps =
      door !== undefined &&
      a.ports.every((p) => door.open.some((o) => o.port === p.port && o.protocol === p.protocol)) &&
      sameCommand(old?.startCommand, door.startCommand) &&
      sameCommand(old?.stopCommand, door.stopCommand);
    return !keeps;
  };
}
