// loadConfig: read a config file (or take the defaults) and parse it.
import { open } from 'node:fs/promises';
import type { KnockwatchConfig } from '../types.js';
import { defaultConfig } from './defaults.js';
import { ConfigError } from './errors.js';

/** A config is a few KB; the cap keeps `check-config /dev/zero` from eating memory. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** No path: the defaults. Otherwise the file, validated; ConfigError on any problem. */
export async function loadConfig(path?: string): Promise<KnockwatchConfig> {
  if (path === undefined) return defaultConfig();
  const text = await readConfigText(path);
  // Loaded on demand: the YAML parser and the schema cost ~0.15 s of start-up
  // that a replay with the default config should not pay.
  const { parseConfig } = await import('./parse.js');
  return parseConfig(text, path);
}

/** The file's text, or a ConfigError naming the file and the OS error. */
export async function readConfigText(path: string): Promise<string> {
  const fail = (message: string): never => {
    throw new ConfigError(path, [{ path: '', message }]);
  };
  let bytes: Buffer;
  try {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) fail('not a regular file');
      if (st.size > MAX_CONFIG_BYTES) fail(`file is ${st.size} bytes; a config file may be at most ${MAX_CONFIG_BYTES}`);
      bytes = await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    return fail(`cannot read config file: ${err instanceof Error ? err.message : String(err)}`);
  }
  const bad = invalidUtf8Offset(bytes);
  if (bad !== undefined) fail(`not valid UTF-8 at byte offset ${bad}`);
  // A leading byte-order mark is legal in YAML files written by some editors.
  return bytes.toString('utf8').replace(/^\uFEFF/, '');
}

/** Byte offset of the first invalid UTF-8 sequence, if any. */
function invalidUtf8Offset(bytes: Buffer): number | undefined {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return undefined;
  } catch {
    // Decoding replaced the bad sequence with U+FFFD; find the first U+FFFD
    // that the file does not itself contain as EF BF BD.
    const text = bytes.toString('utf8');
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
