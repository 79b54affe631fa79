// The daemon's capture stage, chosen by the config: pcap (with the address
// rule applied after decoding) or eBPF (the rule applied in the kernel), or
// frames handed in by a test. What capture must let through is derived from
// the doors by detect's captureNeeds() and handed over as plain data, so the
// capture code knows nothing of door kinds.
import type { MonoTypeOperatorFunction, Observable } from 'rxjs';
import { openEbpfCapture, type EbpfHook } from '../capture/ebpf.js';
import { keepKnocksForHost } from '../capture/host-addresses.js';
import { liveFrames } from '../capture/live-frames.js';
import { CAPTURE_NICE, raisePriority } from '../capture/priority.js';
import { captureNeeds } from '../detect/index.js';
import type { Logger } from '../log.js';
import type { Frame, KnockEvent, KnockwatchConfig } from '../types.js';

export interface CaptureSourceOptions {
  readonly logger: Logger;
  readonly netns?: string;
  readonly ebpfHook?: EbpfHook;
  /** Frames to use instead of live capture (tests). */
  readonly frames?: Observable<Frame>;
}

/**
 * pcap's filter holds no host address (cap cannot change the filter of an
 * open capture): the address rule is applied after decoding, against the
 * host's live addresses. eBPF applies it in the kernel (its `local` map).
 */
export function forThisHost(config: KnockwatchConfig, options: CaptureSourceOptions): MonoTypeOperatorFunction<KnockEvent> {
  if (options.frames || config.capture !== 'pcap') return (knocks) => knocks;
  return keepKnocksForHost({ logger: options.logger.child({ stage: 'capture' }) });
}

/** Frames from the configured capture backend; onReady once it really captures. */
export function captureSource(config: KnockwatchConfig, options: CaptureSourceOptions, onReady: () => void): Observable<Frame> {
  if (options.frames) {
    onReady();
    return options.frames;
  }
  const log = options.logger.child({ stage: 'capture' });
  // Before the capture process starts, which inherits it (why: capture/priority.ts).
  const priority = raisePriority();
  if (priority.error !== undefined) log.info({ nice: priority.nice, wanted: CAPTURE_NICE, err: priority.error }, 'capture priority not raised (needs CAP_SYS_NICE or Nice= in the service unit)');
  const needs = captureNeeds(config.doors);
  if (config.capture === 'ebpf') {
    return openEbpfCapture({
      interfaces: config.interface,
      protocols: needs.protocols,
      steps: needs.steps,
      firstSteps: needs.firstSteps,
      openPorts: needs.openPorts,
      hook: options.ebpfHook ?? 'tc',
      maxSources: Math.min(config.maxSources, 1 << 20),
      logger: log,
      ...(options.netns !== undefined ? { netns: options.netns } : {}),
      onReady: (ifs) => {
        log.info({ interfaces: ifs }, 'eBPF capture attached');
        onReady();
      },
      onCounters: (c) => log.debug({ counters: c }, 'eBPF counters'),
      onExit: (e) => log.info({ exitCode: e.exitCode, signal: e.signal, counters: e.counters }, 'eBPF capture detached'),
    });
  }
  return liveFrames({ interface: config.interface, protocols: needs.protocols, logger: log, onOpened: onReady });
}
