// Parsing of knock steps in knockd's client syntax: `PORT`, `PORT:tcp`,
// `PORT:udp`, and the `PORT/tcp`, `PORT/udp` form knockwatch configs use.
import type { PortSpec, Protocol } from '../types.js';

const STEP = /^(\d{1,5})(?:[:/]([A-Za-z]+))?$/;

/**
 * Parse one knock step. `defaultProtocol` applies when no protocol is written
 * (knockd's `-u` turns it to udp). Throws an Error naming the offending text.
 */
export function parseKnockStep(text: string, defaultProtocol: Protocol = 'tcp'): PortSpec {
  const m = STEP.exec(text.trim());
  if (!m) throw new Error(`invalid knock step '${text}': expected PORT, PORT:tcp, PORT:udp, PORT/tcp or PORT/udp`);
  const port = Number(m[1]);
  if (port < 1 || port > 65535) throw new Error(`invalid knock step '${text}': port ${port} is outside 1-65535`);
  const proto = m[2]?.toLowerCase() ?? defaultProtocol;
  if (proto !== 'tcp' && proto !== 'udp') throw new Error(`invalid knock step '${text}': protocol '${m[2]}' is neither tcp nor udp`);
  return { port, protocol: proto };
}

/** Parse a plain port number (for --check). Throws an Error naming `what`. */
export function parsePort(text: string, what: string): number {
  if (!/^\d{1,5}$/.test(text.trim())) throw new Error(`invalid ${what} '${text}': expected a port number 1-65535`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new Error(`invalid ${what} '${text}': port ${port} is outside 1-65535`);
  return port;
}
