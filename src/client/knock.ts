// The knock client: sends a sequence of single TCP SYNs and UDP datagrams, the
// way knockd's `knock` does, and can test afterwards whether a port accepts a
// connection (open), is answered with a reset (refused) or not at all (filtered).
//
// A TCP knock must be exactly one SYN. The socket is closed as soon as the
// kernel has issued the non-blocking connect(): closing a socket in SYN_SENT
// sends nothing (no FIN, no RST), and because it is gone long before the first
// retransmission timer (1 s on Linux) fires, the SYN is never repeated. If the
// neighbour (ARP/NDP) entry is not resolved yet, the kernel keeps the queued
// SYN and sends it once resolution completes, after the socket is closed.
import net from 'node:net';
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PortSpec } from '../types.js';

export type Family = 4 | 6;

export interface KnockOptions {
  /** Host name or address, resolved once for the whole sequence. */
  readonly host: string;
  readonly steps: readonly PortSpec[];
  /** Pause between two knocks, ms (knockd's default is 0). */
  readonly delayMs: number;
  /** Restrict name resolution to IPv4 or IPv6. */
  readonly family?: Family;
  /** UDP datagram payload (default: DEFAULT_UDP_PAYLOAD). TCP knocks carry none. */
  readonly payload?: Uint8Array;
  /** Per step, a payload that replaces `payload` for that UDP step (passphrase digests). */
  readonly payloads?: readonly (Uint8Array | undefined)[];
  /** Local address to send from (must be configured on this host). */
  readonly sourceAddress?: string;
  /** Called after each knock has left, with the resolved target address. */
  readonly onStep?: (step: PortSpec, index: number, address: string) => void;
}

/** Four zero bytes: small, and non-empty so nothing on the path drops it as a probe. */
export const DEFAULT_UDP_PAYLOAD: Uint8Array = new Uint8Array(4);

export interface Target {
  readonly address: string;
  readonly family: Family;
}

/**
 * Resolve `host` to one address. An address literal is used as is, but must
 * agree with `family`; a name is looked up once with the system resolver.
 */
export async function resolveTarget(host: string, family?: Family): Promise<Target> {
  const literal = net.isIP(host);
  if (literal === 4 || literal === 6) {
    if (family !== undefined && family !== literal) {
      throw new Error(`host '${host}' is an IPv${literal} address but IPv${family} was requested`);
    }
    return { address: host, family: literal };
  }
  try {
    const r = await lookup(host, { family: family ?? 0, verbatim: true });
    return { address: r.address, family: r.family === 6 ? 6 : 4 };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new Error(`cannot resolve host '${host}'${family ? ` as IPv${family}` : ''}: ${code}`);
  }
}

function checkSource(sourceAddress: string | undefined, target: Target): void {
  if (sourceAddress === undefined) return;
  const f = net.isIP(sourceAddress);
  if (f === 0) throw new Error(`source address '${sourceAddress}' is not an IP address`);
  if (f !== target.family) {
    throw new Error(`source address '${sourceAddress}' is IPv${f} but the target ${target.address} is IPv${target.family}`);
  }
}

function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message ?? String(err);
}

/** Send one SYN to target:port and close the socket before any handshake or retransmission. */
export function sendSyn(target: Target, port: number, sourceAddress?: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let sent = false;
    const socket = net.connect({ host: target.address, port, family: target.family, localAddress: sourceAddress });
    // Emitted synchronously just before the connect() call; a nextTick callback
    // queued here runs right after that call returned. If connect() failed at
    // once (no route, address not available), Node has destroyed the socket by
    // then and 'error' follows; otherwise the SYN is out (or queued behind ARP).
    socket.once('connectionAttempt', () => {
      process.nextTick(() => {
        if (socket.destroyed) return;
        sent = true;
        socket.destroy();
        resolve();
      });
    });
    // Errors after the SYN left (a refusal racing the close) are expected and ignored.
    socket.on('error', (err) => {
      if (!sent) reject(new Error(`TCP knock to [${target.address}]:${port} failed: ${describeError(err)}`));
    });
  });
}

/** Send one UDP datagram to target:port. */
export function sendDatagram(target: Target, port: number, payload: Uint8Array, sourceAddress?: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const socket = dgram.createSocket(target.family === 6 ? 'udp6' : 'udp4');
    // A failed send can report both through its callback and 'error': settle once.
    let settled = false;
    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      socket.close();
      if (err === undefined) resolve();
      else reject(new Error(`UDP knock to [${target.address}]:${port} failed: ${describeError(err)}`));
    };
    socket.on('error', settle);
    const send = () => socket.send(payload, port, target.address, (err) => settle(err ?? undefined));
    if (sourceAddress === undefined) send();
    else socket.bind({ address: sourceAddress, port: 0, exclusive: true }, send);
  });
}

