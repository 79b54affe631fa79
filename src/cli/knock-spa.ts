// `knockwatch knock HOST --door NAME --key-file F ...` and `knockwatch knock
// PROFILE`: one spa datagram (src/client/spa.ts), then optionally --check.
// The TOTP code is read without echo from a terminal, or as one line of
// standard input otherwise; never from the command line, where `ps` and the
// shell history would keep it.
import { basename } from 'node:path';
import { readSecretFile } from '../config/users.js';
import { checkPort, type Family } from '../client/knock.js';
import { readServerProfile, type ServerProfile } from '../client/profile.js';
import { DEFAULT_SPA_PORT, sendSpaKnock } from '../client/spa.js';
import { parseKeyText, USER_NAME_RE } from '../spa/keys.js';
import { stdinSecretReader } from './read-secret.js';

export interface SpaKnockArgs {
  readonly host: string;
  readonly door?: string;
  readonly keyFile?: string;
  readonly user?: string;
  readonly spaPort?: number;
  readonly totp: boolean;
  readonly allowIp?: string;
  readonly check?: number;
  readonly timeoutMs: number;
  readonly family?: Family;
  readonly source?: string;
  readonly verbose: boolean;
  /** The profile file (default ~/.config/knockwatch/client.yaml). */
  readonly profileFile: string;
}

/** Exit codes of --check, as for sequence knocks. */
const CHECK_EXIT = { open: 0, refused: 3, filtered: 4 } as const;

/** The server a profile names, merged under the command line's options; undefined when HOST is not a profile name. */
async function effective(a: SpaKnockArgs): Promise<(SpaKnockArgs & { keyFile: string; door: string; profile?: ServerProfile }) | string> {
  const profile = a.keyFile === undefined || a.door === undefined ? await readServerProfile(a.profileFile, a.host) : undefined;
  const door = a.door ?? profile?.door;
  const keyFile = a.keyFile ?? profile?.keyFile;
  if (door === undefined || keyFile === undefined) {
    return `'${a.host}' is not a server in ${a.profileFile}: give --door NAME and --key-file FILE (or add it to that file)`;
  }
  return {
    ...a,
    host: profile?.host ?? a.host,
    door,
    keyFile,
    ...(a.user === undefined && profile?.user !== undefined ? { user: profile.user } : {}),
    ...(a.spaPort === undefined && profile?.spaPort !== undefined ? { spaPort: profile.spaPort } : {}),
    ...(a.allowIp === undefined && profile?.allowIp !== undefined ? { allowIp: profile.allowIp } : {}),
    ...(a.check === undefined && profile?.check !== undefined ? { check: profile.check } : {}),
    totp: a.totp || (profile?.totp ?? false),
    ...(profile ? { profile } : {}),
  };
}

/** Returned by spaKnock when HOST is neither a profile server nor given --door and --key-file: a usage error. */
export const NOT_SPA = -1;

/** Runs an spa knock; returns the exit status, or NOT_SPA. */
export async function spaKnock(args: SpaKnockArgs): Promise<number> {
  const fail = (message: string): number => {
    process.stderr.write(`knockwatch knock: ${message}\n`);
    return 1;
  };
  let a;
  try {
    a = await effective(args);
  } catch (err) {
    return fail((err as Error).message);
  }
  if (typeof a === 'string') return args.door === undefined && args.keyFile === undefined ? NOT_SPA : fail(a);
  const user = a.user ?? basename(a.keyFile).replace(/\.key$/, '');
  if (!USER_NAME_RE.test(user)) return fail(`cannot tell the user from the key file name '${basename(a.keyFile)}': give --user NAME`);
  let key: Buffer;
  try {
    key = parseKeyText(a.keyFile, await readSecretFile(a.keyFile, 'key file', { ownershipRules: false }));
  } catch (err) {
    return fail((err as Error).message);
  }
  let totp: number | undefined;
  if (a.totp) {
    let text: string;
    try {
      text = (await stdinSecretReader().read(`TOTP code for ${user}: `)).trim();
    } catch (err) {
      return fail(`no TOTP code read: ${(err as Error).message}`);
    }
    if (!/^\d{6}$/.test(text)) return fail('a TOTP code is 6 digits');
    totp = Number(text);
  }
  const port = a.spaPort ?? DEFAULT_SPA_PORT;
  try {
    const r = await sendSpaKnock({
      host: a.host,
      port,
      key,
      user,
      door: a.door,
      ...(a.family !== undefined ? { family: a.family } : {}),
      ...(a.allowIp !== undefined ? { allowIp: a.allowIp } : {}),
      ...(a.source !== undefined ? { sourceAddress: a.source } : {}),
      ...(totp !== undefined ? { totp } : {}),
    });
    if (a.verbose) process.stdout.write(`spa knock: door ${a.door} as ${user} for ${r.address}, ${r.bytes} bytes to ${r.target.address} port ${port}/udp\n`);
    key.fill(0);
    if (a.check === undefined) return 0;
    const result = await checkPort(a.host, a.check, a.timeoutMs, a.family, { ...(a.source !== undefined ? { sourceAddress: a.source } : {}), retryUntilTimeout: true });
    process.stdout.write(`${a.host} port ${a.check}/tcp: ${result}\n`);
    return CHECK_EXIT[result];
  } catch (err) {
    return fail((err as Error).message);
  }
}
