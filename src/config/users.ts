// The top-level `users:` of a config (spa doors' key holders) and their key
// files.
//
//   users:
//     - name: alice
//       key_file: /etc/knockwatch/keys/alice.key        # or a list of two while rotating
//       totp_file: /etc/knockwatch/keys/alice.totp      # optional
//
// The config names files, never secrets: a config is printed (check-config,
// logs) and may be world-readable; key files are not. Parsing the config
// checks the names and paths (with file:line); loadSpaUsers() then reads the
// files: each must be a plain file that neither group nor others can read
// (like ssh, the file is refused, naming it), as root owned by root on a
// root-owned path (safe-read.ts); a key that appears under two users is a
// configuration error (whoever holds it could open both users' doors, and
// the hints could not tell them apart).
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import type { Door, SpaUserConfig } from '../types.js';
import { KeyFileError, deriveKeys, parseKeyText, parseTotpText } from '../spa/keys.js';
import type { SpaUser } from '../spa/verify.js';
import type { PathProblem } from './checks.js';
import { userName } from './door-spa.js';
import { ConfigError, ValueError, describeValue, type ConfigProblem } from './errors.js';
import { UntrustedFileError, readTrustedFile } from './safe-read.js';
import { mapping, typeError, value } from './values.js';

/** Key files per user: the current one and, during a rotation, the next (or previous). */
export const MAX_KEY_FILES = 2;
/** A key file is one line; this leaves room for comments. */
const MAX_KEY_FILE_BYTES = 4096;

const filePath = value((v): string => {
  if (typeof v !== 'string' || v === '') throw new ValueError(`expected a file path, got ${describeValue(v)}`);
  if (v.includes('\0')) throw new ValueError('the path contains a NUL character');
  return v;
});

const keyFiles = z.union([filePath.transform((p) => [p]), z.array(filePath, { error: typeError('a key file path, or a list of two') })]).pipe(
  z
    .array(z.string())
    .min(1, { error: 'must name at least one key file' })
    .max(MAX_KEY_FILES, { error: `at most ${MAX_KEY_FILES} key files per user (the current key and, while rotating, one more)` }),
);

const userShape = {
  name: userName,
  key_file: keyFiles,
  totp_file: filePath.optional(),
};

export const usersSchema = z
  .array(mapping(userShape, 'a user (a mapping with name and key_file)'), { error: typeError('a list of users (name, key_file, totp_file)') })
  .transform((list): SpaUserConfig[] =>
    list.map((u) => ({ name: u.name, keyFiles: u.key_file, ...(u.totp_file !== undefined ? { totpFile: u.totp_file } : {}) })),
  );

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Rules between users and doors, on whatever parsed: duplicate user names,
 * a door naming a user that is not defined, a TOTP door whose user has no
 * totp_file, spa doors without any users.
 */
export function userChecks(raw: Record<string, unknown>): PathProblem[] {
  const out: PathProblem[] = [];
  const rawUsers = Array.isArray(raw['users']) ? (raw['users'] as unknown[]) : [];
  const names = new Map<string, number>();
  const withTotp = new Set<string>();
  rawUsers.forEach((u, i) => {
    if (!isRecord(u) || typeof u['name'] !== 'string') return;
    const name = u['name'];
    const first = names.get(name);
    if (first !== undefined) out.push({ path: ['users', i, 'name'], message: `duplicate user name '${name}' (also users[${first}])` });
    else names.set(name, i);
    if (u['totp_file'] !== undefined) withTotp.add(name);
  });
  const rawDoors = Array.isArray(raw['doors']) ? (raw['doors'] as unknown[]) : [];
  rawDoors.forEach((d, i) => {
    if (!isRecord(d) || d['spa'] === undefined) return;
    if (rawUsers.length === 0) {
      out.push({ path: ['doors', i, 'spa'], message: "an spa door needs users: define them in the top-level 'users:' (knockwatch keygen --user NAME prints an entry)" });
      return;
    }
    const listed = Array.isArray(d['users']) ? (d['users'] as unknown[]) : undefined;
    listed?.forEach((n, j) => {
      if (typeof n === 'string' && !names.has(n)) out.push({ path: ['doors', i, 'users', j], message: `unknown user '${n}' (users: ${[...names.keys()].join(', ') || 'none'})` });
    });
    if (d['totp'] === true) {
      const who = listed ?? [...names.keys()];
      for (const n of who) {
        if (typeof n === 'string' && names.has(n) && !withTotp.has(n)) {
          out.push({ path: ['doors', i, 'totp'], message: `this door needs a TOTP code but user '${n}' has no totp_file (knockwatch keygen --user ${n} --totp)` });
        }
      }
    }
  });
  return out;
}

