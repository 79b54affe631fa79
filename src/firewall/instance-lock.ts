// One knockwatch per network namespace: a second `run` would replace our
// table/chains under the first one (its accesses vanish) and whichever stops
// first would take the other's rules away. The lock is an flock(2) on
// <runDir>/<netns inode>.lock, keyed by the namespace the firewall acts in
// (--netns NAME, or our own), so it is per namespace whatever the process's
// own namespace or mount view.
//
// Node has no flock(): util-linux's `flock -n 3` takes it on our open file
// description, passed as its fd 3. A flock belongs to the open file
// description, not to the process that took it, so it stays held by our fd
// after the helper exits, and the kernel drops it when we exit, however we
// die: no stale lock, no pid-reuse guessing. (Our fd is close-on-exec, so the
// nft/iptables children never inherit it.) The file keeps the holder's pid
// for the message only. It is unlinked on release while still locked, and a
// taker checks that the file it locked is still the one the path names (the
// usual guard against that unlink's race).
import { closeSync, constants, fstatSync, ftruncateSync, lstatSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { checkNetnsName } from './run.js';

export const DEFAULT_RUN_DIR = '/run/knockwatch';
/** Exit status of `run` / `remove-rules` when another instance holds the lock. */
export const EXIT_ALREADY_RUNNING = 3;
/** flock's exit status when the lock is held elsewhere (chosen, like sysexits' EX_TEMPFAIL). */
const HELD = 75;

export interface InstanceLock {
  readonly path: string;
  /** Drops the lock (it also goes with the process). */
  release(): void;
}

/** Another instance holds the lock for this namespace. */
export class InstanceLockedError extends Error {
  override readonly name = 'InstanceLockedError';
  constructor(
    readonly path: string,
    readonly holder: number | undefined,
  ) {
    super(`another knockwatch${holder === undefined ? '' : ` (pid ${holder})`} already manages the firewall of this network namespace (lock ${path})`);
  }
}

/** The inode of the network namespace: /run/netns/NAME, or our own. */
export function netnsInode(netns?: string): number {
  // stat, not lstat: /proc/self/ns/net is a per-process symlink; its target is the namespace's nsfs inode.
  return statSync(netns === undefined ? '/proc/self/ns/net' : `/run/netns/${checkNetnsName(netns)}`).ino;
}

/** The run directory must be ours and writable by us only: anyone else could pre-create or swap the lock file. */
function ensureRunDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const st = lstatSync(dir);
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new Error(`run directory ${dir} must be a directory owned by uid ${uid} and not writable by group or others`);
  }
}

export interface InstanceLockOptions {
  readonly runDir?: string;
  /** Named network namespace the firewall acts in. */
  readonly netns?: string;
  /** flock binary (default: on PATH). */
  readonly flock?: string;
}

/** `flock -n 3` with our descriptor as its fd 3 (node:child_process: execa's types take no descriptor beyond stdio 2). */
function runFlock(flock: string, fd: number): Promise<{ exitCode: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(flock, ['--nonblock', '--conflict-exit-code', String(HELD), '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4096);
    });
    child.on('error', (err) => resolve({ exitCode: -1, stderr: err.message }));
    child.on('close', (code) => resolve({ exitCode: code ?? -1, stderr }));
  });
}

/** Locks `path` once: the open descriptor when we hold the lock on the file that `path` names now, else undefined (retry). */
async function lockOnce(path: string, flock: string): Promise<number | undefined> {
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    const r = await runFlock(flock, fd);
    if (r.exitCode === HELD) {
      const holder = Number.parseInt(readFileSync(fd, 'utf8'), 10);
      throw new InstanceLockedError(path, Number.isInteger(holder) && holder > 0 ? holder : undefined);
    }
    if (r.exitCode !== 0) throw new Error(`cannot lock ${path}: ${r.stderr.trim() || `flock exited with ${r.exitCode}`}`);
    // A releasing holder unlinks the file while it still holds the lock; if
    // that happened between our open and our flock, we hold a lock on a file
    // nobody else will ever open: try again on the new one.
    const now = statSync(path, { throwIfNoEntry: false });
    if (now === undefined || now.ino !== st.ino || now.dev !== st.dev) {
      closeSync(fd);
      return undefined;
    }
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

export async function acquireInstanceLock(options: InstanceLockOptions = {}): Promise<InstanceLock> {
  const dir = options.runDir ?? DEFAULT_RUN_DIR;
  ensureRunDir(dir);
  const path = join(dir, `netns-${netnsInode(options.netns)}.lock`);
  let fd: number | undefined;
  // Each retry means another instance released the lock in between; a few are plenty.
  for (let attempt = 0; fd === undefined; attempt++) {
    if (attempt === 5) throw new Error(`cannot lock ${path}: it keeps being replaced`);
    fd = await lockOnce(path, options.flock ?? 'flock');
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
  let held = true;
  const locked = fd;
  return {
    path,
    release() {
      if (!held) return;
      held = false;
      // Unlinked while still locked (see lockOnce), so the run directory
      // does not collect one file per namespace ever used.
      try {
        unlinkSync(path);
      } catch {
        // Already gone (removed by hand): nothing to tidy.
      }
      closeSync(locked);
    },
  };
}
