// The recorded secret-sequence fixtures (fixtures/secret/, made in the lab by
// scripts/record-secret-fixtures.mjs) through the built `knockwatch replay`:
// passphrase steps right and wrong, a rotating sequence replayed after use,
// the previous period (and two back), a one-time line reused. Replay judges by
// packet time with in-memory state: the one-time file and the key are read,
// never written, and nothing else is created.
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILT_CLI } from './support/cli.js';
import { requireBuiltCli } from './support/daemon.js';

const run = promisify(execFile);
const FIXTURES = fileURLToPath(new URL('../../fixtures/secret/', import.meta.url));

interface Entry {
  readonly file: string;
  readonly config: string;
  readonly expected: string;
  readonly description: string;
  readonly expectedOpens: readonly { door: string; source: string }[];
}

const manifest = JSON.parse(await readFile(join(FIXTURES, 'manifest.json'), 'utf8')) as Entry[];
const KEPT = new Set(['open', 'close', 'reject', 'reset']);

describe('secret-sequence fixtures replayed (built CLI)', () => {
  let dir: string;
  beforeAll(async () => {
    requireBuiltCli();
    // git checks files out 0644; replay refuses a key or one-time file others can read.
    dir = await mkdtemp(join(tmpdir(), 'kw-secret-replay-'));
    for (const f of ['secret.yaml', 'rot.key', 'once.txt']) {
      await copyFile(join(FIXTURES, f), join(dir, f));
      await chmod(join(dir, f), 0o600);
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each(manifest.map((e) => [e.file, e] as const))('%s', async (_name, e) => {
    const { stdout } = await run(process.execPath, [BUILT_CLI, 'replay', join(FIXTURES, e.file), '--config', join(dir, e.config), '--json', '--verbose', '--quiet'], { timeout: 30_000 });
    const got = stdout.split('\n').filter((l) => l.trim() !== '' && KEPT.has((JSON.parse(l) as { type: string }).type));
    const want = (await readFile(join(FIXTURES, e.expected), 'utf8')).split('\n').filter((l) => l.trim() !== '');
    expect(got).toEqual(want);
    const opens = got.map((l) => JSON.parse(l) as { type: string; door: string; source: string }).filter((d) => d.type === 'open');
    expect(opens.map((d) => ({ door: d.door, source: d.source }))).toEqual(e.expectedOpens);
  });

  it('replay wrote nothing: the one-time file is unchanged and no state was created', async () => {
    expect(await readFile(join(dir, 'once.txt'), 'utf8')).toBe(await readFile(join(FIXTURES, 'once.txt'), 'utf8'));
    expect((await readdir(dir)).sort()).toEqual(['once.txt', 'rot.key', 'secret.yaml']);
  });

  it('check-config prints the three kinds (the key file, never the key) and warns when a one-time file has no line left', async () => {
    const { stdout, stderr } = await run(process.execPath, [BUILT_CLI, 'check-config', join(dir, 'secret.yaml')], { timeout: 30_000 });
    expect(stdout).toContain(`key_file: ${join(dir, 'rot.key')}`);
    expect(stdout).toContain('sha256: 862b6133b45f398cf96d13429629edfc02dbc102d8108441436ced70651c7aad');
    expect(stdout).toContain(`one_time: ${join(dir, 'once.txt')}`);
    expect(stdout).not.toContain('AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=');
    expect(stderr).toBe('');
    const used = await mkdtemp(join(tmpdir(), 'kw-secret-used-'));
    try {
      for (const f of ['secret.yaml', 'rot.key']) await copyFile(join(dir, f), join(used, f));
      await writeFile(join(used, 'once.txt'), '#41000:tcp,42000:udp,43000\n', { mode: 0o600 });
      const r = await run(process.execPath, [BUILT_CLI, 'check-config', join(used, 'secret.yaml')], { timeout: 30_000 });
      expect(r.stderr).toBe(`knockwatch check-config: warning: ${join(used, 'once.txt')}: door 'once' has no unused one-time sequence left: it cannot open until lines are added\n`);
    } finally {
      await rm(used, { recursive: true, force: true });
    }
  });

  it('replay refuses a key file others can read, naming it and the config line', async () => {
    const loose = await mkdtemp(join(tmpdir(), 'kw-secret-loose-'));
    try {
      for (const f of ['secret.yaml', 'rot.key', 'once.txt']) await copyFile(join(FIXTURES, f), join(loose, f));
      await chmod(join(loose, 'once.txt'), 0o600);
      await chmod(join(loose, 'rot.key'), 0o644);
      const r = await run(process.execPath, [BUILT_CLI, 'replay', join(FIXTURES, manifest[0].file), '--config', join(loose, 'secret.yaml')]).catch((err: { code: number; stderr: string }) => err);
      expect((r as { code: number }).code).toBe(2);
      expect((r as { stderr: string }).stderr).toMatch(new RegExp(`secret\\.yaml:\\d+:\\d+: doors\\[1\\]\\.rotating\\.key_file: .*rot\\.key: key file is accessible by others \\(mode 0644\\)`));
    } finally {
      await rm(loose, { recursive: true, force: true });
    }
  });
});
