// The capture process: opens one libpcap capture with npm `cap` and streams
// the packets to its parent (live.ts) on stdout, in the format of
// live-stream.ts. Started as `node live-child.js '<json options>'`; never
// imported.
//
// Why a separate process: cap 0.2.1 asserts (abort()) when libpcap reports an
// error on the capture socket, and the kernel reports ENETDOWN on a socket
// bound to an interface the moment that interface goes down. In-process, a
// `ip link set dev down` killed the whole daemon (knockd has the same failure,
// jvinet/knock#69). Here it ends only this process; knockwatch reopens. The
// other cap traps are also contained: a Cap whose open() threw must be
// neither closed (abort) nor garbage-collected (segfault) - this process just
// exits; and a burst of thousands of packet callbacks in one event-loop turn
// no longer stalls detection and the firewall.
//
// Frames leave through a non-blocking socket write with a bounded backlog,
// never a blocking one. Measured under a 25-50 k packets/s spoofed SYN flood
// at the first knock port (bench/flood-first-port.mjs): with blocking writes
// this process stopped reading whenever knockwatch fell behind, the kernel
// ring (then 512 slots with cap's 64 KiB snaplen: 10 ms at 50 k packets/s)
// overflowed, and only 9-25 % of the frames reached knockwatch, real knocks
// lost at random with them, uncounted. Now the ring is drained as fast as
// cap calls us, knockwatch works off a bounded backlog at its own pace
// (packet times are taken here, so windows are unaffected), and a backlog past
// `backlogBytes` sheds frames - counted and reported, unlike the kernel's ring
// drops, which cap cannot read (no pcap_stats). Where the rest went, measured at 60 k
// packets/s on a 2-core VM at load 15: all 300 k reached the interface (no
// interface or softnet drops), the ring passed 73 % of them with 32 MiB
// (85 % with 128 MiB): the rest is this process losing the CPU for longer
// than the ring lasts. Hence the larger default ring (2048 slots, 40 ms; see
// live.ts) and the raised priority this process inherits from the daemon
// (priority.ts): at 50 k packets/s and load 7-18 the ring then passed
// 92-99.8 %; what is still shed is knockwatch falling behind.
import { createRequire } from 'node:module';
import { readFileSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { createWallClock } from './live-clock.js';
import { linkTypeFromCap } from './live-link.js';
import { classifyOpenError, createRecordWriter, type CaptureErrorInfo } from './live-stream.js';

interface ChildOptions {
  readonly interface: string;
  readonly filter: string;
  readonly snaplen: number;
  readonly bufferSize: number;
  readonly backlogBytes: number;
}

/** The part of cap's Cap object used here. */
interface CapInstance {
  open(device: string, filter: string, bufferSize: number, buffer: Buffer): unknown;
  on(event: 'packet', listener: (nbytes: number, truncated: boolean) => void): void;
}

/** Exit status after an error record: the parent reads the record, not the code. */
const EXIT_FAILED = 3;
/** cap copies each packet into this buffer; 65536 covers its fixed 65535-byte snaplen. */
const CAP_BUFFER_BYTES = 65_536;
/** Counters go to knockwatch this often, ms. */
const COUNTERS_INTERVAL_MS = 1000;

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** Writes all bytes to stdout, blocking: only for the few records before the frames start. */
function writeAll(bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(1, bytes, offset, bytes.length - offset);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        Atomics.wait(sleepCell, 0, 0, 1); // the pipe is full and non-blocking: wait 1 ms
        continue;
      }
      // EPIPE and the like: the parent is gone, nobody wants the packets.
      process.exit(0);
    }
  }
}

const out = createRecordWriter(writeAll);

function fail(info: CaptureErrorInfo): never {
  out.error(info);
  out.flush();
  process.exit(EXIT_FAILED);
}

function parseOptions(text: string | undefined): ChildOptions {
  let v: Partial<ChildOptions>;
  try {
    v = JSON.parse(text ?? '') as Partial<ChildOptions>;
  } catch {
    return fail({ kind: 'other', message: 'capture process: its argument is not JSON options' });
  }
  const bad = (field: string): never => fail({ kind: 'other', message: `capture process: option '${field}' is missing or invalid` });
  if (typeof v.interface !== 'string' || v.interface === '') bad('interface');
  if (typeof v.filter !== 'string') bad('filter');
  if (!Number.isInteger(v.snaplen) || (v.snaplen as number) < 1) bad('snaplen');
  if (!Number.isInteger(v.bufferSize) || (v.bufferSize as number) < 1) bad('bufferSize');
  if (!Number.isInteger(v.backlogBytes) || (v.backlogBytes as number) < 1) bad('backlogBytes');
  return v as ChildOptions;
}

