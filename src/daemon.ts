// The composition root of the live daemon: capture -> decode -> detect ->
// firewall, the same stages `replay` uses, plus the wall clock that live
// operation needs (packet times are capture times; ticks close accesses on time
// without traffic) and reload/shutdown.
import { Subject, type MonoTypeOperatorFunction, type Observable, type Subscription } from 'rxjs';
import { openEbpfCapture, watchedPorts, type EbpfHook } from './capture/ebpf.js';
import { liveFrames } from './capture/live-frames.js';
import { keepKnocksForHost } from './capture/host-addresses.js';
import { wallClock } from './capture/live-clock.js';
import { createDecodeStats, type DecodeStats } from './decode/decode.js';
import { decodeFrames } from './decode/operator.js';
import { createDetector, liveTicks, runDetector, type Detector } from './detect/index.js';
import { accessFromDecision, accessKeyFromDecision, createFirewall, type FirewallAdapter } from './firewall/index.js';
import type { Logger } from './log.js';
import type { Decision, Door, Frame, KnockEvent, KnockwatchConfig, OpenDecision } from './types.js';
import { formatPort } from './types.js';

export interface DaemonOptions {
  readonly logger: Logger;
  /** Run firewall commands inside this network namespace (demo, tests). */
  readonly netns?: string;
  readonly ebpfHook?: EbpfHook;
  /** Frames to use instead of live capture (tests). */
  readonly frames?: Observable<Frame>;
  /** Called for every decision after it was logged (tests, demo). */
  readonly onDecision?: (d: Decision) => void;
}

export interface Daemon {
  readonly config: KnockwatchConfig;
  readonly decodeStats: DecodeStats;
  readonly detector: Detector;
  readonly firewall: FirewallAdapter;
  /** Resolves when the capture fails for good (the daemon cannot go on). */
  readonly failed: Promise<Error>;
  /** Applies a new configuration; open accesses stay until their deadline. */
  reload(next: KnockwatchConfig): Promise<void>;
  /** Clean exit: stop capturing, close every access, remove our rules. */
  stop(): Promise<void>;
}

/**
 * pcap's filter holds no host address (cap cannot change the filter of an
 * open capture): the address rule is applied after decoding, against the
 * host's live addresses. eBPF applies it in the kernel (its `local` map).
 */
function forThisHost(config: KnockwatchConfig, options: DaemonOptions): MonoTypeOperatorFunction<KnockEvent> {
  if (options.frames || config.capture !== 'pcap') return (knocks) => knocks;
  return keepKnocksForHost({ logger: options.logger.child({ stage: 'capture' }) });
}

function captureSource(config: KnockwatchConfig, options: DaemonOptions): Observable<Frame> {
  if (options.frames) return options.frames;
  const log = options.logger.child({ stage: 'capture' });
  if (config.capture === 'ebpf') {
    return openEbpfCapture({
      interfaces: config.interface,
      ...watchedPorts(config.doors),
      hook: options.ebpfHook ?? 'tc',
      maxSources: Math.min(config.maxSources, 1 << 20),
      logger: log,
      ...(options.netns !== undefined ? { netns: options.netns } : {}),
      onReady: (ifs) => log.info({ interfaces: ifs }, 'eBPF capture attached'),
      onCounters: (c) => log.debug({ counters: c }, 'eBPF counters'),
      onExit: (e) => log.info({ exitCode: e.exitCode, signal: e.signal, counters: e.counters }, 'eBPF capture detached'),
    });
  }
  return liveFrames({ interface: config.interface, doors: config.doors, logger: log });
}

function logDecision(log: Logger, d: Decision): void {
  switch (d.type) {
    case 'open':
      log.info({ door: d.door, source: d.source, ports: d.ports.map(formatPort), until: new Date(d.until).toISOString(), refreshed: d.refreshed }, d.refreshed ? 'access refreshed' : 'access opened');
      break;
    case 'close':
      log.info({ door: d.door, source: d.source, ports: d.ports.map(formatPort), reason: d.reason }, 'access closed');
      break;
    case 'reset': {
      // A reset after real progress is news; one after only a first step is
      // what every scanner and spoofed flood produces, so it stays at debug
      // level rather than drowning the log.
      const fields = { door: d.door, source: d.source, reason: d.reason, step: d.step, port: d.port, protocol: d.protocol };
      if (d.step >= 2) log.info(fields, 'sequence reset');
      else log.debug(fields, 'sequence reset');
      break;
    }
    case 'progress':
      log.debug({ door: d.door, source: d.source, step: d.step, of: d.of }, 'sequence progress');
      break;
    case 'knock':
      log.debug({ door: d.door, source: d.source, port: d.port, protocol: d.protocol }, 'knock');
      break;
  }
}

