// How the daemon logs each decision: one info line per open, refresh, close
// and reset after real progress; what scanners and floods produce (a reset
// after only a first step, single knocks, progress) stays at debug level.
import type { Logger } from '../log.js';
import type { Decision } from '../types.js';
import { formatPort } from '../types.js';

export function logDecision(log: Logger, d: Decision): void {
  switch (d.type) {
    case 'open':
      log.info({ door: d.door, source: d.source, ports: d.ports.map(formatPort), until: new Date(d.until).toISOString(), refreshed: d.refreshed }, d.refreshed ? 'access refreshed' : 'access opened');
      break;
    case 'close': {
      // A stop leaves every access to its kernel timeout: one summary line
      // (logged by the daemon) says how many, rather than one line each -
      // after 30,000 spoofed completions those lines alone took 1.3-1.8 s of
      // the stop (bench:flood, completions scenario).
      const fields = { door: d.door, source: d.source, ports: d.ports.map(formatPort), reason: d.reason };
      if (d.reason === 'shutdown') log.debug(fields, 'access left to its kernel timeout');
      else log.info(fields, 'access closed');
      break;
    }
    case 'reset': {
      // A reset after real progress is news; one after only a first step is
      // what every scanner and spoofed flood produces.
      const fields = { door: d.door, source: d.source, reason: d.reason, step: d.step, port: d.port, protocol: d.protocol };
      if (d.step >= 2) log.info(fields, 'sequence reset');
      else log.debug(fields, 'sequence reset');
      break;
    }
    case 'progress':
      log.debug({ door: d.door, source: d.source, step: d.step, of: d.of }, 'sequence progress');
      break;
    case 'knock':
      log.debug({ door: d.door, source: d.source, port: d.port, protocol: d.protocol }, 'knock');
      break;
    case 'reject':
      // Junk is what floods are made of: per-packet lines only at debug.
      log.debug({ door: d.door, source: d.source, reason: d.reason }, 'knock rejected');
      break;
  }
}