/**
 * Receive drops of the interface, or of all for `any`, from /proc/net/dev
 * (this network namespace's; libpcap's ps_ifdrop reads the same column).
 * 0 when unreadable: a counter, not a reason to stop capturing.
 */
function interfaceDrops(name: string): number {
  let text: string;
  try {
    text = readFileSync('/proc/net/dev', 'utf8');
  } catch {
    return 0;
  }
  let sum = 0;
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const ifname = line.slice(0, colon).trim();
    if (name !== 'any' && ifname !== name) continue;
    // Receive: bytes packets errs drop ...
    const drop = Number(line.slice(colon + 1).trim().split(/\s+/)[3]);
    if (Number.isSafeInteger(drop)) sum += drop;
  }
  return sum;
}

function loadCap(): new () => CapInstance {
  try {
    const require = createRequire(import.meta.url);
    return (require('cap') as { Cap: new () => CapInstance }).Cap;
  } catch (err) {
    return fail({
      kind: 'addon',
      message: `cannot load the npm 'cap' native addon: ${(err as Error).message} (it needs libpcap at run time: Debian package libpcap0.8)`,
    });
  }
}

function main(): void {
  const options = parseOptions(process.argv[2]);
  // The parent closes our stdin when it stops the capture or dies: leave at once.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
  process.on('SIGTERM', () => process.exit(0));

  const Cap = loadCap();
  const clock = createWallClock();
  // One buffer, reused by cap for every packet: the handler copies out of it.
  const buffer = Buffer.alloc(CAP_BUFFER_BYTES);
  const cap = new Cap();
  let linkName: unknown;
  try {
    linkName = cap.open(options.interface, options.filter, options.bufferSize, buffer);
  } catch (err) {
    // Do not close() it (abort) and do not let it be collected (segfault): exit now.
    const message = (err as Error).message;
    fail({ kind: classifyOpenError(message), message });
  }
  let linkType: number;
  try {
    linkType = linkTypeFromCap(linkName);
  } catch (err) {
    return fail({ kind: 'other', message: (err as Error).message });
  }

  out.opened(linkType);
  out.flush();

  // From here on, non-blocking: see the top of this file.
  const stream = new Socket({ fd: 1, readable: false, writable: true });
  // EPIPE and the like: the parent is gone, nobody wants the packets.
  stream.on('error', () => process.exit(0));
  let captured = 0;
  let shed = 0;
  let maxBacklog = 0;
  const dropsAtOpen = interfaceDrops(options.interface);
  const frames = createRecordWriter((bytes) => {
    // The batch is reused: the socket keeps what it is given until written.
    stream.write(Buffer.from(bytes));
    if (stream.writableLength > maxBacklog) maxBacklog = stream.writableLength;
  });

  let flushQueued = false;
  const flushSoon = (): void => {
    if (flushQueued) return;
    flushQueued = true;
    // cap delivers every packet ready on the socket in one turn; send them in one write after it.
    setImmediate(() => {
      flushQueued = false;
      frames.flush();
    });
  };
  // Count, copy and push, nothing else: this runs once per packet.
  // cap reports no wire length; with its 65535-byte snaplen the captured
  // length is the wire length except for GRO super-packets, which are never SYNs.
  cap.on('packet', (nbytes) => {
    captured++;
    if (stream.writableLength + frames.pending >= options.backlogBytes) {
      shed++;
      return;
    }
    frames.frame(clock(), buffer, Math.min(nbytes, options.snaplen), nbytes);
    flushSoon();
  });
  setInterval(() => {
    const interfaceDropsNow = Math.max(0, interfaceDrops(options.interface) - dropsAtOpen);
    frames.counters({ captured, shed, backlogBytes: stream.writableLength, maxBacklogBytes: maxBacklog, interfaceDrops: interfaceDropsNow });
    flushSoon();
  }, COUNTERS_INTERVAL_MS);
}

main();
