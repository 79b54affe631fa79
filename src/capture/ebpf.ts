// eBPF capture backend: a drop-in for the libpcap Observable<Frame>. The
// kernel program (ebpf/knock.bpf.c) hands up only knocks to the knock ports
// plus the first knock of a knocking source to any other port (so detection
// can reset it), and only those sent to one of the host's own addresses (the
// loader follows them); a flood to other ports costs no JavaScript at all. Its loader
// (ebpf/loader.c, built to build/ebpf/knockwatch-ebpf) runs as a child process
// and streams frames on stdout; the normal decoder takes it from there.
//
// Interface `any`: tc attaches to real interfaces, so the loader attaches to
// every non-loopback interface that is up when it starts (interfaces created
// later are not watched); an attached interface that is deleted and created
// again is attached again within a counters interval. Frames arrive as
// Ethernet (link type 1) or, from tun/WireGuard devices, raw IP (101),
// captured up to the end of the transport header and at least the first 256
// bytes (origLength has the wire length). The program applies the rule of
// decode/decode.ts (tagged frames, AH, bad IPv4 checksums... are not knocks);
// the decoder takes the same decision again on what it sends up.
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { Observable } from 'rxjs';
import type { Frame, PortSpec, Protocol } from '../types.js';
import { loaderPortArgs } from '../port-runs.js';
import { formatPort } from '../types.js';
import { captureProtocols } from './filter.js';
import {
  type EbpfCounters,
  type EbpfInterface,
  type LoaderRecord,
  createLoaderStreamDecoder,
} from './ebpf-stream.js';

export type { EbpfCounters, EbpfInterface } from './ebpf-stream.js';
export { EbpfStreamError } from './ebpf-stream.js';

/** The subset of a pino logger this module uses. */
export interface CaptureLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export type EbpfHook = 'tc' | 'xdp';

export interface EbpfCaptureOptions {
  /** Interface name(s); 'any' means every non-loopback interface that is up. */
  readonly interfaces: readonly string[] | string;
  /** Knock ports to watch: the doors' sequence steps. */
  readonly steps: readonly PortSpec[];
  /**
   * The steps that start a sequence (a door's first step): only these make a
   * source "active" in the kernel. Default: every step.
   */
  readonly firstSteps?: readonly PortSpec[];
  /**
   * The doors' open ports: an active source's packets to them are sent up
   * without ending its active state, since they do not reset its own door.
   */
  readonly openPorts?: readonly PortSpec[];
  /** Protocols of the knocks to deliver (CaptureNeeds.protocols); default both. */
  readonly protocols?: readonly Protocol[];
  /** Loader binary; default $KNOCKWATCH_EBPF_LOADER or build/ebpf/knockwatch-ebpf. */
  readonly loaderPath?: string;
  /** tc ingress (default; survives a killed loader, cleaned at next start) or XDP. */
  readonly hook?: EbpfHook;
  readonly logger?: CaptureLogger;
  /** Run the loader in this network namespace (name under /run/netns, or a path). */
  readonly netns?: string;
  /** Capacity of the kernel's table of knocking sources (default 65536). */
  readonly maxSources?: number;
  /** How often the loader reports counters, ms (default 1000). */
  readonly statsIntervalMs?: number;
  /** Called once the program is attached: traffic from now on is seen. */
  readonly onReady?: (interfaces: readonly EbpfInterface[]) => void;
  /** Called with cumulative counters every statsIntervalMs and at exit. */
  readonly onCounters?: (counters: EbpfCounters) => void;
  /** Called once the loader process is gone, after unsubscribe or on its own exit. */
  readonly onExit?: (exit: EbpfExit) => void;
}

export interface EbpfExit {
  readonly exitCode?: number;
  readonly signal?: string;
  /** Last counters the loader reported, if any. */
  readonly counters?: EbpfCounters;
}

const LOADER_NAME = 'knockwatch-ebpf';
const BUILD_HINT =
  'build it with `knockwatch setup-ebpf` (in a source checkout: `npm run build:ebpf`; Debian packages: clang libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev make gcc)';
/** stderr kept for error messages. */
const STDERR_TAIL_BYTES = 8192;
const KILL_GRACE_MS = 3000;

export function defaultLoaderPath(): string {
  const fromEnv = process.env.KNOCKWATCH_EBPF_LOADER;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  // Same relative place from src/capture/ (tests) and dist/capture/ (installed).
  return fileURLToPath(new URL(`../../build/ebpf/${LOADER_NAME}`, import.meta.url));
}

