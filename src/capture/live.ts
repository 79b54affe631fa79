// Live capture with libpcap (npm `cap`), as an Observable of raw Frames.
//
// The capture itself runs in a child process (live-child.ts; see there for
// why: cap aborts the process when the captured interface goes down). This
// side spawns it, parses its stream (live-stream.ts) into Frames, and turns
// its failure into a LiveCaptureError whose `kind` says whether retrying can
// help. Each subscription is one new process and one new Cap: a Cap that was
// closed and opened again delivers nothing.
//
// Facts measured with cap 0.2.1 / libpcap 1.10.3 (Debian 12):
//  - cap calls pcap_set_immediate_mode when it can find it - also without the
//    libpcap.so development symlink - so packets are delivered at once (median
//    a few hundred microseconds from send to handler), not after libpcap's
//    1 s block timeout.
//  - cap always opens in promiscuous mode with a 65535-byte snaplen; the
//    `snaplen` option only limits how much of each packet is kept. In
//    immediate mode libpcap uses TPACKET_V2: one fixed ring slot per packet,
//    sized for that snaplen (`ss -0 -e` shows frm_size 65616, one per
//    131072-byte block). So the ring holds bufferSize / 64 KiB packets and
//    pins twice bufferSize of kernel memory. A 200 k-datagram UDP burst at
//    45-115 k packets/s on a loaded 2-core VM: 4 MiB delivered 14-17 %,
//    32 MiB 92-93 %, 128 MiB 98-100 %. A SYN flood at the first knock port
//    (bench:flood-first, 35-50 k packets/s, load 10-14, issue 8 item 8):
//    32 MiB (10 ms of flood) delivered 45-55 %, 64 MiB 72-82 %, 128 MiB
//    (40 ms) 92-99.8 %. Default: 128 MiB where memory allows (see
//    defaultBufferBytes), 256 MiB pinned.
//  - Frames are stamped when the handler runs (cap has no packet timestamps).
//  - On `any`, frames are Linux cooked v1 (LINKTYPE_LINUX_SLL, 113).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Observable } from 'rxjs';
import type { Frame } from '../types.js';
import type { Clock } from './live-clock.js';
import {
  CaptureStreamError,
  createRecordReader,
  type CaptureCounters,
  type CaptureErrorInfo,
  type ChildRecord,
  type LiveCaptureErrorKind,
} from './live-stream.js';

export type { CaptureCounters, LiveCaptureErrorKind } from './live-stream.js';

/** The capture process's counters plus the frames that arrived here. */
export interface LiveCaptureCounters extends CaptureCounters {
  /** Frames this process received from the capture process. */
  readonly delivered: number;
}

export interface LiveCaptureOptions {
  /** Interface name, or `any`. */
  readonly interface: string;
  /** libpcap filter expression (see buildCaptureFilter). */
  readonly filter: string;
  /** Bytes of each packet kept in its Frame (1-65535, default 65535). */
  readonly snaplen?: number;
  /** Kernel capture ring size in bytes (default defaultBufferBytes(): 128 MiB, 2048 packets, see above). */
  readonly bufferSize?: number;
  /**
   * Bytes of frames the capture process may hold for us while we are busy;
   * beyond it, it sheds frames and counts them. Default 2 MiB: ~28 k SYN
   * records, about a second of work for knockwatch on a loaded 2-core VM.
   * A deeper backlog loses nothing but turns into latency: with 16 MiB under
   * 60 k packets/s at the first knock port every knock was seen, but more
   * than 10 s late, after every client had given up (bench:flood-first).
   */
  readonly backlogBytes?: number;
  /** Called with cumulative counters about once a second, and once more when the capture ends. */
  readonly onCounters?: (counters: LiveCaptureCounters) => void;
  /**
   * Stamps frames with this clock when they arrive in this process, instead
   * of the capture process's wall clock taken in the packet handler (which
   * is earlier by the pipe hop). For tests.
   */
  readonly clock?: Clock;
  /** Called once the capture is open: packets from now on are seen. */
  readonly onOpened?: (info: { readonly linkType: number; readonly pid: number }) => void;
  /** The capture process script; default: live-child.js of the build. */
  readonly childScript?: string;
}

