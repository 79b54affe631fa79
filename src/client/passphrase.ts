// Passphrase-hash knocks (spknock's "secret port knocker"): each UDP step
// carries the hex SHA-256 digest of a passphrase as its payload, and the
// server matches that content per step. The digest is of the passphrase's
// UTF-8 bytes, exactly as typed (no trimming), in lowercase hex with no line
// ending: what spknock sends (`hashlib.sha256(p.encode()).hexdigest()`).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { PortSpec } from '../types.js';

/** Lowercase hex SHA-256 of the passphrase's UTF-8 bytes. */
export function passphraseDigest(passphrase: string): string {
  return createHash('sha256').update(passphrase, 'utf8').digest('hex');
}

/** The payload a passphrase step sends: the digest's 64 ASCII characters. */
export function passphrasePayload(passphrase: string): Uint8Array {
  return Buffer.from(passphraseDigest(passphrase), 'ascii');
}

/** spknock's prompt for one step: `Enter passphrase (1234/udp): `. */
export function passphrasePrompt(step: PortSpec): string {
  return `Enter passphrase (${step.port}/${step.protocol}): `;
}

/**
 * Passphrases from a file, one per line, in step order (for scripts). Line
 * endings (\n, \r\n) are not part of a passphrase; a final empty line is the
 * file's last line ending, not a passphrase. Throws naming the file.
 */
export function readPassphraseFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read passphrase file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/**
 * One payload per step: UDP steps take the next passphrase's digest, TCP
 * steps none (a SYN carries no data). `next(step, i)` supplies a passphrase.
 * Throws when there are no UDP steps (nothing would carry a passphrase).
 */
export async function passphrasePayloads(
  steps: readonly PortSpec[],
  next: (step: PortSpec, udpIndex: number) => Promise<string> | string,
): Promise<(Uint8Array | undefined)[]> {
  if (!steps.some((s) => s.protocol === 'udp')) {
    throw new Error('a passphrase needs UDP steps (a TCP SYN carries no data): write them PORT:udp');
  }
  const out: (Uint8Array | undefined)[] = [];
  let u = 0;
  for (const step of steps) {
    if (step.protocol !== 'udp') {
      out.push(undefined);
      continue;
    }
    out.push(passphrasePayload(await next(step, u++)));
  }
  return out;
}
