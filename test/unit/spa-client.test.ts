// The spa client side: keygen's files and output, the client profile, and a
// real datagram sent by sendSpaKnock to a local UDP socket, judged by the
// server's verifier (requirement 1: the sealed address comes from the socket,
// or --allow-ip).
import dgram from 'node:dgram';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main as keygen } from '../../src/cli/keygen.js';
import { readServerProfile } from '../../src/client/profile.js';
import { sendSpaKnock } from '../../src/client/spa.js';
import { parseKeyText, parseTotpText } from '../../src/spa/keys.js';
import { createSpaServer } from '../../src/spa/server.js';
import { verifyDatagram } from '../../src/spa/verify.js';
import { KEY_A, door, user } from './spa-support.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kw-spa-client-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function capture(): { text: () => string; restore: () => void } {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  return { text: () => out, restore: () => spy.mockRestore() };
}

describe('knockwatch keygen', () => {
  it('writes a 256-bit key and a 160-bit TOTP secret, mode 0600, and prints the users entry and the otpauth URI', async () => {
    const out = capture();
    let code: number;
    try {
      code = await keygen(['--user', 'carol', '--totp', '--dir', join(dir, 'keys')]);
    } finally {
      out.restore();
    }
    expect(code).toBe(0);
    const keyFile = join(dir, 'keys', 'carol.key');
    const totpFile = join(dir, 'keys', 'carol.totp');
    expect(parseKeyText(keyFile, await readFile(keyFile, 'utf8'))).toHaveLength(32);
    expect(parseTotpText(totpFile, await readFile(totpFile, 'utf8'))).toHaveLength(20);
    for (const f of [keyFile, totpFile]) expect((await stat(f)).mode & 0o777).toBe(0o600);
    expect(out.text()).toContain(`users:\n  - name: carol\n    key_file: ${keyFile}\n    totp_file: ${totpFile}\n`);
    expect(out.text()).toMatch(/stays on the server and never goes to clients/);
    expect(out.text()).toMatch(/otpauth:\/\/totp\/knockwatch:carol%40[^?]+\?issuer=knockwatch&secret=[A-Z2-7]{32}&algorithm=SHA1&digits=6&period=30/);
  });
  it('never overwrites a key file', async () => {
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const out = capture();
    try {
      expect(await keygen(['--user', 'carol', '--dir', join(dir, 'keys')])).toBe(1);
      expect(String(err.mock.calls[0]?.[0])).toMatch(/carol\.key already exists/);
    } finally {
      out.restore();
      err.mockRestore();
    }
  });
});

describe('client profile', () => {
  it('reads a named server; key paths from ~ or relative to the file', async () => {
    const file = join(dir, 'client.yaml');
    await writeFile(file, 'servers:\n  home:\n    host: 192.0.2.1\n    door: ssh\n    spa_port: 40000\n    key_file: keys/carol.key\n    totp: true\n    check: 22\n');
    expect(await readServerProfile(file, 'home')).toEqual({ name: 'home', host: '192.0.2.1', door: 'ssh', spaPort: 40000, keyFile: join(dir, 'keys', 'carol.key'), totp: true, check: 22 });
    expect(await readServerProfile(file, 'work')).toBeUndefined();
    expect(await readServerProfile(join(dir, 'missing.yaml'), 'home')).toBeUndefined();
  });
  it('names file, server and key of a bad entry', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'servers:\n  home:\n    host: 192.0.2.1\n    door: ssh\n    key_file: k\n    spa_prot: 1\n');
    await expect(readServerProfile(file, 'home')).rejects.toThrow(`${file}: servers.home.spa_prot: unknown key`);
    await writeFile(file, 'servers:\n  home:\n    host: 192.0.2.1\n    key_file: k\n');
    await expect(readServerProfile(file, 'home')).rejects.toThrow(`${file}: servers.home.door: required key is missing`);
  });
});

describe('sendSpaKnock', () => {
  async function receiver(): Promise<{ port: number; next: () => Promise<{ msg: Buffer; from: string }>; close: () => void }> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    return {
      port: s.address().port,
      next: () => new Promise((r) => s.once('message', (msg, rinfo) => r({ msg, from: rinfo.address }))),
      close: () => s.close(),
    };
  }

  it('seals --allow-ip and the verifier opens it (allow_ip any); one 101-byte datagram', async () => {
    const rx = await receiver();
    try {
      const got = rx.next();
      const r = await sendSpaKnock({ host: '127.0.0.1', port: rx.port, key: KEY_A, user: 'alice', door: 'any', allowIp: '203.0.113.7' });
      const { msg, from } = await got;
      expect(r).toMatchObject({ address: '203.0.113.7', bytes: 101 });
      expect(msg).toHaveLength(101);
      const server = createSpaServer({ users: [user('alice', KEY_A)], doors: [door('any', { allowIp: 'any', port: rx.port })] });
      expect(verifyDatagram(server, msg, from, rx.port, Date.now())).toMatchObject({ ok: true, address: '203.0.113.7' });
    } finally {
      rx.close();
    }
  });

  it('refuses to seal a loopback address (the server would refuse to open it) and a bad --allow-ip', async () => {
    await expect(sendSpaKnock({ host: '127.0.0.1', port: 9, key: KEY_A, user: 'alice', door: 'ssh' })).rejects.toThrow(/127\.0\.0\.1, loopback/);
    await expect(sendSpaKnock({ host: '127.0.0.1', port: 9, key: KEY_A, user: 'alice', door: 'ssh', allowIp: 'nope' })).rejects.toThrow(/not an IP address/);
    await expect(sendSpaKnock({ host: '127.0.0.1', port: 9, key: KEY_A, user: 'alice', door: 'ssh', allowIp: '224.0.0.1' })).rejects.toThrow(/multicast/);
  });
});
