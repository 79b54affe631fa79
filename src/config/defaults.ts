// The configuration used when no file is given: the seeds' single ssh door.
import type { KnockwatchConfig } from '../types.js';
import { DEFAULT_MAX_SOURCES } from '../limits.js';

/** A fresh copy each call, so callers can never alter the defaults. */
export function defaultConfig(): KnockwatchConfig {
  return {
    interface: 'any',
    firewall: 'nftables',
    capture: 'pcap',
    maxSources: DEFAULT_MAX_SOURCES,
    doors: [
      {
        kind: 'sequence',
        name: 'ssh',
        sequence: [
          { port: 1234, protocol: 'tcp' },
          { port: 5678, protocol: 'tcp' },
          { port: 9012, protocol: 'tcp' },
        ],
        windowMs: 10_000,
        open: [{ port: 2222, protocol: 'tcp' }],
        durationMs: 20_000,
      },
    ],
  };
}
