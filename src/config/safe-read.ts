// readTrustedFile: the one way knockwatch reads a file that decides what it
// does as root (the config: its commands run as uid 0 and it rewrites the
// firewall; key files too). Two dangers, two sets of rules:
//
// No path can hang the reader (always, root or not). A FIFO blocks open()
// until a writer appears: `check-config FIFO` hung, and one SIGHUP with the
// config replaced by a FIFO wedged reloads for good and SIGTERM never exited.
// So: lstat first, and anything but a regular file is refused BEFORE opening;
// then open with O_NONBLOCK|O_NOFOLLOW|O_NOCTTY, so even an entry swapped for a
// FIFO (or a link) between the lstat and the open cannot block; fstat the
// descriptor, check it is still the regular file we looked at (same device and
// inode), and read only from that descriptor, at most maxBytes.
//
// Nobody but root chooses the contents (when we run as root; like sshd's
// StrictModes). Checking the file and then opening the path again can be raced
// (issue 8: a symlink in a directory owned by `nobody`, flipped during a
// reload, made root run a `start_command` from nobody's file). So the path is
// walked one component at a time from '/' and symlinks are resolved here, not
// by the kernel:
//  - every directory walked through is owned by root and not writable by
//    group or others, except a root-owned directory with the sticky bit (like
//    /tmp: others can add entries there but not rename or remove ours);
//  - a symlink is followed only when root owns it; it then sits in a directory
//    already found trusted, so nobody else can repoint it; its target is
//    walked under the same rules;
//  - the file (checked on the open descriptor) is owned by root and not
//    writable by group or others.
// Once every directory down to the file is trusted, no one else can replace
// any entry on the path, so what we checked is what we read.
// Not root: only the no-hang rules apply; which files a user may feed their
// own knockwatch is theirs to decide (this is what was accepted before).
import { constants, type Stats } from 'node:fs';
import { lstat, open, readlink } from 'node:fs/promises';
import { posix } from 'node:path';

/** Linux's own bound on symlinks in one path walk (ELOOP past it). */
const MAX_SYMLINKS = 40;

/** Non-blocking, so neither a FIFO nor a terminal can stall the open itself. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

export interface TrustedReadOptions {
  /** Refuse files larger than this (checked on the descriptor and while reading). */
  readonly maxBytes: number;
  /** What the file is, for messages: 'config file'. */
  readonly what: string;
  /** Why root must own it, for messages: 'as root, knockwatch runs commands from this file'. */
  readonly why: string;
  /** Our uid (tests pass one); the ownership rules apply when it is 0. Default: process.getuid(). */
  readonly uid?: number;
  /**
   * false: only the no-hang rules, even as root, for a reader that acts on
   * nothing (`replay` runs no command and changes no firewall). Default true.
   */
  readonly ownershipRules?: boolean;
  /**
   * 'any': the file itself may belong to any user (it must still not be
   * writable by group or others, and every directory on its path must be
   * root's). For a container's read-only bind mount, which keeps the host
   * file's owner (`run --config-owner any`). Default 'root'.
   */
  readonly fileOwner?: 'root' | 'any';
}

/** A file that cannot be read safely; `reason` says why, naming the path at fault. */
export class UntrustedFileError extends Error {
  override readonly name = 'UntrustedFileError';
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** The file's bytes, read from one descriptor that passed every check; UntrustedFileError otherwise. */
export async function readTrustedFile(file: string, options: TrustedReadOptions): Promise<Buffer> {
  const uid = options.uid ?? process.getuid?.() ?? -1;
  const fail = (reason: string): never => {
    throw new UntrustedFileError(file, reason);
  };
  const rules = trustRules(uid === 0 && options.ownershipRules !== false, file, options.why, fail, options.fileOwner ?? 'root');
  const { real, st } = await walk(file, rules, fail, options.what);
  if (!st.isFile()) fail(`not a regular file (${fileKind(st)}): a ${options.what} must be a plain file`);

  let fh;
  try {
    fh = await open(real, OPEN_FLAGS);
  } catch (err) {
    // ELOOP: the entry became a symlink after the lstat (only in an untrusted directory).
    return fail(`cannot read ${options.what}: ${osMessage(err)}`);
  }
  try {
    const fst = await fh.stat();
    if (!fst.isFile()) fail(`not a regular file (${fileKind(fst)}): a ${options.what} must be a plain file`);
    if (fst.dev !== st.dev || fst.ino !== st.ino) fail(`${real} was replaced while it was being opened`);
    rules.regularFile(real, fst);
    if (fst.size > options.maxBytes) fail(`file is ${fst.size} bytes; a ${options.what} may be at most ${options.maxBytes}`);
    // One byte more than fstat said, to notice a file that grows while we read it.
    const buf = Buffer.alloc(fst.size + 1);
    let len = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, len, buf.length - len, null);
      if (bytesRead === 0 || (len += bytesRead) === buf.length) break;
    }
    // Written while we read it, the text could be half old, half new: never apply half a config.
    if (len !== fst.size) fail(`${real} changed while it was being read (${fst.size} bytes when opened, ${len === buf.length ? 'more' : len} read); try again`);
    return buf.subarray(0, len);
  } catch (err) {
    if (err instanceof UntrustedFileError) throw err;
    return fail(`cannot read ${options.what}: ${osMessage(err)}`);
  } finally {
    await fh.close();
  }
}

