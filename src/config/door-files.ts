// The files some door kinds name, read once the config has parsed (and again
// on every reload, since loadConfig reads them): a rotating door's key file
// and a one_time door's file of sequences. Each problem becomes a config
// problem at the key that names the file (with its line in the config), its
// message naming the file itself (and its line, for a one-time file).
//
// - A rotating key file holds a secret: refused when group or others can read
//   it (users.ts readSecretFile), then read by safe-read.ts's rules (as root:
//   root's file on a root-owned path). One line of base64, 256 bits, as
//   `knockwatch keygen` writes.
// - A one-time file holds secrets too (whoever reads it can knock): the same
//   rule. It must also be writable, with its directory, since a used line is
//   marked by replacing the file (daemon/one-time-store.ts); a file that
//   cannot be written would leave a used sequence valid, so it is refused here.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { inspect } from 'node:util';
import { LineCounter, parseDocument } from 'yaml';
import { KeyFileError, parseKeyText } from '../spa/keys.js';
import type { Door, KnockwatchConfig, SecretBytes } from '../types.js';
import { ConfigError, formatPath, type ConfigProblem, type PathSegment } from './errors.js';
import { locate } from './locate.js';
import { MAX_ONE_TIME_FILE_BYTES, OneTimeFileError, parseOneTimeText } from './one-time-file.js';
import { UntrustedFileError, readTrustedFile } from './safe-read.js';
import { readSecretFile } from './users.js';

/** Key bytes that never show in JSON (logs) or util.inspect. */
class Secret implements SecretBytes {
  constructor(readonly bytes: Uint8Array) {}
  toJSON(): string {
    return '[secret]';
  }
  [inspect.custom](): string {
    return '[secret]';
  }
}

export function secretBytes(bytes: Uint8Array): SecretBytes {
  return new Secret(bytes);
}

export interface DoorFilesOptions {
  /** Our uid (tests); safe-read.ts's ownership rules apply when it is 0. */
  readonly uid?: number;
  /** false: only the no-hang rules (replay). The group/others read rule always applies. */
  readonly ownershipRules?: boolean;
  /**
   * false: a one-time file need not be writable (replay marks nothing on
   * disk). Default true.
   */
  readonly writable?: boolean;
}

/** Whether any door names a file that loadDoorFiles reads. */
export function hasDoorFiles(doors: readonly Door[]): boolean {
  return doors.some((d) => d.kind === 'rotating' || d.kind === 'one_time');
}

const WHY_ONE_TIME = 'whoever can change a one-time file chooses the sequences that open its door';

async function writableProblem(file: string): Promise<string | undefined> {
  for (const [path, what] of [
    [file, 'the file'],
    [dirname(file), `its directory ${dirname(file)}`],
  ] as const) {
    try {
      await access(path, constants.W_OK);
    } catch (err) {
      return `${what} cannot be written (${(err as NodeJS.ErrnoException).code ?? String(err)}): a used sequence could not be marked, so it would stay valid`;
    }
  }
  return undefined;
}

/**
 * The config with its rotating doors' keys and one_time doors' sequences
 * read. `configText` (the file's text) gives problems their line; without it
 * they carry the path only. Throws one ConfigError with every problem.
 */
export async function loadDoorFiles(
  config: KnockwatchConfig,
  configPath: string,
  configText: string | undefined,
  options: DoorFilesOptions = {},
): Promise<KnockwatchConfig> {
  if (!hasDoorFiles(config.doors)) return config;
  const baseDir = dirname(resolve(configPath));
  const full = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const problems: { path: PathSegment[]; message: string }[] = [];
  const readOpts = {
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.ownershipRules !== undefined ? { ownershipRules: options.ownershipRules } : {}),
  };
  const doors: Door[] = [];
  for (let i = 0; i < config.doors.length; i++) {
    const door = config.doors[i];
    if (door.kind === 'rotating') {
      const file = full(door.keyFile);
      try {
        const key = parseKeyText(file, await readSecretFile(file, 'key file', readOpts));
        doors.push({ ...door, keyFile: file, key: secretBytes(key) });
        continue;
      } catch (err) {
        if (!(err instanceof KeyFileError || err instanceof UntrustedFileError)) throw err;
        problems.push({ path: ['doors', i, 'rotating', 'key_file'], message: err.message });
      }
    } else if (door.kind === 'one_time') {
      const file = full(door.file);
      try {
        const text = await readOneTimeText(file, readOpts);
        const parsed = parseOneTimeText(file, text);
        // The knocker's own connections to an open port would count as knocks.
        for (const e of parsed.entries) {
          const clash = e.sequence.find((st) => door.open.some((o) => o.port === st.port && o.protocol === st.protocol));
          if (clash !== undefined) throw new OneTimeFileError(file, e.line, undefined, `${clash.port}/${clash.protocol} is also an open port of door '${door.name}'`);
        }
        const unwritable = options.writable === false ? undefined : await writableProblem(file);
        if (unwritable !== undefined) throw new UntrustedFileError(file, unwritable);
        doors.push({ ...door, file, sequences: parsed.entries });
        continue;
      } catch (err) {
        if (!(err instanceof OneTimeFileError || err instanceof UntrustedFileError)) throw err;
        problems.push({ path: ['doors', i, 'one_time'], message: err.message });
      }
    }
    doors.push(door);
  }
  if (problems.length > 0) throw new ConfigError(configPath, locateAll(problems, configText));
  return { ...config, doors };
}

async function readOneTimeText(file: string, opts: { uid?: number; ownershipRules?: boolean }): Promise<string> {
  // A secret: refused when group or others can read it (the key files' rule).
  let st;
  try {
    st = await stat(file);
  } catch (err) {
    throw new UntrustedFileError(file, `cannot read one-time file: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  if ((st.mode & 0o077) !== 0) {
    const who = (st.mode & 0o007) !== 0 ? 'others' : 'its group';
    throw new UntrustedFileError(file, `one-time file is accessible by ${who} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): its sequences open the door; chmod 600 ${file}`);
  }
  const bytes = await readTrustedFile(file, { maxBytes: MAX_ONE_TIME_FILE_BYTES, what: 'one-time file', why: WHY_ONE_TIME, ...opts });
  return bytes.toString('utf8');
}

function locateAll(problems: readonly { path: PathSegment[]; message: string }[], text: string | undefined): ConfigProblem[] {
  if (text === undefined) return problems.map((p) => ({ path: formatPath(p.path), message: p.message }));
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, merge: true });
  return problems.map((p) => {
    const loc = locate(doc, lineCounter, p.path);
    return { path: formatPath(p.path), ...(loc !== undefined ? { line: loc.line, column: loc.column } : {}), message: p.message };
  });
}
