// loadConfig: read a config file (or take the defaults) and parse it.
import type { CaptureKind, KnockwatchConfig } from '../types.js';
import { defaultConfig } from './defaults.js';
import { ConfigError } from './errors.js';
import { UntrustedFileError, readTrustedFile } from './safe-read.js';

/** A config is a few KB; the cap keeps `check-config /dev/zero` from eating memory. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

const WHY_ROOT_OWNS = 'as root, knockwatch runs commands and changes the firewall from this file';

export interface LoadOptions {
  /** The capture backend that will run (a --capture override); default: the file's own. */
  readonly capture?: CaptureKind;
  /** Our uid, for the ownership rules of safe-read.ts (tests); default: process.getuid(). */
  readonly uid?: number;
  /**
   * false for a reader that acts on nothing (replay): as root, a file others
   * own or can write is read anyway (FIFOs and devices are still refused).
   */
  readonly ownershipRules?: boolean;
  /** 'any': the file may belong to any user (safe-read.ts TrustedReadOptions.fileOwner). Default 'root'. */
  readonly fileOwner?: 'root' | 'any';
}

/** No path: the defaults. Otherwise the file, read safely and validated; ConfigError on any problem. */
export async function loadConfig(path?: string, options: LoadOptions = {}): Promise<KnockwatchConfig> {
  if (path === undefined) return defaultConfig();
  const text = await readConfigText(path, options);
  // Loaded on demand: the YAML parser and the schema cost ~0.15 s of start-up
  // that a replay with the default config should not pay.
  const { parseConfig } = await import('./parse.js');
  const config = parseConfig(text, path, options.capture !== undefined ? { capture: options.capture } : {});
  // Files that doors name (rotating keys, one-time sequences), read on every load and reload.
  const { hasDoorFiles, loadDoorFiles } = await import('./door-files.js');
  if (!hasDoorFiles(config.doors)) return config;
  return loadDoorFiles(config, path, text, {
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.ownershipRules !== undefined ? { ownershipRules: options.ownershipRules } : {}),
    // A reader that acts on nothing (replay) marks nothing used either.
    writable: options.ownershipRules !== false,
  });
}

/** The file's text, or a ConfigError naming the file and why it was not read. */
export async function readConfigText(path: string, options: Pick<LoadOptions, 'uid' | 'ownershipRules' | 'fileOwner'> = {}): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readTrustedFile(path, {
      maxBytes: MAX_CONFIG_BYTES,
      what: 'config file',
      why: WHY_ROOT_OWNS,
      ...(options.uid !== undefined ? { uid: options.uid } : {}),
      ...(options.ownershipRules !== undefined ? { ownershipRules: options.ownershipRules } : {}),
      ...(options.fileOwner !== undefined ? { fileOwner: options.fileOwner } : {}),
    });
  } catch (err) {
    if (!(err instanceof UntrustedFileError)) throw err;
    throw new ConfigError(path, [{ path: '', message: err.reason }]);
  }
  return decodeConfigText(bytes, path);
}

/** UTF-8 text of a config file's bytes, or a ConfigError with the offset of the first bad byte. */
export function decodeConfigText(bytes: Uint8Array, fileName: string): string {
  const bad = invalidUtf8Offset(bytes);
  if (bad !== undefined) {
    const lineStart = bytes.lastIndexOf(0x0a, bad - 1) + 1;
    const line = 1 + bytes.subarray(0, lineStart).filter((b) => b === 0x0a).length;
    throw new ConfigError(fileName, [{ path: '', line, column: bad - lineStart + 1, message: `not valid UTF-8 at byte offset ${bad}` }]);
  }
  // A leading byte-order mark is legal in YAML files written by some editors.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8').replace(/^\uFEFF/, '');
}

/** Byte offset of the first invalid UTF-8 sequence, if any. */
function invalidUtf8Offset(bytes: Uint8Array): number | undefined {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return undefined;
  } catch {
    // Decoding replaced the bad sequence with U+FFFD; find the first U+FFFD
    // that the file does not itself contain as EF BF BD.
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    let offset = 0;
    for (const ch of text) {
      if (ch === '\uFFFD' && !(bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd)) {
        return offset;
      }
      offset += Buffer.byteLength(ch);
    }
    return bytes.length;
  }
}
