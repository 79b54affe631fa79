// The secret reader: raw-mode editing on a terminal (driven here through a
// stand-in terminal that records setRawMode) and line-by-line reading from a
// pipe. A real pseudo-terminal run is in test/e2e/secret-tty.test.ts.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  MAX_SECRET_BYTES,
  SecretInputCancelled,
  cancelledExitCode,
  createSecretReader,
  type SecretInput,
} from '../../src/cli/read-secret.js';

class FakeTerminal extends PassThrough {
  readonly isTTY = true;
  readonly modes: boolean[] = [];
  setRawMode(mode: boolean): this {
    this.modes.push(mode);
    return this;
  }
}

function sink(): { write(t: string): void; text: () => string } {
  let s = '';
  return { write: (t: string) => void (s += t), text: () => s };
}

describe('read-secret on a terminal', () => {
  it('reads without echo, in raw mode, restored after', async () => {
    const tty = new FakeTerminal();
    const out = sink();
    const r = createSecretReader(tty as unknown as SecretInput, out);
    expect(r.interactive).toBe(true);
    const p = r.read('Enter passphrase (1234/udp): ');
    tty.write('Mikro');
    tty.write('Tik\r');
    await expect(p).resolves.toBe('MikroTik');
    expect(tty.modes).toEqual([true, false]);
    // Only the prompt and the newline after Enter are written: no echo.
    expect(out.text()).toBe('Enter passphrase (1234/udp): \n');
  });

  it('backspace (DEL and ^H) removes a whole UTF-8 character, ^U clears, escapes are ignored', async () => {
    const tty = new FakeTerminal();
    const r = createSecretReader(tty as unknown as SecretInput, sink());
    const p = r.read('> ');
    tty.write('xyz\x15'); // cleared
    tty.write('isé\x7f\x7f'); // "i"
    tty.write('s\x1b[D\x1bOA'); // arrow keys: nothing
    tty.write('x\x08!\n');
    await expect(p).resolves.toBe('is!');
  });

  it('^C cancels with exit code 130 and restores the terminal', async () => {
    const tty = new FakeTerminal();
    const out = sink();
    const p = createSecretReader(tty as unknown as SecretInput, out).read('> ');
    tty.write('secr\x03');
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretInputCancelled);
    expect(cancelledExitCode(err as SecretInputCancelled)).toBe(130);
    expect(tty.modes).toEqual([true, false]);
    expect(out.text()).toBe('> \n');
  });

  it('^D on an empty line cancels, on a typed line ends it', async () => {
    const tty = new FakeTerminal();
    const r = createSecretReader(tty as unknown as SecretInput, sink());
    const p1 = r.read('> ');
    tty.write('\x04');
    const err = await p1.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretInputCancelled);
    expect(cancelledExitCode(err as SecretInputCancelled)).toBe(1);
    const p2 = r.read('> ');
    tty.write('abc\x04');
    await expect(p2).resolves.toBe('abc');
    expect(tty.modes).toEqual([true, false, true, false]);
  });

  it('a pasted block serves the following prompts in order', async () => {
    const tty = new FakeTerminal();
    const r = createSecretReader(tty as unknown as SecretInput, sink());
    const p1 = r.read('1: ');
    tty.write('MikroTik\r\nis\rawesome\r');
    await expect(p1).resolves.toBe('MikroTik');
    await expect(r.read('2: ')).resolves.toBe('is');
    await expect(r.read('3: ')).resolves.toBe('awesome');
  });

  it('refuses a secret longer than the bound, terminal restored', async () => {
    const tty = new FakeTerminal();
    const p = createSecretReader(tty as unknown as SecretInput, sink()).read('> ');
    tty.write('a'.repeat(MAX_SECRET_BYTES + 1));
    await expect(p).rejects.toThrow(`secret longer than ${MAX_SECRET_BYTES} bytes`);
    expect(tty.modes).toEqual([true, false]);
  });

  it('the terminal going away before Enter cancels', async () => {
    const tty = new FakeTerminal();
    const p = createSecretReader(tty as unknown as SecretInput, sink()).read('> ');
    tty.end('abc');
    await expect(p).rejects.toBeInstanceOf(SecretInputCancelled);
    expect(tty.modes).toEqual([true, false]);
  });
});

describe('read-secret from a pipe', () => {
  it('reads one line per secret, no prompt, keeps spaces, strips \\n and \\r\\n', async () => {
    const pipe = new PassThrough();
    const out = sink();
    const r = createSecretReader(pipe, out);
    expect(r.interactive).toBe(false);
    pipe.end(' Mikro Tik \r\nis\nawesome');
    await expect(r.read('1: ')).resolves.toBe(' Mikro Tik ');
    await expect(r.read('2: ')).resolves.toBe('is');
    await expect(r.read('3: ')).resolves.toBe('awesome');
    await expect(r.read('4: ')).rejects.toThrow('no secret given: end of input');
    expect(out.text()).toBe('');
  });

  it('waits for a line that arrives in pieces', async () => {
    const pipe = new PassThrough();
    const r = createSecretReader(pipe, sink());
    const p = r.read('');
    pipe.write('awe');
    await new Promise((res) => setImmediate(res));
    pipe.write('some\nnext\n');
    await expect(p).resolves.toBe('awesome');
    await expect(r.read('')).resolves.toBe('next');
  });

  it('an empty line is an empty secret (the caller decides), an empty input is cancelled', async () => {
    const pipe = new PassThrough();
    const r = createSecretReader(pipe, sink());
    pipe.end('\n');
    await expect(r.read('')).resolves.toBe('');
    const empty = new PassThrough();
    empty.end();
    await expect(createSecretReader(empty, sink()).read('')).rejects.toBeInstanceOf(SecretInputCancelled);
  });

  it('refuses an endless line without holding it', async () => {
    const pipe = new PassThrough();
    const p = createSecretReader(pipe, sink()).read('');
    pipe.write('x'.repeat(MAX_SECRET_BYTES + 10));
    await expect(p).rejects.toThrow('secret longer than');
  });
});