export interface LoadUsersOptions {
  /** Relative key file paths are taken from here: the config file's directory. */
  readonly baseDir: string;
  /** Our uid (tests); the ownership rules of safe-read.ts apply when it is 0. */
  readonly uid?: number;
  /** false: only the no-hang rules (replay, which opens nothing). The group/others read rule always applies. */
  readonly ownershipRules?: boolean;
}

/** The directory relative key file paths in `configPath` are taken from. */
export function keyBaseDir(configPath: string): string {
  return dirname(resolve(configPath));
}

const WHY = 'whoever can change a key file can open the doors of its user';

/**
 * Reads a secret file: refused when group or others may read it (naming the
 * file and the fix), then by safe-read.ts's rules.
 */
export async function readSecretFile(file: string, what: string, options: Omit<LoadUsersOptions, 'baseDir'> = {}): Promise<string> {
  let st;
  try {
    st = await stat(file);
  } catch (err) {
    throw new UntrustedFileError(file, `cannot read ${what}: ${(err as Error).message}`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new UntrustedFileError(file, `${what} is accessible by ${(st.mode & 0o007) !== 0 ? 'others' : 'its group'} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): it holds a secret; chmod 600 ${file}`);
  }
  const bytes = await readTrustedFile(file, {
    maxBytes: MAX_KEY_FILE_BYTES,
    what,
    why: WHY,
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.ownershipRules !== undefined ? { ownershipRules: options.ownershipRules } : {}),
  });
  return bytes.toString('utf8');
}

/**
 * Reads every user's key and TOTP files and derives the keys. All problems
 * are collected into one ConfigError on `configPath` (path users[i].key_file,
 * the message naming the key file, and its line when the text is wrong).
 */
export async function loadSpaUsers(users: readonly SpaUserConfig[], configPath: string, options: LoadUsersOptions): Promise<SpaUser[]> {
  const problems: ConfigProblem[] = [];
  const out: SpaUser[] = [];
  const seen = new Map<string, string>(); // key (hex) -> "user's file"
  const full = (p: string): string => (isAbsolute(p) ? p : resolve(options.baseDir, p));
  for (let i = 0; i < users.length; i++) {
    const u = users[i];
    const keys = [];
    for (let k = 0; k < u.keyFiles.length; k++) {
      const file = full(u.keyFiles[k]);
      const path = u.keyFiles.length > 1 ? `users[${i}].key_file[${k}]` : `users[${i}].key_file`;
      try {
        const key = parseKeyText(file, await readSecretFile(file, 'key file', options));
        const id = key.toString('hex');
        const other = seen.get(id);
        if (other !== undefined) problems.push({ path, message: `${file} holds the same key as ${other}: every user needs a key of their own (knockwatch keygen --user ${u.name})` });
        seen.set(id, `user '${u.name}' (${file})`);
        keys.push(deriveKeys(key, u.name));
        key.fill(0);
      } catch (err) {
        if (!(err instanceof KeyFileError || err instanceof UntrustedFileError)) throw err;
        problems.push({ path, message: err.message });
      }
    }
    let totpSecret: Buffer | undefined;
    if (u.totpFile !== undefined) {
      const file = full(u.totpFile);
      try {
        totpSecret = parseTotpText(file, await readSecretFile(file, 'TOTP file', options));
      } catch (err) {
        if (!(err instanceof KeyFileError || err instanceof UntrustedFileError)) throw err;
        problems.push({ path: `users[${i}].totp_file`, message: err.message });
      }
    }
    out.push({ name: u.name, keys, ...(totpSecret !== undefined ? { totpSecret } : {}) });
  }
  if (problems.length > 0) throw new ConfigError(configPath, problems);
  return out;
}

/** Whether a config has spa doors (and so needs its users' keys). */
export function hasSpaDoors(doors: readonly Door[]): boolean {
  return doors.some((d) => d.kind === 'spa');
}
