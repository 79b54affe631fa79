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
import { createRequire } from 'node:module';
import { writeSync } from 'node:fs';
import { createWallClock } from './live-clock.js';
import { linkTypeFromCap } from './live-link.js';
import { classifyOpenError, createRecordWriter, type CaptureErrorInfo } from './live-stream.js';

interface ChildOptions {
  readonly interface: string;
  readonly filter: string;
  readonly snaplen: number;
  readonly bufferSize: number;
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

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** Writes all bytes to stdout, blocking: a slow parent slows this process, and the kernel ring absorbs (or drops) the rest. */
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
  return v as ChildOptions;
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

  let flushQueued = false;
  const flushSoon = (): void => {
    if (flushQueued) return;
    flushQueued = true;
    // cap delivers every packet ready on the socket in one turn; send them in one write after it.
    setImmediate(() => {
      flushQueued = false;
      out.flush();
    });
  };
  // Copy and push, nothing else: this runs once per packet.
  // cap reports no wire length; with its 65535-byte snaplen the captured
  // length is the wire length except for GRO super-packets, which are never SYNs.
  cap.on('packet', (nbytes) => {
    const time = clock();
    out.frame(time, buffer, Math.min(nbytes, options.snaplen), nbytes);
    flushSoon();
  });
  out.opened(linkType);
  out.flush();
}

main();
