// Field checks shared by door validation (doors.ts) and every door kind. The
// config loader validates too, but the detector is a module edge of a security
// daemon: a door it cannot enforce exactly is refused with the field named.
import type { PortSpec } from '../types.js';

export function checkPort(spec: PortSpec, where: string): void {
  if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) {
    throw new Error(`${where}: port must be an integer 1-65535, got ${String(spec.port)}`);
  }
  if (spec.protocol !== 'tcp' && spec.protocol !== 'udp') {
    throw new Error(`${where}: protocol must be 'tcp' or 'udp', got ${String(spec.protocol)}`);
  }
}

export function checkDuration(value: number | undefined, where: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new Error(`${where}: must be a positive finite number of ms, got ${String(value)}`);
  }
}
