// A fake `nft -i` for the session unit tests: a small node script that
// handles stdin lines in order like nft does (silent on success, an
// `Error:` block on stderr for a failed command or a syntax error such as the
// session's marker lines), and misbehaves for marker source addresses. It logs
// every start, line and EOF as JSON lines so tests can see which process got what.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Source addresses that make the fake misbehave. */
export const FAIL_SOURCE = '10.0.0.66'; // stderr, like a set that is full
export const HANG_SOURCE = '10.0.0.77'; // never answers
export const EXIT_SOURCE = '10.0.0.99'; // dies (exit 3) without answering
export const NOISE_SOURCE = '10.0.0.55'; // succeeds, then writes to stderr unasked

export interface FakeNftConfig {
  /** Keep running after stdin closes (stop() must then SIGKILL it). */
  readonly ignoreEof?: boolean;
  /** Print an error and exit at start, like a broken binary. */
  readonly brokenStart?: boolean;
  /** Answer each line after this many ms. */
  readonly delayMs?: number;
}

export interface FakeEvent {
  readonly pid: number;
  readonly event: 'start' | 'line' | 'eof';
  readonly argv?: string[];
  readonly home?: string;
  readonly lcAll?: string;
  readonly line?: string;
  /** A line arrived while the previous one was still unanswered. */
  readonly overlap?: boolean;
}

export interface FakeNft {
  /** Path to pass as the nft binary. */
  readonly path: string;
  events(): Promise<FakeEvent[]>;
  /** pids of every process started, in order. */
  starts(): Promise<number[]>;
  lines(): Promise<string[]>;
  remove(): Promise<void>;
}

const SCRIPT = (log: string, cfg: FakeNftConfig): string => `#!${process.execPath}
const fs = require('node:fs');
const cfg = ${JSON.stringify(cfg)};
const log = (o) => fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ pid: process.pid, ...o }) + '\\n');
log({ event: 'start', argv: process.argv.slice(2), home: process.env.HOME, lcAll: process.env.LC_ALL });
if (cfg.brokenStart) {
  process.stderr.write('nft: simulated start failure\\n');
  process.exit(1);
}
const queue = [];
let working = false;
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    const command = /^(add|delete) /.test(line);
    if (command) log({ event: 'line', line, overlap: working || queue.length > 0 });
    queue.push(line);
  }
  next();
});
process.stdin.on('end', () => {
  log({ event: 'eof' });
  if (cfg.ignoreEof) setInterval(() => {}, 1000);
  else process.exit(0);
});
const error = (msg, line) => process.stderr.write('Error: ' + msg + '\\n' + line + '\\n' + ' '.repeat(line.length) + '^\\n');
function next() {
  if (working || queue.length === 0) return;
  const line = queue.shift();
  if (!/^(add|delete) /.test(line)) {
    // Like nft: anything else here (the session's marker) is a syntax error.
    error('syntax error, unexpected newline, expecting string', line);
    return next();
  }
  working = true;
  const answer = () => {
    if (line.includes(${JSON.stringify(HANG_SOURCE)})) return; // stays busy: nothing after it is handled
    if (line.includes(${JSON.stringify(EXIT_SOURCE)})) process.exit(3);
    if (line.includes(${JSON.stringify(FAIL_SOURCE)})) error('Could not process rule: Too many open files in system', line);
    if (line.includes(${JSON.stringify(NOISE_SOURCE)})) setTimeout(() => process.stderr.write('Warning: out of the blue\\n'), 50);
    working = false;
    next();
  };
  if (cfg.delayMs) setTimeout(answer, cfg.delayMs);
  else answer();
}
`;

export async function fakeNft(cfg: FakeNftConfig = {}): Promise<FakeNft> {
  const dir = await mkdtemp(join(tmpdir(), 'kwfakenft-'));
  const log = join(dir, 'log.jsonl');
  const path = join(dir, 'nft');
  await writeFile(log, '');
  await writeFile(path, SCRIPT(log, cfg));
  await chmod(path, 0o755);
  const events = async (): Promise<FakeEvent[]> =>
    (await readFile(log, 'utf8'))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as FakeEvent);
  return {
    path,
    events,
    starts: async () => (await events()).filter((e) => e.event === 'start').map((e) => e.pid),
    lines: async () => (await events()).filter((e) => e.event === 'line').map((e) => e.line as string),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Poll until `check` holds (or fail after `limitMs`). */
export async function waitFor(check: () => boolean | Promise<boolean>, limitMs = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
