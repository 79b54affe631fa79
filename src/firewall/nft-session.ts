// A long-lived `nft -i` process for the hot path (open/close): one line to a
// running nft costs ~1 ms against ~5-8 ms for spawning `nft -f -`.
//
// How a command's end is seen: each command line is followed by a marker line
// that is a syntax error (`knockwatch-sync-N`), so nft always answers it on
// stderr with `Error: ...`, the marker line and a caret line. nft -i handles
// lines in order and reports errors on that one stream, so a command that
// failed has its own `Error:` block before the marker's; one that succeeded
// has nothing before it, which is exactly when `nft -f -` would exit 0.
// Not `nft -e` and its `# new generation` line: with -e nft reloads every
// element of the set after each change to echo it, ~7 us an element
// (measured: 30,000 elements -> ~200 ms a command; nft -f - stays at ~7 ms).
//
// The session is only ever a fast path. Anything but a clean answer (an error
// for the command, no answer in time, a dead or unstartable process, stderr
// that belongs to no command) is `unknown`: the caller then runs the same
// text through `nft -f -`, which gives the definitive result and error
// message. Our transactions are idempotent (add / delete with a leading add),
// so applying one twice is harmless.
//
// When the marker did not come back, the process is killed and reaped before
// `unknown` is returned: a transaction it still had in flight can then never
// land after the caller's fallback (or after a later close). A session that
// failed is restarted lazily, with a doubling backoff so a broken nft does
// not respawn in a loop. An error for the command itself (marker seen) leaves
// the process in a known state and running.
//
// nft -i keeps every line in its libedit history (memory grows ~350 bytes a
// command, more for long lines) and writes it to $HOME/.nft.history when it
// exits. HOME=/dev/null makes that write fail harmlessly, and the process is
// replaced after `maxCommands` commands or `maxBytes` of input, whichever
// comes first, to bound its memory: the session gets batches of at most 32
// elements (SESSION_MAX_ELEMENTS in nftables.ts; larger ones go to nft -f -),
// one line of at most ~2.5 kB.
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { COMMAND_ENV, commandArgv } from './run.js';
import { FirewallError, silentLogger, type FirewallLogger } from './types.js';

