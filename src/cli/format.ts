// Rendering of decisions for the replay command: readable text or JSON lines.
import type { Decision } from '../types.js';
import { formatPort } from '../types.js';

function iso(ms: number): string {
  // The readers only accept times up to 9999, so this holds a Date; but a
  // RangeError here would end a replay with a stack trace, so any other
  // number is printed as it is rather than thrown.
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `invalid time ${ms}` : d.toISOString();
}

/** The JSON-lines shape: stable keys, ISO 8601 times, ports as PORT/proto. */
export function decisionToJSON(d: Decision): Record<string, unknown> {
  const base = { type: d.type, time: iso(d.time), door: d.door, source: d.source };
  switch (d.type) {
    case 'knock':
      return { ...base, port: d.port, protocol: d.protocol };
    case 'progress':
      return { ...base, step: d.step, of: d.of };
    case 'reset':
      return d.port === undefined
        ? { ...base, reason: d.reason, step: d.step }
        : { ...base, reason: d.reason, step: d.step, port: d.port, protocol: d.protocol };
    case 'open':
      return { ...base, ports: d.ports.map(formatPort), until: iso(d.until), refreshed: d.refreshed };
    case 'close':
      return { ...base, ports: d.ports.map(formatPort), reason: d.reason };
    case 'reject':
      return { ...base, reason: d.reason };
  }
}

export function decisionToText(d: Decision): string {
  const head = `${iso(d.time)}  ${d.type.padEnd(8)} ${d.door}  ${d.source}`;
  switch (d.type) {
    case 'knock':
      return `${head}  ${d.port}/${d.protocol}`;
    case 'progress':
      return `${head}  step ${d.step}/${d.of}`;
    case 'reset': {
      const at = d.port === undefined ? '' : ` by ${d.port}/${d.protocol}`;
      return `${head}  ${d.reason} after step ${d.step}${at}`;
    }
    case 'open':
      return `${head}  ${d.ports.map(formatPort).join(',')} until ${iso(d.until)}${d.refreshed ? ' (refreshed)' : ''}`;
    case 'close':
      return `${head}  ${d.ports.map(formatPort).join(',')} (${d.reason})`;
    case 'reject':
      return `${head}  ${d.reason}`;
  }
}
