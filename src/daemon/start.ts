// The composition root of the live daemon: capture -> decode -> detect ->
// firewall, the same stages `replay` uses, plus the wall clock that live
// operation needs (packet times are capture times; ticks close accesses on time
// without traffic) and reload/shutdown. A clean stop leaves our rules and the
// remaining accesses in the kernel (their timeouts end them): stopping must
// never open the door ports to everyone.
import { Subject, type Observable, type Subscription } from 'rxjs';
import type { EbpfHook } from '../capture/ebpf.js';
import { wallClock } from '../capture/live-clock.js';
import { createDecodeStats, type DecodeStats } from '../decode/decode.js';
import { decodeFrames } from '../decode/operator.js';
import { createDetector, liveTicks, runDetector, type Detector } from '../detect/index.js';
import { accessFromDecision, accessKeyFromDecision, createFirewall, type Firewall } from '../firewall/index.js';
import { watchFirewallState, type StateWatch } from '../firewall/state-watch.js';
import type { Logger } from '../log.js';
import type { Decision, Frame, KnockwatchConfig } from '../types.js';
import { captureSource, forThisHost } from './capture-source.js';
import { endsOnReload, ledgerAccess } from './carry.js';
import { logDecision } from './decision-log.js';
import { DEFAULT_STATE_DIR } from './spa-state-store.js';
import { openRotatingStore } from './rotating-store.js';
import { createOneTimeStore } from './one-time-store.js';
import { startSpaDaemon } from './spa-daemon.js';

export interface DaemonOptions {
  readonly logger: Logger;
  /** Run firewall commands inside this network namespace (demo, tests). */
  readonly netns?: string;
  readonly ebpfHook?: EbpfHook;
  /** Frames to use instead of live capture (tests). */
  readonly frames?: Observable<Frame>;
  /** Called for every decision after it was logged (tests, demo). */
  readonly onDecision?: (d: Decision) => void;
  /** stop() removes our table/chains and sets (uninstall) instead of leaving them in place. */
  readonly removeRulesOnExit?: boolean;
  /** How often to check that our rules are still in the kernel, ms (default 1000). */
  readonly stateCheckMs?: number;
  /** The config file's path: spa key files named relative to it are read from its directory. */
  readonly configPath?: string;
  /** Where spa keeps its state file (default /var/lib/knockwatch). */
  readonly stateDir?: string;
}

export interface Daemon {
  readonly config: KnockwatchConfig;
  readonly decodeStats: DecodeStats;
  readonly detector: Detector;
  readonly firewall: Firewall;
  /** Resolves when the capture fails for good (the daemon cannot go on). */
  readonly failed: Promise<Error>;
  /**
   * Resolves once the firewall is installed and the capture is really open
   * (pcap's child said so / the eBPF program is attached), when
   * 'knockwatch running' is logged. An interface that is missing or down at
   * start delays it until the capture first opens.
   */
  readonly ready: Promise<void>;
  /** Applies a new configuration; open accesses stay until their deadline unless their door was removed or changed. */
  reload(next: KnockwatchConfig): Promise<void>;
  /** Clean exit: stop capturing, run the stop commands of open accesses; our rules stay (removeRulesOnExit: removed). */
  stop(): Promise<void>;
}

