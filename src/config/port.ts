// Port specs: `PORT`, `PORT/tcp`, `PORT/udp` (knockd's `PORT:udp` too); the
// protocol defaults to tcp.
import type { PortSpec, Protocol } from '../types.js';
import { ValueError } from './errors.js';

const HINT = 'expected PORT, PORT/tcp or PORT/udp';

function checkPort(n: number, shown: string): number {
  if (!Number.isInteger(n)) throw new ValueError(`port ${shown} is not an integer`);
  if (n < 1 || n > 65535) throw new ValueError(`port ${shown} is outside 1-65535`);
  return n;
}

/** Parse a port spec; throws ValueError quoting the input. */
export function parsePortSpec(text: string | number): PortSpec {
  if (typeof text === 'number') {
    return { port: checkPort(text, String(text)), protocol: 'tcp' };
  }
  if (typeof text !== 'string') throw new ValueError(`invalid port: ${HINT}`);
  const m = /^([^/:]*)(?:[/:](.*))?$/.exec(text.trim());
  const portText = m?.[1]?.trim() ?? '';
  if (!/^\d+$/.test(portText)) throw new ValueError(`invalid port '${text}': ${HINT}`);
  const port = checkPort(Number(portText), portText);
  const protoText = m?.[2];
  if (protoText === undefined) return { port, protocol: 'tcp' };
  const protocol = protoText.trim().toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp') {
    throw new ValueError(`unknown protocol '${protoText}' in '${text}' (expected tcp or udp)`);
  }
  return { port, protocol: protocol satisfies Protocol };
}

export function samePort(a: PortSpec, b: PortSpec): boolean {
  return a.port === b.port && a.protocol === b.protocol;
}
