// Config of the rotating and one_time door kinds (issue 11): their keys, the
// files they name (read by loadConfig at load and reload), and every bad
// input as a clear error with file:line — wrong ranges, open ports inside the
// range, key files others can read, one-time files missing, unwritable or
// with a bad line.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/index.js';
import { formatConfig } from '../../src/config/format.js';
import type { OneTimeDoor, RotatingDoor } from '../../src/types.js';

const dir = mkdtempSync(join(tmpdir(), 'kw-secret-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const KEY_TEXT = `${Buffer.from(Array.from({ length: 32 }, (_, i) => i)).toString('base64')}\n`;

function write(name: string, text: string, mode = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
}

const rotatingDoor = (settings: string, extra = '') =>
  `doors:\n  - name: rot\n    rotating: ${settings}\n    window: 5s\n    open: [2222]\n    duration: 20s\n${extra}`;

function problems(text: string, file = '/etc/kw.yaml'): string[] {
  try {
    parseConfig(text, file);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n').slice(1);
    throw err;
  }
  return [];
}

async function loadProblems(path: string): Promise<string[]> {
  try {
    await loadConfig(path, { uid: 1000 });
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n').slice(1);
    throw err;
  }
  return [];
}

describe('rotating door config', () => {
  it('parses the issue example (protocol defaults to tcp) and prints it back without the key', async () => {
    write('rot.key', KEY_TEXT);
    const cfgPath = write('rot.yaml', rotatingDoor('{ key_file: rot.key, steps: 4, period: 30s, ports: 20000-60000 }'));
    const cfg = await loadConfig(cfgPath, { uid: 1000 });
    const d = cfg.doors[0] as RotatingDoor;
    expect(d).toMatchObject({ kind: 'rotating', keyFile: join(dir, 'rot.key'), steps: 4, periodMs: 30_000, portRange: { low: 20000, high: 60000 }, protocol: 'tcp', windowMs: 5000 });
    expect(Buffer.from(d.key!.bytes).toString('base64')).toBe(KEY_TEXT.trim());
    const printed = formatConfig(cfg);
    expect(printed).toContain(`key_file: ${join(dir, 'rot.key')}`);
    expect(printed).toContain('ports: 20000-60000');
    expect(printed).not.toContain(KEY_TEXT.trim());
    expect(JSON.stringify(cfg)).not.toContain(KEY_TEXT.trim());
  });

  it.each([
    ['{ key_file: k, steps: 4, period: 30s, ports: 20000-20014 }', 'doors[0].rotating.ports: port range 20000-20014 holds 15 ports; 4 steps need at least 16 (4 per step): widen the range or use fewer steps'],
    ['{ key_file: k, steps: 0, period: 30s, ports: 20000-60000 }', 'doors[0].rotating.steps: expected the number of ports per sequence, 1-32, got 0'],
    ['{ key_file: k, steps: 4, period: 500ms, ports: 20000-60000 }', 'doors[0].rotating.period: period 500ms is shorter than 1s'],
    ['{ key_file: k, steps: 4, period: 1500ms, ports: 20000-60000 }', 'doors[0].rotating.period: period 1500ms is not a whole number of seconds'],
    ['{ key_file: k, steps: 4, period: 30s, ports: 60000-20000 }', 'doors[0].rotating.ports: port range 60000-20000 runs backwards'],
    ['{ key_file: k, steps: 4, period: 30s, ports: 20000 }', 'doors[0].rotating.ports: expected a port range LOW-HIGH such as 20000-60000, got 20000'],
    ['{ key_file: k, steps: 4, period: 30s, ports: 20000-60000, protocol: sctp }', "doors[0].rotating.protocol: expected tcp or udp, got 'sctp'"],
    ['{ steps: 4, period: 30s, ports: 20000-60000 }', 'doors[0].rotating.key_file: required key is missing'],
  ])('%s', (settings, message) => {
    const p = problems(rotatingDoor(settings));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^\/etc\/kw\.yaml:3:\d+: /);
    expect(p[0]).toContain(message);
  });

  it('an open port of its protocol inside the range is refused at the port', () => {
    const text = `doors:\n  - name: rot\n    rotating: { key_file: k, steps: 4, period: 30s, ports: 20000-60000 }\n    window: 5s\n    open: [2222, 30000]\n    duration: 20s\n`;
    expect(problems(text)).toEqual([
      "/etc/kw.yaml:5:18: doors[0].open[1]: 30000/tcp is inside this door's rotating range 20000-60000/tcp: the knocker's own connections would count as knocks",
    ]);
    expect(problems(text.replace('30000]', '30000/udp]'))).toEqual([]);
  });

  it('a key file others (or the group) can read is refused, naming it and the config line', async () => {
    write('loose.key', KEY_TEXT, 0o640);
    const cfgPath = write('loose.yaml', rotatingDoor('{ key_file: loose.key, steps: 4, period: 30s, ports: 20000-60000 }'));
    const p = await loadProblems(cfgPath);
    expect(p).toEqual([`${cfgPath}:3:27: doors[0].rotating.key_file: ${join(dir, 'loose.key')}: key file is accessible by its group (mode 0640): it holds a secret; chmod 600 ${join(dir, 'loose.key')}`]);
  });

  it('a key file that is missing or not a key is refused with its line', async () => {
    const missing = await loadProblems(write('missing.yaml', rotatingDoor('{ key_file: nope.key, steps: 4, period: 30s, ports: 20000-60000 }')));
    expect(missing[0]).toMatch(/:3:27: doors\[0\]\.rotating\.key_file: .*nope\.key: cannot read key file: ENOENT/);
    write('bad.key', 'not a key\n');
    const bad = await loadProblems(write('bad.yaml', rotatingDoor('{ key_file: bad.key, steps: 4, period: 30s, ports: 20000-60000 }')));
    expect(bad[0]).toContain(`${join(dir, 'bad.key')}:1: expected a 256-bit key`);
  });
});

describe('one_time door config', () => {
  const onceDoor = (file: string) => `doors:\n  - name: once\n    one_time: ${file}\n    window: 10s\n    open: [2222]\n    duration: 1m\n`;

  it('reads the unused lines of the file (relative to the config) and prints the path back', async () => {
    write('once.txt', '#1000,2000\n3000:udp,4000\n');
    const cfg = await loadConfig(write('once.yaml', onceDoor('once.txt')), { uid: 1000 });
    const d = cfg.doors[0] as OneTimeDoor;
    expect(d.file).toBe(join(dir, 'once.txt'));
    expect(d.sequences).toEqual([{ line: 2, text: '3000:udp,4000', sequence: [{ port: 3000, protocol: 'udp' }, { port: 4000, protocol: 'tcp' }] }]);
    expect(formatConfig(cfg)).toContain(`one_time: ${join(dir, 'once.txt')}`);
  });

  it('a missing file, a bad line, an others-readable file: each with the config line and the file:line', async () => {
    const cfg = write('once2.yaml', onceDoor('absent.txt'));
    expect(await loadProblems(cfg)).toEqual([`${cfg}:3:15: doors[0].one_time: ${join(dir, 'absent.txt')}: cannot read one-time file: no such file`]);
    write('badline.txt', '1000,2000\n3000,x\n');
    const cfg2 = write('once3.yaml', onceDoor('badline.txt'));
    expect(await loadProblems(cfg2)).toEqual([`${cfg2}:3:15: doors[0].one_time: ${join(dir, 'badline.txt')}:2:6: invalid port 'x': expected PORT, PORT/tcp or PORT/udp (a line is PORT[:tcp|:udp],PORT...)`]);
    write('clash.txt', '1000,2222\n');
    const cfgClash = write('once-clash.yaml', onceDoor('clash.txt'));
    expect(await loadProblems(cfgClash)).toEqual([`${cfgClash}:3:15: doors[0].one_time: ${join(dir, 'clash.txt')}:1: 2222/tcp is also an open port of door 'once'`]);
    write('loose.txt', '1000,2000\n', 0o644);
    const cfg3 = write('once4.yaml', onceDoor('loose.txt'));
    expect((await loadProblems(cfg3))[0]).toContain('one-time file is accessible by others (mode 0644)');
  });

  it('a file whose directory cannot be written is refused (a used line could not be marked); replay does not need it writable', async (ctx) => {
    if (process.getuid?.() === 0) {
      // Root writes anywhere but an immutable directory.
      const { execFileSync } = await import('node:child_process');
      mkdirSync(join(dir, 'frozen'));
      write('frozen/once.txt', '1000,2000\n');
      try {
        execFileSync('chattr', ['+i', join(dir, 'frozen')], { stdio: 'ignore' });
      } catch {
        ctx.skip('chattr +i not supported here');
      }
      try {
        const cfg = write('once5.yaml', onceDoor('frozen/once.txt'));
        const p = await loadProblems(cfg);
        expect(p[0]).toMatch(/doors\[0\]\.one_time: .*frozen\/once\.txt: (the file|its directory .*) cannot be written \((EPERM|EACCES|EROFS)\)/);
        expect(p[0]).toContain('a used sequence could not be marked, so it would stay valid');
        const replayCfg = await loadConfig(cfg, { ownershipRules: false });
        expect((replayCfg.doors[0] as OneTimeDoor).sequences).toHaveLength(1);
      } finally {
        execFileSync('chattr', ['-i', join(dir, 'frozen')]);
      }
    } else {
      ctx.skip('needs root for chattr');
    }
  });
});
