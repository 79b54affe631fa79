// The keys of an `spa` door: one authenticated UDP datagram opens it
// (src/spa/ has the datagram format and every rule). Users and their key
// files are the top-level `users:` (config/users.ts); a door names who may
// open it.
import { z } from 'zod';
import type { SpaDoor } from '../types.js';
import { MAX_MAX_AGE_MS, DEFAULT_MAX_AGE_MS } from '../spa/verify.js';
import { USER_NAME_RE } from '../spa/keys.js';
import { defineDoorKind } from './door-kind.js';
import { formatDuration } from './duration.js';
import { ValueError, describeValue } from './errors.js';
import { parsePortSpec } from './port.js';
import { duration, typeError, value } from './values.js';

/** `62201/udp` or `62201`: a UDP port (a datagram; tcp is refused). */
const spaPort = value((v): number => {
  if (typeof v !== 'string' && typeof v !== 'number') throw new ValueError(`expected a UDP port such as 62201/udp, got ${describeValue(v)}`);
  const explicitTcp = typeof v === 'string' && /[/:]\s*tcp\s*$/i.test(v);
  const p = parsePortSpec(v);
  if (explicitTcp) throw new ValueError(`spa datagrams are UDP: write ${p.port}/udp (a TCP SYN cannot carry the sealed payload)`);
  return p.port;
});

export const userName = value((v): string => {
  if (typeof v !== 'string') throw new ValueError(`expected a user name, got ${describeValue(v)}`);
  if (!USER_NAME_RE.test(v)) throw new ValueError(`invalid user name '${v}': use 1-32 letters, digits, '_', '.' or '-', not starting with '.' or '-'`);
  return v;
});

const allowIp = value((v): 'source' | 'any' => {
  if (v !== 'source' && v !== 'any') {
    throw new ValueError(`expected source (the sealed address must be the packet's source) or any (open the sealed address, for NAT), got ${describeValue(v)}`);
  }
  return v;
});

export const spaShape = {
  spa: spaPort,
  users: z.array(userName, { error: typeError('a list of user names such as [alice, bob]') }).min(1, { error: 'must not be empty: leave the key out to allow every user' }).optional(),
  totp: z.boolean({ error: typeError('true or false') }).optional(),
  allow_ip: allowIp.optional(),
  max_age: duration('max_age', MAX_MAX_AGE_MS).optional(),
};

export const spaKind = defineDoorKind<typeof spaShape, SpaDoor>({
  kind: 'spa',
  key: 'spa',
  shape: spaShape,
  toDoor: (d, common) => ({
    kind: 'spa',
    ...common,
    port: d.spa,
    ...(d.users !== undefined ? { users: d.users } : {}),
    totp: d.totp ?? false,
    allowIp: d.allow_ip ?? 'source',
    maxAgeMs: d.max_age ?? DEFAULT_MAX_AGE_MS,
  }),
  toJSON: (d) => ({
    spa: `${d.port}/udp`,
    ...(d.users !== undefined ? { users: [...d.users] } : {}),
    totp: d.totp,
    allow_ip: d.allowIp,
    max_age: formatDuration(d.maxAgeMs),
  }),
});
