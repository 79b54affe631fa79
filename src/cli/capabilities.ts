// Which of the capabilities the daemon needs this process lacks, read from
// /proc/self/status (CapEff), so the start-up warning is true for a service
// that runs as its own user with ambient capabilities (deploy/knockwatch.service)
// and is not printed merely because the uid is not 0.
import { readFileSync } from 'node:fs';

/** Capability bit numbers (linux/capability.h). */
const NEEDED = { CAP_NET_ADMIN: 12n, CAP_NET_RAW: 13n } as const;

/** Names of the needed capabilities missing from a /proc/PID/status text; undefined when it has no CapEff line. */
export function missingCapabilities(statusText: string): string[] | undefined {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(statusText);
  if (!m) return undefined;
  const effective = BigInt(`0x${m[1]}`);
  return Object.entries(NEEDED)
    .filter(([, bit]) => ((effective >> bit) & 1n) === 0n)
    .map(([name]) => name);
}

/** The same for this process; undefined where /proc cannot tell. */
export function missingOwnCapabilities(): string[] | undefined {
  try {
    return missingCapabilities(readFileSync('/proc/self/status', 'utf8'));
  } catch {
    return undefined;
  }
}
