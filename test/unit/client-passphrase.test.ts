// Passphrase-hash knocks on the client side: the digests of spknock's example
// (seed 004: MikroTik, is, awesome), the payload per step, the file format.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  passphraseDigest,
  passphrasePayload,
  passphrasePayloads,
  passphrasePrompt,
  readPassphraseFile,
} from '../../src/client/passphrase.js';

const SEED_PASSPHRASES = [
  ['MikroTik', '862b6133b45f398cf96d13429629edfc02dbc102d8108441436ced70651c7aad'],
  ['is', 'fa51fd49abf67705d6a35d18218c115ff5633aec1f9ebfdc9d5d4956416f57f6'],
  ['awesome', '705db0603fd5431451dab1171b964b4bd575e2230f40f4c300d70df6e65f5f1c'],
] as const;

const dir = mkdtempSync(join(tmpdir(), 'kw-pass-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('passphrase digests', () => {
  it.each(SEED_PASSPHRASES)('%s -> the seed digest', (p, digest) => {
    expect(passphraseDigest(p)).toBe(digest);
    expect(Buffer.from(passphrasePayload(p)).toString('ascii')).toBe(digest);
  });

  it('hashes the UTF-8 bytes as typed (no trimming)', () => {
    expect(passphraseDigest(' is')).not.toBe(passphraseDigest('is'));
    expect(passphraseDigest('é')).toBe(passphraseDigest(Buffer.from([0xc3, 0xa9]).toString('utf8')));
  });

  it("prompts as spknock does", () => {
    expect(passphrasePrompt({ port: 1234, protocol: 'udp' })).toBe('Enter passphrase (1234/udp): ');
  });
});

describe('passphrasePayloads', () => {
  it('one digest per UDP step in order; TCP steps carry none', async () => {
    const steps = [
      { port: 1234, protocol: 'udp' },
      { port: 22, protocol: 'tcp' },
      { port: 9876, protocol: 'udp' },
    ] as const;
    const asked: string[] = [];
    const payloads = await passphrasePayloads(steps, (step, i) => {
      asked.push(`${step.port}:${i}`);
      return SEED_PASSPHRASES[i][0];
    });
    expect(asked).toEqual(['1234:0', '9876:1']);
    expect(payloads.map((p) => (p === undefined ? undefined : Buffer.from(p).toString()))).toEqual([
      SEED_PASSPHRASES[0][1],
      undefined,
      SEED_PASSPHRASES[1][1],
    ]);
  });

  it('refuses a sequence without UDP steps', async () => {
    await expect(passphrasePayloads([{ port: 1, protocol: 'tcp' }], () => 'x')).rejects.toThrow('a passphrase needs UDP steps');
  });
});

describe('readPassphraseFile', () => {
  it('one per line, \\r\\n and a final newline are not part of them, spaces are', () => {
    const f = join(dir, 'p.txt');
    writeFileSync(f, 'MikroTik\r\n is \nawesome\n');
    expect(readPassphraseFile(f)).toEqual(['MikroTik', ' is ', 'awesome']);
  });
  it('a missing file is named', () => {
    expect(() => readPassphraseFile(join(dir, 'none'))).toThrow(`cannot read passphrase file ${join(dir, 'none')}: ENOENT`);
  });
});