function checkPort(what: string, p: PortSpec): string {
  if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535 || (p.protocol !== 'tcp' && p.protocol !== 'udp')) {
    throw new Error(`eBPF capture: invalid ${what} ${JSON.stringify(p)}`);
  }
  return formatPort(p);
}

/** Loader arguments for these options. Throws on options no loader could accept. */
export function loaderArgs(options: EbpfCaptureOptions): string[] {
  const names = typeof options.interfaces === 'string' ? [options.interfaces] : [...options.interfaces];
  if (names.length === 0) throw new Error('eBPF capture: no interface given');
  for (const name of names) {
    // Linux interface names: 1-15 bytes, no '/', no whitespace; '-' first would read as an option.
    if (!/^[^\s/-][^\s/]{0,14}$/.test(name) || name === '.' || name === '..') {
      throw new Error(`eBPF capture: invalid interface name '${name}'`);
    }
  }
  if (options.steps.length === 0) throw new Error('eBPF capture: no knock ports to watch');
  const args: string[] = [];
  for (const name of new Set(names)) args.push('--ifname', name);
  const steps = new Set(options.steps.map((p) => checkPort('knock port', p)));
  // Without a list every step is a first step (the loader's default too).
  const first = options.firstSteps === undefined ? undefined : new Set(options.firstSteps.map((p) => checkPort('first step', p)));
  const open = new Set((options.openPorts ?? []).map((p) => checkPort('open port', p)));
  // Doors judged per packet (spa) have steps but no first step. The loader
  // then treats every step as a first step: a datagram there makes its source
  // active (its next packets go to user space), which spa does not need but
  // costs only the active map's LRU churn.
  if (first?.size === 0 && steps.size === 0) throw new Error('eBPF capture: no first step (a door sequence starts with one)');
  for (const port of first ?? []) {
    if (!steps.has(port)) throw new Error(`eBPF capture: first step ${port} is not among the knock ports`);
  }
  // A port that is a step of some door is sent up as a step already.
  // Consecutive ports of one class go as one range (a rotating door's).
  for (const [option, value] of loaderPortArgs(options.steps, options.firstSteps, options.openPorts ?? [])) args.push(option, value);
  if (options.protocols !== undefined) {
    for (const p of captureProtocols(options.protocols)) args.push('--protocol', p);
  }
  if (options.hook !== undefined) {
    if (options.hook !== 'tc' && options.hook !== 'xdp') throw new Error(`eBPF capture: unknown hook '${String(options.hook)}'`);
    args.push('--hook', options.hook);
  }
  if (options.netns !== undefined) args.push('--netns', options.netns);
  if (options.maxSources !== undefined) {
    if (!Number.isInteger(options.maxSources) || options.maxSources < 1 || options.maxSources > 1 << 24) {
      throw new Error(`eBPF capture: maxSources ${options.maxSources} is not an integer in 1-16777216`);
    }
    args.push('--max-active', String(options.maxSources));
  }
  if (options.statsIntervalMs !== undefined) {
    if (!Number.isInteger(options.statsIntervalMs) || options.statsIntervalMs < 10 || options.statsIntervalMs > 3_600_000) {
      throw new Error(`eBPF capture: statsIntervalMs ${options.statsIntervalMs} is not an integer in 10-3600000`);
    }
    args.push('--stats-ms', String(options.statsIntervalMs));
  }
  return args;
}

