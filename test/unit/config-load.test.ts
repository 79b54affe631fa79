import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ConfigError, MAX_CONFIG_BYTES, defaultConfig, loadConfig } from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'kw-config-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const VALID = 'doors:\n  - name: ssh\n    sequence: [1, 3]\n    window: 5s\n    open: [22]\n    duration: 1m\n';

function write(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function loadError(path: string): Promise<ConfigError> {
  const err: unknown = await loadConfig(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

describe('loadConfig', () => {
  test('no path gives the defaults: door ssh 1234,5678,9012/tcp -> 2222/tcp, 10 s window, 20 s access', async () => {
    const cfg = await loadConfig();
    expect(cfg).toEqual(defaultConfig());
    expect(cfg).toEqual({
      interface: 'any',
      firewall: 'nftables',
      capture: 'pcap',
      maxSources: 100_000,
      doors: [
        {
          kind: 'sequence',
          name: 'ssh',
          sequence: [
            { port: 1234, protocol: 'tcp' },
            { port: 5678, protocol: 'tcp' },
            { port: 9012, protocol: 'tcp' },
          ],
          windowMs: 10_000,
          open: [{ port: 2222, protocol: 'tcp' }],
          durationMs: 20_000,
        },
      ],
    });
  });

  test('defaultConfig returns a fresh copy each time', () => {
    const a = defaultConfig() as { interface: string };
    a.interface = 'changed';
    expect(defaultConfig().interface).toBe('any');
  });

  test('reads and validates a file', async () => {
    const cfg = await loadConfig(write('ok.yaml', VALID));
    expect(cfg.doors[0]).toMatchObject({ name: 'ssh', windowMs: 5000, durationMs: 60_000 });
  });

  test('a leading byte-order mark is accepted', async () => {
    const cfg = await loadConfig(write('bom.yaml', `\uFEFF${VALID}`));
    expect(cfg.doors[0].name).toBe('ssh');
  });

  test('a missing file names the file and the OS error', async () => {
    const path = join(dir, 'nope.yaml');
    const err = await loadError(path);
    expect(err.fileName).toBe(path);
    expect(err.problems).toEqual([{ path: '', message: expect.stringMatching(/^cannot read config file: ENOENT: no such file or directory/) }]);
    expect(err.message).toContain(`${path}: cannot read config file: ENOENT`);
  });

  test('a directory is refused', async () => {
    const err = await loadError(dir);
    expect(err.message).toMatch(/cannot read config file: EISDIR|not a regular file/);
  });

  test('a path through a regular file reports ENOTDIR', async () => {
    const plain = write('plain.yaml', VALID);
    const path = join(plain, 'inner.yaml');
    const err = await loadError(path);
    expect(err.message).toContain(`${path}: cannot read config file: ${plain} is not a directory (ENOTDIR)`);
  });

  test('a file larger than the limit is refused before reading', async () => {
    const err = await loadError(write('big.yaml', `# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`));
    expect(err.problems[0].message).toMatch(/a config file may be at most 1048576/);
  });

  test('a device such as /dev/zero is refused instead of read forever', async () => {
    const err = await loadError('/dev/zero');
    expect(err.problems[0].message).toBe('not a regular file (a character device): a config file must be a plain file');
  });

  test('invalid UTF-8 names the byte offset', async () => {
    const bytes = Buffer.concat([Buffer.from('# caf\u00e9 \uFFFD\ninterface: '), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]);
    const offset = Buffer.byteLength('# caf\u00e9 \uFFFD\ninterface: ');
    const err = await loadError(write('latin.yaml', bytes));
    expect(err.problems[0].message).toBe(`not valid UTF-8 at byte offset ${offset}`);
  });

  test('problems in the file carry its path', async () => {
    const path = write('bad.yaml', VALID.replace('[1, 3]', '[1, 0]'));
    const err = await loadError(path);
    expect(err.message).toContain(`${path}:3:19: doors[0].sequence[1]: port 0 is outside 1-65535`);
  });
});