export async function startDaemon(initial: KnockwatchConfig, options: DaemonOptions): Promise<Daemon> {
  const log = options.logger;
  const firewall = createFirewall(initial.firewall, {
    logger: log.child({ stage: 'firewall', backend: initial.firewall }),
    ...(options.netns !== undefined ? { netns: options.netns } : {}),
  });
  // Start-up removes what a previous run left in our own table/chains.
  await firewall.init(initial.doors);

  let config = initial;
  const decodeStats = createDecodeStats();
  let detector = createDetector(config.doors, { maxSources: config.maxSources });
  let pipeline: Subscription | undefined;
  let stopping = false;
  const failure = new Subject<Error>();
  const failed = new Promise<Error>((resolve) => failure.subscribe(resolve));
  const pending = new Set<Promise<void>>();

  // Firewall calls are ordered per source by the adapter; we only track them
  // so shutdown can wait, and report failures (the adapter's list() stays true).
  const track = (what: string, d: Decision, p: Promise<void>): void => {
    const tracked = p.then(
      () => undefined,
      (err: Error & { stderr?: string }) => {
        log.error({ door: d.door, source: d.source, err: err.message, stderr: err.stderr }, `firewall ${what} failed`);
      },
    );
    pending.add(tracked);
    void tracked.finally(() => pending.delete(tracked));
  };

  const act = (d: Decision): void => {
    logDecision(log, d);
    if (d.type === 'open') track('open', d, firewall.open(accessFromDecision(d, wallClock())));
    else if (d.type === 'close') track('close', d, firewall.close(accessKeyFromDecision(d)));
    options.onDecision?.(d);
  };

  const startPipeline = (): void => {
    const det = detector;
    pipeline = captureSource(config, options)
      .pipe(decodeFrames(decodeStats), forThisHost(config, options), runDetector(det, { ticks: liveTicks({ now: wallClock, nextDeadline: () => det.nextDeadline() }) }))
      .subscribe({
        next: act,
        error: (err: Error) => {
          if (stopping) return;
          log.fatal({ err: err.message }, 'capture failed');
          failure.next(err);
        },
      });
  };
  startPipeline();
  log.info(
    { interface: config.interface, capture: config.capture, firewall: config.firewall, doors: config.doors.map((d) => d.name) },
    'knockwatch running',
  );

  async function settle(): Promise<void> {
    while (pending.size > 0) await Promise.allSettled([...pending]);
  }

  return {
    get config() {
      return config;
    },
    decodeStats,
    get detector() {
      return detector;
    },
    firewall,
    failed,
    async reload(next) {
      pipeline?.unsubscribe();
      const carried = detector.openAccesses();
      await settle();
      await firewall.init(next.doors);
      config = next;
      detector = createDetector(next.doors, { maxSources: next.maxSources });
      // Accesses granted under the old config stay until their deadline where
      // their door still exists; the new detector tracks and closes them.
      const now = wallClock();
      for (const a of carried) {
        const door: Door | undefined = next.doors.find((d) => d.name === a.door);
        const ports = door ? a.ports.filter((p) => door.open.some((o) => o.port === p.port && o.protocol === p.protocol)) : [];
        if (!door || ports.length === 0 || a.until <= now) {
          log.info({ door: a.door, source: a.source }, 'access ended by reload (door removed or changed)');
          continue;
        }
        detector.restore({ door: a.door, source: a.source, until: a.until, ports });
        const reopen: OpenDecision = { type: 'open', door: a.door, source: a.source, time: now, until: a.until, ports, refreshed: true };
        track('reopen', reopen, firewall.open(accessFromDecision(reopen, now)));
      }
      await settle();
      startPipeline();
      log.info({ doors: next.doors.map((d) => d.name), carried: carried.length }, 'configuration reloaded');
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      pipeline?.unsubscribe();
      detector.shutdown(wallClock(), act);
      await settle();
      await firewall.shutdown();
      log.info({ packets: decodeStats.frames, knocks: decodeStats.knocks, malformed: decodeStats.malformed, ...detector.stats }, 'knockwatch stopped');
    },
  };
}
