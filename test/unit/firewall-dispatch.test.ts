import { describe, expect, it } from 'vitest';
import { createFirewall, DoorCommandError } from '../../src/firewall/index.js';
import { expandCommand, runDoorCommand } from '../../src/firewall/commands.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSerializer } from '../../src/firewall/serial.js';
import { createRunner, formatCommand, runChecked, FirewallCommandError, type CommandRequest } from '../../src/firewall/run.js';
import type { FirewallKind } from '../../src/types.js';
import { recorder, sshDoor, webDoor } from './firewall-support.js';

const NOW = 1_700_000_000_000;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe('door commands', () => {
  const ctx = { door: 'web', source: 'fd00::2', ports: webDoor.open };
  it('runs once when no port placeholder is used', () => {
    expect(expandCommand(['logger', '-t', 'kw', 'opened %DOOR% for %IP%'], ctx)).toEqual([['logger', '-t', 'kw', 'opened web for fd00::2']]);
  });
  it('runs once per port with %PORT% / %PROTO%', () => {
    expect(expandCommand(['fw', '%IP%', '-p', '%PROTO%', '--dport', '%PORT%'], ctx)).toEqual([
      ['fw', 'fd00::2', '-p', 'tcp', '--dport', '443'],
      ['fw', 'fd00::2', '-p', 'tcp', '--dport', '2222'],
      ['fw', 'fd00::2', '-p', 'udp', '--dport', '53'],
    ]);
  });
  it('keeps every argument one argument (no shell splitting)', () => {
    expect(expandCommand(['echo', '$(id); rm -rf / %IP%'], ctx)).toEqual([['echo', '$(id); rm -rf / fd00::2']]);
  });
});