function missingLoader(path: string): string | undefined {
  try {
    accessSync(path, constants.X_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? `eBPF capture: loader ${path} not found; ${BUILD_HINT}`
      : `eBPF capture: loader ${path} is not executable (${code ?? 'unknown error'})`;
  }
}

/**
 * Why `--capture ebpf` cannot run here, or undefined when it can: checks the
 * loader exists and that this kernel and these privileges can load the program.
 */
export async function ebpfUnavailableReason(loaderPath: string = defaultLoaderPath(), hook: EbpfHook = 'tc'): Promise<string | undefined> {
  const missing = missingLoader(loaderPath);
  if (missing !== undefined) return missing;
  const r = await execa(loaderPath, ['--check', '--hook', hook], { reject: false, stdin: 'ignore', timeout: 30_000 });
  if (r.exitCode === 0) return undefined;
  return `eBPF capture: ${errorSummary(String(r.stderr ?? '')) || r.message}`;
}

/** The loader's "error: " lines, or its last lines when it printed none. */
function errorSummary(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  const errors = lines.filter((l) => l.startsWith('error: ')).map((l) => l.slice('error: '.length));
  return (errors.length > 0 ? errors : lines.slice(-10)).join('; ');
}

type Level = 'info' | 'warn' | 'error';

/** Splits the loader's stderr into lines and logs them by their level prefix. */
function createStderrSink(logger: CaptureLogger | undefined): { push(chunk: Buffer): void; flush(): void; tail(): string } {
  let partial = '';
  let tail = '';
  let level: Level = 'warn';
  const line = (text: string): void => {
    const m = /^(info|warn|error): (.*)$/.exec(text);
    // libbpf's multi-line messages (verifier log) carry the prefix on their first line only.
    if (m) level = m[1] as Level;
    if (text !== '') logger?.[level]({ loader: LOADER_NAME }, m ? m[2] : text);
  };
  return {
    push(chunk: Buffer): void {
      const text = chunk.toString('utf8');
      tail = (tail + text).slice(-STDERR_TAIL_BYTES);
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) line(l);
    },
    flush(): void {
      if (partial !== '') line(partial);
      partial = '';
    },
    tail: () => tail,
  };
}

/**
 * Live capture through the eBPF program. Each subscription starts one loader
 * process; unsubscribing stops it (it detaches before exiting) and onExit
 * reports when it is gone. Errors if the loader is missing, fails to start
 * (with its own explanation), exits on its own, or writes a corrupt stream.
 * Throws at once for options no loader could accept (see loaderArgs).
 */
export function openEbpfCapture(options: EbpfCaptureOptions): Observable<Frame> {
  const args = loaderArgs(options);
  const loaderPath = options.loaderPath ?? defaultLoaderPath();
  const logger = options.logger;

  return new Observable<Frame>((subscriber) => {
    const missing = missingLoader(loaderPath);
    if (missing !== undefined) {
      subscriber.error(new Error(missing));
      return undefined;
    }
    const decoder = createLoaderStreamDecoder();
    const stderr = createStderrSink(logger);
    let counters: EbpfCounters | undefined;
    let ready = false;
    // Set once the subscriber is done (unsubscribed, errored): later records
    // are read only for their counters, so the pipe never stalls the loader.
    let done = false;

    logger?.debug({ command: [loaderPath, ...args] }, 'starting eBPF loader');
    const child = execa(loaderPath, args, {
      stdin: 'pipe', // held open: the loader exits when it closes (we died)
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      encoding: 'buffer',
      reject: false,
      forceKillAfterDelay: KILL_GRACE_MS,
    });

    const stop = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin?.end();
      child.kill('SIGTERM');
    };
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      stop();
      subscriber.error(err);
    };
    const handle = (record: LoaderRecord): void => {
      switch (record.type) {
        case 'frame':
          if (!done) subscriber.next(record.frame);
          return;
        case 'counters':
          if (counters !== undefined && record.counters.drops > counters.drops) {
            logger?.warn({ drops: record.counters.drops - counters.drops }, 'eBPF ring buffer full: events lost');
          }
          counters = record.counters;
          options.onCounters?.(record.counters);
          return;
        case 'ready':
          ready = true;
          logger?.info({ interfaces: record.interfaces.map((i) => i.name), hook: options.hook ?? 'tc' }, 'eBPF capture attached');
          if (!done) options.onReady?.(record.interfaces);
          return;
      }
    };

    child.stdout?.on('data', (chunk: Buffer) => {
      let records: LoaderRecord[];
      try {
        records = decoder.push(chunk);
      } catch (err) {
        fail(err as Error);
        return;
      }
      for (const r of records) handle(r);
    });
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));

    void child.then((result) => {
      stderr.flush();
      if (!done) {
        const how =
          result.signal !== undefined
            ? `was killed by ${result.signal}`
            : result.exitCode !== undefined
              ? `exited with code ${result.exitCode}`
              : 'could not be run';
        const why = errorSummary(stderr.tail()) || result.message;
        try {
          decoder.finish();
        } catch (err) {
          logger?.warn({ err }, 'eBPF loader output ended mid-record');
        }
        fail(new Error(ready ? `eBPF loader ${how}: ${why}` : `eBPF capture failed to start: loader ${how}: ${why}`));
      }
      options.onExit?.({ exitCode: result.exitCode, signal: result.signal, counters });
    });

    return () => {
      done = true;
      stop();
    };
  });
}
