// The spa client: one sealed UDP datagram to the server's spa port.
//
// The address to open is sealed inside (never "whatever the source is", which
// anyone who sees the datagram could race from their own address). It is this
// host's address on the way to the server, as the kernel picks it: a UDP
// socket is connect()ed to the server (no packet is sent by that) and
// getsockname() gives the local address. Behind NAT the server sees another
// address: then --allow-ip names it and the door must say `allow_ip: any`.
import dgram from 'node:dgram';
import { formatAddress, parseAddress, refusedAddress, type SpaAddress } from '../spa/address.js';
import { knockDatagram } from '../spa/seal.js';
import { resolveTarget, type Family, type Target } from './knock.js';

/** fwknop's port; any unbound UDP port works. */
export const DEFAULT_SPA_PORT = 62201;

export interface SpaKnockOptions {
  readonly host: string;
  readonly port: number;
  /** The user's 32-byte key. */
  readonly key: Uint8Array;
  readonly user: string;
  readonly door: string;
  readonly family?: Family;
  /** The address to open instead of our own (behind NAT; the door needs allow_ip: any). */
  readonly allowIp?: string;
  /** Local address to send from. */
  readonly sourceAddress?: string;
  readonly totp?: number;
  /** Client time (default Date.now). */
  readonly now?: () => number;
}

export interface SpaKnockResult {
  readonly target: Target;
  /** The address sealed in the datagram. */
  readonly address: string;
  readonly bytes: number;
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message ?? String(err);
}

export async function sendSpaKnock(o: SpaKnockOptions): Promise<SpaKnockResult> {
  const target = await resolveTarget(o.host, o.family);
  let sealed: SpaAddress | undefined;
  if (o.allowIp !== undefined) {
    sealed = parseAddress(o.allowIp);
    if (sealed === undefined) throw new Error(`--allow-ip '${o.allowIp}' is not an IP address`);
    const why = refusedAddress(sealed);
    if (why !== undefined) throw new Error(`--allow-ip ${o.allowIp} is ${why}: the server refuses to open it`);
  }
  const socket = dgram.createSocket(target.family === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      const connect = (): void => socket.connect(o.port, target.address, () => resolve());
      if (o.sourceAddress !== undefined) socket.bind({ address: o.sourceAddress, port: 0 }, connect);
      else connect();
    }).catch((err: unknown) => {
      throw new Error(`cannot reach ${target.address} port ${o.port}/udp: ${describe(err)}`);
    });
    if (sealed === undefined) {
      const local = socket.address().address;
      sealed = parseAddress(local);
      if (sealed === undefined) throw new Error(`cannot read this host's address towards ${target.address} (got '${local}')`);
      const why = refusedAddress(sealed);
      if (why !== undefined) throw new Error(`this host's address towards ${target.address} is ${local}, ${why}: the server will not open it (knock a remote address, or use --allow-ip)`);
    }
    const datagram = knockDatagram({
      key: o.key,
      user: o.user,
      door: o.door,
      address: sealed,
      time: (o.now ?? Date.now)(),
      ...(o.totp !== undefined ? { totp: o.totp } : {}),
    });
    await new Promise<void>((resolve, reject) => socket.send(datagram, (err) => (err ? reject(new Error(`cannot send to ${target.address} port ${o.port}/udp: ${describe(err)}`)) : resolve())));
    return { target, address: formatAddress(sealed), bytes: datagram.length };
  } finally {
    socket.close();
  }
}
