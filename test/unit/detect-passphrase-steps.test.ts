// Passphrase-hash steps (spknock, issue 11 part 1): the config schema for
// `{ port, sha256 }` steps, and the sequence matcher comparing the datagram's
// payload with the step's digest. The passphrases and digests are the seed's.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/index.js';
import { formatConfig } from '../../src/config/format.js';
import { payloadMatchesDigest } from '../../src/detect/payload-digest.js';
import type { KnockEvent, SequenceDoor } from '../../src/types.js';
import { door, knock, run } from './detect-support.js';

const MIKROTIK = '862b6133b45f398cf96d13429629edfc02dbc102d8108441436ced70651c7aad';
const IS = 'fa51fd49abf67705d6a35d18218c115ff5633aec1f9ebfdc9d5d4956416f57f6';
const AWESOME = '705db0603fd5431451dab1171b964b4bd575e2230f40f4c300d70df6e65f5f1c';
const FILE = '/etc/knockwatch/knockwatch.yaml';

function datagram(source: string, port: number, time: number, payload: string): KnockEvent {
  return { ...knock(source, port, time, 'udp'), payload: Buffer.from(payload, 'latin1') };
}

const spk: SequenceDoor = door({
  name: 'spk',
  sequence: [
    { port: 1234, protocol: 'udp', sha256: MIKROTIK },
    { port: 9876, protocol: 'udp', sha256: IS },
    { port: 5555, protocol: 'udp', sha256: AWESOME },
  ],
});

describe('payloadMatchesDigest', () => {
  const d = Buffer.from(MIKROTIK, 'hex');
  it.each([
    [MIKROTIK, true],
    [MIKROTIK.toUpperCase(), true],
    [`${MIKROTIK}\n`, true],
    [`  ${MIKROTIK}\r\n`, true],
    [`\t${MIKROTIK} `, true],
    [MIKROTIK.slice(0, 63), false],
    [`${MIKROTIK}0`, false],
    [`${MIKROTIK.slice(0, 63)}g`, false],
    [IS, false],
    ['', false],
    [`${MIKROTIK.slice(0, 32)} ${MIKROTIK.slice(32)}`, false],
  ])('%j -> %s', (payload, want) => {
    expect(payloadMatchesDigest(Buffer.from(payload, 'latin1'), d)).toBe(want);
  });
  it('the raw 32 digest bytes are not the hex text', () => {
    expect(payloadMatchesDigest(d, d)).toBe(false);
  });
});

describe('sequence with passphrase steps', () => {
  it('the three right digests open', () => {
    const r = run([spk], [datagram('198.51.100.9', 1234, 0, MIKROTIK), datagram('198.51.100.9', 9876, 100, `${IS}\n`), datagram('198.51.100.9', 5555, 200, AWESOME.toUpperCase())]);
    expect(r.lines.filter((l) => / (progress|open|reset) /.test(l))).toEqual([
      '0 progress spk 198.51.100.9 1/3',
      '100 progress spk 198.51.100.9 2/3',
      '200 progress spk 198.51.100.9 3/3',
      '200 open spk 198.51.100.9 until=30200',
      '30200 close spk 198.51.100.9 expired',
    ].filter((l) => / (progress|open|reset) /.test(l)));
  });

  it('a wrong passphrase on a later step resets (wrong-payload) and does not open', () => {
    const r = run([spk], [datagram('198.51.100.9', 1234, 0, MIKROTIK), datagram('198.51.100.9', 9876, 100, MIKROTIK), datagram('198.51.100.9', 5555, 200, AWESOME)]);
    expect(r.lines).toContain('100 reset spk 198.51.100.9 wrong-payload 1 9876/udp');
    expect(r.lines.some((l) => l.includes(' open '))).toBe(false);
  });

  it('a wrong or empty first datagram starts nothing (no state), a SYN to the step port neither', () => {
    const r = run([spk], [datagram('198.51.100.9', 1234, 0, IS), knock('198.51.100.9', 1234, 10, 'tcp'), datagram('198.51.100.9', 1234, 20, '')]);
    expect(r.lines.filter((l) => l.includes('progress'))).toEqual([]);
    expect(r.detector.stats.sources).toBe(0);
  });

  it('a SYN to the next step port is a wrong protocol; a retransmission with the right digest is ignored, with a wrong one resets', () => {
    const a = run([spk], [datagram('198.51.100.9', 1234, 0, MIKROTIK), knock('198.51.100.9', 9876, 100, 'tcp')]);
    expect(a.lines).toContain('100 reset spk 198.51.100.9 wrong-protocol 1 9876/tcp');
    const b = run([spk], [datagram('198.51.100.9', 1234, 0, MIKROTIK), datagram('198.51.100.9', 1234, 300, MIKROTIK), datagram('198.51.100.9', 9876, 400, IS)]);
    expect(b.lines).toContain('400 progress spk 198.51.100.9 2/3');
    const c = run([spk], [datagram('198.51.100.9', 1234, 0, MIKROTIK), datagram('198.51.100.9', 1234, 300, 'junk')]);
    expect(c.lines).toContain('300 reset spk 198.51.100.9 wrong-port 1 1234/udp');
  });

  it('steps without sha256 keep their meaning beside passphrase steps', () => {
    const mixed = door({ name: 'mix', sequence: [{ port: 1234, protocol: 'udp', sha256: MIKROTIK }, { port: 5555, protocol: 'udp' }] });
    const r = run([mixed], [datagram('198.51.100.9', 1234, 0, MIKROTIK), datagram('198.51.100.9', 5555, 100, 'anything')]);
    expect(r.lines).toContain('100 open mix 198.51.100.9 until=30100');
  });

  it('the detector refuses sha256 on a TCP step', () => {
    const bad = door({ sequence: [{ port: 1234, protocol: 'tcp', sha256: MIKROTIK }, { port: 5555, protocol: 'udp' }] });
    expect(() => run([bad], [])).toThrow("door 0 'ssh' sequence[0]: sha256 on a TCP step (UDP is a requirement when using a passphrase)");
  });
});