/** Send the knock sequence in order, one packet per step. Rejects on the first step that cannot be sent. */
export async function knock(options: KnockOptions): Promise<void> {
  if (!Number.isInteger(options.delayMs) || options.delayMs < 0) {
    throw new Error(`invalid delay ${options.delayMs}: expected a whole number of milliseconds >= 0`);
  }
  if (options.steps.length === 0) throw new Error('no knock steps given');
  const family = options.family ?? sourceFamily(options.sourceAddress);
  const target = await resolveTarget(options.host, family);
  checkSource(options.sourceAddress, target);
  const payload = options.payload ?? DEFAULT_UDP_PAYLOAD;
  for (let i = 0; i < options.steps.length; i++) {
    if (i > 0 && options.delayMs > 0) await sleep(options.delayMs);
    const step = options.steps[i];
    if (step.protocol === 'tcp') await sendSyn(target, step.port, options.sourceAddress);
    else await sendDatagram(target, step.port, options.payloads?.[i] ?? payload, options.sourceAddress);
    options.onStep?.(step, i, target.address);
  }
}

/** A source address decides the family to resolve when none is given. */
function sourceFamily(sourceAddress: string | undefined): Family | undefined {
  const f = sourceAddress === undefined ? 0 : net.isIP(sourceAddress);
  return f === 4 || f === 6 ? f : undefined;
}

export interface CheckOptions {
  readonly sourceAddress?: string;
  /**
   * Keep retrying a refused or unreachable connection (every 100 ms) until the
   * timeout, for a check right after knocking: the daemon opens the port some
   * tens of ms after the last knock, and a rejecting firewall refuses until then.
   */
  readonly retryUntilTimeout?: boolean;
}

const RETRY_INTERVAL_MS = 100;

/**
 * What a TCP connect to a port found:
 * - open: the handshake completed (something listens and the firewall let us in);
 * - refused: a reset came back (or an ICMP port unreachable): the host answered,
 *   so nothing dropped us, but nothing listens there;
 * - filtered: no usable answer within the timeout (dropped, or an ICMP
 *   host/network unreachable or administratively prohibited).
 */
export type CheckResult = 'open' | 'refused' | 'filtered';

/**
 * Tests a TCP connection to host:port within `timeoutMs` (see CheckResult).
 * With retryUntilTimeout, a refused or unreachable answer is retried until the
 * timeout and the last answer counts. Throws only when the host cannot be
 * resolved or the source address is unusable.
 */
export async function checkPort(
  host: string,
  port: number,
  timeoutMs: number,
  family?: Family,
  options: CheckOptions = {},
): Promise<CheckResult> {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid port ${port}: expected 1-65535`);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new Error(`invalid timeout ${timeoutMs}: expected milliseconds > 0`);
  const target = await resolveTarget(host, family ?? sourceFamily(options.sourceAddress));
  checkSource(options.sourceAddress, target);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const left = deadline - performance.now();
    const outcome = await connectOnce(target, port, Math.max(1, left), options.sourceAddress);
    if (outcome === 'open') return 'open';
    const result = outcome === 'refused' ? 'refused' : 'filtered';
    if (outcome === 'timeout' || !options.retryUntilTimeout) return result;
    if (deadline - performance.now() <= RETRY_INTERVAL_MS) return result;
    await sleep(RETRY_INTERVAL_MS);
  }
}

type Outcome = 'open' | 'refused' | 'unreachable' | 'timeout';

function connectOnce(target: Target, port: number, timeoutMs: number, sourceAddress?: string): Promise<Outcome> {
  return new Promise<Outcome>((resolve, reject) => {
    const socket = net.connect({ host: target.address, port, family: target.family, localAddress: sourceAddress });
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    function finish(o: Outcome): void {
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    }
    socket.once('connect', () => finish('open'));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A source address that cannot be bound is the caller's mistake, not a closed port.
      if (err.code === 'EADDRNOTAVAIL' || err.code === 'EINVAL') {
        clearTimeout(timer);
        socket.destroy();
        reject(new Error(`cannot connect from source address '${sourceAddress ?? ''}' to [${target.address}]:${port}: ${err.code}`));
        return;
      }
      finish(err.code === 'ECONNREFUSED' ? 'refused' : 'unreachable');
    });
  });
}
