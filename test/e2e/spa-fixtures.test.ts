// Golden tests for the recorded spa captures in fixtures/spa/ (recorded by
// scripts/record-spa-fixtures.mjs in the namespace lab with the test keys of
// fixtures/keys/): the BUILT `knockwatch replay --json --verbose` must print
// exactly each <name>.expected.jsonl and open and reject exactly what the
// manifest says, judging freshness and TOTP on packet time with an in-memory
// replay cache. Replay refuses keys that group or others can read (git checks
// them out 0644), so it runs on a 0600 copy; the checked-out files themselves
// are refused, naming the file. Needs no root; needs `npm run build`.
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILT_CLI, runCli } from './support/cli.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SPA = join(ROOT, 'fixtures', 'spa');
const KEYS = join(ROOT, 'fixtures', 'keys');

interface Entry {
  readonly file: string;
  readonly config: string;
  readonly expected: string;
  readonly datagrams: number;
  readonly description: string;
  readonly expectedOpens: readonly string[];
  readonly expectedRejects: readonly string[];
}

const manifest = JSON.parse(readFileSync(join(SPA, 'manifest.json'), 'utf8')) as Entry[];

const lines = (stdout: string): Record<string, unknown>[] =>
  stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('spa fixtures (fixtures/spa, replayed by the built CLI)', () => {
  let work: string;
  beforeAll(async () => {
    if (!existsSync(BUILT_CLI)) throw new Error(`${BUILT_CLI} is missing: run 'npm run build' before the e2e tests`);
    work = await mkdtemp(join(tmpdir(), 'kw-spa-fixtures-'));
    await mkdir(join(work, 'keys'), { mode: 0o700 });
    await mkdir(join(work, 'spa'));
    for (const f of await readdir(KEYS)) {
      await copyFile(join(KEYS, f), join(work, 'keys', f));
      await chmod(join(work, 'keys', f), 0o600);
    }
    await copyFile(join(SPA, 'spa.yaml'), join(work, 'spa', 'spa.yaml'));
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the manifest lists every capture in fixtures/spa with its expected output', async () => {
    const captures = (await readdir(SPA)).filter((f) => f.endsWith('.pcap')).sort();
    expect(manifest.map((e) => e.file).sort()).toEqual(captures);
    expect(captures.length).toBeGreaterThanOrEqual(6);
    for (const e of manifest) expect(existsSync(join(SPA, e.expected)), e.expected).toBe(true);
  });

  for (const e of manifest) {
    it(`${e.file}: ${e.description}`, async () => {
      const r = await runCli(['replay', join(SPA, e.file), '--config', join(work, 'spa', e.config), '--json', '--verbose', '--quiet']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(await readFile(join(SPA, e.expected), 'utf8'));
      const out = lines(r.stdout);
      expect(out.filter((d) => d['type'] === 'open').map((d) => `${String(d['door'])} ${String(d['source'])}`).sort()).toEqual([...e.expectedOpens].sort());
      expect(out.filter((d) => d['type'] === 'reject').map((d) => `${String(d['reason'])} ${String(d['source'])}`).sort()).toEqual([...e.expectedRejects].sort());
    });
  }

  it('the same datagram twice in one capture: the second is rejected as replayed (the summary counts one open)', async () => {
    const r = await runCli(['replay', join(SPA, 'spa-replayed.pcap'), '--config', join(work, 'spa', 'spa.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/opens 1\b/);
  });

  it('the checked-out keys (mode 0644) are refused, naming the file', async () => {
    const r = await runCli(['replay', join(SPA, 'spa-correct.pcap'), '--config', join(SPA, 'spa.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/alice\.key: key file is accessible by (others|its group) \(mode 06[0-7][0-7]\): it holds a secret; chmod 600/);
  });
});
