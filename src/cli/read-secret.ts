// Reading a secret (a passphrase, a one-time code) for the command line.
//
// On a terminal the secret is typed without echo: the terminal is put in raw
// mode for the read, so no character reaches the screen, and the line editing
// the terminal would otherwise do is done here: Backspace (DEL or ^H) removes
// the last character, ^U clears the line, Enter ends it, ^C cancels (raw mode
// turns off the terminal's own SIGINT, so it is handled here), ^D cancels on
// an empty line and ends a non-empty one (as a cooked terminal does). Escape
// sequences (arrow keys) are ignored. The terminal mode is restored whatever
// happens.
//
// When the input is not a terminal (a pipe, a file: scripts), one line is
// read per secret, without any prompt; the line ending (\n or \r\n) is not
// part of the secret, everything else is (getpass does the same). One reader
// reads several secrets in a row from the same input, line after line.
//
// A secret is bounded (MAX_SECRET_BYTES), so a pasted file or an endless pipe
// cannot grow memory.

/** Longest secret accepted, in bytes of UTF-8. */
export const MAX_SECRET_BYTES = 4096;

/** The user cancelled (^C, or ^D on an empty line), or the input ended with no secret. */
export class SecretInputCancelled extends Error {
  override readonly name = 'SecretInputCancelled';
  constructor(
    message: string,
    /** 'interrupt' for ^C (exit 130 by convention), 'end' for end of input. */
    readonly reason: 'interrupt' | 'end',
  ) {
    super(message);
  }
}

/** The parts of process.stdin a reader uses (a tty.ReadStream when it is a terminal). */
export interface SecretInput {
  readonly isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
  on(event: 'data', listener: (chunk: Buffer | string) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  removeListener(event: string, listener: (...args: never[]) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

export interface SecretOutput {
  write(text: string): unknown;
}

export interface SecretReader {
  /** Reads one secret; `prompt` is shown only on a terminal. */
  read(prompt: string): Promise<string>;
  /** Whether secrets are typed on a terminal (prompts shown, no echo). */
  readonly interactive: boolean;
}

const CR = 0x0d;
const LF = 0x0a;
const BACKSPACE = 0x08;
const DEL = 0x7f;
const CTRL_C = 0x03;
const CTRL_D = 0x04;
const CTRL_U = 0x15;
const ESC = 0x1b;

function tooLong(): Error {
  return new Error(`secret longer than ${MAX_SECRET_BYTES} bytes`);
}

/**
 * A reader over `input` (default process.stdin); prompts go to `output`
 * (default process.stderr, so stdout stays for the command's result).
 */
export function createSecretReader(
  input: SecretInput = process.stdin,
  output: SecretOutput = process.stderr,
): SecretReader {
  const interactive = input.isTTY === true && typeof input.setRawMode === 'function';
  // Bytes read past the end of the last secret (a pasted block, a pipe's next lines).
  let pending = Buffer.alloc(0);
  let ended = false;
  // The current read's wake-up at end of input. 'end' is emitted once, possibly
  // right after a read took its last line and stopped listening for data, so
  // it is listened for all along, not per read.
  let onEnded: (() => void) | undefined;
  input.on('end', () => {
    ended = true;
    onEnded?.();
  });

  /**
   * Feeds chunks to `step` until it returns a result (or throws), then stops
   * listening. `step` gets all pending bytes and says how many it used.
   */
  function pump<T>(step: (bytes: Buffer, atEnd: boolean) => { used: number; result?: T }): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cleanup = () => {
        input.removeListener('data', onData);
        input.removeListener('error', onError);
        onEnded = undefined;
        input.pause();
      };
      const run = (): boolean => {
        let out: { used: number; result?: T };
        try {
          out = step(pending, ended);
        } catch (err) {
          pending = Buffer.alloc(0);
          cleanup();
          reject(err);
          return true;
        }
        pending = pending.subarray(out.used);
        if (out.result === undefined) return false;
        cleanup();
        resolve(out.result);
        return true;
      };
      const onData = (chunk: Buffer | string) => {
        const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
        pending = pending.length === 0 ? Buffer.from(b) : Buffer.concat([pending, b]);
        run();
      };
      const onError = (err: Error) => {
        cleanup();
        reject(err);
      };
      if (run()) return;
      if (ended) return; // run() settles at end of input
      onEnded = run;
      input.on('data', onData);
      input.on('error', onError);
      input.resume();
    });
  }

