// The knock client's options for secret sequences (issue 11), kept out of
// knock.ts, which only wires them in:
//   --passphrase / --passphrase-file F   passphrase-hash steps (spknock): each
//        UDP step's payload is the hex SHA-256 of a passphrase, prompted per
//        step without echo ("Enter passphrase (1234/udp): ") or one per line
//        of F (or of standard input when it is not a terminal).
//   --ports LOW-HIGH --key-file F [--steps N] [--period D] [--protocol P]
//        a rotating door: the current period's sequence from the key.
//   --one-time-file F   a one_time door: the first unused line of the
//        client's copy, marked used there before it is sent.
import { passphrasePayloads, passphrasePrompt, readPassphraseFile } from '../client/passphrase.js';
import { takeOneTimeSequence } from '../client/one-time.js';
import { parsePortRange, rotatingKnock } from '../client/rotating.js';
import { parseDuration } from '../config/duration.js';
import { readSecretFile } from '../config/users.js';
import { parseKeyText } from '../spa/keys.js';
import type { PortSpec } from '../types.js';
import { stdinSecretReader } from './read-secret.js';

export const SECRET_OPTIONS = {
  passphrase: { type: 'boolean', default: false },
  'passphrase-file': { type: 'string' },
  'one-time-file': { type: 'string' },
  ports: { type: 'string' },
  steps: { type: 'string' },
  period: { type: 'string' },
  protocol: { type: 'string' },
} as const;

export const SECRET_USAGE = `passphrase steps (spknock; the door's steps carry sha256):
      --passphrase     prompt for one passphrase per UDP step, without echo
                       (one line each from standard input when it is not a
                       terminal); each datagram carries its SHA-256 in hex
      --passphrase-file FILE  the passphrases, one per line, in step order

rotating door (knock HOST --ports LOW-HIGH --key-file FILE):
      --ports LOW-HIGH the door's range (rotating: ports)
      --key-file FILE  the door's key; refused if group/others can read it
      --steps N        ports per sequence (default 4)
      --period D       the door's period (default 30s)
      --protocol P     tcp or udp (default tcp)

one-time door:
      --one-time-file FILE  your copy of the door's file: its first unused
                       line is sent and marked used there (before sending)
`;

interface SecretValues {
  readonly passphrase?: boolean;
  readonly 'passphrase-file'?: string;
  readonly 'one-time-file'?: string;
  readonly ports?: string;
  readonly steps?: string;
  readonly period?: string;
  readonly protocol?: string;
  readonly 'key-file'?: string;
}

/** 'rotating' or 'one-time' when the options ask for a computed sequence, else undefined. */
export function secretMode(v: SecretValues): 'rotating' | 'one-time' | undefined {
  if (v.ports !== undefined) return 'rotating';
  if (v['one-time-file'] !== undefined) return 'one-time';
  return undefined;
}

/** A usage mistake among these options, or undefined. */
export function secretUsageProblem(v: SecretValues, stepCount: number): string | undefined {
  const mode = secretMode(v);
  if (v.passphrase && v['passphrase-file'] !== undefined) return '--passphrase and --passphrase-file exclude each other';
  if (mode === 'rotating' && v['one-time-file'] !== undefined) return '--ports (rotating) and --one-time-file exclude each other';
  if (mode !== undefined && stepCount > 0) return `a ${mode} knock computes its own ports: give no PORT arguments`;
  if (mode === 'rotating' && v['key-file'] === undefined) return 'a rotating knock needs the door\'s key: --key-file FILE';
  if (mode !== 'rotating') {
    for (const o of ['steps', 'period', 'protocol'] as const) if (v[o] !== undefined) return `--${o} is for rotating knocks (with --ports LOW-HIGH)`;
  }
  return undefined;
}

export interface SecretSteps {
  readonly steps: PortSpec[];
  /** One line for --verbose. */
  readonly note: string;
}

/** The sequence a rotating or one-time knock sends (undefined for plain steps). Throws Error with a user message. */
export async function secretSteps(v: SecretValues, nowMs: number): Promise<SecretSteps | undefined> {
  const mode = secretMode(v);
  if (mode === 'one-time') {
    const t = takeOneTimeSequence(v['one-time-file'] as string);
    return { steps: [...t.entry.sequence], note: `one-time line ${t.entry.line} of ${v['one-time-file']} (now marked used; ${t.leftText})` };
  }
  if (mode !== 'rotating') return undefined;
  const range = parsePortRange(v.ports as string);
  const steps = v.steps === undefined ? 4 : Number(v.steps);
  if (!Number.isInteger(steps) || steps < 1 || steps > 32) throw new Error(`invalid --steps '${v.steps}': expected 1-32`);
  let periodMs: number;
  try {
    periodMs = parseDuration(v.period ?? '30s');
  } catch (err) {
    throw new Error(`invalid --period: ${(err as Error).message}`);
  }
  if (periodMs < 1000 || periodMs % 1000 !== 0) throw new Error(`invalid --period '${v.period}': whole seconds, at least 1s`);
  const protocol = (v.protocol ?? 'tcp').toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp') throw new Error(`invalid --protocol '${v.protocol}': tcp or udp`);
  const file = v['key-file'] as string;
  const key = parseKeyText(file, await readSecretFile(file, 'key file'));
  const k = rotatingKnock(key, { steps, periodMs, range, protocol }, nowMs);
  key.fill(0);
  return { steps: k.steps, note: `rotating period ${k.period} (until ${new Date(k.endsAt).toISOString()})` };
}

/** Per-step payloads for --passphrase / --passphrase-file, or undefined when neither is given. */
export async function secretPayloads(v: SecretValues, steps: readonly PortSpec[]): Promise<(Uint8Array | undefined)[] | undefined> {
  if (v['passphrase-file'] !== undefined) {
    const lines = readPassphraseFile(v['passphrase-file']);
    const udp = steps.filter((s) => s.protocol === 'udp').length;
    if (lines.length !== udp) throw new Error(`${v['passphrase-file']}: ${lines.length} passphrases for ${udp} UDP steps: one per line, in step order`);
    return passphrasePayloads(steps, (_s, i) => lines[i]);
  }
  if (!v.passphrase) return undefined;
  const reader = stdinSecretReader();
  return passphrasePayloads(steps, async (step) => {
    const p = await reader.read(passphrasePrompt(step));
    if (p === '') throw new Error(`empty passphrase for ${step.port}/${step.protocol}`);
    return p;
  });
}
