// Local UDP ports with a bound socket, from /proc/net/udp and udp6 (this
// process's network namespace). An spa port must have none: a datagram to a
// bound port reaches whatever listens there, which may answer.
import { readFile } from 'node:fs/promises';

/** Ports with a bound UDP socket (IPv4 or IPv6); empty when /proc cannot be read (not Linux). */
export async function listeningUdpPorts(_netns?: string): Promise<Set<number>> {
  const ports = new Set<number>();
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // "  sl  local_address rem_address   st ...": local_address is HEXADDR:HEXPORT.
      const local = line.trim().split(/\s+/)[1];
      const port = local === undefined ? NaN : parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
      if (Number.isInteger(port) && port > 0) ports.add(port);
    }
  }
  return ports;
}