export const DEFAULT_SNAPLEN = 65_535;
const MIB = 1024 * 1024;
/** The ring that rode out a first-port flood on a loaded machine (see the top of this file). */
export const DEFAULT_BUFFER_BYTES = 128 * MIB;
/** The smallest default ring: 512 packets, 10 ms of a 50 k packets/s flood. */
export const MIN_DEFAULT_BUFFER_BYTES = 32 * MIB;

/**
 * The default ring for a machine with `totalMemory` bytes: 128 MiB, but pinning
 * (twice the ring) at most 1/48 of memory, and never below 32 MiB: 128 MiB
 * from 12 GiB of memory up, 32 MiB at 3 GiB and below.
 */
export function defaultBufferBytes(totalMemory: number = totalmem()): number {
  const share = Math.floor(totalMemory / 96 / MIB) * MIB;
  return Math.max(MIN_DEFAULT_BUFFER_BYTES, Math.min(DEFAULT_BUFFER_BYTES, share));
}
export const DEFAULT_BACKLOG_BYTES = 2 * 1024 * 1024;
/** Kinds for which retrying the same open cannot help. */
export const FATAL_CAPTURE_ERRORS: readonly LiveCaptureErrorKind[] = ['permission', 'filter', 'addon'];

/** Stderr of the capture process kept for error messages. */
const STDERR_TAIL_BYTES = 4096;
/** Where Debian (util-linux) has prlimit, used to switch core dumps off. */
const PRLIMIT_PATHS = ['/usr/bin/prlimit', '/bin/prlimit'];

export class LiveCaptureError extends Error {
  constructor(
    message: string,
    readonly kind: LiveCaptureErrorKind,
    readonly interfaceName: string,
  ) {
    super(message);
    this.name = 'LiveCaptureError';
  }
}

/** Whether retrying cannot fix this error (wrong permissions, bad filter, missing addon). */
export function isFatalCaptureError(err: unknown): boolean {
  return err instanceof LiveCaptureError && FATAL_CAPTURE_ERRORS.includes(err.kind);
}

/** The capture process script: beside this module once built; from the sources (tests), the build's copy. */
export function defaultChildScript(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return resolve(dirname(here), 'live-child.js');
  return resolve(dirname(here), '../../dist/capture/live-child.js');
}

function checkOptions(o: LiveCaptureOptions): { snaplen: number; bufferSize: number; backlogBytes: number } {
  const name = o.interface;
  // IFNAMSIZ is 16 with the NUL; a slash or blank can never be part of a name.
  if (typeof name !== 'string' || !/^[^\s/]{1,15}$/.test(name)) {
    throw new LiveCaptureError(`live capture: invalid interface name ${JSON.stringify(name)}`, 'no-device', String(name));
  }
  if (typeof o.filter !== 'string') throw new LiveCaptureError(`live capture on "${name}": filter must be a string`, 'filter', name);
  const snaplen = o.snaplen ?? DEFAULT_SNAPLEN;
  if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > DEFAULT_SNAPLEN) {
    throw new LiveCaptureError(`live capture on "${name}": snaplen must be an integer 1-65535, got ${snaplen}`, 'other', name);
  }
  const bufferSize = o.bufferSize ?? defaultBufferBytes();
  if (!Number.isInteger(bufferSize) || bufferSize < 65_536 || bufferSize > 1 << 30) {
    throw new LiveCaptureError(`live capture on "${name}": bufferSize must be an integer from 65536 to 2^30, got ${bufferSize}`, 'other', name);
  }
  const backlogBytes = o.backlogBytes ?? DEFAULT_BACKLOG_BYTES;
  if (!Number.isInteger(backlogBytes) || backlogBytes < 65_536 || backlogBytes > 1 << 30) {
    throw new LiveCaptureError(`live capture on "${name}": backlogBytes must be an integer from 65536 to 2^30, got ${backlogBytes}`, 'other', name);
  }
  return { snaplen, bufferSize, backlogBytes };
}

function hint(kind: LiveCaptureErrorKind, filter: string): string {
  switch (kind) {
    case 'permission':
      return ' (capturing needs root, or CAP_NET_RAW and CAP_NET_ADMIN)';
    case 'filter':
      return ` (filter: ${filter})`;
    case 'no-device':
      return ' (no such interface)';
    case 'not-up':
      return ' (the interface is down)';
    default:
      return '';
  }
}

