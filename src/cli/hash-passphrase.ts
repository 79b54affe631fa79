// `knockwatch hash-passphrase`: prints the SHA-256 digest of a passphrase
// (spknock's "[H] Generate SHA256 hash"), for a door's `sha256:` step. The
// passphrase is typed without echo on a terminal, or read as one line from
// stdin otherwise; only the digest is printed, on stdout.
import { passphraseDigest } from '../client/passphrase.js';
import { helpOnly } from './args.js';
import { SecretInputCancelled, cancelledExitCode, stdinSecretReader } from './read-secret.js';

const USAGE = `usage: knockwatch hash-passphrase

Reads a passphrase (typed without echo on a terminal, else one line from
stdin) and prints its SHA-256 digest in hex, for a sequence step's sha256:
  sequence:
    - { port: 1234/udp, sha256: <digest> }
The knock client sends that digest as the step's UDP payload
(knockwatch knock HOST 1234:udp ... --passphrase).

  -h, --help   this text
`;

export async function main(argv: string[]): Promise<number> {
  const early = helpOnly('hash-passphrase', argv, USAGE);
  if (early !== undefined) return early;
  let passphrase: string;
  try {
    passphrase = await stdinSecretReader().read('Enter passphrase: ');
  } catch (err) {
    if (err instanceof SecretInputCancelled) {
      process.stderr.write(`knockwatch hash-passphrase: ${err.message}\n`);
      return cancelledExitCode(err);
    }
    process.stderr.write(`knockwatch hash-passphrase: ${(err as Error).message}\n`);
    return 1;
  }
  if (passphrase === '') {
    process.stderr.write('knockwatch hash-passphrase: empty passphrase refused\n');
    return 1;
  }
  process.stdout.write(`${passphraseDigest(passphrase)}\n`);
  return 0;
}
