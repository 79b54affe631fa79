// The keys of a `sequence` door (knockd's kind): the ordered knock ports, the
// window they must complete in, and an optional gap between two steps.
//
// A step is a port (`1234`, `1234/udp`), or a passphrase step (spknock):
// `{ port: 1234/udp, sha256: <64 hex digits> }`, whose datagram must carry that
// digest (knockwatch hash-passphrase prints it). UDP only: a SYN carries no data.
import { z } from 'zod';
import type { SequenceDoor, SequenceStep } from '../types.js';
import { formatPort } from '../types.js';
import { MAX_GAP_MS, MAX_SEQUENCE_STEPS, MAX_WINDOW_MS } from '../limits.js';
import { defineDoorKind } from './door-kind.js';
import { formatDuration } from './duration.js';
import { ValueError, describeValue } from './errors.js';
import { parsePortSpec } from './port.js';
import { duration, isPlainMapping, typeError } from './values.js';

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
const STEP_KEYS = ['port', 'sha256'];

/** One step: a port, or `{ port, sha256 }`; each problem at its own key. */
export const sequenceStep: z.ZodType<SequenceStep, unknown> = z.unknown().transform((v, ctx): SequenceStep => {
  const fail = (message: string, path: (string | number)[] = []): never => {
    ctx.addIssue({ code: 'custom', message, path });
    return z.NEVER;
  };
  const portOf = (p: unknown, path: string[]): SequenceStep | undefined => {
    if (typeof p !== 'string' && typeof p !== 'number') {
      fail(p === undefined ? 'required key is missing' : `expected a port such as 1234 or 1234/udp, got ${describeValue(p)}`, path);
      return undefined;
    }
    try {
      return parsePortSpec(p);
    } catch (err) {
      if (!(err instanceof ValueError)) throw err;
      fail(err.message, path);
      return undefined;
    }
  };
  if (v === undefined) return fail('required key is missing');
  if (!isPlainMapping(v)) {
    const step = portOf(v, []);
    return step ?? z.NEVER;
  }
  let ok = true;
  for (const k of Object.keys(v)) {
    if (!STEP_KEYS.includes(k)) {
      ok = false;
      fail(`unknown key '${k}' in a step (a step is a port, or { port, sha256 })`, [k]);
    }
  }
  const step = portOf(v['port'], ['port']);
  const digest = v['sha256'];
  if (digest === undefined) {
    if (ok && step !== undefined) fail('expected a port such as 1234 or 1234/udp, or { port: 1234/udp, sha256: DIGEST } for a passphrase step, got a mapping without sha256');
    return z.NEVER;
  }
  if (typeof digest !== 'string' || !SHA256_HEX.test(digest)) {
    const got = typeof digest === 'string' ? `${digest.length} characters${/^[0-9a-fA-F]*$/.test(digest) ? '' : ' that are not all hex digits'}` : `${describeValue(digest)} (quote it: a digest of digits only reads as a number)`;
    return fail(`expected a SHA-256 digest: 64 hex digits (knockwatch hash-passphrase prints one), got ${got}`, ['sha256']);
  }
  if (step === undefined || !ok) return z.NEVER;
  if (step.protocol !== 'udp') {
    return fail(`${formatPort(step)}: UDP is a requirement when using a passphrase (a TCP SYN carries no data); write the port as ${step.port}/udp`, ['sha256']);
  }
  return { port: step.port, protocol: step.protocol, sha256: digest.toLowerCase() };
});

const stepList = z
  .array(sequenceStep, { error: typeError('a list of knock ports such as [1234, 5678/udp]') })
  .min(1, { error: 'must not be empty: list at least one of the knock ports' })
  .max(MAX_SEQUENCE_STEPS, {
    error: (iss) => `has ${Array.isArray(iss.input) ? iss.input.length : '?'} steps; at most ${MAX_SEQUENCE_STEPS} are allowed (knockd's limit)`,
  });

/** A step in the file's shape: the port alone, or `{ port, sha256 }`. */
function stepJSON(s: SequenceStep): unknown {
  return s.sha256 === undefined ? formatPort(s) : { port: formatPort(s), sha256: s.sha256 };
}

/** The kind's own keys; exported so cross-field checks can parse them one at a time. */
export const sequenceShape = {
  sequence: stepList,
  window: duration('window', MAX_WINDOW_MS),
  gap: duration('gap', MAX_GAP_MS).optional(),
};

export const sequenceKind = defineDoorKind<typeof sequenceShape, SequenceDoor>({
  kind: 'sequence',
  key: 'sequence',
  shape: sequenceShape,
  toDoor: (d, common) => ({
    kind: 'sequence',
    ...common,
    sequence: d.sequence.map((s) => (s.sha256 === undefined ? { port: s.port, protocol: s.protocol } : s)),
    windowMs: d.window,
    ...(d.gap !== undefined ? { gapMs: d.gap } : {}),
  }),
  toJSON: (d) => ({
    sequence: d.sequence.map(stepJSON),
    window: formatDuration(d.windowMs),
    ...(d.gapMs !== undefined ? { gap: formatDuration(d.gapMs) } : {}),
  }),
});