function spawnChild(script: string, args: string): ChildProcess {
  const node = [process.execPath, script, args];
  // A capture process that aborts (interface went down) should not leave a core dump each time.
  const prlimit = PRLIMIT_PATHS.find((p) => existsSync(p));
  const [command, ...argv] = prlimit ? [prlimit, '--core=0', '--', ...node] : node;
  // Own process group: a terminal's Ctrl-C reaches knockwatch, which stops the capture itself.
  return spawn(command, argv, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
}

/**
 * Frames captured live on one interface. Errors (never completes) when the
 * capture cannot open or ends; unsubscribing stops it (once).
 */
export function openLiveCapture(options: LiveCaptureOptions): Observable<Frame> {
  return new Observable<Frame>((subscriber) => {
    const name = options.interface;
    let sizes: { snaplen: number; bufferSize: number; backlogBytes: number };
    try {
      sizes = checkOptions(options);
    } catch (err) {
      subscriber.error(err);
      return undefined;
    }
    const script = options.childScript ?? defaultChildScript();
    if (!existsSync(script)) {
      subscriber.error(new LiveCaptureError(`live capture: capture process script ${script} not found (run npm run build)`, 'addon', name));
      return undefined;
    }

    const args = JSON.stringify({ interface: name, filter: options.filter, ...sizes });
    const child = spawnChild(script, args);
    const reader = createRecordReader();
    let linkType: number | undefined;
    let reported: CaptureErrorInfo | undefined;
    let stderrTail = '';
    let stopped = false;
    let delivered = 0;
    let counters: CaptureCounters | undefined;
    const report = (): void => {
      if (counters) options.onCounters?.({ ...counters, delivered });
    };

    const fail = (err: LiveCaptureError): void => {
      if (stopped) return;
      stop();
      subscriber.error(err);
    };
    const onRecord = (record: ChildRecord): void => {
      if (stopped) return;
      if (record.kind === 'frame') {
        if (linkType === undefined) throw new CaptureStreamError('capture stream: frame before the opened record', 0);
        const time = options.clock ? options.clock() : record.time;
        delivered++;
        subscriber.next({ time, linkType, data: record.data, origLength: record.origLength, offset: -1 });
      } else if (record.kind === 'opened') {
        linkType = record.linkType;
        options.onOpened?.({ linkType, pid: child.pid ?? -1 });
      } else if (record.kind === 'counters') {
        counters = record.counters;
        report();
      } else {
        reported = record.error;
      }
    };

    child.stdout?.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk, onRecord);
      } catch (err) {
        fail(new LiveCaptureError(`live capture on "${name}": ${(err as Error).message}`, 'other', name));
      }
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      stderrTail = (stderrTail + text).slice(-STDERR_TAIL_BYTES);
    });
    // stdin only signals "stop" by closing; an EPIPE there just means the child is already gone.
    child.stdin?.on('error', () => {});
    child.on('error', (err: NodeJS.ErrnoException) => {
      // A missing or unusable node/prlimit binary will not fix itself; EAGAIN or ENOMEM might.
      const kind = err.code === 'ENOENT' || err.code === 'EACCES' ? 'addon' : 'other';
      fail(new LiveCaptureError(`live capture on "${name}": cannot start the capture process: ${err.message}`, kind, name));
    });
    // 'close' comes after stdout is drained, so every frame sent is delivered first.
    child.on('close', (code, signal) => {
      if (stopped) return;
      if (reported) {
        fail(new LiveCaptureError(`cannot open live capture on interface "${name}": ${reported.message}${hint(reported.kind, options.filter)}`, reported.kind, name));
        return;
      }
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const when = linkType === undefined ? 'before the capture opened' : 'while capturing';
      // cap's own words when libpcap reports a socket error (ENETDOWN and the like).
      const cause = /status == 0/.test(stderrTail) ? ': libpcap reported an error on the capture socket (the interface went down or was removed)' : '';
      const detail = stderrTail.trim() ? `; its stderr: ${stderrTail.trim().split('\n').slice(-3).join(' | ')}` : '';
      fail(new LiveCaptureError(`live capture on interface "${name}": the capture process ${how} ${when}${cause}${detail}`, 'died', name));
    });

    function stop(): void {
      if (stopped) return;
      stopped = true;
      report();
      child.stdin?.end();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    }
    return stop;
  });
}
