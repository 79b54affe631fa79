// Secrets typed on a real terminal (a pseudo-terminal from util-linux
// `script`): `knockwatch hash-passphrase` and `knockwatch knock --passphrase`
// read without echo. The keys are sent only after the prompt is seen, so the
// terminal is already in raw mode (anything typed before would be echoed by
// the terminal itself, as for any program). Also from a pipe (no prompt).
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { BUILT_CLI } from './support/cli.js';
import { requireBuiltCli } from './support/daemon.js';

const MIKROTIK = '862b6133b45f398cf96d13429629edfc02dbc102d8108441436ced70651c7aad';
const IS = 'fa51fd49abf67705d6a35d18218c115ff5633aec1f9ebfdc9d5d4956416f57f6';
const AWESOME = '705db0603fd5431451dab1171b964b4bd575e2230f40f4c300d70df6e65f5f1c';
const scriptMissing = spawnSync('script', ['--version'], { stdio: 'ignore' }).status !== 0;
if (scriptMissing) console.warn('[skipped] secret-tty: util-linux `script` not found');

/** Runs `knockwatch ARGS` on a pseudo-terminal; `keys[i]` is typed once `prompts[i]` has appeared. */
function onTerminal(args: readonly string[], dialogue: readonly [prompt: string, keys: string][]): Promise<{ code: number | null; output: string }> {
  requireBuiltCli();
  const command = [process.execPath, BUILT_CLI, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let output = '';
  let next = 0;
  let seen = 0;
  child.stdout.on('data', (b: Buffer) => {
    output += b.toString('latin1');
    while (next < dialogue.length) {
      const at = output.indexOf(dialogue[next][0], seen);
      if (at < 0) break;
      seen = at + dialogue[next][0].length;
      child.stdin.write(dialogue[next][1]);
      next++;
    }
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out; output so far: ${JSON.stringify(output)}`));
    }, 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe.skipIf(scriptMissing)('secrets typed on a terminal (script pty, built CLI)', () => {
  it('hash-passphrase: no echo, backspace edits, the digest printed', async () => {
    const r = await onTerminal(['hash-passphrase'], [['Enter passphrase: ', 'MikroTiq\x7fk\r']]);
    expect(r.code).toBe(0);
    expect(r.output).toContain(MIKROTIK);
    expect(r.output).not.toContain('Mikro');
  });

  it('hash-passphrase: ^C cancels with status 130 and no digest', async () => {
    const r = await onTerminal(['hash-passphrase'], [['Enter passphrase: ', 'abc\x03']]);
    expect(r.code).toBe(130);
    expect(r.output).toContain('interrupted');
    expect(r.output).not.toMatch(/[0-9a-f]{64}/);
  });

  it("knock --passphrase: spknock's prompt per UDP step, each datagram carries its digest", async () => {
    const got: string[] = [];
    const sockets = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<dgram.Socket>((resolve) => {
            const s = dgram.createSocket('udp4');
            s.on('message', (m) => got.push(m.toString('latin1')));
            s.bind(0, '127.0.0.1', () => resolve(s));
          }),
      ),
    );
    try {
      const ports = sockets.map((s) => s.address().port);
      const r = await onTerminal(
        ['knock', '127.0.0.1', ...ports.map((p) => `${p}:udp`), '--passphrase'],
        [
          [`Enter passphrase (${ports[0]}/udp): `, 'MikroTik\r'],
          [`Enter passphrase (${ports[1]}/udp): `, 'is\r'],
          [`Enter passphrase (${ports[2]}/udp): `, 'awesome\r'],
        ],
      );
      expect(r.code).toBe(0);
      expect(r.output).not.toMatch(/MikroTik|awesome/);
      const deadline = Date.now() + 5000;
      while (got.length < 3 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
      expect(got).toEqual([MIKROTIK, IS, AWESOME]);
    } finally {
      for (const s of sockets) s.close();
    }
  });

  it('hash-passphrase from a pipe: one line, no prompt', () => {
    const r = spawnSync(process.execPath, [BUILT_CLI, 'hash-passphrase'], { input: 'awesome\n', encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${AWESOME}\n`);
    expect(r.stderr).toBe('');
  });
});