describe('door commands with real processes', () => {
  const ctx = { door: 'web', source: '10.0.0.2', ports: webDoor.open };
  const append = "require('node:fs').appendFileSync(process.argv[1], JSON.stringify(process.argv.slice(2)) + '\\n')";
  it('pass each substituted argument verbatim, once per port', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kwcmd-'));
    try {
      const out = join(dir, 'log');
      await runDoorCommand(createRunner(), 'start', [process.execPath, '-e', append, out, '%IP%', '%PROTO%/%PORT%', '"; rm -rf $HOME'], ctx, silent);
      expect((await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as string[])).toEqual([
        ['10.0.0.2', 'tcp/443', '"; rm -rf $HOME'],
        ['10.0.0.2', 'tcp/2222', '"; rm -rf $HOME'],
        ['10.0.0.2', 'udp/53', '"; rm -rf $HOME'],
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('are killed at their time limit and reported', async () => {
    const err = await runDoorCommand(createRunner(), 'stop', [process.execPath, '-e', 'setTimeout(() => {}, 10000)'], ctx, silent, 300).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DoorCommandError);
    expect((err as DoorCommandError).phase).toBe('stop');
    expect((err as DoorCommandError).message).toMatch(/door 'web' stop command failed: .* failed \(exit -1\): timed out after 300 ms/);
  });
});

describe('serializer', () => {
  const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
  it('keeps call order per key, runs different keys in parallel, and exclusive waits for all', async () => {
    const s = createSerializer();
    const log: string[] = [];
    const job = (name: string, ms: number) => async () => {
      log.push(`${name}+`);
      await tick(ms);
      log.push(`${name}-`);
    };
    const all = [
      s.keyed('a', job('a1', 30)),
      s.keyed('a', job('a2', 1)),
      s.keyed('b', job('b1', 5)),
      s.exclusive(job('x', 1)),
      s.keyed('b', job('b2', 1)),
    ];
    await Promise.all(all);
    expect(log).toEqual(['a1+', 'b1+', 'b1-', 'a1-', 'a2+', 'a2-', 'x+', 'x-', 'b2+', 'b2-']);
  });
  it('a failure does not block the queue', async () => {
    const s = createSerializer();
    const failed = s.keyed('a', async () => {
      throw new Error('boom');
    });
    await expect(failed).rejects.toThrow('boom');
    await expect(s.keyed('a', async () => 7)).resolves.toBe(7);
  });
});

describe('createFirewall', () => {
  it('dispatches by kind and rejects unknown kinds', () => {
    const rec = recorder();
    for (const kind of ['nftables', 'iptables', 'none'] as const) expect(createFirewall(kind, { runner: rec.runner }).kind).toBe(kind);
    expect(() => createFirewall('pf' as FirewallKind, { runner: rec.runner })).toThrow(/unknown firewall kind "pf"/);
  });

  it('"none" runs no firewall command and lists what it would have opened, until it ends', async () => {
    let t = NOW;
    const rec = recorder();
    const fw = createFirewall('none', { runner: rec.runner, now: () => t });
    await fw.init([sshDoor, webDoor]);
    await fw.open({ door: '9web-x', source: '10.0.0.2', family: 4, ports: webDoor.open, until: NOW + 1000 });
    await fw.open({ door: 'ssh', source: '10.0.0.3', family: 4, ports: sshDoor.open, until: NOW + 5000 });
    await fw.close({ door: '9web-x', source: '10.0.0.2', family: 4, ports: [webDoor.open[1]] });
    expect((await fw.list()).map((a) => [a.door, a.source, a.ports.length])).toEqual([
      ['9web-x', '10.0.0.2', 2],
      ['ssh', '10.0.0.3', 1],
    ]);
    t = NOW + 1000;
    expect((await fw.list()).map((a) => a.source)).toEqual(['10.0.0.3']);
    await expect(fw.open({ door: 'ssh', source: 'bad', family: 4, ports: sshDoor.open, until: t + 1 })).rejects.toThrow(/invalid source/);
    expect(rec.calls).toEqual([]);
  });

  it('runs the start command after the open and the stop command after the close, in call order', async () => {
    const rec = recorder();
    const door = { ...sshDoor, startCommand: ['on', '%IP%', '%PORT%'], stopCommand: ['off', '%DOOR%', '%IP%'] };
    const fw = createFirewall('nftables', { runner: rec.runner, now: () => NOW, nftRefresh: 'replace' });
    await fw.init([door]);
    rec.calls.splice(0);
    const access = { door: 'ssh', source: '10.0.0.2', family: 4 as const, ports: door.open, until: NOW + 1000 };
    // Not awaited in between: the per-source queue must keep them in order.
    await Promise.all([fw.open(access), fw.close(access), fw.open(access)]);
    expect(rec.calls.map((c: CommandRequest) => [c.file, ...c.args, (c.input ?? '').split(' ')[0]].join(' '))).toEqual([
      'nft -f - add',
      'on 10.0.0.2 2222 ',
      'nft -f - add',
      'off ssh 10.0.0.2 ',
      'nft -f - add',
      'on 10.0.0.2 2222 ',
    ]);
    // The close: add (so the delete cannot fail) then delete, and no re-add.
    expect(rec.calls[2].input?.split('\n').map((l) => l.split(' ')[0])).toEqual(['add', 'delete', '']);
  });

  it('reports a failing door command after applying the firewall change', async () => {
    const rec = recorder((req) => (req.file === 'notify' ? { exitCode: 3, stderr: 'no route' } : undefined));
    const fw = createFirewall('nftables', { runner: rec.runner, now: () => NOW, nftRefresh: 'replace' });
    await fw.init([{ ...sshDoor, startCommand: ['notify', '%IP%'] }]);
    rec.calls.splice(0);
    const err = await fw.open({ door: 'ssh', source: '10.0.0.2', family: 4, ports: sshDoor.open, until: NOW + 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DoorCommandError);
    expect((err as DoorCommandError).message).toBe("door 'ssh' start command failed: notify 10.0.0.2 failed (exit 3): no route");
    expect(rec.calls.map((c) => c.file)).toEqual(['nft', 'notify']);
  });
});

describe('runner (real processes)', () => {
  const runner = createRunner();
  it('captures exit code, stdout and stderr without a shell', async () => {
    const r = await runner({ file: process.execPath, args: ['-e', 'process.stdout.write(process.argv[1]); console.error("oops"); process.exit(4)', '$(id); *'] });
    expect(r).toEqual({ exitCode: 4, stdout: '$(id); *', stderr: 'oops' });
  });
  it('feeds stdin', async () => {
    const r = await runner({ file: process.execPath, args: ['-e', 'process.stdin.pipe(process.stdout)'], input: 'table inet x {}\n' });
    expect(r.stdout).toBe('table inet x {}'); // execa strips the final newline
  });
  it('reports a program that cannot start and one that times out', async () => {
    const missing = await runner({ file: '/nonexistent/nft', args: ['-f', '-'] });
    expect(missing.exitCode).toBe(-1);
    expect(missing.stderr).toMatch(/ENOENT/);
    const slow = await runner({ file: process.execPath, args: ['-e', 'setTimeout(() => {}, 5000)'], timeoutMs: 200 });
    expect(slow.exitCode).toBe(-1);
    expect(slow.stderr).toMatch(/timed out after 200 ms/);
  });
  it('runChecked throws FirewallCommandError with the command text', async () => {
    await expect(runChecked(runner, { file: process.execPath, args: ['-e', 'console.error("bad rule"); process.exit(1)'] })).rejects.toThrow(
      FirewallCommandError,
    );
    expect(formatCommand('nft', ['add', 'element', 'inet', 't', 's', "{ 1.2.3.4 . tcp . 22 }", "it's"])).toBe(
      "nft add element inet t s '{ 1.2.3.4 . tcp . 22 }' 'it'\\''s'",
    );
  });
  it('refuses a bad namespace name', () => {
    expect(() => createRunner({ netns: '../../etc' })).toThrow(/invalid network namespace name/);
  });
});
