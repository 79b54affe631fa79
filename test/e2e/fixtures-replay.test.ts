// Golden tests: every recorded capture in fixtures/manifest.json, replayed by
// the BUILT command line (`node dist/cli.js replay`), must print exactly its
// `<name>.expected.jsonl` and open exactly the manifest's expectedOpens. This
// is the whole offline pipeline (capture-file reader, decoder, detector, JSON
// output) against real kernel traffic. Needs no root; needs `npm run build`.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILT_CLI, runCli } from './support/cli.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = BUILT_CLI;
const FIXTURES = join(ROOT, 'fixtures');

interface ManifestEntry {
  readonly file: string;
  readonly config: string;
  readonly expected: string;
  readonly format: string;
  readonly linkType: number;
  readonly knockPackets: number;
  readonly description: string;
  readonly expectedOpens: readonly { readonly door: string; readonly source: string }[];
}

function decisions(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function opensOf(stdout: string): string[] {
  return decisions(stdout)
    .filter((d) => d['type'] === 'open')
    .map((d) => `${String(d['door'])} ${String(d['source'])}`)
    .sort();
}

const manifest = JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8')) as ManifestEntry[];
const entry = (file: string): ManifestEntry => {
  const e = manifest.find((m) => m.file === file);
  if (e === undefined) throw new Error(`fixtures/manifest.json has no entry for ${file}`);
  return e;
};
const replayArgs = (e: ManifestEntry, file = join(FIXTURES, e.file)): string[] => ['replay', file, '--config', join(FIXTURES, e.config), '--json'];

beforeAll(() => {
  // Not a skip: without the build these tests would prove nothing.
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' before the e2e tests`);
});

describe('fixtures/manifest.json', () => {
  it('lists every capture in fixtures/, each with its config and expected output present', () => {
    const captures = readdirSync(FIXTURES).filter((f) => /\.pcap(ng)?$/.test(f)).sort();
    expect(manifest.map((e) => e.file).sort()).toEqual(captures);
    expect(captures.length).toBeGreaterThanOrEqual(15);
    for (const e of manifest) {
      expect(existsSync(join(FIXTURES, e.config)), `${e.file}: config ${e.config}`).toBe(true);
      expect(e.expected, e.file).toBe(e.file.replace(/\.pcap(ng)?$/, '.expected.jsonl'));
      expect(existsSync(join(FIXTURES, e.expected)), `${e.file}: ${e.expected}`).toBe(true);
    }
  });
});

describe('replay of every recorded fixture (built CLI, --json)', () => {
  it.each(manifest.map((e) => [e.file, e] as const))('%s', async (_name, e) => {
    const r = await runCli(replayArgs(e));
    expect(r.stderr).not.toMatch(/knockwatch replay:/);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(FIXTURES, e.expected), 'utf8'));
    expect(opensOf(r.stdout)).toEqual(e.expectedOpens.map((o) => `${o.door} ${o.source}`).sort());
    // The summary counts what the decoder saw: every knock packet, nothing malformed.
    expect(r.stderr).toMatch(new RegExp(`\\bknocks ${e.knockPackets}\\b`));
    expect(r.stderr).toMatch(/\bmalformed 0\b/);
  });
});

describe('replay from stdin (-)', () => {
  // two-sources.pcap is ~0.9 MB: many pipe chunks, records split across them.
  it.each([['two-sources.pcap'], ['pcapng-knock.pcapng']])('%s gives the same output as the file', async (file) => {
    const e = entry(file);
    const r = await runCli(replayArgs(e, '-'), join(FIXTURES, e.file));
    expect(r.stderr).not.toMatch(/knockwatch replay:/);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(FIXTURES, e.expected), 'utf8'));
    expect(opensOf(r.stdout).length).toBe(e.expectedOpens.length);
  });
});

