// The built CLI (dist/cli.js) as a child process, for the tests that check
// what a user sees: exit code, stdout and stderr. Bounded: killed after 30 s.
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BUILT_CLI = fileURLToPath(new URL('../../../dist/cli.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `knockwatch ARGS`; `stdinFile` is streamed to its stdin (else stdin is empty). */
export function runCli(args: readonly string[], stdinFile?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUILT_CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    if (stdinFile === undefined) child.stdin.end();
    else createReadStream(stdinFile).pipe(child.stdin);
  });
}
