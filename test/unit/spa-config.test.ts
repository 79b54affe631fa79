// spa in the config: 'spa:' doors, top-level users, the checks between them
// (with file:line), and reading the key files (requirement 10, file modes).
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type ConfigProblem } from '../../src/config/index.js';
import { loadSpaUsers } from '../../src/config/users.js';
import { formatConfig } from '../../src/config/format.js';
import type { SpaDoor } from '../../src/types.js';
import { KEY_A, KEY_B } from './spa-support.js';

const FILE = 'k.yaml';
const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`;

/** users (alice with TOTP, bob) and one spa door; `extra` lines go into the door. */
function spaConfig(...extra: string[]): string {
  return yaml(
    'users:', // 1
    '  - name: alice', // 2
    '    key_file: /k/alice.key', // 3
    '    totp_file: /k/alice.totp', // 4
    '  - name: bob', // 5
    '    key_file: [/k/bob.key, /k/bob-next.key]', // 6
    'doors:', // 7
    '  - name: ssh', // 8
    '    spa: 62201/udp', // 9
    '    open: [22]', // 10
    '    duration: 30s', // 11
    ...extra, // 12...
  );
}

function problemsOf(text: string): ConfigProblem[] {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('spa doors in the config', () => {
  it('parses an spa door with its defaults, and the users', () => {
    const cfg = parseConfig(spaConfig(), FILE);
    const d = cfg.doors[0] as SpaDoor;
    expect(d).toMatchObject({ kind: 'spa', name: 'ssh', port: 62201, totp: false, allowIp: 'source', maxAgeMs: 30_000, durationMs: 30_000 });
    expect(d.users).toBeUndefined();
    expect(cfg.users).toEqual([
      { name: 'alice', keyFiles: ['/k/alice.key'], totpFile: '/k/alice.totp' },
      { name: 'bob', keyFiles: ['/k/bob.key', '/k/bob-next.key'] },
    ]);
  });
  it('parses every key; a bare port number is UDP', () => {
    const cfg = parseConfig(spaConfig('    users: [alice]', '    totp: true', '    allow_ip: any', '    max_age: 5m').replace('62201/udp', '62201'), FILE);
    expect(cfg.doors[0]).toMatchObject({ port: 62201, users: ['alice'], totp: true, allowIp: 'any', maxAgeMs: 300_000 });
  });
  it('prints back as a config that parses to the same doors', () => {
    const cfg = parseConfig(spaConfig('    users: [alice]', '    totp: true'), FILE);
    const again = parseConfig(formatConfig(cfg), FILE);
    expect(again.doors).toEqual(cfg.doors);
  });
  it.each([
    ['an unknown user in a door', ['    users: [alice, carol]'], 'doors[0].users[1]', 12, /unknown user 'carol'/],
    ['max_age above 5 minutes', ['    max_age: 6m'], 'doors[0].max_age', 12, /longer than the maximum 5m/],
    ['a TCP spa port', [], 'doors[0].spa', 9, /spa datagrams are UDP/],
    ['allow_ip other than source or any', ['    allow_ip: 1.2.3.4'], 'doors[0].allow_ip', 12, /expected source .* or any/],
    ['a TOTP door whose user has no totp_file', ['    users: [bob]', '    totp: true'], 'doors[0].totp', 13, /user 'bob' has no totp_file/],
  ])('refuses %s, naming path and line', (_what, extra, path, line, re) => {
    let text = spaConfig(...extra);
    if (path === 'doors[0].spa') text = text.replace('62201/udp', '62201/tcp');
    const problems = problemsOf(text);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ path, line });
    expect(problems[0].message).toMatch(re);
  });
  it('refuses duplicate user names, three key files, and spa doors without users', () => {
    expect(problemsOf(spaConfig().replace('name: bob', 'name: alice'))).toEqual([expect.objectContaining({ path: 'users[1].name', line: 5, message: expect.stringMatching(/duplicate user name 'alice'/) })]);
    expect(problemsOf(spaConfig().replace('[/k/bob.key, /k/bob-next.key]', '[/a, /b, /c]'))[0]).toMatchObject({ path: 'users[1].key_file', message: expect.stringMatching(/at most 2 key files/) });
    const noUsers = yaml('doors:', '  - name: ssh', '    spa: 62201/udp', '    open: [22]', '    duration: 30s');
    expect(problemsOf(noUsers)[0]).toMatchObject({ path: 'doors[0].spa', line: 3, message: expect.stringMatching(/needs users/) });
  });
  it('an unknown key in an spa door suggests the right one', () => {
    expect(problemsOf(spaConfig('    maxage: 10s'))[0].message).toMatch(/did you mean 'max_age'/);
  });
});

describe('reading key files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kw-spa-keys-'));
    await writeFile(join(dir, 'alice.key'), `${KEY_A.toString('base64')}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'bob.key'), `${KEY_B.toString('base64')}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'copy.key'), `${KEY_A.toString('base64')}\n`, { mode: 0o600 });
    await writeFile(join(dir, 'open.key'), `${KEY_B.toString('base64')}\n`);
    await chmod(join(dir, 'open.key'), 0o644);
    await writeFile(join(dir, 'group.totp'), 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n');
    await chmod(join(dir, 'group.totp'), 0o640);
    await writeFile(join(dir, 'bad.key'), '# comment\nnot-a-key\n', { mode: 0o600 });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const opts = () => ({ baseDir: dir, ownershipRules: false });

  it('derives each user\'s keys; relative paths are taken from the config directory', async () => {
    const users = await loadSpaUsers([{ name: 'alice', keyFiles: ['alice.key'] }, { name: 'bob', keyFiles: [join(dir, 'bob.key')] }], 'k.yaml', opts());
    expect(users.map((u) => [u.name, u.keys.length])).toEqual([['alice', 1], ['bob', 1]]);
  });
  it('refuses key and TOTP files group or others can read, naming the file', async () => {
    const err = await loadSpaUsers([{ name: 'bob', keyFiles: ['open.key'], totpFile: 'group.totp' }], 'k.yaml', opts()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const messages = (err as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
    expect(messages[0]).toBe(`users[0].key_file: ${join(dir, 'open.key')}: key file is accessible by others (mode 0644): it holds a secret; chmod 600 ${join(dir, 'open.key')}`);
    expect(messages[1]).toMatch(/^users\[0\]\.totp_file: .*group\.totp: TOTP file is accessible by its group \(mode 0640\)/);
  });
  it('refuses the same key under two users, and names file:line of a bad key', async () => {
    const err = (await loadSpaUsers(
      [
        { name: 'alice', keyFiles: ['alice.key'] },
        { name: 'carol', keyFiles: ['copy.key', 'bad.key'] },
      ],
      'k.yaml',
      opts(),
    ).catch((e: unknown) => e)) as ConfigError;
    expect(err.problems[0]).toMatchObject({ path: 'users[1].key_file[0]', message: expect.stringMatching(/copy\.key holds the same key as user 'alice'/) });
    expect(err.problems[1]).toMatchObject({ path: 'users[1].key_file[1]', message: expect.stringMatching(/bad\.key:2: expected a 256-bit key/) });
  });
});
