// The ports our chain drops for a door: the ports it opens (accepted only for
// sources with access) and, for an spa door, its datagram port, which is
// never opened to anyone: nothing is bound there, and without the drop the
// kernel would answer every datagram with an ICMP port unreachable. Capture
// (pcap, eBPF tc/XDP) sees packets before netfilter, so the drop hides
// nothing from the detector.
import type { Door, PortSpec } from '../types.js';

export function droppedPorts(door: Door): readonly PortSpec[] {
  return door.kind === 'spa' ? [...door.open, { port: door.port, protocol: 'udp' }] : door.open;
}