  function readLine(): Promise<string> {
    return pump<string>((bytes, atEnd) => {
      const nl = bytes.indexOf(LF);
      if (nl === -1) {
        if (bytes.length > MAX_SECRET_BYTES + 1) throw tooLong();
        if (!atEnd) return { used: 0 };
        if (bytes.length === 0) throw new SecretInputCancelled('no secret given: end of input', 'end');
        return { used: bytes.length, result: finishLine(bytes) };
      }
      return { used: nl + 1, result: finishLine(bytes.subarray(0, nl)) };
    });
  }

  function finishLine(line: Buffer): string {
    const body = line.length > 0 && line[line.length - 1] === CR ? line.subarray(0, -1) : line;
    if (body.length > MAX_SECRET_BYTES) throw tooLong();
    return body.toString('utf8');
  }

  function readTyped(prompt: string): Promise<string> {
    // Raw mode first: keys typed as soon as the prompt shows must not be echoed.
    input.setRawMode!(true);
    output.write(prompt);
    let typed: number[] = [];
    const restore = () => {
      input.setRawMode!(false);
    };
    return pump<string>((bytes, atEnd) => {
      let i = 0;
      while (i < bytes.length) {
        const c = bytes[i++];
        if (c === CR || c === LF) {
          // A CR LF pair (some terminals, pastes) is one Enter.
          if (c === CR && bytes[i] === LF) i++;
          return { used: i, result: done() };
        }
        if (c === CTRL_C) cancel('interrupted', 'interrupt');
        if (c === CTRL_D) {
          if (typed.length === 0) cancel('no secret given: end of input', 'end');
          return { used: i, result: done() };
        }
        if (c === DEL || c === BACKSPACE) {
          dropLastChar(typed);
          continue;
        }
        if (c === CTRL_U) {
          typed = [];
          continue;
        }
        if (c === ESC) {
          i = skipEscape(bytes, i);
          continue;
        }
        if (c < 0x20) continue; // other control characters are not part of a secret
        typed.push(c);
        if (typed.length > MAX_SECRET_BYTES) {
          restoreAndNewline();
          throw tooLong();
        }
      }
      if (atEnd) {
        // The terminal went away (hang-up) before Enter.
        cancel('no secret given: end of input', 'end');
      }
      return { used: i };
    });

    function restoreAndNewline(): void {
      restore();
      output.write('\n');
    }
    function done(): string {
      restoreAndNewline();
      const text = Buffer.from(typed).toString('utf8');
      typed = [];
      return text;
    }
    function cancel(message: string, cause: 'interrupt' | 'end'): never {
      typed = [];
      restoreAndNewline();
      throw new SecretInputCancelled(message, cause);
    }
  }

  return {
    interactive,
    read(prompt: string): Promise<string> {
      return interactive ? readTyped(prompt) : readLine();
    },
  };
}

/** Removes the last UTF-8 character (its continuation bytes 10xxxxxx and its lead byte). */
function dropLastChar(typed: number[]): void {
  while (typed.length > 0) {
    const b = typed.pop()!;
    if ((b & 0xc0) !== 0x80) return;
  }
}

/**
 * Skips an escape sequence starting after ESC at `i`: CSI (`ESC [ ... final`),
 * SS3 (`ESC O x`) or a lone `ESC x`. Returns the index after it.
 */
function skipEscape(bytes: Buffer, i: number): number {
  if (i >= bytes.length) return i;
  const next = bytes[i];
  if (next === 0x5b) {
    // CSI: parameters and intermediates 0x20-0x3f, then one final byte 0x40-0x7e.
    let j = i + 1;
    while (j < bytes.length && bytes[j] >= 0x20 && bytes[j] <= 0x3f) j++;
    return j < bytes.length ? j + 1 : j;
  }
  if (next === 0x4f) return Math.min(i + 2, bytes.length);
  return i + 1;
}

let stdinReader: SecretReader | undefined;

/**
 * The reader over process.stdin. One per process: it keeps what it read past
 * a secret (the next lines of a pipe), which a second reader would lose.
 */
export function stdinSecretReader(): SecretReader {
  stdinReader ??= createSecretReader(process.stdin, process.stderr);
  return stdinReader;
}

/** One secret from process.stdin (prompt on stderr when it is a terminal). */
export function readSecret(prompt: string): Promise<string> {
  return stdinSecretReader().read(prompt);
}

/** Exit status for a cancelled secret: 130 for ^C (as a shell reports SIGINT), else 1. */
export function cancelledExitCode(err: SecretInputCancelled): number {
  return err.reason === 'interrupt' ? 130 : 1;
}
