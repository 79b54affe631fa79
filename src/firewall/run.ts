// The one place that runs external programs for the firewall: nft, iptables,
// ipset and the doors' start/stop commands. Argument arrays through execa,
// never a shell; text for nft -f - / ipset restore / iptables-restore goes on
// stdin, which those programs parse themselves.
import { execa } from 'execa';
import { FirewallError, silentLogger, type FirewallLogger } from './types.js';

export interface CommandRequest {
  readonly file: string;
  readonly args: readonly string[];
  /** Text fed on stdin (nft -f -, ipset restore, iptables-restore). */
  readonly input?: string;
  /** Kill the command after this many ms (default: the runner's). */
  readonly timeoutMs?: number;
}

export interface CommandResult {
  /** Exit status; -1 when the program could not be started, was killed or timed out. */
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs one command and reports how it ended; it does not throw for a non-zero
 * exit (runChecked does). Injectable so unit tests can record argv.
 */
export type Runner = (request: CommandRequest) => Promise<CommandResult>;

/** A command that failed: what ran, how it exited and what it said. */
export class FirewallCommandError extends Error {
  override readonly name = 'FirewallCommandError';
  constructor(
    readonly command: string,
    readonly exitCode: number,
    readonly stderr: string,
    /** The stdin text, when there was one (nft line numbers in stderr refer to it). */
    readonly input?: string,
  ) {
    super(`${command} failed (exit ${exitCode}): ${stderr.trim() || '(no error output)'}`);
  }
}

export interface RunnerOptions {
  logger?: FirewallLogger;
  /** Run every command inside this named network namespace (/run/netns/NAME) via nsenter. */
  netns?: string;
  /** Default per-command timeout, ms. */
  timeoutMs?: number;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;
const NETNS_NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const SAFE_ARG_RE = /^[A-Za-z0-9_./:=@%+,-]+$/;

/** Shell-style quoting for messages only (nothing is ever run through a shell). */
export function formatCommand(file: string, args: readonly string[]): string {
  return [file, ...args].map((a) => (SAFE_ARG_RE.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}

/**
 * Environment added to the inherited one for every command: English, stable
 * messages (they are shown to users and parsed in places).
 */
export const COMMAND_ENV: Readonly<Record<string, string>> = { LC_ALL: 'C' };

/** Check a network namespace name before it becomes part of a /run/netns path. */
export function checkNetnsName(netns: string): string {
  if (!NETNS_NAME_RE.test(netns) || netns === '.' || netns === '..') {
    throw new FirewallError(`invalid network namespace name '${netns}'`);
  }
  return netns;
}

/**
 * The argv that runs `file args` in the named network namespace (or as is).
 * nsenter rather than `ip netns exec`: it only switches the network namespace,
 * without remounting /sys, starts faster, and execs the program in place (same
 * pid, same stdin), which the long-lived nft session relies on.
 */
export function commandArgv(file: string, args: readonly string[], netns?: string): [string, string[]] {
  return netns === undefined ? [file, [...args]] : ['nsenter', [`--net=/run/netns/${checkNetnsName(netns)}`, file, ...args]];
}

export function createRunner(options: RunnerOptions = {}): Runner {
  const logger = options.logger ?? silentLogger;
  const defaultTimeout = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const netns = options.netns;
  if (netns !== undefined) checkNetnsName(netns);
  return async (request) => {
    const [file, args] = commandArgv(request.file, request.args, netns);
    const started = process.hrtime.bigint();
    const timeout = request.timeoutMs ?? defaultTimeout;
    const r = await execa(file, args, {
      reject: false,
      timeout,
      env: COMMAND_ENV,
      ...(request.input !== undefined ? { input: request.input } : { stdin: 'ignore' as const }),
    });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    let stderr = typeof r.stderr === 'string' ? r.stderr : '';
    let exitCode = r.exitCode ?? -1;
    if (r.timedOut) {
      exitCode = -1;
      stderr = `${stderr}${stderr ? '\n' : ''}timed out after ${timeout} ms`;
    } else if (r.exitCode === undefined) {
      // Not started (ENOENT, EACCES) or killed by a signal: execa's message says which.
      stderr = `${stderr}${stderr ? '\n' : ''}${r.originalMessage ?? r.shortMessage ?? 'failed to run'}`;
    }
    logger.debug({ command: r.escapedCommand, exitCode, ms: Math.round(ms * 100) / 100 }, 'firewall command');
    return { exitCode, stdout: typeof r.stdout === 'string' ? r.stdout : '', stderr };
  };
}

/** Run and throw FirewallCommandError unless the command exits 0. */
export async function runChecked(runner: Runner, request: CommandRequest): Promise<CommandResult> {
  const result = await runner(request);
  if (result.exitCode !== 0) {
    throw new FirewallCommandError(formatCommand(request.file, request.args), result.exitCode, result.stderr, request.input);
  }
  return result;
}