export interface NftSessionOptions {
  /** nft binary (default: nft on PATH). */
  readonly nft?: string;
  /** Run nft inside this named network namespace (/run/netns/NAME) via nsenter. */
  readonly netns?: string;
  readonly logger?: FirewallLogger;
  /** No answer to the marker line within this many ms: unknown, and the process is replaced. */
  readonly timeoutMs?: number;
  /** stop(): SIGKILL this many ms after closing stdin. */
  readonly graceMs?: number;
  /** Wait before the first restart after a failure; doubles per consecutive failure. */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Replace the process after this many commands (bounds nft's history memory). */
  readonly maxCommands?: number;
  /** Replace the process after this many bytes of input (batches are long lines). */
  readonly maxBytes?: number;
}

/** Tuning knobs a caller may pass through createFirewall (binary and namespace come from there). */
export type NftSessionTuning = Omit<NftSessionOptions, 'nft' | 'netns' | 'logger'>;

export type SessionResult = { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly reason: string };

export interface NftSession {
  /**
   * Apply one transaction, written exactly as it would be fed to `nft -f -`
   * (one command a line). Never rejects: any doubt is `{ ok: false }`.
   */
  apply(text: string): Promise<SessionResult>;
  /** Start the process now, unless one runs or a backoff is pending, so the next apply is fast. */
  warm(): void;
  /** Close nft's stdin (it exits at EOF), SIGKILL after the grace, wait for the exit. A later apply starts a new process. */
  stop(): Promise<void>;
  /** pid of the running process, if any (logs, tests). */
  readonly pid: number | undefined;
}

export const DEFAULT_SESSION_TIMEOUT_MS = 1000;
export const DEFAULT_SESSION_GRACE_MS = 500;
export const DEFAULT_SESSION_BACKOFF_MS = 100;
export const DEFAULT_SESSION_MAX_BACKOFF_MS = 30_000;
export const DEFAULT_SESSION_MAX_COMMANDS = 10_000;
export const DEFAULT_SESSION_MAX_BYTES = 4 * 1024 * 1024;
/** How long to wait for a SIGKILLed nft to be reaped before giving up on it. */
const REAP_LIMIT_MS = 2000;
const MARKER_PREFIX = 'knockwatch-sync-';
/** The line under an echoed input line that points at the error. */
const CARET_RE = /^[ \t~]*\^[ \t^~]*$/;
/**
 * Characters our open/close commands are made of (see nftables.ts: validated
 * set names, addresses, `.`, protocol names, ports, durations, braces). No
 * `;` or `#`, which would change how the joined line parses, no quotes.
 */
const COMMAND_RE = /^[A-Za-z0-9_ .:{},-]+$/;

/**
 * The one line nft -i runs as ONE transaction (like `nft -f -` runs the whole
 * text): the text's commands joined with `; `. Throws for text that would not
 * mean the same thing on one line.
 */
export function sessionLine(text: string): string {
  const commands = text.split('\n').filter((l) => l !== '');
  if (commands.length === 0) throw new FirewallError('nft session: empty transaction');
  commands.forEach((c, i) => {
    if (!COMMAND_RE.test(c)) throw new FirewallError(`nft session: line ${i + 1} of the transaction has characters it does not send: ${JSON.stringify(c)}`);
  });
  return commands.join('; ');
}

interface Pending {
  readonly marker: string;
  readonly started: number;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (result: SessionResult) => void;
}

interface Proc {
  readonly child: ChildProcess;
  /** Resolves once the process is gone (or could not start). */
  readonly gone: Promise<void>;
  dead: boolean;
  /** Set when we are ending it on purpose (stop, recycle, failure). */
  retiring: boolean;
  commands: number;
  /** Bytes written to its stdin. */
  bytes: number;
  /** stderr since the command in flight was written (or since the last one ended). */
  stderr: string;
  pending: Pending | undefined;
}

const round = (ms: number): number => Math.round(ms * 100) / 100;

export function createNftSession(options: NftSessionOptions = {}): NftSession {
  const logger = options.logger ?? silentLogger;
  const timeoutMs = options.timeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
  const graceMs = options.graceMs ?? DEFAULT_SESSION_GRACE_MS;
  const backoffMs = options.backoffMs ?? DEFAULT_SESSION_BACKOFF_MS;
  const maxBackoffMs = options.maxBackoffMs ?? DEFAULT_SESSION_MAX_BACKOFF_MS;
  const maxCommands = options.maxCommands ?? DEFAULT_SESSION_MAX_COMMANDS;
  const maxBytes = options.maxBytes ?? DEFAULT_SESSION_MAX_BYTES;
  // Validates the namespace name now, not at the first knock.
  const [file, args] = commandArgv(options.nft ?? 'nft', ['-i'], options.netns);
  let current: Proc | undefined;
  let failures = 0;
  let nextStartAt = 0;
  let markers = 0;
  /** One command in flight at a time: applies and stop() queue here. */
  let tail: Promise<unknown> = Promise.resolve();

  const enqueue = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn);
    tail = run.catch(() => undefined);
    return run;
  };

  /** A failure of the session itself: back off before the next start. */
  const failed = (proc: Proc, reason: string): void => {
    failures += 1;
    const wait = Math.min(backoffMs * 2 ** (failures - 1), maxBackoffMs);
    nextStartAt = performance.now() + wait;
    logger.warn({ pid: proc.child.pid, reason, failures, restartInMs: wait }, 'nft session failed; using nft -f - meanwhile');
  };

  /** SIGKILL and wait until the process is reaped (bounded). */
  const kill = async (proc: Proc): Promise<void> => {
    proc.retiring = true;
    if (!proc.dead) proc.child.kill('SIGKILL');
    let limit: NodeJS.Timeout | undefined;
    const reaped = await Promise.race([
      proc.gone.then(() => true),
      new Promise<boolean>((r) => (limit = setTimeout(() => r(false), REAP_LIMIT_MS))),
    ]);
    clearTimeout(limit);
    if (!reaped) logger.error({ pid: proc.child.pid }, 'nft session process did not exit after SIGKILL');
  };

  /** End the command in flight as unknown, retire the process, then answer. */
  const abandon = (proc: Proc, reason: string): void => {
    const pending = proc.pending;
    proc.pending = undefined;
    if (pending) clearTimeout(pending.timer);
    if (current === proc) current = undefined;
    if (!proc.retiring) failed(proc, reason);
    void kill(proc).then(() => pending?.resolve({ ok: false, reason: proc.stderr.trim() ? `${reason}: ${proc.stderr.trim()}` : reason }));
  };

  /**
   * stderr while a command is in flight: wait for the marker's error block
   * (`Error: ...`, the marker line, a caret line); anything before it is the
   * command's own error.
   */
  const onStderr = (proc: Proc, chunk: string): void => {
    proc.stderr += chunk;
    const pending = proc.pending;
    if (!pending) {
      // Output that belongs to no command: the session's state is in doubt.
      if (!proc.retiring) abandon(proc, 'nft session wrote to stderr unasked');
      return;
    }
    const lines = proc.stderr.split('\n');
    // Only complete lines: the last element is what follows the last newline.
    const at = lines.findIndex((l, i) => l === pending.marker && i + 2 < lines.length && CARET_RE.test(lines[i + 1]));
    if (at < 0) return;
    if (at < 1 || !lines[at - 1].startsWith('Error:')) {
      abandon(proc, 'nft session: unexpected answer to its marker line');
      return;
    }
    const before = lines.slice(0, at - 1).join('\n').trim();
    const after = lines.slice(at + 2).join('\n');
    proc.pending = undefined;
    proc.stderr = after;
    clearTimeout(pending.timer);
    if (before === '') {
      failures = 0;
      pending.resolve({ ok: true, ms: round(performance.now() - pending.started) });
    } else {
      // The command failed; the process is fine (it answered the marker).
      pending.resolve({ ok: false, reason: `nft: ${before}` });
    }
    if (after !== '' && !proc.retiring) abandon(proc, 'nft session wrote to stderr unasked');
  };

  const start = (): Proc => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      // HOME=/dev/null: nft -i writes its command history to $HOME/.nft.history at exit.
      env: { ...process.env, ...COMMAND_ENV, HOME: '/dev/null' },
    });
    let markGone: () => void = () => {};
    const proc: Proc = {
      child,
      gone: new Promise<void>((r) => (markGone = r)),
      dead: false,
      retiring: false,
      commands: 0,
      bytes: 0,
      stderr: '',
      pending: undefined,
    };
    const died = (how: string): void => {
      if (proc.dead) return;
      proc.dead = true;
      markGone();
      if (proc.retiring) return;
      abandon(proc, how);
    };
    child.on('error', (err) => died(`nft session could not run ${file}: ${err.message}`));
    // 'close' (not 'exit'): all output has been read by then.
    child.on('close', (code, signal) => died(`nft session exited (${signal ?? `code ${code}`})`));
    child.stdin?.on('error', () => {}); // EPIPE after a death: 'close' reports it.
    // Without -e nft prints nothing for our commands; drained so a pipe never fills.
    child.stdout?.on('data', () => {});
    child.stderr?.setEncoding('utf8').on('data', (d: string) => onStderr(proc, d));
    // Never keep the daemon alive: when it exits, nft reads EOF and exits too.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as { unref?: () => void } | null)?.unref?.();
    logger.debug({ pid: child.pid, command: [file, ...args].join(' ') }, 'nft session started');
    return proc;
  };

  const ensure = (): Proc | string => {
    if (current && !current.dead) return current;
    const wait = nextStartAt - performance.now();
    if (wait > 0) return `nft session restarts in ${Math.ceil(wait)} ms (after ${failures} failure${failures === 1 ? '' : 's'})`;
    current = start();
    return current;
  };

  /** Close stdin (nft exits at EOF); SIGKILL if it is still there after the grace. */
  const retire = async (proc: Proc): Promise<void> => {
    proc.retiring = true;
    if (current === proc) current = undefined;
    proc.child.stdin?.end();
    let timer: NodeJS.Timeout | undefined;
    const exited = await Promise.race([proc.gone.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
    clearTimeout(timer);
    if (!exited) await kill(proc);
  };

  const exec = (line: string): Promise<SessionResult> => {
    const proc = ensure();
    if (typeof proc === 'string') return Promise.resolve({ ok: false, reason: proc });
    return new Promise<SessionResult>((resolve) => {
      const timer = setTimeout(() => {
        if (proc.pending?.timer === timer) abandon(proc, `nft session gave no answer within ${timeoutMs} ms`);
      }, timeoutMs);
      markers += 1;
      const marker = `${MARKER_PREFIX}${markers}`;
      proc.pending = { marker, started: performance.now(), timer, resolve };
      proc.stderr = '';
      const text = `${line}\n${marker}\n`;
      proc.commands += 1;
      proc.bytes += text.length;
      proc.child.stdin?.write(text);
    }).then((result) => {
      if (result.ok && (proc.commands >= maxCommands || proc.bytes >= maxBytes) && current === proc) {
        logger.debug({ pid: proc.child.pid, commands: proc.commands, bytes: proc.bytes }, 'nft session replaced after its command or input limit');
        void retire(proc);
        warm();
      }
      return result;
    });
  };

  function warm(): void {
    ensure();
  }

  return {
    apply(text) {
      let line: string;
      try {
        line = sessionLine(text);
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'nft session skipped');
        return Promise.resolve({ ok: false, reason: (err as Error).message });
      }
      return enqueue(() => exec(line));
    },
    warm,
    stop: () =>
      enqueue(async () => {
        if (current) await retire(current);
      }),
    get pid() {
      return current && !current.dead ? current.child.pid : undefined;
    },
  };
}