export async function startDaemon(initial: KnockwatchConfig, options: DaemonOptions): Promise<Daemon> {
  const log = options.logger;
  const firewall = createFirewall(initial.firewall, {
    logger: log.child({ stage: 'firewall', backend: initial.firewall }),
    ...(options.netns !== undefined ? { netns: options.netns } : {}),
  });
  // Start-up replaces what a previous run left in our own table/chains.
  await firewall.init(initial.doors);

  let config = initial;
  const decodeStats = createDecodeStats();
  // spa: keys read and the state file's horizon applied before any datagram is judged.
  const spa = await startSpaDaemon(initial, {
    logger: log,
    captureClock: wallClock,
    ...(options.configPath !== undefined ? { configPath: options.configPath } : {}),
    ...(options.stateDir !== undefined ? { stateDir: options.stateDir } : {}),
  });
  // rotating and one_time doors: used periods in the state directory, used lines in their files.
  const secretStores = {
    rotating: openRotatingStore(options.stateDir ?? DEFAULT_STATE_DIR, log.child({ stage: 'rotating' })),
    oneTime: createOneTimeStore(log.child({ stage: 'one-time' })),
  };
  const stores = () => ({ ...secretStores, ...(spa.store !== undefined ? { spa: spa.store } : {}) });
  let detector = createDetector(config.doors, { maxSources: config.maxSources, stores: stores() });
  let pipeline: Subscription | undefined;
  let stopping = false;
  const failure = new Subject<Error>();
  const failed = new Promise<Error>((resolve) => failure.subscribe(resolve));
  const pending = new Set<Promise<void>>();
  const watch: StateWatch | undefined =
    config.firewall === 'none'
      ? undefined
      : watchFirewallState({
          firewall,
          doors: () => config.doors,
          accesses: () => detector.openAccesses().map((a) => ledgerAccess(a, wallClock())),
          logger: log.child({ stage: 'firewall' }),
          ...(options.stateCheckMs !== undefined ? { intervalMs: options.stateCheckMs } : {}),
        });

  // Firewall calls are ordered per source by the adapter; we only track them
  // so shutdown can wait, and report failures (the adapter's list() stays true).
  // A failure may mean our rules are gone: check at once.
  const track = (what: string, d: Decision, p: Promise<void>): void => {
    const tracked = p.then(
      () => undefined,
      (err: Error & { stderr?: string }) => {
        // A refusal of the full open queue (firewall/batch.ts) is counted and
        // warned by the queue, once a second, and says nothing about our
        // rules: no error line each (thousands under a flood), no state check.
        if (err.name === 'QueueFullError') {
          log.debug({ door: d.door, source: d.source, err: err.message }, `firewall ${what} refused`);
          return;
        }
        log.error({ door: d.door, source: d.source, err: err.message, stderr: err.stderr }, `firewall ${what} failed`);
        watch?.checkSoon();
      },
    );
    pending.add(tracked);
    void tracked.finally(() => pending.delete(tracked));
  };

  // A refresh extends the kernel element but is the same access: the start
  // command ran at its open. A close at shutdown leaves the element to its
  // kernel timeout and only runs the stop command.
  const act = (d: Decision): void => {
    logDecision(log, d);
    if (d.type === 'open') track('open', d, firewall.open(accessFromDecision(d, wallClock()), { start: !d.refreshed }));
    else if (d.type === 'close') track('close', d, firewall.close(accessKeyFromDecision(d), { kernel: d.reason !== 'shutdown' }));
    options.onDecision?.(d);
  };

  // 'knockwatch running' once, at the first capture open: the firewall is
  // installed by then (init above), and before it knocks would go unseen.
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  let running = false;
  const onCaptureReady = (): void => {
    if (running) return;
    running = true;
    log.info(
      { interface: config.interface, capture: config.capture, firewall: config.firewall, doors: config.doors.map((d) => d.name) },
      'knockwatch running',
    );
    markReady();
  };

  const startPipeline = (): void => {
    const det = detector;
    pipeline = captureSource(config, options, onCaptureReady)
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

  async function settle(): Promise<void> {
    while (pending.size > 0) await Promise.allSettled([...pending]);
  }

  async function reload(next: KnockwatchConfig): Promise<void> {
    // Keys first: a key file that cannot be read refuses the reload before anything changed.
    const spaNext = await spa.prepare(next);
    pipeline?.unsubscribe();
    // Under the old doors, so the stop command is the one whose start command
    // ran: closes already due, then accesses whose door the reload removes or
    // changes (reason 'reload').
    const now = wallClock();
    const before = detector.stats.closes;
    const ends = endsOnReload(config.doors, next.doors);
    detector.closeForReload((a) => ends(a) || spaNext.ends(a), now, act);
    const closed = detector.stats.closes - before;
    const carried = detector.openAccesses();
    await settle();
    await firewall.init(next.doors);
    config = next;
    await spaNext.apply();
    detector = createDetector(next.doors, { maxSources: next.maxSources, stores: stores() });
    // Carried accesses keep their deadline; the new detector tracks and
    // closes them. Re-applied in the new table without a start command.
    for (const a of carried) {
      detector.restore(a);
      track('reopen', { type: 'open', door: a.door, source: a.source, time: now, until: a.until, ports: a.ports, refreshed: true }, firewall.open(ledgerAccess(a, now), { start: false }));
    }
    await settle();
    startPipeline();
    log.info({ doors: next.doors.map((d) => d.name), carried: carried.length, closed }, 'configuration reloaded');
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
    ready,
    reload: (next) => (watch ? watch.paused(() => reload(next)) : reload(next)),
    async stop() {
      if (stopping) return;
      stopping = true;
      await watch?.stop();
      pipeline?.unsubscribe();
      // Opens still queued behind a flood of completions are not worth
      // applying now (issue 8 item 6: SIGTERM took 71 s with 68k queued).
      firewall.dropPending?.();
      let left = 0;
      detector.shutdown(wallClock(), (d) => {
        if (d.type === 'close' && d.reason === 'shutdown') left += 1;
        act(d);
      });
      if (left > 0) log.info({ accesses: left }, 'accesses left to their kernel timeouts (stop commands run)');
      await spa.stop();
      await settle();
      if (options.removeRulesOnExit) await firewall.shutdown();
      else await firewall.release();
      log.info(
        { packets: decodeStats.frames, knocks: decodeStats.knocks, malformed: decodeStats.malformed, ...detector.stats, firewallReinstalls: watch?.stats.reinstalls ?? 0 },
        'knockwatch stopped',
      );
    },
  };
}
