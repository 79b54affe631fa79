// Limits of the capture backends that a config can exceed although every
// value in it is valid on its own. Checked when a config is parsed, for the
// backend that will run (error), and by check-config for the other one
// (warning), so a config never fails only at start-up with a loader error.
import { EBPF_MAX_PORTS } from '../limits.js';
import { captureNeeds } from '../detect/index.js';
import { loaderPortArgs } from '../port-runs.js';
import { formatPort, type CaptureKind, type Door } from '../types.js';

export interface BackendLimit {
  readonly capture: CaptureKind;
  readonly message: string;
}

/** Every backend limit these doors exceed, one entry per backend and limit. */
export function exceededBackendLimits(doors: readonly Door[]): BackendLimit[] {
  const out: BackendLimit[] = [];
  // The loader gets each distinct step once and each open port that is not
  // also a step: what captureNeeds() derives from the doors, whatever their
  // kind. Consecutive ports of one class are one argument (port-runs.ts: a
  // rotating door's range), so the limit is on arguments.
  const needs = captureNeeds(doors);
  const ports = new Set([...needs.steps, ...needs.openPorts].map(formatPort));
  const args = loaderPortArgs(needs.steps, needs.firstSteps, needs.openPorts).length;
  if (args > EBPF_MAX_PORTS) {
    const what = args === ports.size ? `${ports.size} distinct ports` : `${ports.size} distinct ports in ${args} runs of neighbouring ports`;
    out.push({
      capture: 'ebpf',
      message:
        `the doors use ${what} (knock steps and open ports); capture ebpf takes at most ${EBPF_MAX_PORTS} ` +
        `(MAX_PORTS of its loader): use fewer ports, or capture: pcap, which has no port limit`,
    });
  }
  return out;
}