interface TrustRules {
  directory(path: string, st: Stats): void;
  symlink(path: string, st: Stats): void;
  regularFile(path: string, st: Stats): void;
}

/** The ownership rules; none when not root. */
function trustRules(strict: boolean, file: string, why: string, fail: (reason: string) => never, fileOwner: 'root' | 'any'): TrustRules {
  if (!strict) return { directory() {}, symlink() {}, regularFile() {} };
  const consequence = `whoever can write it can replace ${file} (${why})`;
  return {
    directory(path, st) {
      if (st.uid !== 0) fail(`directory ${path} is owned by uid ${st.uid}, not root: ${consequence}; chown root ${path}`);
      const sticky = (st.mode & 0o1000) !== 0;
      if ((st.mode & 0o022) !== 0 && !sticky) {
        fail(`directory ${path} is writable by ${writers(st)} (mode ${modeText(st)}) and has no sticky bit: ${consequence}; chmod go-w ${path}`);
      }
    },
    symlink(path, st) {
      if (st.uid !== 0) fail(`symbolic link ${path} is owned by uid ${st.uid}, not root: its owner can point it at another file (${why})`);
    },
    regularFile(path, st) {
      const named = path === file ? path : `${path} (the real file)`;
      if (st.uid !== 0 && fileOwner === 'root') fail(`${named} is owned by uid ${st.uid}, not root: ${why}; chown root ${path}`);
      if ((st.mode & 0o022) !== 0) fail(`${named} is writable by ${writers(st)} (mode ${modeText(st)}): ${why}; chmod go-w ${path}`);
    },
  };
}

/**
 * Resolve `file` component by component from '/' (a relative path from the
 * working directory, itself walked), applying the directory and symlink rules
 * on the way. Returns the real path of the last component and its lstat.
 */
async function walk(file: string, rules: TrustRules, fail: (reason: string) => never, what: string): Promise<{ real: string; st: Stats }> {
  if (file === '') fail(`cannot read ${what}: empty path`);
  if (file.includes('\0')) fail(`cannot read ${what}: the path contains a NUL byte`);
  const absolute = file.startsWith('/') ? file : `${process.cwd()}/${file}`;
  // 'dir/' names a directory, never a file.
  if (absolute.endsWith('/')) fail(`not a regular file (a directory path): a ${what} must be a plain file`);
  const stat = async (path: string): Promise<Stats> => {
    try {
      return await lstat(path);
    } catch (err) {
      return fail(`cannot read ${what}: ${osMessage(err)}`);
    }
  };
  rules.directory('/', await stat('/'));
  let dir = '/';
  const pending = components(absolute);
  let links = 0;
  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (name === '..') {
      dir = posix.dirname(dir); // already walked, so already trusted
      continue;
    }
    const path = posix.join(dir, name);
    const st = await stat(path);
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) fail(`cannot read ${what}: more than ${MAX_SYMLINKS} symbolic links in the path (a loop?)`);
      rules.symlink(path, st);
      let target: string;
      try {
        target = await readlink(path);
      } catch (err) {
        return fail(`cannot read ${what}: ${osMessage(err)}`);
      }
      if (target.startsWith('/')) dir = '/';
      pending.unshift(...components(target));
      continue;
    }
    if (pending.length === 0) return { real: path, st };
    if (!st.isDirectory()) fail(`cannot read ${what}: ${path} is not a directory (ENOTDIR)`);
    rules.directory(path, st);
    dir = path;
  }
  // The path ends at a directory ('/', 'x/..').
  return { real: dir, st: await stat(dir) };
}

function components(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

function writers(st: Stats): string {
  return (st.mode & 0o002) !== 0 ? 'everyone' : 'its group';
}

function modeText(st: Stats): string {
  return (st.mode & 0o7777).toString(8);
}

function fileKind(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a plain file';
}

function osMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
