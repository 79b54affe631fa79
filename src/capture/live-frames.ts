// The live capture as knockwatch runs it: follows the interface
// (interfaces.ts) and keeps one capture (live.ts) open.
//  - address added or removed: nothing happens here. The filter holds no host
//    address (filter.ts); which knocks are for this host is decided after
//    decoding against a live address set (host-addresses.ts). Reopening on
//    every address change lost knocks: a new capture process takes ~0.1 s
//    and more on a busy machine, and router advertisements can change
//    addresses several times a second;
//  - link down: the capture is stopped; link up again: it reopens;
//  - interface deleted and created again (new ifindex): it reopens;
//  - MAC address changed: it reopens, since the filter admits unicast frames
//    for the interface's own MAC only (filter.ts, linkClause);
//  - a capture that fails or dies is retried with exponential backoff, except
//    for errors retrying cannot fix (permission, filter, missing addon),
//    which error the Observable. It never completes.
import { defer, distinctUntilChanged, finalize, map, NEVER, Observable, retry, switchMap, throwError, timer } from 'rxjs';
import type { Frame, Protocol } from '../types.js';
import { buildCaptureFilter } from './filter.js';
import { watchInterfaces, type InterfaceState, type LiveLogger } from './interfaces.js';
import { isFatalCaptureError, LiveCaptureError, openLiveCapture, type LiveCaptureCounters, type LiveCaptureOptions } from './live.js';

export type { LiveLogger } from './interfaces.js';

export interface LiveFramesOptions {
  /** Interface name, or `any`. */
  readonly interface: string;
  /** Protocols to capture (CaptureNeeds.protocols, derived from the doors by detect). */
  readonly protocols: readonly Protocol[];
  readonly snaplen?: number;
  readonly bufferSize?: number;
  /** See LiveCaptureOptions.backlogBytes. */
  readonly backlogBytes?: number;
  readonly logger?: LiveLogger;
  /** Interface poll period, ms (default 1000). */
  readonly pollMs?: number;
  /** First retry delay after a failed capture, ms (default 500); doubles up to maxRetryDelayMs. */
  readonly retryDelayMs?: number;
  /** Longest retry delay, ms (default 30000). */
  readonly maxRetryDelayMs?: number;
  /** Interface states to follow; default watchInterfaces(interface). For tests. */
  readonly states?: Observable<InterfaceState>;
  /** Opens one capture; default openLiveCapture. For tests. */
  readonly open?: (options: LiveCaptureOptions) => Observable<Frame>;
  /** Called each time a capture is open (after 'live capture open' is logged): the daemon's readiness. */
  readonly onOpened?: () => void;
}

interface Plan {
  readonly state: InterfaceState;
  /** Set when a capture should run. */
  readonly capture: boolean;
  /** Why no capture runs. */
  readonly idle?: string;
}

/**
 * Only link state and identity: addresses never reopen the capture. The MAC
 * does (it is in the filter, and cap cannot replace the filter of an open
 * capture), but it changes only when an administrator sets it.
 */
function planKey(p: Plan): string {
  return `${p.state.up}|${p.state.ifindex ?? ''}|${p.state.linkAddress ?? ''}|${p.idle ?? ''}`;
}

/** Why this (re)open happens, for the log. */
function reopenReason(previous: Plan | undefined, next: Plan): string {
  if (!previous) return 'start';
  if (!previous.capture) return 'link up';
  if (previous.state.ifindex !== next.state.ifindex) return 'interface re-created';
  if (previous.state.linkAddress !== next.state.linkAddress) return 'MAC address changed';
  return 'link changed';
}

/** Frames captured live on `options.interface`, surviving address changes and link down/up. */
export function liveFrames(options: LiveFramesOptions): Observable<Frame> {
  const name = options.interface;
  const log = options.logger;
  const open = options.open ?? openLiveCapture;
  const initialDelay = options.retryDelayMs ?? 500;
  const maxDelay = options.maxRetryDelayMs ?? 30_000;

  return defer(() => {
    // Fail now on nothing to capture, not when the interface first comes up.
    buildCaptureFilter(options.protocols);
    const states = options.states ?? watchInterfaces(name, { pollMs: options.pollMs, logger: log });

    const toPlan = (state: InterfaceState): Plan => {
      if (!state.up) return { state, capture: false, idle: state.addresses.length === 0 && state.ifindex === undefined ? 'interface not found' : 'link down' };
      return { state, capture: true };
    };

    let previous: Plan | undefined;
    const capture = (plan: Plan): Observable<Frame> => {
      const reason = reopenReason(previous, plan);
      // `any` has no MAC (cooked frames: the decoder reads their packet type).
      const filter = buildCaptureFilter(options.protocols, name === 'any' ? undefined : plan.state.linkAddress);
      let attempt = 0;
      return defer(() => {
        attempt += 1;
        log?.info(
          { interface: name, reason: attempt === 1 ? reason : 'retry', attempt, filter },
          attempt === 1 && reason === 'start' ? 'opening live capture' : 'reopening live capture',
        );
        let last: LiveCaptureCounters | undefined;
        let shedding = false;
        const onCounters = (c: LiveCaptureCounters): void => {
          const shed = c.shed - (last?.shed ?? 0);
          // Once per episode, not every second of a long flood; the totals are in the summary.
          if (shed > 0 && !shedding) {
            log?.warn({ interface: name, shed, captured: c.captured, backlogBytes: c.backlogBytes }, 'live capture shedding frames: knockwatch is not keeping up');
          }
          shedding = shed > 0;
          last = c;
          log?.debug?.({ interface: name, ...c }, 'live capture counters');
        };
        return open({
          interface: name,
          filter,
          snaplen: options.snaplen,
          bufferSize: options.bufferSize,
          backlogBytes: options.backlogBytes,
          onCounters,
          onOpened: ({ linkType, pid }) => {
            log?.info({ interface: name, linkType, pid }, 'live capture open');
            options.onOpened?.();
          },
        }).pipe(
          // The exit summary. Kernel ring drops are not in it: cap 0.2.1 has no pcap_stats().
          finalize(() => {
            if (last) log?.info({ interface: name, ...last }, 'live capture stopped');
          }),
        );
      }).pipe(
        retry({
          resetOnSuccess: true,
          delay: (err: unknown, count: number) => {
            if (!(err instanceof LiveCaptureError) || isFatalCaptureError(err)) return throwError(() => err);
            const ms = Math.min(initialDelay * 2 ** (count - 1), maxDelay);
            log?.warn({ interface: name, kind: err.kind, err: err.message, retryInMs: ms }, 'live capture failed; retrying');
            return timer(ms);
          },
        }),
      );
    };

    return states.pipe(
      map(toPlan),
      distinctUntilChanged((a, b) => planKey(a) === planKey(b)),
      switchMap((plan) => {
        const frames = plan.capture ? capture(plan) : idle(plan);
        previous = plan;
        return frames;
      }),
    );
  });

  function idle(plan: Plan): Observable<Frame> {
    log?.warn({ interface: name, up: plan.state.up, addresses: plan.state.addresses }, `live capture paused: ${plan.idle}`);
    return NEVER;
  }
}