describe('replay --verbose', () => {
  it.each([
    ['sweep-ascending.pcap', 1235],
    ['sweep-descending.pcap', 1233],
  ])('%s: the sweep progresses on 1234, resets on the next port and never opens', async (file, resetPort) => {
    const r = await runCli([...replayArgs(entry(file)), '--verbose']);
    expect(r.code).toBe(0);
    const ds = decisions(r.stdout);
    expect(ds.filter((d) => d['type'] === 'open')).toEqual([]);
    expect(ds.filter((d) => d['type'] === 'progress').map((d) => d['step'])).toEqual([1]);
    const resets = ds.filter((d) => d['type'] === 'reset');
    expect(resets).toHaveLength(1);
    expect(resets[0]).toMatchObject({ door: 'ssh', source: '10.199.0.2', reason: 'wrong-port', step: 1, port: resetPort, protocol: 'tcp' });
  });

  it.each([['retransmitted.pcap'], ['doubled.pcap']])('%s: repeated SYNs neither reset nor count twice', async (file) => {
    const r = await runCli([...replayArgs(entry(file)), '--verbose']);
    expect(r.code).toBe(0);
    const ds = decisions(r.stdout);
    // Six knock packets, each step twice; the repeat of the last step comes
    // after completion, when the source has no attempt left to report on.
    expect(ds.filter((d) => d['type'] === 'knock').map((d) => d['port'])).toEqual([1234, 1234, 5678, 5678, 9012]);
    expect(ds.filter((d) => d['type'] === 'reset')).toEqual([]);
    expect(ds.filter((d) => d['type'] === 'progress').map((d) => d['step'])).toEqual([1, 2, 3]);
    expect(ds.filter((d) => d['type'] === 'open')).toHaveLength(1);
  });
});

describe('replay of bad input', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kw-fixtures-replay-'));
  });
  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Offset of the record (pcap) or block (pcapng) that contains byte `cut`,
   * found by walking the file's own length fields: an oracle independent of
   * the reader under test.
   */
  function recordStart(bytes: Buffer, cut: number, pcapng: boolean): number {
    if (pcapng) {
      // Section header block's byte-order magic decides the endianness.
      const le = bytes.readUInt32LE(8) === 0x1a2b3c4d;
      let at = 0;
      for (;;) {
        const len = le ? bytes.readUInt32LE(at + 4) : bytes.readUInt32BE(at + 4);
        if (at + len > cut) return at;
        at += len;
      }
    }
    const magic = bytes.readUInt32LE(0);
    const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
    let at = 24;
    for (;;) {
      const caplen = le ? bytes.readUInt32LE(at + 8) : bytes.readUInt32BE(at + 8);
      if (at + 16 + caplen > cut) return at;
      at += 16 + caplen;
    }
  }

  it.each([
    ['ipv4-knock.pcap', 0.6],
    ['nanosecond.pcap', 0.75],
    ['pcapng-knock.pcapng', 0.5],
  ])('a truncated copy of %s fails, naming the file and the byte offset of the cut record', async (file, fraction) => {
    const bytes = readFileSync(join(FIXTURES, file));
    // Cut 5 bytes into a record's data, so the cut is never on a boundary.
    const cut = recordStart(bytes, Math.floor(bytes.length * fraction), file.endsWith('.pcapng')) + 21;
    const start = recordStart(bytes, cut, file.endsWith('.pcapng'));
    expect(start).toBeGreaterThan(0);
    const path = join(dir, `cut-${file}`);
    writeFileSync(path, bytes.subarray(0, cut));
    const r = await runCli(replayArgs(entry(file), path));
    expect(r.code).toBeGreaterThan(0);
    expect(r.stderr).toContain(`${path}: byte ${start}: truncated`);
  });

  it('a file cut inside its header fails at byte 0', async () => {
    const path = join(dir, 'header.pcap');
    writeFileSync(path, readFileSync(join(FIXTURES, 'ipv4-knock.pcap')).subarray(0, 10));
    const r = await runCli(replayArgs(entry('ipv4-knock.pcap'), path));
    expect(r.code).toBeGreaterThan(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${path}: byte 0: truncated file header`);
  });

  it('a missing capture file fails with its name and the system error', async () => {
    const path = join(dir, 'no-such.pcap');
    const r = await runCli(replayArgs(entry('ipv4-knock.pcap'), path));
    expect(r.code).toBeGreaterThan(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(path);
    expect(r.stderr).toMatch(/ENOENT|no such file/);
  });

  it('a bad config fails before reading the capture, with file, line, path and reason', async () => {
    const config = join(dir, 'sweepable.yaml');
    writeFileSync(config, ['doors:', '  - name: ssh', '    sequence: [1234, 1235, 9012]', '    window: 10s', '    open: [22]', '    duration: 20s', ''].join('\n'));
    const r = await runCli(['replay', join(FIXTURES, 'ipv4-knock.pcap'), '--config', config, '--json']);
    expect(r.code).toBeGreaterThan(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${config}:3:22: doors[0].sequence[1]: 1235/tcp right after 1234/tcp is a neighbouring port: a port sweep would open this door`);
  });

  it('a missing config file fails with its name', async () => {
    const config = join(dir, 'no-such.yaml');
    const r = await runCli(['replay', join(FIXTURES, 'ipv4-knock.pcap'), '--config', config, '--json']);
    expect(r.code).toBeGreaterThan(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(config);
    expect(r.stderr).toMatch(/config file not found/);
  });
});
