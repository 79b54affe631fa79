// `knockwatch keygen --user NAME [--totp] [--dir DIR]`: a new spa key (and
// TOTP secret) for one user, written to files only the owner can read, and
// the `users:` entry to paste into the server's config.
//
// NAME.key: 256 random bits in base64, one line. The same file goes to the
// server and to the user's client (one key per user per server: the server
// holds every client's secret). NAME.totp: the 160-bit TOTP secret in base32;
// it stays on the server, and the user enrols an authenticator app from the
// otpauth:// URI or the QR code printed here. Existing files are never
// overwritten.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import qrcode from 'qrcode-terminal';
import { KEY_BYTES, TOTP_SECRET_BYTES, USER_NAME_RE, base32Encode } from '../spa/keys.js';
import { totpUri } from '../spa/totp.js';
import { parseCommandArgs, usageFailure } from './args.js';

const USAGE = `usage: knockwatch keygen --user NAME [--totp] [--dir DIR]

Writes a new spa key for user NAME to DIR/NAME.key (256 random bits, base64,
mode 0600) and, with --totp, a TOTP secret to DIR/NAME.totp (160 bits,
base32, mode 0600). Prints the server's 'users:' entry; with --totp also the
otpauth:// URI and a QR code to enrol an authenticator app.

NAME.key goes to the server and to the user's client; NAME.totp stays on the
server (it never goes to clients: the code must come from another device).
Existing files are never overwritten.

  -u, --user NAME   the user (1-32 of A-Z a-z 0-9 _ . -)
      --totp        also make a TOTP secret (a second factor for doors with totp: true)
  -d, --dir DIR     where to write the files (default: the current directory)
  -h, --help        this text
`;

async function writeNew(file: string, text: string): Promise<void> {
  let fh;
  try {
    fh = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`${file} already exists: keygen never overwrites a key (remove it first, or choose another --dir)`);
    throw new Error(`cannot create ${file}: ${(err as Error).message}`);
  }
  try {
    await fh.chmod(0o600); // whatever the umask
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseCommandArgs(
      argv,
      {
        user: { type: 'string', short: 'u' },
        totp: { type: 'boolean', default: false },
        dir: { type: 'string', short: 'd' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      false,
    );
  } catch (err) {
    return usageFailure('keygen', (err as Error).message, USAGE);
  }
  const v = args.values;
  if (v.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (v.user === undefined) return usageFailure('keygen', 'missing --user NAME', USAGE);
  if (!USER_NAME_RE.test(v.user)) return usageFailure('keygen', `invalid user name '${v.user}': use 1-32 of A-Z a-z 0-9 _ . - (not starting with . or -)`, USAGE);
  const dir = resolve(v.dir ?? '.');
  const keyFile = join(dir, `${v.user}.key`);
  const totpFile = join(dir, `${v.user}.totp`);
  const key = randomBytes(KEY_BYTES);
  const secret = v.totp ? randomBytes(TOTP_SECRET_BYTES) : undefined;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeNew(keyFile, `${key.toString('base64')}\n`);
    if (secret !== undefined) await writeNew(totpFile, `${base32Encode(secret)}\n`);
  } catch (err) {
    process.stderr.write(`knockwatch keygen: ${(err as Error).message}\n`);
    return 1;
  } finally {
    key.fill(0);
  }
  const out: string[] = [
    `wrote ${keyFile} (256-bit key, mode 0600)`,
    ...(secret !== undefined ? [`wrote ${totpFile} (160-bit TOTP secret, mode 0600)`] : []),
    '',
    "for the server's config (the server keeps its own copy of every user's key: one key per user per server):",
    'users:',
    `  - name: ${v.user}`,
    `    key_file: ${keyFile}`,
    ...(secret !== undefined ? [`    totp_file: ${totpFile}`] : []),
    '',
    `for ${v.user}'s client: copy ${keyFile} over a secure channel (keep it mode 0600), then:`,
    `  knockwatch knock HOST --door DOOR --key-file ${v.user}.key${secret !== undefined ? ' --totp' : ''}`,
  ];
  if (secret !== undefined) {
    const uri = totpUri(secret, `${v.user}@${hostname()}`);
    out.push(
      '',
      `TOTP: ${totpFile} stays on the server and never goes to clients. Enrol an authenticator app`,
      '(on another device than the key file) from this URI or the QR code below, then keep both private:',
      uri,
    );
    process.stdout.write(`${out.join('\n')}\n`);
    qrcode.generate(uri, { small: true }, (qr) => process.stdout.write(`${qr}\n`));
    return 0;
  }
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
