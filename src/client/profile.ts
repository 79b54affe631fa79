// The client profile: named servers, so `knockwatch knock NAME` knocks with
// the right door, port, key and user (like fwknop's rc stanzas).
//
//   ~/.config/knockwatch/client.yaml
//   servers:
//     home:
//       host: home.example.org
//       door: ssh
//       spa_port: 62201          # default 62201
//       key_file: ~/.config/knockwatch/alice.key   # '~/' and paths relative to this file work
//       user: alice              # default: the key file's name without .key
//       totp: true               # ask for the TOTP code
//       allow_ip: 203.0.113.7    # behind NAT: the address the server sees
//       check: 22                # then test TCP port 22
//
// The profile holds no secret (the key stays in its own 0600 file). Errors
// name the file, the server and the key.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { USER_NAME_RE } from '../spa/keys.js';

export interface ServerProfile {
  readonly name: string;
  readonly host: string;
  readonly door: string;
  readonly spaPort?: number;
  readonly keyFile: string;
  readonly user?: string;
  readonly totp: boolean;
  readonly allowIp?: string;
  readonly check?: number;
}

export function defaultProfilePath(): string {
  const base = process.env['XDG_CONFIG_HOME'] || join(homedir(), '.config');
  return join(base, 'knockwatch', 'client.yaml');
}

const KEYS = ['host', 'door', 'spa_port', 'key_file', 'user', 'totp', 'allow_ip', 'check'];

/** The named server of a profile file; undefined when the file or the name does not exist. Throws naming file and key on a bad entry. */
export async function readServerProfile(file: string, name: string): Promise<ServerProfile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 10 });
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  const servers = (doc as { servers?: unknown } | null)?.servers;
  if (servers === undefined) throw new Error(`${file}: expected a 'servers:' mapping of named servers`);
  if (typeof servers !== 'object' || servers === null || Array.isArray(servers)) throw new Error(`${file}: servers: expected a mapping of named servers`);
  if (!Object.hasOwn(servers, name)) return undefined;
  const s = (servers as Record<string, unknown>)[name];
  const at = `${file}: servers.${name}`;
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new Error(`${at}: expected a mapping (host, door, key_file, ...)`);
  const e = s as Record<string, unknown>;
  for (const k of Object.keys(e)) if (!KEYS.includes(k)) throw new Error(`${at}.${k}: unknown key (known: ${KEYS.join(', ')})`);
  const str = (k: string, required: boolean): string | undefined => {
    const v = e[k];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v === '') throw new Error(`${at}.${k}: ${v === undefined ? 'required key is missing' : 'expected text'}`);
    return v;
  };
  const port = (k: string): number | undefined => {
    const v = e[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) throw new Error(`${at}.${k}: expected a port 1-65535`);
    return v;
  };
  const user = str('user', false);
  if (user !== undefined && !USER_NAME_RE.test(user)) throw new Error(`${at}.user: invalid user name '${user}'`);
  if (e['totp'] !== undefined && typeof e['totp'] !== 'boolean') throw new Error(`${at}.totp: expected true or false`);
  const keyText = str('key_file', true) as string;
  const keyFile = keyText.startsWith('~/') ? join(homedir(), keyText.slice(2)) : isAbsolute(keyText) ? keyText : resolve(dirname(file), keyText);
  const spaPort = port('spa_port');
  const check = port('check');
  const allowIp = str('allow_ip', false);
  return {
    name,
    host: str('host', true) as string,
    door: str('door', true) as string,
    keyFile,
    totp: e['totp'] === true,
    ...(spaPort !== undefined ? { spaPort } : {}),
    ...(user !== undefined ? { user } : {}),
    ...(allowIp !== undefined ? { allowIp } : {}),
    ...(check !== undefined ? { check } : {}),
  };
}