describe('config: { port, sha256 } steps', () => {
  const config = (steps: string) => `doors:\n  - name: spk\n    sequence:\n${steps}    window: 10s\n    open: [2222]\n    duration: 20s\n`;

  it('parses the issue example and prints it back', () => {
    const text = config(`      - { port: 1234/udp, sha256: ${MIKROTIK} }\n      - { port: 9876/udp, sha256: ${IS.toUpperCase()} }\n      - 5555/udp\n`);
    const cfg = parseConfig(text, FILE);
    const d = cfg.doors[0] as SequenceDoor;
    expect(d.sequence).toEqual([
      { port: 1234, protocol: 'udp', sha256: MIKROTIK },
      { port: 9876, protocol: 'udp', sha256: IS },
      { port: 5555, protocol: 'udp' },
    ]);
    const printed = formatConfig(cfg);
    expect(printed).toContain(`{port: 1234/udp, sha256: ${MIKROTIK}}`);
    expect(parseConfig(printed, FILE)).toEqual(cfg);
  });

  function problems(text: string): string[] {
    try {
      parseConfig(text, FILE);
    } catch (err) {
      if (err instanceof ConfigError) return err.message.split('\n').slice(1);
      throw err;
    }
    return [];
  }

  it("a TCP step with sha256: the seed's words, at the digest's line and column", () => {
    expect(problems(config(`      - { port: 1234, sha256: ${MIKROTIK} }\n      - 5555/udp\n`))).toEqual([
      `${FILE}:4:31: doors[0].sequence[0].sha256: 1234/tcp: UDP is a requirement when using a passphrase (a TCP SYN carries no data); write the port as 1234/udp`,
    ]);
  });

  it('wrong digest lengths, non-hex, a digest of digits only, unknown keys, a mapping without sha256', () => {
    const p = problems(
      config(
        `      - { port: 1234/udp, sha256: ${MIKROTIK.slice(1)} }\n` +
          `      - { port: 2234/udp, sha256: ${MIKROTIK.slice(0, 63)}z }\n` +
          `      - { port: 3234/udp, sha256: 1234 }\n` +
          `      - { port: 4234/udp, sha265: ${MIKROTIK} }\n` +
          `      - { port: 5234/udp }\n`,
      ),
    );
    expect(p).toEqual([
      `${FILE}:4:35: doors[0].sequence[0].sha256: expected a SHA-256 digest: 64 hex digits (knockwatch hash-passphrase prints one), got 63 characters`,
      `${FILE}:5:35: doors[0].sequence[1].sha256: expected a SHA-256 digest: 64 hex digits (knockwatch hash-passphrase prints one), got 64 characters that are not all hex digits`,
      `${FILE}:6:35: doors[0].sequence[2].sha256: expected a SHA-256 digest: 64 hex digits (knockwatch hash-passphrase prints one), got 1234 (quote it: a digest of digits only reads as a number)`,
      `${FILE}:7:35: doors[0].sequence[3].sha265: unknown key 'sha265' in a step (a step is a port, or { port, sha256 })`,
      `${FILE}:8:9: doors[0].sequence[4]: expected a port such as 1234 or 1234/udp, or { port: 1234/udp, sha256: DIGEST } for a passphrase step, got a mapping without sha256`,
    ]);
  });
});
